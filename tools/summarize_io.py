#!/usr/bin/env python3
"""Turns the JSON lines of tools/bench_io.sh into a Markdown table with the
medians per run kind and the packet I/O issue's targets.

Usage: tools/summarize_io.py results/io-DATE.jsonl > results/io-DATE.md
"""
import json
import statistics
import sys
from collections import OrderedDict


def main():
    runs = OrderedDict()
    for line in open(sys.argv[1]):
        if line.startswith('{'):
            r = json.loads(line)
            runs.setdefault(r['run'], []).append(r)
    med = {k: statistics.median(r['mpps'] for r in v) for k, v in runs.items()}
    print('| run | repetitions | packets | median Mpps | min | max | emitted | dropped | invalid |')
    print('|---|---|---|---|---|---|---|---|---|')
    for k, v in runs.items():
        m = [r['mpps'] for r in v]
        r0 = v[0]
        print(f"| {k} | {len(v)} | {r0['packets']} | {med[k]:.3f} | {min(m):.3f} | {max(m):.3f} | "
              f"{r0['emitted']} | {r0['dropped']} | {r0['invalid']} |")
    print()
    print('| target | measured | met |')
    print('|---|---|---|')
    if 'preload-1pct' in med:
        print(f"| >= 20 Mpps, 1% new, one core | {med['preload-1pct']:.2f} Mpps | "
              f"{'yes' if med['preload-1pct'] >= 20 else 'no'} |")
    if 'preload-100pct' in med:
        print(f"| >= 3 Mpps, every packet new | {med['preload-100pct']:.2f} Mpps | "
              f"{'yes' if med['preload-100pct'] >= 3 else 'no'} |")
    if 'dpdk-pcap-eth0' in med and 'file-eth0' in med:
        ratio = med['dpdk-pcap-eth0'] / med['file-eth0']
        print(f"| DPDK path within 20% of in-memory replay | {ratio:.2f} of it (net_pcap) | "
              f"{'yes' if ratio >= 0.8 else 'no'} |")
    if 'stream-1pct' in med and 'preload-1pct' in med:
        print(f"| (streaming / preloading) | {med['stream-1pct'] / med['preload-1pct']:.2f} | |")
    if 'dpdk-pcap-eth0-2lcores' in med and 'dpdk-pcap-eth0' in med:
        ratio = med['dpdk-pcap-eth0-2lcores'] / med['dpdk-pcap-eth0']
        print(f"| two lcores >= 1.8x one | {ratio:.2f}x (pcap vdevs, one rx queue per lcore) | "
              f"{'yes' if ratio >= 1.8 else 'no'} |")


if __name__ == '__main__':
    main()
