#!/usr/bin/python3
"""Draws the SVG plots of results/plots/ from committed benchmark runs.

  tools/plot_results.py [--run ID] [--out DIR]

From one run (default: the newest in results/index.json), medians over its
repetitions:
  lookup-mpps.svg     Mpps against rule count per algorithm (bursts of 32),
                      one panel per ClassBench family, rte_acl alongside
  pipeline.svg        the docker-28 pipeline at 0/1/10/100% new connections,
                      fast path on and off
  conntrack.svg       the conntrack table beside rte_hash, 1K to 1M flows
  kube.svg            linear vs compiled chains on kube-proxy rulesets
  string.svg          -m string: Hyperscan against rule-by-rule search
From every run in the index:
  history.svg         chosen benchmarks across runs, as a ratio to the first
                      run that has them (1.0 = as fast as then)

Needs Debian's python3-matplotlib (run with /usr/bin/python3).
"""
import argparse
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results")
LABELS = {"linear": "linear walk", "tuple": "tuple space", "acl": "DPDK rte_acl"}


def registered_algos():
    """(name, label) of every classifier in classifier/algorithms.def, in order."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "classifier", "algorithms.def")
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("NFB_CLASSIFIER("):
                name = line[len("NFB_CLASSIFIER("):].split(",")[0].strip()
                out.append((name, LABELS.get(name, name)))
    return out


ALGOS = registered_algos()
HISTORY = [
    "Lookup/acl1/10000/dtree/burst:32",
    "Lookup/acl1/10000/tuple/burst:32",
    "Lookup/acl1/10000/acl/burst:32",
    "Lookup/fw1/100000/dtree/burst:32",
    "BM_Pipeline/fast:1/new_pct:1",
    "BM_Pipeline/fast:1/new_pct:100",
    "Conntrack/Lookup/ours/flows:100000",
    "String/patterns:1000/frame:1514/hyperscan",
    "Kube/services:10000/dtree",
]


def load_run(path):
    with open(path) as f:
        j = json.load(f)
    rates = {}
    for b in j["benchmarks"]:
        if b.get("run_type") != "iteration" or b.get("error_occurred"):
            continue
        name = b["run_name"]
        # Names may carry Google Benchmark's /min_time: suffix; drop it.
        name = "/".join(p for p in name.split("/") if not p.startswith(("min_time:", "iterations:")))
        if "items_per_second" in b:
            rates.setdefault(name, []).append(b["items_per_second"])
    return j["context"], {k: statistics.median(v) for k, v in rates.items()}


def mpps(rates, name):
    v = rates.get(name)
    return None if v is None else v / 1e6


FORMAT = "svg"


def save(fig, out, name):
    path = os.path.join(out, name if FORMAT == "svg" else name[:-3] + FORMAT)
    fig.savefig(path, format=FORMAT, bbox_inches="tight", metadata={"Date": None} if FORMAT == "svg" else None)
    plt.close(fig)
    print(path)


def series(ax, rates, xs_all, name_of, style, label):
    """Plots the points of xs_all whose benchmark name_of(x) is in the run;
    False when there is none."""
    xs, ys = [], []
    for x in xs_all:
        v = mpps(rates, name_of(x))
        if v is not None:
            xs.append(x)
            ys.append(v)
    if xs:
        ax.plot(xs, ys, style, marker="o", label=label)
    return bool(xs)


def finish_loglog(fig, ax, out, name, xlabel, ylabel, title, legend_size=8):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)
    save(fig, out, name)


def plot_lookup(ctx, rates, out):
    fams = ["acl1", "fw1", "ipc1"]
    sizes = [1000, 10000, 100000]
    if not any(mpps(rates, f"Lookup/{f}/{s}/dtree/burst:32") for f in fams for s in sizes):
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, fam in zip(axes, fams):
        for algo, label in ALGOS:
            series(ax, rates, sizes, lambda n, fam=fam, algo=algo: f"Lookup/{fam}/{n}/{algo}/burst:32",
                   "--" if algo == "acl" else "-", label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(600, 170000)
        ax.set_xticks(sizes, ["1K", "10K", "100K"])
        ax.set_title(f"ClassBench {fam}")
        ax.set_xlabel("rules")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("Mpps, one core (bursts of 32)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"Classifier lookup, run {ctx.get('run_id', '')} (median of {ctx.get('repetitions', '?')})")
    save(fig, out, "lookup-mpps.svg")


def plot_pipeline(ctx, rates, out):
    pcts = [0, 1, 10, 100]
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for fast, label in [(1, "fast path on"), (0, "fast path off")]:
        ys = [mpps(rates, f"BM_Pipeline/fast:{fast}/new_pct:{p}") for p in pcts]
        if any(y is not None for y in ys):
            ax.plot([str(p) + "%" for p in pcts], [y or 0 for y in ys], marker="o", label=label)
            drawn = True
    if not drawn:
        plt.close(fig)
        return
    ax.set_xlabel("packets that open a connection")
    ax.set_ylabel("Mpps, one core")
    ax.set_title("docker-28 pipeline (conntrack, NAT, filter)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, out, "pipeline.svg")


def plot_conntrack(ctx, rates, out):
    flows = [1000, 10000, 100000, 1000000]
    lines = [
        ("Conntrack/Lookup/ours", "lookup: ours"),
        ("Conntrack/Lookup/rte_hash", "lookup: rte_hash"),
        ("Conntrack/LookupBulk/rte_hash", "lookup: rte_hash bulk 32"),
        ("Conntrack/Insert/ours", "insert: ours (process+confirm)"),
        ("Conntrack/Insert/rte_hash", "insert: rte_hash (2 keys)"),
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for prefix, label in lines:
        drawn |= series(ax, rates, flows, lambda f, prefix=prefix: f"{prefix}/flows:{f}",
                        "--" if "rte_hash" in prefix else "-", label)
    if not drawn:
        plt.close(fig)
        return
    finish_loglog(fig, ax, out, "conntrack.svg", "live flows", "million operations per second",
                  "Conntrack table beside DPDK rte_hash")


def plot_kube(ctx, rates, out):
    names = sorted(n for n in rates if n.startswith("Kube/"))
    if not names:
        return
    # Kube/services:N/<algo>
    by_algo = {}
    for n in names:
        parts = n.split("/")
        svc = int(parts[1].split(":")[1])
        by_algo.setdefault(parts[2], []).append((svc, rates[n] / 1e6))
    fig, ax = plt.subplots(figsize=(6, 4))
    for algo, pts in sorted(by_algo.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=algo)
    finish_loglog(fig, ax, out, "kube.svg", "services", "first packets, Mpps",
                  "kube-proxy rulesets: every packet opens a connection", legend_size=10)


def plot_string(ctx, rates, out):
    counts = [1, 10, 100, 1000, 10000]
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for frame in (64, 1514):
        for how, label in (("hyperscan", "Hyperscan, one scan"), ("rule_by_rule", "rule by rule")):
            drawn |= series(ax, rates, counts, lambda n, frame=frame, how=how: f"String/patterns:{n}/frame:{frame}/{how}",
                            "-" if how == "hyperscan" else "--", f"{label}, {frame}-byte frames")
    if not drawn:
        plt.close(fig)
        return
    finish_loglog(fig, ax, out, "string.svg", "string rules (patterns) in the chain", "Mpps, one core",
                  "-m string: Hyperscan against searching rule by rule")


def plot_history(index, out):
    runs = []
    for r in index["runs"]:
        path = os.path.join(RESULTS, r["file"])
        if os.path.exists(path):
            runs.append((r, load_run(path)[1]))
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [r["id"][:15] + "\n" + r["commit"][:8] for r, _ in runs]
    for name in HISTORY:
        first = next((rates[name] for _, rates in runs if name in rates), None)
        if first is None:
            continue
        ys = [rates[name] / first if name in rates else float("nan") for _, rates in runs]
        ax.plot(range(len(runs)), ys, marker="o", label=name)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_ylabel("throughput / first run's")
    ax.set_title("Chosen benchmarks across committed runs")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    save(fig, out, "history.svg")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run id (default: the newest in results/index.json)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "plots"))
    ap.add_argument("--format", default="svg", help="svg (default), or png to look at them")
    a = ap.parse_args()
    global FORMAT
    FORMAT = a.format
    index_path = os.path.join(RESULTS, "index.json")
    if not os.path.exists(index_path):
        sys.exit(f"{index_path}: no index: run tools/bench_run.sh first")
    with open(index_path) as f:
        index = json.load(f)
    if not index["runs"]:
        sys.exit(f"{index_path}: no runs")
    run = next((r for r in index["runs"] if r["id"] == a.run), None) if a.run else index["runs"][-1]
    if run is None:
        sys.exit(f"{index_path}: no run {a.run}")
    os.makedirs(a.out, exist_ok=True)
    ctx, rates = load_run(os.path.join(RESULTS, run["file"]))
    plot_lookup(ctx, rates, a.out)
    plot_pipeline(ctx, rates, a.out)
    plot_conntrack(ctx, rates, a.out)
    plot_kube(ctx, rates, a.out)
    plot_string(ctx, rates, a.out)
    plot_history(index, a.out)


if __name__ == "__main__":
    main()
