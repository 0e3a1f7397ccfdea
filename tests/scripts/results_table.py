"""Print the README's results table from the runs' results.json files.

    python tests/scripts/results_table.py [out]     # after the commands in the README's "Results" section
    python tests/scripts/results_table.py --compare "name=dir" "name=dir" ...

Each row is one split of one task; the columns are exact match of greedy answers for the augmented run
(out/<task>) and the baseline run (out/<task>-baseline), with the number of test examples, and extra
rows for any other run directory given as name=dir (e.g. an ablation). With --compare, one column per run
(e.g. the pretrained model augmented, prompted zero- and few-shot, the tiny model), one row per split.
"""

import json
import os
import sys


def load(path):
    try:
        with open(os.path.join(path, "results.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def cell(results, split):
    if results is None or split not in results:
        return "-"
    r = results[split]
    extra = f" (choice {r['choice_accuracy']:.2f})" if "choice_accuracy" in r else ""
    extra += f" (numbers {100 * r['numbers_match']:.1f}%)" if "numbers_match" in r else ""
    return f"{100 * r['exact_match']:.1f}%{extra}"


def main(out="out", tasks=("fib", "sort", "add", "gcd", "all"), extra=()):
    print("| task | split | augmented | baseline | n |")
    print("|---|---|---|---|---|")
    for task in tasks:
        aug, base = load(os.path.join(out, task)), load(os.path.join(out, task + "-baseline"))
        ref = aug or base
        if ref is None:
            continue
        for split, r in ref.items():
            if not split.startswith("_"):
                print(f"| {task} | {split} | {cell(aug, split)} | {cell(base, split)} | {r['n']} |")
    for name, path in extra:
        res = load(path)
        if res is not None:
            for split, r in res.items():
                if not split.startswith("_"):
                    print(f"| {name} | {split} | {cell(res, split)} | | {r['n']} |")
    print()
    for name in [t for task in tasks for t in (task, task + "-baseline")] + [p for _, p in extra]:
        res = load(name if os.path.isabs(name) or name.startswith(out) else os.path.join(out, name))
        if res is not None:
            run = res["_run"]
            print(f"{name}: {run['iters']} iterations, {run['train_seconds']:.0f} s training on {run['device']}")


def compare(columns):
    runs = [(name, load(path)) for name, path in columns]
    ref = next(res for _, res in runs if res is not None)
    print("| split | " + " | ".join(name for name, _ in runs) + " | n |")
    print("|---" * (len(runs) + 2) + "|")
    for split, r in ref.items():
        if not split.startswith("_"):
            print(f"| {split} | " + " | ".join(cell(res, split) for _, res in runs) + f" | {r['n']} |")
    for name, res in runs:
        if res is not None:
            run = res["_run"]
            print(f"{name}: {run['iters']} iterations, {run['train_seconds']:.0f} s training"
                  + (f", {run['eval_seconds']:.0f} s evaluation" if "eval_seconds" in run else "") + f" on {run['device']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        sys.exit(compare([tuple(a.split("=", 1)) for a in sys.argv[2:]]))
    out = sys.argv[1] if len(sys.argv) > 1 and "=" not in sys.argv[1] else "out"
    extra = [tuple(a.split("=", 1)) for a in sys.argv[1:] if "=" in a]
    main(out, extra=extra)
