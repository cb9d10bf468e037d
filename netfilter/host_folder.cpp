#include "netfilter/host_folder.h"

#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "base/input_file.h"
#include "netfilter/sysctl.h"

namespace nfb {

namespace fs = std::filesystem;

HostFolder HostFolder::open(const std::string& dir) {
  std::error_code ec;
  if (dir.empty()) throw std::invalid_argument("--host: an empty path is not a host folder");
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument(fmt::format("--host {}: not a directory (expected a folder from `nfbench snapshot`)", dir));
  HostFolder h;
  h.dir = dir;
  const auto file = [&](const char* name) {
    const fs::path p = fs::path(dir) / name;
    return fs::is_regular_file(p, ec) ? p.string() : std::string();
  };
  h.rules = file("iptables.save");
  if (h.rules.empty()) throw std::invalid_argument(fmt::format("--host {}: no iptables.save in it", dir));
  h.addrs = file("ip-addr.json");
  h.routes = file("ip-route.json");
  h.links = file("ip-link.json");
  h.sysctls = file("sysctl.txt");
  h.ipsets = file("ipset.save");
  if (h.addrs.empty() != h.routes.empty())
    throw std::invalid_argument(fmt::format("--host {}: ip-addr.json and ip-route.json go together", dir));
  return h;
}

HostSpec HostFolder::host_spec(CtConfig& conntrack, std::vector<std::string>& warnings) const {
  HostSpec spec = addrs.empty() ? default_docker_host_spec()
                                : parse_host_spec(read_input_file(addrs), read_input_file(routes), addrs, routes);
  if (!sysctls.empty()) {
    const std::string text = read_input_file(sysctls);
    // No net.bridge settings: br_netfilter is not loaded, and bridges
    // switch without netfilter (unless a -m physdev rule will load it).
    if (text.find("net.bridge.bridge-nf-call-iptables") == std::string::npos &&
        (rules.empty() || read_input_file(rules).find("-m physdev") == std::string::npos)) {
      spec.bridge_nf_call_iptables = false;
    }
    for (std::string& w : apply_sysctls_text(text, sysctls, SysctlTarget{conntrack, spec}))
      warnings.push_back(std::move(w));
  }
  return spec;
}

}  // namespace nfb
