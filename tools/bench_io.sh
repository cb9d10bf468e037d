#!/usr/bin/env bash
# Packet I/O and pipeline throughput on one core (issue 5's targets): a
# capture made by `nfbench gen traffic` for the docker-28 ruleset, replayed
#   - preloaded (the default), at 1% and 100% new connections;
#   - streamed (--stream), 1% new;
#   - through DPDK pcap vdevs (the eth0 frames of the same capture on a
#     net_pcap port, forwarded frames out on a second one), against the file
#     replay of exactly those frames;
#   - the same on two lcores, the frames split by source address (the
#     outside endpoint) into one rx queue each.
# REPS repetitions each (default 5), interleaved; one JSON object per run to
# OUT (default results/io-DATE.jsonl). Compare ratios within one run.
#
#   tools/bench_io.sh [OUT]
set -euo pipefail
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
# The frames that arrive on eth0, as a classic pcap (a pcap vdev knows no interfaces).
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
def write(path, keep):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 65535, 1))
        for ts, b, wire in frames:
            if keep(b):
                f.write(struct.pack('<IIII', ts // 10**9, ts % 10**9, len(b), wire))
                f.write(b)
write(sys.argv[2], lambda b: True)
write(sys.argv[2] + '.q0', lambda b: len(b) >= 34 and b[29] % 2 == 0)
write(sys.argv[2] + '.q1', lambda b: len(b) >= 34 and b[29] % 2 == 1)
PY
eal="--no-huge --no-pci --no-shconf --no-telemetry -m 1024 -l 0 --log-level=lib.eal:error"
eal2="--no-huge --no-pci --no-shconf --no-telemetry -m 1024 -l 0-1 --log-level=lib.eal:error"
null3="--vdev=net_pcap1,tx_pcap=/dev/null,tx_pcap=/dev/null --vdev=net_pcap2,tx_pcap=/dev/null,tx_pcap=/dev/null"
: > "$out"
run() {  # NAME, then the command (an nfbench replay)
  local name=$1
  shift
  "$@" --json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); j['run']='$name'; print(json.dumps(j, sort_keys=True))" >> "$out"
}
for i in $(seq "$reps"); do
  echo "== repetition $i" >&2
  run preload-1pct taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new1.pcapng"
  run stream-1pct taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new1.pcapng" --stream
  run preload-100pct taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/new100.pcapng"
  run file-eth0 taskset -c 0 "$nfb" replay --rules "$rules" "$tmp/eth0.pcap"
  run dpdk-pcap-eth0-2lcores "$nfb" replay --rules "$rules" --lcores 2 --dpdk "$eal2 --vdev=net_pcap0,rx_pcap=$tmp/eth0.pcap.q0,rx_pcap=$tmp/eth0.pcap.q1,tx_pcap=/dev/null,tx_pcap=/dev/null $null3" --port-map 0=eth0,1=docker0,2=br-5c0a8c6e1d2f
  run dpdk-pcap-eth0 "$nfb" replay --rules "$rules" --dpdk "$eal --vdev=net_pcap0,rx_pcap=$tmp/eth0.pcap,tx_pcap=/dev/null --vdev=net_pcap1,tx_pcap=/dev/null --vdev=net_pcap2,tx_pcap=/dev/null" --port-map 0=eth0,1=docker0,2=br-5c0a8c6e1d2f
done
echo "wrote $out" >&2
