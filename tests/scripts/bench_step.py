"""Benchmark: one training step (forward and backward) of the args interface, this checkout against another.

    python tests/scripts/bench_step.py out/sort-args-default --against /tmp/before

Loads the trained run (its latest checkpoint: a late step of training, where the heads are sharp and the
drawn threads repeat) in each checkout, and times the forward and backward pass of a batch of 64 training
prompts of its task, with the layer's threads drawn as in training. The two checkouts take turns in
rounds, each in a fresh process, so that a busy machine slows both alike; each figure is the median
round, and the last line gives the ratio. Without --against, this checkout alone. Both run with torch's
deterministic algorithms, as train.py does on the CPU; --nondeterministic adds this checkout without them
(what they cost: train.main's docstring).
"""

import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKER = r"""
import os, random, statistics, sys, time, torch
sys.path.insert(0, ".")
import train
from tasks import ARGS_FORMS, get_task
run, steps = sys.argv[1], int(sys.argv[2])
torch.use_deterministic_algorithms(sys.argv[3] == "1")
model, tokenizer = train.load_trained(run)
model.train()
saved = torch.load(os.path.join(run, train.checkpoint_candidates(run)[0], "state.pt"), weights_only=False)["args"]
task = get_task(ARGS_FORMS.get(saved["task"], saved["task"]))
times = []
for it in range(steps + 1):  # the first is not timed
    rng = random.Random(f"bench/{it}")
    model.layer.seed = rng.randrange(2 ** 62)
    tokens, targets, calls = train.encode_batch(tokenizer, [task.example(rng, "train") for _ in range(64)], "cpu")
    t = time.perf_counter()
    loss, _ = model(tokens, calls, targets=targets)
    loss.backward()
    model.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t)
print(statistics.median(times[1:]))
"""


def time_step(checkout, run, steps, deterministic=True):
    out = subprocess.run([sys.executable, "-c", WORKER, os.path.abspath(run), str(steps), str(int(deterministic))],
                         cwd=checkout, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: the step in {checkout} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a trained --interface args run's out_dir (e.g. out/sort-args-default)")
    ap.add_argument("--against", help="another checkout to time in the same run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed steps a round (after one untimed)")
    ap.add_argument("--nondeterministic", action="store_true",
                    help="also time this checkout without torch's deterministic algorithms")
    args = ap.parse_args()
    checkouts = {"this": (ROOT, True), **({"against": (args.against, True)} if args.against else {}),
                 **({"nondet": (ROOT, False)} if args.nondeterministic else {})}
    rounds = {k: [] for k in checkouts}
    for r in range(args.rounds):
        for name, (where, deterministic) in checkouts.items():
            rounds[name].append(time_step(where, args.run, args.steps, deterministic))
            print(f"round {r}: {name:8} {rounds[name][-1]:.3f} s a step", flush=True)
    med = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, load average {os.getloadavg()[0]:.1f}")
    for name, t in med.items():
        print(f"{name:8} {t:.3f} s a training step (median of {args.rounds} rounds)")
    if args.against:
        print(f"this / against: {med['this'] / med['against']:.2f}x the time")
    if args.nondeterministic:
        print(f"this / nondet (deterministic algorithms or not): {med['this'] / med['nondet']:.2f}x the time")


if __name__ == "__main__":
    main()
