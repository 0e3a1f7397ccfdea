"""The one prepared script for a lent GPU: the machine's hard path against the interpreter, then train.py.

    python tests/scripts/gpu_smoke.py                      # bench_reasoning.py --hard cuda, then fib and sort, 300 steps each
    python tests/scripts/gpu_smoke.py --tasks fib --iters 200 --compile --no_bench
    python tests/scripts/gpu_smoke.py --device cpu --tasks fib --iters 2 --no_bench   # a check of the script itself, on a CPU

First `tests/scripts/bench_reasoning.py --hard DEVICE` (the hard executors at B = 256, 4,096 and 65,536 against
`Program.run`, with the card's name), then train.py runs: a few hundred steps in bf16 autocast (on CUDA),
then the exact-match table.

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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", default="fib,sort")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--budget_s", type=float, default=330, help="skip the tasks that would start after this")
    p.add_argument("--device", default="cuda", help="cuda (the point of this script), or cpu to check the script")
    p.add_argument("--no_bench", action="store_true", help="leave out bench_reasoning.py --hard")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: no CUDA device; this smoke test is for a GPU machine (--device cpu checks the script)")
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__} on {name}", flush=True)
    t_start, failed = time.time(), False
    if not args.no_bench:
        cmd = [sys.executable, "tests/scripts/bench_reasoning.py", "--hard", args.device]
        print("$ " + " ".join(cmd[1:]), flush=True)
        failed |= subprocess.run(cmd, cwd=ROOT).returncode != 0
    for task in args.tasks.split(","):
        if time.time() - t_start > args.budget_s:
            print(f"skipped {task}: over --budget_s {args.budget_s:.0f}s")
            continue
        out = tempfile.mkdtemp(prefix=f"smoke-{task}-")
        dtype = "bfloat16" if args.device.startswith("cuda") else "float32"
        cmd = [sys.executable, "train.py", "--task", task, "--device", args.device, "--dtype", dtype,
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
