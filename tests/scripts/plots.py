"""Pictures of a finished run, written next to its results.json.

    python tests/scripts/plots.py out/fib                  # the baseline from out/fib-baseline, when it is there
    python tests/scripts/plots.py out/sort --baseline out/sort-baseline

- exact_match.png: exact match against the size of the problem (fib: n, the recursion depth; sort: the
  list's length; add: digits; gcd: the larger number), the augmented model and the baseline, with the
  training range shaded. Every evaluated example counts once, whatever its split (results.json's "by_size").
- training.png: the training loss of each run, iteration by iteration (results.json's "_run" "losses").

Needs matplotlib (`pip install matplotlib`; optional, in tests/requirements.txt).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tasks import get_task  # noqa: E402


def load(run_dir):
    path = os.path.join(run_dir, "results.json")
    if not os.path.isfile(path):
        sys.exit(f"error: {path} does not exist: train the run first (python train.py --task ... --out_dir {run_dir})")
    return json.load(open(path))


def by_size(results, task_name):
    """{task name: {size: [correct, n]}}: the evaluated examples of each task, merged over its splits."""
    out = {}
    for split, r in results.items():
        if split.startswith("_") or "by_size" not in r:
            continue
        name = split.split("/")[0] if task_name == "all" else task_name
        for size, (correct, n) in r["by_size"].items():
            cell = out.setdefault(name, {}).setdefault(float(size), [0, 0])
            cell[0] += correct
            cell[1] += n
    return out


def plot(run_dir, baseline_dir=None):
    """Write exact_match.png and training.png into run_dir; return their paths."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("error: the plots need matplotlib: pip install matplotlib")
    runs = {"augmented": load(run_dir)}
    if baseline_dir:
        runs["baseline"] = load(baseline_dir)
    task_name = runs["augmented"].get("_run", {}).get("task")
    if task_name is None:
        sys.exit(f"error: {run_dir}/results.json names no task (no \"_run\")")
    sizes = {label: by_size(r, task_name) for label, r in runs.items()}
    if not sizes["augmented"]:
        sys.exit(f"error: {run_dir}/results.json has no exact match by size (written before evaluation stored "
                 "\"by_size\"): evaluate it again, e.g. python train.py --task ... --resume --iters <the same>")
    task = get_task(task_name)
    names = sorted(sizes["augmented"])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        sub = get_task(name)
        lo, hi = sub.ranges["train"] if isinstance(sub.ranges.get("train"), tuple) else (None, None)
        if lo is not None:
            ax.axvspan(lo - 0.5, hi + 0.5, color="0.9", label=f"trained on {lo}-{hi}")
        for label, style in (("augmented", "o-"), ("baseline", "s--")):
            cells = sizes.get(label, {}).get(name)
            if cells:
                xs = sorted(cells)
                ax.plot(xs, [100 * cells[x][0] / cells[x][1] for x in xs], style, ms=4, label=label)
        ax.set_xlabel(getattr(sub, "size_name", "size"))
        ax.set_ylabel("exact match (%)")
        ax.set_ylim(-5, 105)
        ax.set_title(name)
        ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    paths = [os.path.join(run_dir, "exact_match.png"), os.path.join(run_dir, "training.png")]
    fig.savefig(paths[0], dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, r in runs.items():
        losses = r.get("_run", {}).get("losses", {})
        its = sorted(int(i) for i in losses)
        ax.plot(its, [losses[str(i)] if str(i) in losses else losses[i] for i in its], label=label, lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (answer tokens)")
    ax.set_title(task.name if hasattr(task, "name") else task_name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=80)
    plt.close(fig)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description="plots of a run, written next to its results.json")
    p.add_argument("run_dir", help="a run's directory, e.g. out/fib")
    p.add_argument("--baseline", default=None, help="the baseline's directory (default: <run_dir>-baseline, if any)")
    args = p.parse_args(argv)
    baseline = args.baseline
    if baseline is None and os.path.isfile(os.path.join(args.run_dir.rstrip("/") + "-baseline", "results.json")):
        baseline = args.run_dir.rstrip("/") + "-baseline"
    for path in plot(args.run_dir, baseline):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
