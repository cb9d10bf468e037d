#!/bin/bash
# Rebuilds every AREA.kernel in this directory from AREA.input by asking the
# kernel: each input is loaded with iptables-legacy-restore into a fresh network
# namespace and read back with iptables-legacy-save; the save output, without
# its '#' comment lines, is AREA.kernel.
#
# counters.input is loaded with --counters and saved with --counters; every
# other input is loaded and saved without them.
#
# Each AREA.kernel is then loaded into another fresh namespace and saved again,
# to check that the canonical form is a fixed point (table by table, since the
# kernel lists tables newest first). A difference is reported and makes the
# script fail.
#
# Needs root, iproute2 and iptables-legacy. Usage:
#   sudo tests/data/iptables/canonical/regenerate.sh [AREA...]
# With no AREA, does every *.input here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LC_ALL=C
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

for tool in ip iptables-legacy-restore iptables-legacy-save; do
  command -v "$tool" >/dev/null || { echo "regenerate.sh: $tool not found" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "regenerate.sh: needs root" >&2; exit 2; }

ns="nfbcanon-$$"
ns_made=0
cleanup() {
  if [ "$ns_made" = 1 ]; then ip netns del "$ns" 2>/dev/null || true; fi
}
trap cleanup EXIT

fresh_ns() {
  cleanup
  ip netns add "$ns"
  ns_made=1
}

# load FILE COUNTERS_FLAG [SETS_FILE] -> prints the save output without '#'
# lines. "#ipset ..." lines of SETS_FILE (default FILE) are `ipset restore`
# input: the sets the rules name, created first.
load_and_save() {
  local file=$1 flag=$2 sets=${3:-$1}
  fresh_ns
  if grep -q '^#ipset ' "$sets"; then
    sed -n 's/^#ipset //p' "$sets" | ip netns exec "$ns" ipset restore -exist
  fi
  if ! ip netns exec "$ns" iptables-legacy-restore $flag < "$file"; then
    echo "regenerate.sh: iptables-legacy-restore $flag rejected $file" >&2
    return 1
  fi
  ip netns exec "$ns" iptables-legacy-save $flag | grep -v '^#'
}

# Lines of a save text prefixed with their table, stable-sorted by table, so
# two saves can be compared regardless of the order the tables are listed in.
by_table() {
  awk '/^\*/ { t = substr($0, 2) } { print t "\t" $0 }' | sort -s -t "$(printf '\t')" -k1,1
}

if [ $# -gt 0 ]; then
  areas=("$@")
else
  areas=()
  for f in "$here"/*.input; do
    a=$(basename "$f" .input)
    areas+=("$a")
  done
fi

status=0
for area in "${areas[@]}"; do
  input="$here/$area.input"
  kernel="$here/$area.kernel"
  flag=""
  [ "$area" = counters ] && flag="--counters"
  [ -f "$input" ] || { echo "regenerate.sh: no $input" >&2; status=1; continue; }

  tmp=$(mktemp)
  if ! load_and_save "$input" "$flag" > "$tmp"; then
    rm -f "$tmp"; status=1; continue
  fi
  mv "$tmp" "$kernel"
  chmod 644 "$kernel"

  again=$(load_and_save "$kernel" "$flag" "$input") || { status=1; continue; }
  if ! diff -u <(by_table < "$kernel") <(printf '%s\n' "$again" | by_table) >&2; then
    echo "regenerate.sh: $area.kernel is not a fixed point (see diff above)" >&2
    status=1
  fi
  printf '%-18s %4d rules\n' "$area" "$(grep -c -- '-A ' "$kernel" || true)"
done
exit $status
