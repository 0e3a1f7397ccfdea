"""Benchmark: the compiler's speed and the reference interpreter's, `Program.run`.

    python tests/bench_compiler.py

Prints two lines: compiling every program of the classic corpus (tests/corpus.py CORPUS), repeatedly;
and sorting a 64-element list with the corpus's insertion sort, repeatedly (steps per sort, instructions
per second and sorts per second).
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/, for the corpus

from compiler import compile_source  # noqa: E402
from corpus import CORPUS  # noqa: E402

runs, start = 0, time.perf_counter()
while time.perf_counter() - start < 2.0:
    for case in CORPUS:
        compile_source(case.source)
    runs += 1
elapsed = time.perf_counter() - start
print(f"compile: {len(CORPUS)} corpus programs, {1000 * elapsed / (runs * len(CORPUS)):.2f} ms per program "
      f"({runs} rounds in {elapsed:.1f}s)")

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
      f"{steps / runs:.0f} steps per sort, {steps / elapsed / 1e6:.2f}M instructions/s, {runs / elapsed:.1f} sorts/s "
      f"({runs} sorts in {elapsed:.1f}s)")
