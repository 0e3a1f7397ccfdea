"""Benchmark: the compiler's speed and the reference interpreter's, `Program.run`.

    python tests/scripts/bench_compiler.py                      # this checkout
    python tests/scripts/bench_compiler.py --against ../main    # and another checkout's compiler, in the same run

Prints two lines per compiler: compiling every program of the classic corpus (tests/corpus.py CORPUS),
and sorting 64-element lists with the corpus's insertion sort (steps per sort, instructions per second,
sorts per second). With --against, the two compilers take turns in short rounds, so that a busy machine
slows both alike; each figure is the median round, and the last line gives the ratios.
"""

import argparse
import importlib.util
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for the corpus

from corpus import CORPUS  # noqa: E402


def load(checkout, name):
    """A checkout's compiler, as module `name`: the file compiler.py, or the package compiler/."""
    path = os.path.join(checkout, "compiler.py")
    if os.path.exists(path):
        spec = importlib.util.spec_from_file_location(name, path)
    else:  # a package: its submodules load as name.<submodule>
        package = os.path.join(checkout, "compiler")
        spec = importlib.util.spec_from_file_location(name, os.path.join(package, "__init__.py"),
                                                      submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def compile_round(compiler):
    start = time.perf_counter()
    for case in CORPUS:
        compiler.compile_source(case.source)
    return (time.perf_counter() - start) / len(CORPUS)


def sort_round(program, lists):
    steps, start = 0, time.perf_counter()
    for a in lists:
        a = list(a)
        _, n = program.run("insertion_sort", a, return_steps=True)
        assert a == sorted(a)
        steps += n
    return time.perf_counter() - start, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", help="another checkout whose compiler (compiler.py or compiler/) to time in the same run")
    ap.add_argument("--seconds", type=float, default=4.0, help="time per measurement, all compilers together")
    args = ap.parse_args()
    compilers = {"this": load(ROOT, "compiler_this")}
    if args.against:
        compilers["against"] = load(args.against, "compiler_against")
    case = next(c for c in CORPUS if c.name == "insertion_sort")
    programs = {k: c.compile_source(case.source) for k, c in compilers.items()}
    compile_times, sort_times = {k: [] for k in compilers}, {k: [] for k in compilers}
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds / 2:
        for k, c in compilers.items():
            compile_times[k].append(compile_round(c))
    rng = random.Random(0)
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds / 2:
        lists = [[rng.randrange(128) for _ in range(64)] for _ in range(5)]
        for k, p in programs.items():
            sort_times[k].append(sort_round(p, lists))
    med = {}
    for k in compilers:
        where = ROOT if k == "this" else args.against
        ms = 1000 * statistics.median(compile_times[k])
        t, steps = (statistics.median(x) for x in zip(*sort_times[k]))
        med[k] = ms, t
        print(f"{where}: compile: {len(CORPUS)} corpus programs, {ms:.2f} ms per program "
              f"({len(compile_times[k])} rounds)")
        print(f"{where}: insertion sort, 64 elements, {len(programs[k])} instructions, {programs[k].n_regs} "
              f"registers: {steps / 5:.0f} steps per sort, {steps / t / 1e6:.2f}M instructions/s, "
              f"{5 / t:.1f} sorts/s ({len(sort_times[k])} rounds of 5 sorts)")
    if args.against:
        print(f"this / against: compile time {med['this'][0] / med['against'][0]:.2f}x, "
              f"time per sort {med['this'][1] / med['against'][1]:.2f}x")


if __name__ == "__main__":
    main()
