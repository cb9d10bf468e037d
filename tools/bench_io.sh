#!/usr/bin/env bash
# Line rate (issue 13's targets): `nfbench replay` throughput on one core,
# docker-28 ruleset, captures made by `nfbench gen traffic`:
#   - preloaded, 1% and 100% new connections, --rx-csum trust and verify;
#   - streamed (--stream), 1% new, trust;
#   - the DPDK ring source (a feeder lcore fills a net_ring port from the
#     preloaded capture; one worker lcore) against the in-memory replay;
#   - DPDK pcap vdevs with the capture's eth0 frames: one lcore on one rx
#     queue, and two lcores on two (the frames split as per-port RSS on the
#     client would split them: steer_lcore()'s hash), against the file
#     replay of the same frames (written four times over, later each time,
#     so that a run lasts ~0.5 s);
# REPS repetitions each (default 5), interleaved, one JSON object per run;
# then callgrind's instruction counts (deterministic): the marginal cost per
# packet of --loop 3 over --loop 1 on a 100K-packet 1% capture, trust and
# verify. Writes OUT (default results/io-DATE.jsonl) with a first "context"
# line (commit, CPU, kernel, compiler); tools/summarize_io.py makes the table.
# Compare ratios within one run; absolute figures move with the machine.
#
#   tools/bench_io.sh [--help] [OUT]
set -euo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
out=${1:-results/io-$(date -u +%Y%m%d).jsonl}
reps=${REPS:-5}
nfb=${NFBENCH:-./build/tools/nfbench}
rules=data/rulesets/docker-28.save
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nfb" gen traffic --rules "$rules" --packets 1000000 --flows 1000 --new-share 0.01 --seed 1 -o "$tmp/new1.pcapng" >&2
"$nfb" gen traffic --rules "$rules" --packets 300000 --flows 1000 --new-share 1 --seed 1 -o "$tmp/new100.pcapng" >&2
"$nfb" gen traffic --rules "$rules" --packets 100000 --flows 1000 --new-share 0.01 --seed 1 -o "$tmp/small1.pcapng" >&2
# The frames that arrive on eth0, as a classic pcap (a pcap vdev knows no
# interfaces), and split for two queues by the lcore that owns each flow.
python3 - "$tmp/new1.pcapng" "$tmp/eth0.pcap" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
pos, names, frames = 0, [], []
while pos < len(data):
    btype, blen = struct.unpack_from('<II', data, pos)
    if btype == 1:
        opt, name = pos + 16, ''
        while opt < pos + blen - 4:
            code, ln = struct.unpack_from('<HH', data, opt)
            if code == 0:
                break
            if code == 2:
                name = data[opt + 4:opt + 4 + ln].decode()
            opt += 4 + ((ln + 3) & ~3)
        names.append(name)
    elif btype == 6:
        iface, hi, lo, cap, wire = struct.unpack_from('<IIIII', data, pos + 8)
        if names[iface] == 'eth0':
            frames.append(((hi << 32) | lo, data[pos + 28:pos + 28 + cap], wire))
    pos += blen
