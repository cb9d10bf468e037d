#!/usr/bin/env bash
# Bounded libFuzzer run used as a test: run_fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS
# Copies the seed corpus to WORK_DIR (libFuzzer adds new inputs to its first
# corpus directory), uses a dictionary next to the seeds if there is one, and
# fails if the fuzzer finds a crash, a leak, a timeout or a sanitizer report.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -r "$seeds"/. "$work/corpus/" 2>/dev/null || true
# libFuzzer exits 77 on a crash by default, which meson reads as SKIP: a
# finding must fail the test.
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/artifacts/")
dict="$(dirname "$seeds")/../$(basename "$fuzzer").dict"
[ -f "$dict" ] && args+=(-dict="$dict")
echo "fuzzing $(basename "$fuzzer") for ${seconds}s"
"$fuzzer" "${args[@]}" "$work/corpus"
if compgen -G "$work/artifacts/*" >/dev/null; then
  echo "fuzzer left artifacts:"; ls -l "$work/artifacts"; exit 1
fi
