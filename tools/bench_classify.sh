#!/usr/bin/env bash
# Runs `nfbench classify` on the bundled ClassBench sets at 10K and 100K rules
# (acl1, fw1, ipc1; the 1M-header traces) and writes one JSON object per
# algorithm and set to OUT (default results/classify-DATE.jsonl).
#
#   tools/bench_classify.sh [OUT] [extra nfbench classify options]
#
# One core: the process pins itself through DPDK's EAL (core 0). Run it on a
# quiet machine; the comparison that counts is the ratio within one run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
out=${1:-results/classify-$(date -u +%Y%m%d).jsonl}
shift || true
nfb=${NFBENCH:-./build/tools/nfbench}
mkdir -p "$(dirname "$out")"
: > "$out"
for size in 10k 100k; do
  for set in acl1 fw1 ipc1; do
    if [ "$size" = 10k ]; then rules=data/classbench/neurocuts_${set}_10k.rules
    else rules=data/classbench/classbench_${set}_100k.rules.xz; fi
    trace=data/classbench/classbench_${set}_${size}.trace.xz
    echo "== $set $size" >&2
    "$nfb" classify --rules "$rules" --trace "$trace" --json --repeat 5 --verify 100000 "$@" | tee -a "$out"
  done
done
echo "wrote $out" >&2