# Four copies, each later by the capture's span + 1 s (what --loop 4 does),
# so that a run lasts long enough (~0.5 s) for start-up not to weigh.
copies = 4
shift = frames[-1][0] - frames[0][0] + 10**9 if frames else 0
def write(path, keep):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 65535, 1))
        for c in range(copies):
            for ts, b, wire in frames:
                if keep(b):
                    t = ts + c * shift
                    f.write(struct.pack('<IIII', t // 10**9, t % 10**9, len(b), wire))
                    f.write(b)
def lcore(b, lcores=2):
    # pcap/dpdk_port.cpp's steer_lcore() for a frame arriving outside: the
    # source address and port (what per-port RSS on the source would do).
    if len(b) < 34:
        return 0
    addr = int.from_bytes(b[26:30], 'big')
    ihl = (b[14] & 15) * 4
    port = int.from_bytes(b[14 + ihl:16 + ihl], 'big') if b[23] in (6, 17) and len(b) >= 16 + ihl else 0
    h = (((addr << 16) | port) * 0x9e3779b97f4a7c15) % (1 << 64)
    h ^= h >> 29
    return ((h >> 32) * lcores) >> 32
write(sys.argv[2], lambda b: True)
write(sys.argv[2] + '.q0', lambda b: lcore(b) == 0)
write(sys.argv[2] + '.q1', lambda b: lcore(b) == 1)
PY
eal="--no-huge --no-pci --no-shconf --no-telemetry -m 1024 -l 0 --log-level=lib.eal:error"
eal2="--no-huge --no-pci --no-shconf --no-telemetry -m 1024 -l 0-1 --log-level=lib.eal:error"
null3="--vdev=net_pcap1,tx_pcap=/dev/null,tx_pcap=/dev/null --vdev=net_pcap2,tx_pcap=/dev/null,tx_pcap=/dev/null"
ports="--port-map 0=eth0,1=docker0,2=br-5c0a8c6e1d2f"

python3 - "$nfb" > "$out" <<'PY'
import json, platform, subprocess, sys
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ''
cpu = ''
flags = []
for line in open('/proc/cpuinfo'):
    if line.startswith('model name') and not cpu:
        cpu = line.split(':', 1)[1].strip()
    if line.startswith('flags') and not flags:
        flags = [f for f in line.split(':', 1)[1].split() if f.startswith(('avx', 'sse4', 'bmi'))]
print(json.dumps({'run': 'context', 'git_commit': sh('git', 'rev-parse', 'HEAD'),
                  'git_dirty': sh('git', 'status', '--porcelain') != '', 'cpu_model': cpu, 'cpu_flags': flags,
                  'cores': int(sh('nproc') or 0), 'tsc_mhz': sh('sh', '-c', "grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2").strip(),
                  'kernel': platform.release(), 'compiler': sh('c++', '--version').splitlines()[0],
                  'dpdk_version': sh('pkg-config', '--modversion', 'libdpdk')}, sort_keys=True))
PY
run() {  # NAME, then the command (an nfbench replay)
  local name=$1
  shift
  "$@" --json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); j['run']='$name'; print(json.dumps(j, sort_keys=True))" >> "$out"
}
for i in $(seq "$reps"); do
  echo "== repetition $i" >&2
  run preload-1pct-trust taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new1.pcapng" --rx-csum trust
  run preload-1pct-verify taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new1.pcapng" --rx-csum verify
  run stream-1pct-trust taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new1.pcapng" --stream --rx-csum trust
  run preload-100pct-trust taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new100.pcapng" --rx-csum trust
  run preload-100pct-verify taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new100.pcapng" --rx-csum verify
  run ring-1pct-trust "$nfb" replay --rules "$rules" --dpdk "$eal2" --ring-from "$tmp/new1.pcapng" --rx-csum trust
  run file-eth0-trust taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/eth0.pcap" --rx-csum trust
  run dpdk-pcap-eth0-trust "$nfb" replay --rules "$rules" --rx-csum trust --dpdk "$eal --vdev=net_pcap0,rx_pcap=$tmp/eth0.pcap,tx_pcap=/dev/null --vdev=net_pcap1,tx_pcap=/dev/null --vdev=net_pcap2,tx_pcap=/dev/null" $ports
  run dpdk-pcap-eth0-2lcores-trust "$nfb" replay --rules "$rules" --rx-csum trust --lcores 2 --dpdk "$eal2 --vdev=net_pcap0,rx_pcap=$tmp/eth0.pcap.q0,rx_pcap=$tmp/eth0.pcap.q1,tx_pcap=/dev/null,tx_pcap=/dev/null $null3" $ports
done
# Instructions per packet: the marginal cost of two more loops.
if command -v valgrind >/dev/null; then
  for mode in trust verify; do
    for loops in 1 3; do
      valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$mode.$loops" \
        "$nfb" replay --rules "$rules" "$tmp/small1.pcapng" --loop "$loops" --rx-csum "$mode" >/dev/null 2>&1
    done
    python3 - "$tmp/cg.$mode.1" "$tmp/cg.$mode.3" "$mode" >> "$out" <<'PY'
import json, sys
def total(path):
    for line in open(path):
        if line.startswith('summary:') or line.startswith('totals:'):
            return int(line.split()[1])
    raise SystemExit('no total in ' + path)
one, three = total(sys.argv[1]), total(sys.argv[2])
print(json.dumps({'run': 'callgrind-1pct-' + sys.argv[3], 'instructions_loop1': one, 'instructions_loop3': three,
                  'packets_per_loop': 100000,
                  'instructions_per_packet': (three - one) / 200000}, sort_keys=True))
PY
  done
fi
echo "wrote $out" >&2
