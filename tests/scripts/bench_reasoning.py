"""Speed and memory of the machine (reasoning.py) against the plain-Python interpreter.

    python tests/scripts/bench_reasoning.py               # every path at B = 1 .. 4,096; a few minutes on a 2-core CPU
    python tests/scripts/bench_reasoning.py --hard cuda   # the hard executors alone, B up to 65,536, on a GPU
    python tests/scripts/bench_reasoning.py --hard cpu 256   # the same at the batch sizes given (a check on a CPU)
    python tests/scripts/bench_reasoning.py --goals       # issue 14's run_batch goals: B = 256 and 4,096, best of 5
    python tests/scripts/bench_reasoning.py --scaling     # cost against V, memory N and batch B
    python tests/scripts/bench_reasoning.py --long-sort   # sort_task on lists of 128 numbers (V = 1,024)
    python tests/scripts/bench_reasoning.py --alu         # one op, tables against circuits, V up to 65,536

Throughput is examples x steps per second: the interpreter's step count of every example (the work a
plain computer does), summed over the batch, divided by wall time. Modes:
"run_batch": `Machine.run_batch`, the public int-in/int-out run (on a CPU: the Python translation);
"python" and "torch": `Machine.run_hard` with that executor (reasoning.py section 3; "torch" steps the
whole batch together, as long as its slowest example, which the count does not reward); "dist": `run_batch` on the
distribution machine (one-hot inputs, checked every step; B <= 256); "fwd+bwd": a soft forward with
gradients (mean field, checkpointing every 64 steps) and a backward pass from the log-probability of the
right answers to the input registers (B <= 32). Every figure is also a ratio against `Program.run` on the
same examples, timed in the same run; the interpreter, "run_batch" and "python" are timed as the best of 3
runs (5 with --goals), since the CPU is shared and other jobs only add time. The load average is printed
before and after.

Peak memory of a backward pass through 1,000 steps: each configuration runs in a fresh subprocess, and
the figure is the growth of its peak resident set size (getrusage ru_maxrss) over the forward+backward,
i.e. what autograd (and checkpointing) keep alive.
"""

import os
import random
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from compiler import compile_source, compile_functions
from corpus import CORPUS
from reasoning import Machine

SOURCES = {case.entry: case.source for case in CORPUS if case.name in ("fib_recursive", "insertion_sort")}
HEADER = f"{'task':<6} {'B':>5} {'mode':<9} {'steps':>6} {'machine ex*steps/s':>19} {'interp ex*steps/s':>18} {'ratio':>7}"


def workload(task, B, rng, V=128, length=8):
    """(program, entry, args_list): recursive fib(7), or insertion sort of `length` random values below
    128, B times."""
    entry = "fib" if task == "fib" else "insertion_sort"
    program = compile_source(SOURCES[entry], n_values=V)
    if task == "fib":
        args = [[7] for _ in range(B)]
    else:
        args = [[[rng.randrange(128) for _ in range(length)]] for _ in range(B)]
    return program, entry, args


def copy_args(args):
    return [list(x) if isinstance(x, list) else x for x in args]


def interpreter(program, entry, args_list, n_cells=None):
    """(examples x steps, seconds) of Program.run on the same examples."""
    t, work = time.perf_counter(), 0
    for args in args_list:
        work += program.run(entry, *copy_args(args), n_cells=n_cells, return_steps=True)[1]
    return work, time.perf_counter() - t


def timed_run_batch(machine, entry, args_list, executor="auto"):
    args = [copy_args(a) for a in args_list]
    t = time.perf_counter()
    machine.run_batch([entry] * len(args), args, max_steps=10**6, executor=executor)
    return time.perf_counter() - t


def timed_run_hard(machine, entry, args_list, executor):
    """Seconds of `Machine.run_hard` with `executor` (inputs built beforehand, not timed)."""
    pc, regs, mem, _ = machine._lay_out([entry] * len(args_list), [copy_args(a) for a in args_list])
    device = machine.e_a0.device
    pc, regs, mem = (torch.tensor(x, device=device) for x in (pc, regs, mem))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    out = machine.run_hard(pc, regs, mem, max_steps=10**6, executor=executor)
    sync()
    assert bool(out.halted.all())
    return time.perf_counter() - t, out.steps


