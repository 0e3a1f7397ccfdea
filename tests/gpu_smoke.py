"""GPU smoke run of train.py: a few hundred steps on CUDA in bf16 autocast, then the exact-match table.

    python tests/gpu_smoke.py                      # fib, then sort, 300 steps each
    python tests/gpu_smoke.py --tasks fib --iters 200 --compile

Not collected by pytest (the name is not test_*): it needs a CUDA GPU. It runs train.py as a user would
(a subprocess, its log streamed through), so the tok/s and MFU figures are those of train.py's own log line;
MFU is 6 * (LLaMA parameters) * tokens/s over the card's dense bf16 peak (train.peak_flops). Exits non-zero
if a run fails or its loss is not finite.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", default="fib,sort")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--budget_s", type=float, default=330, help="skip the tasks that would start after this")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("error: no CUDA device; this smoke test is for a GPU machine")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}", flush=True)
    t_start, failed = time.time(), False
    for task in args.tasks.split(","):
        if time.time() - t_start > args.budget_s:
            print(f"skipped {task}: over --budget_s {args.budget_s:.0f}s")
            continue
        out = tempfile.mkdtemp(prefix=f"smoke-{task}-")
        cmd = [sys.executable, "train.py", "--task", task, "--device", "cuda", "--dtype", "bfloat16",
               "--iters", str(args.iters), "--batch_size", str(args.batch_size), "--log_interval", "50",
               "--eval_interval", str(args.iters + 1), "--out_dir", out, *(["--compile"] if args.compile else [])]
        print("$ " + " ".join(cmd[1:]), flush=True)
        t0 = time.time()
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        if rc != 0:
            print(f"{task}: train.py exited with {rc}")
            failed = True
            continue
        results = json.load(open(os.path.join(out, "results.json")))
        losses = list(results["_run"]["losses"].values())
        finite = all(x == x and abs(x) != float("inf") for x in losses)
        failed |= not finite
        print(f"{task}: {time.time() - t0:.0f}s wall, train {results['_run']['train_seconds']}s, "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}{'' if finite else ' (NOT FINITE)'}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
