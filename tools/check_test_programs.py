#!/usr/bin/env python3
"""Every program the tests run comes from a package tools/run.sh installs.

tests/support/test_programs.h lists the programs the tests may run by name
(run_command refuses others) with the Debian package of each; this script
checks that each such package is in run.sh's `packages=( ... )` list, or is
Essential (on every Debian system). Prints what is missing and exits 1;
exits 0 when nothing is.

    tools/check_test_programs.py [SOURCE_ROOT]
"""
import pathlib
import re
import sys

# Essential: yes packages of Debian 12 that the table may name.
ESSENTIAL = {"dash", "coreutils", "bash", "debianutils", "grep", "sed", "findutils", "util-linux"}


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    table = (root / "tests/support/test_programs.h").read_text()
    programs = re.findall(r'\{"([^"]+)", "([^"]+)"\}', table)
    if not programs:
        print("tests/support/test_programs.h: no {\"program\", \"package\"} entries found")
        return 1
    run_sh = (root / "tools/run.sh").read_text()
    m = re.search(r"^packages=\((.*?)^\)", run_sh, re.M | re.S)
    if not m:
        print("tools/run.sh: no packages=( ... ) list found")
        return 1
    packages = set(re.sub(r"#.*", "", m.group(1)).split())
    missing = [(prog, pkg) for prog, pkg in programs if pkg not in packages and pkg not in ESSENTIAL]
    for prog, pkg in missing:
        print(f"{prog}: its package {pkg} is not in tools/run.sh's packages (a fresh machine would not have it)")
    if not missing:
        print(f"{len(programs)} programs, all from run.sh's packages or Essential ones")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
