#!/usr/bin/env python3
"""The layers of ARCHITECTURE.md hold: a folder includes only its own and
earlier layers' headers. Prints each include that breaks the order and exits
1; exits 0 when there is none.

    tools/check_layers.py [SOURCE_ROOT]
"""
import pathlib
import re
import sys

# The order of ARCHITECTURE.md's layer table: each uses only those before it.
LAYERS = ["base", "packet", "classifier", "rules", "netfilter", "analysis", "pcap", "tools"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    bad = []
    for rank, layer in enumerate(LAYERS):
        for path in sorted((root / layer).rglob("*")):
            if path.suffix not in (".h", ".cpp"):
                continue
            for m in INCLUDE.finditer(path.read_text(encoding="utf-8", errors="replace")):
                dep = m.group(1)
                if dep in LAYERS and LAYERS.index(dep) > rank:
                    line = path.read_text(encoding="utf-8", errors="replace").count("\n", 0, m.start()) + 1
                    bad.append(f"{path.relative_to(root)}:{line}: {layer}/ includes {dep}/, a later layer")
    for b in bad:
        print(b)
    if not bad:
        print(f"layers hold: {' < '.join(LAYERS)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
