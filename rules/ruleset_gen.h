// Ruleset generators: iptables-save texts in the shapes Docker 28 and
// kube-proxy (iptables mode) write, at any size, for benchmarks and tests.
// The rule texts follow data/rulesets/docker-28.save and kube-proxy.save
// line for line (ruleset_gen.cpp says which order each chain's rules come in
// and why); the kernel restores them and saves them back unchanged
// (tests/ruleset_gen_kernel_test.cpp).
//
// Docker: `networks` bridges (1..31): docker0 172.17.0.0/16, then br-<12 hex
// digits from the seed> on Docker's default pools (172.18-31.0.0/16, then
// 192.168.0.0/16 in /20s); `containers` spread over them in blocks in
// creation order (docker0 gets the first ceil(N/K)); each container
// publishes `ports` ports on host ports 10000, 10001, ...: published port g
// is bound to 127.0.0.1 when g mod 10 = 1 and is UDP when g mod 10 is 2 or 7
// (so the docker-28.save layout, 3 containers x 1 port on 2 networks, gives
// its rules exactly, with other bridge names and ports); container ports are
// drawn with the seed from common service ports, distinct per container.
// Tables in the order raw, filter, nat.
//
// kube-proxy: `services` ClusterIP services (1..65,000) on 172.30.0.0/16,
// service i UDP when i mod 8 = 3 and also a NodePort (30000-32767, while
// they last) when i mod 4 = 1, each with `endpoints` pods (>= 1);
// KUBE-SERVICES holds one jump per service and the nodeports rule last,
// KUBE-SVC-* chains mark outside traffic for masquerade and pick an endpoint
// with `-m statistic --mode random --probability 1/n, 1/(n-1), ...` (printed
// with kube-proxy's 10 decimals, the one place the text differs from the
// kernel's canonical 11) and a last unconditional jump; KUBE-SEP-* chains
// mark hairpin traffic and DNAT. Chain names end in 16 base32 characters of
// a 64-bit hash of the service (and endpoint) name and the seed, as
// kube-proxy's end in base32 of a SHA-256.
//
// Both are deterministic for a seed. Control plane: allocates; throws
// std::invalid_argument for sizes out of range.
#pragma once

#include <cstdint>
#include <string>

namespace nfb {

struct DockerGenOptions {
  uint32_t containers = 2;
  uint32_t ports = 1;     // published ports per container
  uint32_t networks = 1;  // 1..31 bridges
  uint64_t seed = 1;
};

struct KubeGenOptions {
  uint32_t services = 100;  // up to 65,000
  uint32_t endpoints = 2;   // per service, 1..1000
  uint64_t seed = 1;
};

std::string generate_docker_ruleset(const DockerGenOptions& o);
std::string generate_kube_ruleset(const KubeGenOptions& o);

}  // namespace nfb
