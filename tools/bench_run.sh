#!/usr/bin/env bash
# One benchmark run for regression tracking: every Google Benchmark program
# of bench/ with REPS repetitions (default 9; every repetition is kept, so
# `nfbench compare` can test them), pinned to one core, merged into ONE
# Google Benchmark JSON file
#
#   results/runs/<UTC date and time>-<commit>.json
#
# whose `context` also says what was measured and where: git commit (and
# whether the tree had changes), CPU, kernel, compiler, DPDK version, and the
# SHA-256 of every input file (rule sets, traces). Then adds the run to
# results/index.json and results/index.md and redraws the plots
# (tools/plot_results.py).
#
#   tools/bench_run.sh [--filter REGEX] [--note TEXT] [--baseline]
#
# --filter runs only matching benchmarks (Google Benchmark's regex);
# --baseline marks the run as the baseline the README compares against.
# Needs a release build in build/ (tools/run.sh demo makes one). Takes
# about 13 minutes with everything on this 2-core machine.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
filter=""
note=""
baseline=0
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter=$2; shift 2 ;;
    --note) note=$2; shift 2 ;;
    --baseline) baseline=1; shift ;;
    *) echo "bench_run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
reps=${REPS:-9}
build=${BUILD:-build}
cpu=${BENCH_CPU:-0}
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release
ninja -C "$build" >/dev/null

commit=$(git rev-parse --short=12 HEAD)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
run_id="$stamp-$commit"
mkdir -p results/runs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export NFB_SOURCE_ROOT=$here
for exe in "$build"/bench/*_bench; do
  name=$(basename "$exe")
  args=(--benchmark_repetitions="$reps" --benchmark_out_format=json --benchmark_out="$tmp/$name.json"
        --benchmark_min_time=0.2)
  [ -n "$filter" ] && args+=(--benchmark_filter="$filter")
  echo "== $name" >&2
  taskset -c "$cpu" "$exe" "${args[@]}" >"$tmp/$name.log" 2>&1 || {
    echo "bench_run.sh: $name failed:" >&2
    tail -20 "$tmp/$name.log" >&2
    exit 1
  }
done

dirty=false
git diff --quiet HEAD -- base packet rules classifier netfilter analysis pcap bench tools meson.build || dirty=true
python3 - "$tmp" "results/runs/$run_id.json" "$run_id" "$commit" "$dirty" "$reps" "$note" "$baseline" <<'PY'
import glob, hashlib, json, math, os, platform, subprocess, sys
tmp, out, run_id, commit, dirty, reps, note, baseline = sys.argv[1:]

def sh(*cmd):
    try:
        return subprocess.check_output(cmd, text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return ""

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

merged = {"context": None, "benchmarks": []}
programs = []
for path in sorted(glob.glob(os.path.join(tmp, "*_bench.json"))):
    if os.path.getsize(path) == 0:
        continue  # the filter matched none of this program's benchmarks
    with open(path) as f:
        j = json.load(f)
    name = os.path.basename(path)[:-5]
    programs.append(name)
    if merged["context"] is None:
        merged["context"] = j["context"]
    for b in j["benchmarks"]:
        b["program"] = name
        merged["benchmarks"].append(b)
if merged["context"] is None:
    sys.exit("bench_run.sh: no benchmark output")
cpu_model = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu_model = line.split(":", 1)[1].strip()
        break
inputs = {}
for pattern in ("data/classbench/*", "data/rulesets/*.save"):
    for p in sorted(glob.glob(pattern)):
        if os.path.isfile(p) and not p.endswith(".md"):
            inputs[p] = sha256(p)
ctx = merged["context"]
ctx.update({
    "run_id": run_id,
    "git_commit": sh("git", "rev-parse", "HEAD"),
    "git_dirty": dirty == "true",
    "git_subject": sh("git", "log", "-1", "--format=%s"),
    "cpu_model": cpu_model,
    "kernel": platform.release(),
    "compiler": sh("c++", "--version").splitlines()[0] if sh("c++", "--version") else "",
    "dpdk_version": sh("pkg-config", "--modversion", "libdpdk"),
    "repetitions": int(reps),
    "programs": programs,
    "inputs_sha256": inputs,
    "note": note,
})
def finite(x):
    # Google Benchmark writes NaN for 0/0 (a _cv of constant counters):
    # not JSON. Such values become null, so any JSON reader takes the file.
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite(v) for v in x]
    return x
with open(out, "w") as f:
    json.dump(finite(merged), f, indent=1, sort_keys=False, allow_nan=False)
    f.write("\n")

index_path = "results/index.json"
index = {"baseline": None, "runs": []}
if os.path.exists(index_path):
    with open(index_path) as f:
        index = json.load(f)
index["runs"] = [r for r in index["runs"] if r["id"] != run_id]
index["runs"].append({
    "id": run_id,
    "file": "runs/" + run_id + ".json",
    "date": ctx.get("date", ""),
    "commit": ctx["git_commit"],
    "dirty": ctx["git_dirty"],
    "subject": ctx["git_subject"],
    "benchmarks": len({b["run_name"] for b in merged["benchmarks"] if b.get("run_type") == "iteration"}),
    "repetitions": int(reps),
    "note": note,
})
index["runs"].sort(key=lambda r: r["id"])
if baseline == "1":
    index["baseline"] = run_id
with open(index_path, "w") as f:
    json.dump(index, f, indent=1)
    f.write("\n")
with open("results/index.md", "w") as f:
    f.write("# Benchmark runs\n\n")
    f.write("Written by tools/bench_run.sh from index.json; newest last. "
            "Compare two with `nfbench compare results/runs/OLD.json results/runs/NEW.json`.\n\n")
    f.write("| run | commit | benchmarks | repetitions | note |\n|---|---|---|---|---|\n")
    for r in index["runs"]:
        mark = " (baseline)" if r["id"] == index.get("baseline") else ""
        f.write(f"| [{r['id']}]({r['file']}){mark} | {r['commit'][:12]}{' +changes' if r['dirty'] else ''} "
                f"| {r['benchmarks']} | {r['repetitions']} | {r['note']} |\n")
print(out)
PY
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 tools/plot_results.py
else
  echo "bench_run.sh: no python3-matplotlib: plots not redrawn (apt-get install python3-matplotlib)" >&2
fi