def machine_backward(machine, program, entry, args_list, max_steps=10_000, checkpoint_every=64):
    """Soft forward + backward; returns (seconds, steps, gradient norm)."""
    pc, regs, mem, _ = machine.init_state([entry] * len(args_list), [copy_args(a) for a in args_list])
    regs.requires_grad_()
    t = time.perf_counter()
    out = machine(pc, regs, mem, max_steps=max_steps, checkpoint_every=checkpoint_every)
    answers = torch.tensor([program.run(entry, *copy_args(a)) for a in args_list])
    loss = -out.value.gather(1, answers[:, None]).clamp_min(1e-30).log().mean()
    loss.backward()
    return time.perf_counter() - t, out.steps, regs.grad.norm().item()


def peak_memory(B, checkpoint_every):
    """Run in a subprocess: extra peak RSS (MiB) of forward+backward through 1,000 steps of fib."""
    program = compile_source(SOURCES["fib"])
    machine = Machine(program)
    pc, regs, mem, _ = machine.init_state(["fib"] * B, [[12]] * B)  # fib(12) needs > 1,000 steps
    regs.requires_grad_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = machine(pc, regs, mem, max_steps=1000, checkpoint_every=checkpoint_every)
    (out.value.sum() + out.memory.sum()).backward()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out.steps == 1000
    return (after - before) / 1024


def best(seconds, repeat):
    """The shortest of `repeat` calls of seconds() (each returns its own time): the CPU is shared, and
    other jobs can only add time to a run."""
    return min(seconds() for _ in range(repeat))


def goals(repeat=5):
    """`--goals`: issue 14's goals for `Machine.run_batch`, each a ratio against `Program.run` on the same
    examples in the same run, every time the best of `repeat`."""
    rng = random.Random(0)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {load()}; best of {repeat}")
    print(f"{'task':<6} {'B':>5} {'run_batch ex*steps/s':>21} {'interp ex*steps/s':>18} {'ratio':>7}  goal")
    for task in ("fib", "sort"):
        for B, goal in ((256, "1x (stretch 5x)"), (4096, "3x")):
            program, entry, args = workload(task, B, rng)
            machine = Machine(program)
            timed_run_batch(machine, entry, args[:2])  # warm up: the translation
            work, _ = interpreter(program, entry, args)
            t_interp = best(lambda: interpreter(program, entry, args)[1], repeat)
            t = best(lambda: timed_run_batch(machine, entry, args), repeat)
            print(f"{task:<6} {B:>5} {work / t:>21,.0f} {work / t_interp:>18,.0f} {t_interp / t:>7.2f}  >= {goal}",
                  flush=True)
    print(load())


def row(task, B, mode, steps, work, t, rate_interp, extra=""):
    rate = work / t
    print(f"{task:<6} {B:>5} {mode:<9} {steps:>6} {rate:>19,.0f} {rate_interp:>18,.0f} {rate / rate_interp:>7.3f}{extra}",
          flush=True)


def load():
    return f"load average {os.getloadavg()[0]:.1f}"


