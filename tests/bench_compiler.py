"""Benchmark: instructions per second of the reference interpreter, `Program.run`.

    python tests/bench_compiler.py

Sorts a 64-element list with the corpus's insertion sort, repeatedly, and prints one line.
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/, for the corpus

from compiler import compile_source  # noqa: E402
from corpus import CORPUS  # noqa: E402

case = next(c for c in CORPUS if c.name == "insertion_sort")
program = compile_source(case.source)
rng = random.Random(0)
steps, runs, start = 0, 0, time.perf_counter()
while time.perf_counter() - start < 2.0:
    a = [rng.randrange(128) for _ in range(64)]
    want = sorted(a)
    _, n = program.run("insertion_sort", a, return_steps=True)
    assert a == want
    steps, runs = steps + n, runs + 1
elapsed = time.perf_counter() - start
print(f"insertion sort, 64 elements, {len(program)} instructions, {program.n_regs} registers: "
      f"{steps / runs:.0f} steps per sort, {steps / elapsed / 1e6:.2f}M instructions/s ({runs} sorts in {elapsed:.1f}s)")
