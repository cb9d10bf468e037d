#!/bin/bash
# Rebuilds NAME.kernel here for every data/rulesets/NAME.save of the source
# tree: the text iptables-legacy-save prints after iptables-legacy-restore of
# the file into a fresh network namespace, without its '#' comment lines.
# The unit test iptables_save_test compares the reader+writer with these
# files table by table (the kernel lists tables newest first).
#
# Needs root, iproute2 and iptables-legacy. Usage:
#   sudo tests/data/iptables/rulesets/regenerate.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../../.." && pwd)
export LC_ALL=C
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
[ "$(id -u)" = 0 ] || { echo "regenerate.sh: needs root" >&2; exit 2; }

ns="nfbrulesets-$$"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
for save in "$root"/data/rulesets/*.save; do
  name=$(basename "$save" .save)
  ip netns add "$ns"
  ip netns exec "$ns" iptables-legacy-restore < "$save"
  ip netns exec "$ns" iptables-legacy-save | grep -v '^#' > "$here/$name.kernel"
  ip netns del "$ns"
  echo "wrote $name.kernel"
done