def main():
    rng = random.Random(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {load()}")
    print(HEADER)
    for task in ("fib", "sort"):
        for B in (1, 32, 256, 4096):
            program, entry, args = workload(task, B, rng)
            machine = Machine(program)
            timed_run_batch(machine, entry, args[:2])  # warm up (the translation, the allocator)
            work, _ = interpreter(program, entry, args)
            rate_interp = work / best(lambda: interpreter(program, entry, args)[1], 3)
            steps = max(program.run(entry, *copy_args(a), return_steps=True)[1] for a in args)
            row(task, B, "run_batch", steps, work, best(lambda: timed_run_batch(machine, entry, args), 3), rate_interp)
            row(task, B, "python", steps, work, best(lambda: timed_run_hard(machine, entry, args, "python")[0], 3),
                rate_interp)
            row(task, B, "torch", steps, work, timed_run_hard(machine, entry, args, "torch")[0], rate_interp)
            if B <= 256:
                row(task, B, "dist", steps, work, timed_run_batch(machine, entry, args, "distribution"), rate_interp)
            if B <= 32:  # B = 256 with gradients: minutes on 2 cores; see the docstring
                t, steps, norm = machine_backward(machine, program, entry, args)
                row(task, B, "fwd+bwd", steps, work, t, rate_interp, f"   |grad| {norm:.3g}")
    print(load())
    print("peak memory of forward+backward through 1,000 steps of recursive fib (V=128, R=3, D=16, N=128):")
    for B, ckpt in [(32, None), (32, 64), (32, 32)]:
        cmd = [sys.executable, __file__, "--memory", str(B), str(ckpt)]
        mib = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        print(f"  B={B:<3} checkpoint_every={str(ckpt):<5} {mib:8.0f} MiB")


def hard_on(device, sizes=(256, 4096, 65536)):
    """`python tests/scripts/bench_reasoning.py --hard cuda`: the hard executors alone on a device, at large
    batches: "torch" and, on CUDA, "graph" (the same steps replayed as CUDA graphs) on the device, and
    "python" (the host's CPU) for comparison. The interpreter's rate (per example it does not depend on
    B) is measured on min(B, 4096) examples of the host's CPU."""
    rng = random.Random(0)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print(f"hard path on {name}, torch {torch.__version__}, {load()}")
    print(HEADER)
    executors = ("python", "torch", "graph") if device.startswith("cuda") else ("python", "torch")
    for task in ("fib", "sort"):
        for B in sizes:
            program, entry, args = workload(task, B, rng)
            machine = Machine(program).to(device)
            sample = args[:4096]
            work_s, t_interp = interpreter(program, entry, sample)
            work = work_s * B / len(sample) if task == "fib" else \
                sum(program.run(entry, *copy_args(a), return_steps=True)[1] for a in args)
            for executor in executors:
                timed_run_hard(machine, entry, args[:2], executor)  # warm up
                t, steps = timed_run_hard(machine, entry, args, executor)
                row(task, B, executor, steps, work, t, work_s / t_interp)
    print(load())


def scaling():
    """`--scaling`: the cost as V, memory N and B grow, on the same work (insertion sort of 8 values below
    128). The Python translation's cost per example should not depend on V; run_hard's "python" row also
    converts B x N memory cells from tensors to Python lists and back, which run_batch does not. The
    torch executor's cost per step should not depend on V (ops are computed, not tabulated). "dist" is
    the distribution machine at B = 32, whose ops on [V]-vectors grow with V."""
    rng = random.Random(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {load()}")
    print(f"{'V':>5} {'N':>5} {'B':>5} {'mode':<9} {'steps':>6} {'machine ex*steps/s':>19} {'interp ex*steps/s':>18} {'ratio':>7}")
    for V, N in ((128, 128), (1024, 128), (1024, 1024)):
        for B in (32, 256, 4096):
            program, entry, args = workload("sort", B, rng, V=V)
            machine = Machine(program, n_cells=N)
            work, _ = interpreter(program, entry, args, n_cells=N)
            rate_interp = work / best(lambda: interpreter(program, entry, args, n_cells=N)[1], 3)
            steps = max(program.run(entry, *copy_args(a), n_cells=N, return_steps=True)[1] for a in args)
            timed_run_batch(machine, entry, args[:2])  # warm up: the translation
            times = {"dist": lambda: timed_run_batch(machine, entry, args, "distribution")} if B == 32 else {
                "run_batch": lambda: best(lambda: timed_run_batch(machine, entry, args), 3),
                "python": lambda: best(lambda: timed_run_hard(machine, entry, args, "python")[0], 3),
                "torch": lambda: timed_run_hard(machine, entry, args, "torch")[0]}
            for mode, seconds in times.items():
                rate = work / seconds()
                print(f"{V:>5} {N:>5} {B:>5} {mode:<9} {steps:>6} {rate:>19,.0f} {rate_interp:>18,.0f} "
                      f"{rate / rate_interp:>7.3f}", flush=True)
    t = time.perf_counter()
    from reasoning import op_table
    op_table("mul", 1024)
    print(f"(tabulating one primitive at V = 1,024, as the hard path did before: {time.perf_counter() - t:.2f} s; "
          f"it now computes its ops)")
    print(load())


def long_sort(n_numbers=128, B=32):
    """`--long-sort`: the library's sort_task on prompts of `n_numbers` numbers (4x the longest of
    tasks.py's 4x split), at V = 1,024 with a tape of 1,023 cells: the answers against Python's sorted,
    the time against the interpreter. (The torch executor is left out: tens of thousands of steps at a
    small B are a GPU's work.)"""
    import tasks
    V, N = 1024, 1023
    program = compile_functions(*tasks.LIBRARY_FUNCTIONS, n_values=V)
    machine = Machine(program, n_cells=N)
    rng = random.Random(0)
    lists = [[rng.randint(0, 99) for _ in range(n_numbers)] for _ in range(B)]
    tapes = [tasks.prompt_tape("sort " + " ".join(map(str, xs)) + "=", n_cells=N) for xs in lists]
    print(f"sort_task on {B} lists of {n_numbers} numbers, V={V}, N={N}, {load()}")
    t, work = time.perf_counter(), 0
    for tape in tapes:
        work += program.run("sort_task", list(tape), n_cells=N, return_steps=True)[1]
    t_interp = time.perf_counter() - t
    pc = torch.full((B,), program.functions["sort_task"].entry)
    regs = machine.list_registers(B, base=0, length=N)
    t = time.perf_counter()
    out = machine.run_hard(pc, regs, torch.tensor(tapes), max_steps=10**6, executor="python")
    t_python = time.perf_counter() - t
    right = sum(tasks.read_text(m, int(s)) == " ".join(map(str, sorted(xs)))
                for m, s, xs in zip(out.memory.tolist(), out.value, lists))
    print(f"{right}/{B} sorted right, {out.steps} steps for the slowest, {work / B:,.0f} on average; "
          f"python {work / t_python:,.0f} ex*steps/s, interpreter {work / t_interp:,.0f}: ratio {t_interp / t_python:.2f}")


def alu_cost_one(op, form, V, B, reps=3):
    """`--alu-one`, in a fresh process: one op on soft inputs [B, V] (float32), forward and backward.
    Prints the median seconds and the growth of peak RSS (MiB) over the runs."""
    from reasoning import FAST_FORMS, apply_circuit, apply_table, op_table
    table = op_table(op, V) if form == "table" else None  # built before measuring (V * V * 8 bytes)
    run = {"table": lambda p, q: apply_table(table, p, q), "fast form": FAST_FORMS[op],
           "circuit": lambda p, q: apply_circuit(op, p, q)}[form]
    gen = torch.Generator().manual_seed(0)
    p, q = (torch.rand(B, V, generator=gen).softmax(-1).requires_grad_() for _ in range(2))
    before, times = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, []
    for _ in range(reps):
        t = time.perf_counter()
        run(p, q).square().sum().backward()
        times.append(time.perf_counter() - t)
    print(sorted(times)[reps // 2], (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)


def size(n_bytes):
    return f"{n_bytes / 2**30:,.0f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.1f} MiB"


def alu_largest(op, form, V, B):
    """(bytes, name) of the biggest tensor a form builds for one op on [B, V] float32 inputs."""
    if form == "table":
        return B * V * V * 4, f"the joint p(a) q(b) [B, V * V] (the table [V, V] int64: {size(V * V * 8)})"
    if form == "fast form" and op == "add":
        return B * V * V * 4, "the circulant of q [B, V, V]"
    return B * V * 4, "[B, V]" + (" (bits [B, log2 V] between to_bits and from_bits)" if form == "circuit" else "")


def alu_cost(B=32):
    """`python tests/scripts/bench_reasoning.py --alu`: time and memory of one op (forward + backward) on soft
    inputs [B, V] as V grows, for the lookup table, the fast form (section 1) and the circuit (section
    1b), each in a fresh process. A form whose biggest tensor passes a quarter of this machine's memory
    is not run: the line says how big it would be."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"one op on soft inputs [B={B}, V] float32, forward + backward; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {ram / 2**30:.0f} GiB RAM, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'op':<4} {'V':>6} {'form':<10} {'ms':>9} {'peak MiB':>9}  biggest tensor")
    for V in (128, 1024, 65536):
        for op in ("add", "lt", "min"):
            for form in ("table", "fast form", "circuit"):
                n_bytes, what = alu_largest(op, form, V, B)
                if n_bytes > ram / 4:
                    print(f"{op:<4} {V:>6} {form:<10} {'-':>9} {'-':>9}  {what}: {size(n_bytes)}, not run")
                    continue
                cmd = [sys.executable, __file__, "--alu-one", op, form, str(V), str(B)]
                sec, mib = map(float, subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split())
                print(f"{op:<4} {V:>6} {form:<10} {sec * 1e3:>9.2f} {mib:>9.0f}  {what}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--hard":  # --hard DEVICE [B ...]
        hard_on(sys.argv[2], tuple(int(b) for b in sys.argv[3:]) or (256, 4096, 65536))
    elif len(sys.argv) > 1 and sys.argv[1] == "--memory":
        print(peak_memory(int(sys.argv[2]), None if sys.argv[3] == "None" else int(sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--alu":
        alu_cost()
    elif len(sys.argv) > 1 and sys.argv[1] == "--alu-one":
        alu_cost_one(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--goals":
        goals()
    elif len(sys.argv) > 1 and sys.argv[1] == "--scaling":
        scaling()
    elif len(sys.argv) > 1 and sys.argv[1] == "--long-sort":
        long_sort()
    else:
        main()
