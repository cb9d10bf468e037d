#!/usr/bin/env python3
"""The conntrack table against DPDK's rte_hash from a conntrack_bench JSON
run (medians of its repetitions): a Markdown table of Mpps and the ratio.

Usage: tools/summarize_conntrack.py results/conntrack-DATE.json > results/conntrack-DATE.md
"""
import collections
import json
import statistics
import sys


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ('-h', '--help'):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    j = json.load(open(sys.argv[1]))
    runs = collections.defaultdict(list)
    for b in j['benchmarks']:
        if b.get('run_type') == 'iteration':
            runs[b['run_name']].append(b['items_per_second'])
    med = {k: statistics.median(v) for k, v in runs.items()}
    ctx = j.get('context', {})
    print(f"Machine: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz; "
          f"{len(next(iter(runs.values()), []))} repetitions each, interleaved, one core.")
    print()
    print('| operation | flows | ours (M/s) | rte_hash (M/s) | ours / rte_hash |')
    print('|---|---|---|---|---|')
    worst = None
    for kind in ['Lookup', 'LookupBulk', 'Insert']:
        for f in ['1000', '10000', '100000', '1000000']:
            o = med.get(f'Conntrack/{kind}/ours/flows:{f}')
            r = med.get(f'Conntrack/{kind}/rte_hash/flows:{f}')
            if o is None or r is None:
                continue
            ratio = o / r
            worst = ratio if worst is None else min(worst, ratio)
            print(f'| {kind} | {int(f):,} | {o / 1e6:.2f} | {r / 1e6:.2f} | {ratio:.2f}x |')
    if worst is not None:
        print()
        print(f"At least as fast as rte_hash everywhere: {'yes' if worst >= 0.995 else 'no'} (lowest ratio {worst:.2f}x).")
    return 0


if __name__ == '__main__':
    sys.exit(main())
