#!/usr/bin/env python3
"""Turns the JSON lines of tools/bench_io.sh into a Markdown table: medians
per run kind, the instruction counts, and issue 13's targets, met or not.

Usage: tools/summarize_io.py results/io-DATE.jsonl > results/io-DATE.md
"""
import json
import statistics
import sys
from collections import OrderedDict


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ('-h', '--help'):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    runs = OrderedDict()
    context = {}
    instructions = {}
    for line in open(sys.argv[1]):
        if not line.startswith('{'):
            continue
        r = json.loads(line)
        if r['run'] == 'context':
            context = r
        elif r['run'].startswith('callgrind-'):
            instructions[r['run']] = r['instructions_per_packet']
        else:
            runs.setdefault(r['run'], []).append(r)
    med = {k: statistics.median(r['mpps'] for r in v) for k, v in runs.items()}
    if context:
        print(f"Machine: {context.get('cpu_model', '?')}, {context.get('cores', '?')} cores, "
              f"{context.get('tsc_mhz', '?')} MHz, {' '.join(context.get('cpu_flags', []))}; "
              f"kernel {context.get('kernel', '?')}; {context.get('compiler', '?')}; DPDK "
              f"{context.get('dpdk_version', '?')}; commit {context.get('git_commit', '?')[:12]}"
              f"{' (dirty)' if context.get('git_dirty') else ''}.")
        print()
    print('| run | repetitions | packets | median Mpps | min | max | emitted | dropped | invalid | fast path |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for k, v in runs.items():
        m = [r['mpps'] for r in v]
        r0 = v[0]
        print(f"| {k} | {len(v)} | {r0['packets']} | {med[k]:.3f} | {min(m):.3f} | {max(m):.3f} | "
              f"{r0['emitted']} | {r0['dropped']} | {r0['invalid']} | {r0.get('fast_path_packets', '')} |")
    print()
    if instructions:
        print('| callgrind (docker-28, 100K packets, 1% new) | instructions per packet, --loop 3 over --loop 1 |')
        print('|---|---|')
        for k, v in instructions.items():
            print(f'| {k} | {v:.0f} |')
        print()

    def row(target, measured, met):
        print(f"| {target} | {measured} | {'yes' if met else 'no'} |")

    print('| target | measured | met |')
    print('|---|---|---|')
    if 'preload-1pct-trust' in med:
        row('>= 20 Mpps, 1% new, --rx-csum trust, one core', f"{med['preload-1pct-trust']:.2f} Mpps",
            med['preload-1pct-trust'] >= 20)
    if 'preload-1pct-verify' in med:
        row('>= 12 Mpps, 1% new, --rx-csum verify, one core', f"{med['preload-1pct-verify']:.2f} Mpps",
            med['preload-1pct-verify'] >= 12)
    if 'callgrind-1pct-trust' in instructions:
        v = instructions['callgrind-1pct-trust']
        row('<= 450 instructions per packet, 1% new, trust', f'{v:.0f}', v <= 450)
    if 'preload-100pct-trust' in med:
        row('>= 3 Mpps, every packet new', f"{med['preload-100pct-trust']:.2f} Mpps (trust), "
            f"{med.get('preload-100pct-verify', 0):.2f} (verify)", med['preload-100pct-trust'] >= 3)
    if 'dpdk-pcap-eth0-2lcores-trust' in med and 'dpdk-pcap-eth0-trust' in med:
        ratio = med['dpdk-pcap-eth0-2lcores-trust'] / med['dpdk-pcap-eth0-trust']
        row('two lcores >= 1.8x one', f'{ratio:.2f}x (pcap vdevs, one rx queue per lcore)', ratio >= 1.8)
    if 'ring-1pct-trust' in med and 'preload-1pct-trust' in med:
        ratio = med['ring-1pct-trust'] / med['preload-1pct-trust']
        row('DPDK ring path >= 0.8x the in-memory replay', f'{ratio:.2f}x (net_ring fed by a second lcore)',
            ratio >= 0.8)
    if 'dpdk-pcap-eth0-trust' in med and 'file-eth0-trust' in med:
        ratio = med['dpdk-pcap-eth0-trust'] / med['file-eth0-trust']
        print(f"| (DPDK pcap vdev path / file replay of the same frames) | {ratio:.2f}x | |")
    if 'stream-1pct-trust' in med and 'preload-1pct-trust' in med:
        print(f"| (streaming / preloading) | {med['stream-1pct-trust'] / med['preload-1pct-trust']:.2f}x | |")
    one, two = runs.get('dpdk-pcap-eth0-trust', []), runs.get('dpdk-pcap-eth0-2lcores-trust', [])
    if one and two:
        # Repetitions are interleaved: each two-lcore run beside the one-lcore
        # run just before it, with its lcores' own rates (a slow lcore is a
        # busy neighbour on that vCPU, not the handoff).
        print()
        print('| repetition | one lcore, Mpps | two lcores, Mpps | per lcore | ratio |')
        print('|---|---|---|---|---|')
        for i, (a, b) in enumerate(zip(one, two), 1):
            lc = ' / '.join(f"{x['mpps']:.2f}" for x in b.get('lcores', []))
            print(f"| {i} | {a['mpps']:.2f} | {b['mpps']:.2f} | {lc} | {b['mpps'] / a['mpps']:.2f}x |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
