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
  iptables iproute2 xz-utils
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

# Summary line from a meson test log: "N passed, N failed, N skipped".
summarize() {
  python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for log in sys.argv[1:]:
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
    ./build/tools/nfbench demo --data data
    ;;
  test)
    jobs=$(nproc)
    # 1. Release build (g++): unit tests, kernel tests, and the build of everything.
    build build
    status=0
    meson test -C build --num-processes "$jobs" --print-errorlogs || status=1
    # 2. Sanitizer build (clang, ASan+UBSan): the unit tests again and a bounded
    #    run of every libFuzzer target.
    CXX=clang++ build build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
      -Db_lundef=false -Dbench=false -Dbuildtype=debugoptimized
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      meson test -C build-fuzz --num-processes "$jobs" --print-errorlogs || status=1
    echo
    echo "tests: $(summarize build/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json)"
    exit $status
    ;;
  *)
    echo "usage: tools/run.sh demo|test" >&2
    exit 2
    ;;
esac
