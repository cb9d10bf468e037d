#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install what is missing, build,
# then either run the main job on the bundled data or run the whole test suite.
#
#   tools/run.sh demo    set up, build, replay the bundled Docker-host data
#   tools/run.sh test    set up, build, run every test (unit, kernel, fuzz)
#
# Idempotent: packages already installed and builds already configured are
# left alone, so a second run only rebuilds what changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
mode=${1:-demo}

packages=(
  build-essential meson ninja-build pkg-config
  libdpdk-dev dpdk libhyperscan-dev libpcap-dev
  libbenchmark-dev libgtest-dev libgmock-dev googletest
  libfmt-dev nlohmann-json3-dev libcli11-dev liblzma-dev
  clang libclang-rt-14-dev
  iptables iproute2 conntrack ipset procps netbase xz-utils python3
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [meson options...]: configure once, then build.
build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@"
  fi
  ninja -C "$dir"
}

# suite_targets DIR SUITE...: the ninja targets that the tests of these
# suites need, so a build can make just those.
suite_targets() {
  python3 - "$@" <<'PY'
import json, os, subprocess, sys
d, suites = sys.argv[1], set(sys.argv[2:])
tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", d]))
targets = {t["id"]: t for t in json.loads(subprocess.check_output(["meson", "introspect", "--targets", d]))}
out = set()
for t in tests:
    if not any(s.split(":")[-1] in suites for s in t["suite"]):
        continue
    for dep in t["depends"]:
        for f in targets.get(dep, {}).get("filename", []):
            out.add(os.path.relpath(f, d))
print(" ".join(sorted(out)))
PY
}

# release_targets DIR: everything the build makes except the drivers of
# tests that only the 'unit' suite runs (those run once, under the
# sanitizers, in build-fuzz/) and the benchmarks (no test runs them;
# tools/bench_run.sh builds them): the libraries, the nfbench command, and
# the kernel and classifier tests. Leaving the benchmarks out takes about
# 1.5 minutes off a CI run that must stay under twenty.
release_targets() {
  python3 - "$1" <<'PY'
import json, os, subprocess, sys
d = sys.argv[1]
tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", d]))
targets = json.loads(subprocess.check_output(["meson", "introspect", "--targets", d]))
by_id = {t["id"]: t for t in targets}
suites_of = {}
for t in tests:
    for dep in t["depends"]:
        suites_of.setdefault(dep, set()).update(s.split(":")[-1] for s in t["suite"])
unit_only = {i for i, s in suites_of.items() if s <= {"unit", "fuzz"}}
out = set()
for t in targets:
    if not t["build_by_default"] or t["id"] in unit_only:
        continue
    if os.path.basename(os.path.dirname(t["defined_in"])) == "bench":
        continue
    out.update(os.path.relpath(f, d) for f in t["filename"])
# what the kernel and classifier tests need, built by default or not
for t in tests:
    if {s.split(":")[-1] for s in t["suite"]} & {"kernel", "classifier"}:
        for dep in t["depends"]:
            out.update(os.path.relpath(f, d) for f in by_id.get(dep, {}).get("filename", []))
print(" ".join(sorted(out)))
PY
}

# Summary line from a meson test log: "N passed, N failed, N skipped".
summarize() {
  python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
import os
for log in sys.argv[1:]:
    if not os.path.exists(log):
        failed += 1  # a build that never got to its tests counts as one failure
        continue
    for line in open(log):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
}

install_packages

