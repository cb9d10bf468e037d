#!/usr/bin/env python3
"""Turns the JSON lines of tools/bench_classify.sh into a Markdown table that
checks the classifier issue's targets: the better of dtree and tuple beats
rte_acl's best classify method measured in the same run, with at most a
quarter of its memory and of its build time.

Usage: tools/summarize_classify.py results/classify-DATE.jsonl > results/classify-DATE.md
"""
import json
import os
import sys
from collections import OrderedDict


def set_name(rule_file):
    base = os.path.basename(rule_file)
    for kind in ("acl1", "fw1", "ipc1"):
        if kind in base:
            size = "100K" if "100k" in base else "10K" if "10k" in base else "1K"
            return f"{kind} {size}"
    return base


def main():
    rows = OrderedDict()
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        rows.setdefault(set_name(r["rule_file"]), []).append(r)
    print("| set | rules | rte_acl best (method) | dtree | tuple | best ours / rte_acl | memory ours / rte_acl"
          " | build ours / rte_acl | mismatches | targets |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rs in rows.items():
        acl = [r for r in rs if r["algo"] == "acl"]
        ours = {r["algo"]: r for r in rs if r["algo"] in ("dtree", "tuple")}
        if not acl or not ours:
            continue
        best_acl = max(acl, key=lambda r: r["mpps"])
        best = max(ours.values(), key=lambda r: r["mpps"])
        speed = best["mpps"] / best_acl["mpps"]
        mem = best["memory_bytes"] / best_acl["memory_bytes"]
        build = best["build_seconds"] / best_acl["build_seconds"]
        mismatches = sum(r["mismatches"] for r in rs)
        ok = speed > 1 and mem <= 0.25 and build <= 0.25 and mismatches == 0
        cell = lambda r: f'{r["mpps"]:.1f} Mpps, {r["cycles_per_packet"]:.0f} cyc, {r["memory_bytes"] / 1e6:.1f} MB, {r["build_seconds"]:.2f} s'
        print(f'| {name} | {best["rules"]} | {best_acl["mpps"]:.1f} Mpps ({best_acl["acl_method"]}), '
              f'{best_acl["memory_bytes"] / 1e6:.0f} MB, {best_acl["build_seconds"]:.1f} s | {cell(ours["dtree"]) if "dtree" in ours else "-"} '
              f'| {cell(ours["tuple"]) if "tuple" in ours else "-"} | {best["algo"]} {speed:.2f}x | {mem:.3f} | {build:.3f} '
              f'| {mismatches} | {"met" if ok else "NOT met"} |')


if __name__ == "__main__":
    main()
