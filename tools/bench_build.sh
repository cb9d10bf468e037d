#!/usr/bin/env bash
# Build time and memory of every registered classifier (classifier/
# algorithms.def) as rule sets grow: the curve issue 16 asks for.
#
#   tools/bench_build.sh [--timeout S] [OUT.jsonl]
#       (default results/build-YYYYMMDD.jsonl; a summary goes to OUT.md)
#
# Three kinds of rule set, one process per (rule set, algorithm), so the peak
# RSS (GNU time's %M) is that algorithm's alone:
#   classbench  acl1, fw1, ipc1 at 1K, 10K and 100K rules (data/classbench),
#               and a 1M set: acl1 100K tiled ten times, copy k with its
#               source addresses' first octet moved by 25k (prefixes shorter
#               than /8 kept); `nfbench classify --build-only` gives the
#               build seconds and the structure's bytes.
#   kube        `nfbench gen kube` nodes of 1K to 50K services (2 endpoints
#               each: 3 chains a service);
#   docker      `nfbench gen docker` hosts of 100 to 10K containers (one
#               published port each);
#               for these two `nfbench replay --json` on the bundled seed-case
#               capture gives pipeline_build_seconds (every chain's
#               classifier, the whole pipeline) and classifier_bytes.
# A run that fails (a build limit) or passes --timeout seconds (default
# 150) is recorded with its error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

timeout_s=150
out=results/build-$(date +%Y%m%d).jsonl
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    -*) echo "bench_build.sh: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
nfb=${NFBENCH:-./build/tools/nfbench}
[ -x "$nfb" ] || { echo "bench_build.sh: $nfb not built (meson compile -C build)" >&2; exit 2; }
algos=$(sed -n 's/^NFB_CLASSIFIER(\([a-z0-9_]*\),.*/\1/p' classifier/algorithms.def)
mkdir -p "$(dirname "$out")"
: > "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run KIND SET RULES ALGO CMD...: one line of OUT from CMD's JSON and GNU time.
run() {
  local kind=$1 set=$2 rules=$3 algo=$4; shift 4
  echo "== $kind $set $algo" >&2
  local rc=0
  /usr/bin/time -f '%M %e' -o "$tmp/time" timeout "$timeout_s" "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  python3 - "$kind" "$set" "$rules" "$algo" "$rc" "$tmp/out" "$tmp/err" "$tmp/time" "$timeout_s" >> "$out" <<'EOF'
import json, sys
kind, set_, rules, algo, rc, out, err, tim, limit = sys.argv[1:]
r = {"kind": kind, "set": set_, "rules": int(rules), "algo": algo}
try:
    rss_kb, wall = open(tim).read().split()[-2:]
    r["peak_rss_bytes"] = int(rss_kb) * 1024
    r["wall_seconds"] = float(wall)
except ValueError:
    pass
j = next((json.loads(l) for l in open(out) if l.startswith("{")), None)
if rc != "0" or j is None:
    msg = "did not finish in %s s" % limit if rc == "124" else (open(err).read().strip().splitlines() or ["exit " + rc])[-1]
    r["error"] = msg
else:
    r["build_seconds"] = j.get("build_seconds", j.get("pipeline_build_seconds"))
    r["memory_bytes"] = j.get("memory_bytes", j.get("classifier_bytes"))
print(json.dumps(r))
EOF
  tail -1 "$out" >&2
}

# ClassBench: the bundled sets, and the 1M tiling.
for set in acl1 fw1 ipc1; do
  for size in 1k 10k 100k; do
    case $size in
      100k) src=data/classbench/classbench_${set}_100k.rules.xz ;;
      *) src=data/classbench/neurocuts_${set}_${size}.rules ;;
    esac
    f=$tmp/${set}_${size}.rules
    case "$src" in *.xz) xz -dc "$src" > "$f" ;; *) cp "$src" "$f" ;; esac
    n=$(grep -c '^@' "$f")
    for algo in $algos; do
      run classbench "${set}_${size}" "$n" "$algo" "$nfb" classify --rules "$f" --build-only --json --algo "$algo"
    done
  done
done
f=$tmp/acl1_1m.rules
xz -dc data/classbench/classbench_acl1_100k.rules.xz | python3 -c '
import sys
lines = [l for l in sys.stdin if l.startswith("@")]
for k in range(10):
    for l in lines:
        f = l[1:].split("\t")
        addr, length = f[0].split("/")
        o = addr.split(".")
        if int(length) >= 8:
            o[0] = str((int(o[0]) + 25 * k) % 256)
        sys.stdout.write("@" + ".".join(o) + "/" + length + "\t" + "\t".join(f[1:]))
' > "$f"
n=$(grep -c '^@' "$f")
for algo in $algos; do
  run classbench acl1_1m_tiled "$n" "$algo" "$nfb" classify --rules "$f" --build-only --json --algo "$algo"
done

# kube-proxy nodes and Docker hosts: whole pipelines.
# pipelines KIND SET GEN-ARGS...: `nfbench gen GEN-ARGS` then a replay per algorithm.
pipelines() {
  local kind=$1 set=$2; shift 2
  local f=$tmp/${kind}_$set.save
  "$nfb" gen "$@" -o "$f"
  local n
  n=$(grep -c '^-A' "$f")
  for algo in $algos; do
    run "$kind" "$set" "$n" "$algo" "$nfb" replay --rules "$f" --algo "$algo" --json data/captures/seed-case.pcapng
  done
}
for services in 1000 5000 10000 20000 50000; do
  pipelines kube "services_$services" kube --services "$services" --endpoints 2
done
for containers in 100 1000 10000; do
  pipelines docker "containers_$containers" docker --containers "$containers" --ports 1
done

md=${out%.jsonl}.md
python3 - "$out" "$md" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
algos = list(dict.fromkeys(r['algo'] for r in runs))
def cell(r):
    if r is None:
        return '-'
    if 'error' in r:
        return 'fails: ' + r['error'].replace('|', '/')[:60]
    return '%.2f s, %.1f MB (RSS %.0f MB)' % (r['build_seconds'], r['memory_bytes'] / 1e6, r['peak_rss_bytes'] / 1e6)
with open(sys.argv[2], 'w') as f:
    f.write('# Classifier build time and memory as rule sets grow (%s)\n\n' % sys.argv[1])
    f.write('CPU: %s. One process per cell. Each cell: build seconds, the built structure\'s bytes\n'
            '(ClassBench: the classifier; kube and docker: every chain\'s classifier in one pipeline),\n'
            'and the process\'s peak RSS (ruleset, parse and build memory included).\n\n' % cpu)
    for kind in dict.fromkeys(r['kind'] for r in runs):
        f.write('## %s\n\n| set | rules | %s |\n|---|---|%s\n' % (kind, ' | '.join(algos), '---|' * len(algos)))
        for s in dict.fromkeys(r['set'] for r in runs if r['kind'] == kind):
            by = {r['algo']: r for r in runs if r['kind'] == kind and r['set'] == s}
            rules = next(iter(by.values()))['rules']
            f.write('| %s | %d | %s |\n' % (s, rules, ' | '.join(cell(by.get(a)) for a in algos)))
        f.write('\n')
print(open(sys.argv[2]).read(), file=sys.stderr)
EOF
echo "wrote $out and $md" >&2