case "$mode" in
  demo)
    build build
    nfb=./build/tools/nfbench
    out=build/demo
    mkdir -p "$out"
    echo "== A Docker 28 host publishes redis as 10000 -> 172.17.0.2:6379. Someone adds"
    echo "==   iptables -I DOCKER-USER -p tcp --dport 10000 -j DROP"
    echo "== and three outside clients connect to port 10000 (data/captures/seed-case.pcapng):"
    echo
    "$nfb" replay --rules data/rulesets/docker-28-seed-naive.save data/captures/seed-case.pcapng \
      --save-counters "$out/naive.save" -o "$out/naive"
    echo
    echo "== Counters (iptables-save -c) of the rules that matter:"
    grep -E -- '(-A DOCKER-USER|DNAT --to-destination 172.17.0.2|--dport 6379 -j ACCEPT)' "$out/naive.save"
    echo
    echo "== The DROP rule saw 0 packets: nat PREROUTING had already rewritten the destination"
    echo "== to 172.17.0.2:6379 before filter FORWARD ran. The fix matches the original tuple:"
    echo "==   iptables -I DOCKER-USER -p tcp -m conntrack --ctorigdstport 10000 --ctdir ORIGINAL -j DROP"
    echo
    "$nfb" replay --rules data/rulesets/docker-28-seed-fixed.save data/captures/seed-case.pcapng \
      --save-counters "$out/fixed.save" >/dev/null
    grep -E -- '(-A DOCKER-USER|DNAT --to-destination 172.17.0.2|--dport 6379 -j ACCEPT)' "$out/fixed.save"
    echo
    echo "== Now the fix counts the blocked packets and nothing reaches the container."
    echo
    echo "== nfbench finds such rules before any traffic flows (exit 1: it found one):"
    "$nfb" lint data/rulesets/docker-28-seed-naive.save || [ $? -eq 1 ]
    echo
    echo "== and explains one packet's way, with the tuple each chain saw:"
    "$nfb" explain data/rulesets/docker-28-seed-naive.save \
      --packet "tcp 203.0.113.5:40000 -> 198.51.100.1:10000 in eth0"
    echo
    echo "== Full counters: $out/naive.save, $out/fixed.save; frames the host sent: $out/naive/*.pcapng"
    ;;
  test)
    jobs=$(nproc)
    # 1. Release build (g++): everything but the unit-test drivers; the kernel
    #    and classifier tests, which need the release build's speed.
    if [ ! -f build/build.ninja ]; then
      meson setup build
    fi
    # shellcheck disable=SC2046
    ninja -C build $(release_targets build)
    # 2. Sanitizer build (clang, ASan+UBSan): the unit tests (run here only:
    #    building their drivers twice cost three minutes of a CI run that must
    #    stay under twenty) and a bounded run of every libFuzzer target. Compiled at -O1 with assertions on
    #    (ASan's usual level: -O2 took 15% longer to compile dtree.cpp, the
    #    longest file) and line tables only (stack traces keep file:line, the
    #    build loses a fifth of its time). It compiles at the lowest priority
    #    while the release tests run, on the core they leave idle (the kernel
    #    tests run one at a time).
    if [ ! -f build-fuzz/build.ninja ]; then
      CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbench=false -Doptimization=1 -Ddebug=true -Db_ndebug=false -Dcpp_args=-gline-tables-only
    fi
    # shellcheck disable=SC2046
    nice -n 19 ninja -C build-fuzz $(suite_targets build-fuzz unit fuzz) >build-fuzz/ninja.log 2>&1 &
    fuzz_build=$!
    status=0
    meson test -C build --no-rebuild --suite kernel --suite classifier --num-processes "$jobs" \
      --print-errorlogs || status=1
    echo "== sanitizer build (clang, ASan+UBSan): waiting for it to finish"
    if wait "$fuzz_build"; then
      ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-fuzz --no-rebuild --suite unit --suite fuzz --num-processes "$jobs" \
        --print-errorlogs || status=1
    else
      tail -n 60 build-fuzz/ninja.log
      rm -f build-fuzz/meson-logs/testlog.json
      echo "sanitizer build failed (whole log: build-fuzz/ninja.log)"
      status=1
    fi
    echo
    echo "tests: $(summarize build/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json)"
    exit $status
    ;;
  *)
    echo "usage: tools/run.sh demo|test" >&2
    exit 2
    ;;
esac
