"""Speed and memory of the differentiable machine (reasoning.py) against the plain-Python interpreter.

    python tests/bench_reasoning.py            # a few minutes on a 2-core CPU
    python tests/bench_reasoning.py --hard cuda   # the hard path alone, B up to 65,536, on a GPU
    python tests/bench_reasoning.py --alu         # one op, tables against circuits, V up to 65,536

Throughput is examples x steps per second: the interpreter's step count of every example (the work a
plain computer does), summed over the batch, divided by wall time. The machine runs the whole batch in
one tensor program at V = 128 (a batch runs as long as its slowest example, which the count does not
reward). "no grad": `Machine.run_batch` on one-hot inputs (the exact fast path of the distribution machine).
"hard": `Machine.run_hard`, the same runs with every one-hot state kept as an integer (what training uses). "fwd+bwd": a soft
forward with gradients (mean field, FFT/cumsum op forms, checkpointing every 64 steps) and a backward
pass from the log-probability of the right answers to the input registers. Every figure is also given as a
ratio against `Program.run` on the same examples, timed in the same run. fwd+bwd is measured at
B = 1 and 32 only, to keep the run to a few minutes.

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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch

from compiler import compile_source
from corpus import CORPUS
from reasoning import Machine

SOURCES = {case.entry: case.source for case in CORPUS if case.name in ("fib_recursive", "insertion_sort")}


def workload(task, B, rng):
    """(program, entry, args_list): recursive fib(7) or insertion sort of 8 random values, B times."""
    entry = "fib" if task == "fib" else "insertion_sort"
    program = compile_source(SOURCES[entry])
    if task == "fib":
        args = [[7] for _ in range(B)]
    else:
        args = [[[rng.randrange(128) for _ in range(8)]] for _ in range(B)]
    return program, entry, args


def copy_args(args):
    return [list(x) if isinstance(x, list) else x for x in args]


def interpreter(program, entry, args_list):
    """(examples x steps, seconds) of Program.run on the same examples."""
    t, work = time.perf_counter(), 0
    for args in args_list:
        work += program.run(entry, *copy_args(args), return_steps=True)[1]
    return work, time.perf_counter() - t


def machine_no_grad(machine, entry, args_list):
    t = time.perf_counter()
    machine.run_batch([entry] * len(args_list), [copy_args(a) for a in args_list])
    return time.perf_counter() - t


def machine_hard(machine, entry, args_list):
    """`Machine.run_hard`: the same one-hot runs with the state kept as integers."""
    pc, regs, mem, _ = machine.init_state([entry] * len(args_list), [copy_args(a) for a in args_list])
    pc, regs, mem = pc.argmax(-1), regs.argmax(-1), mem.argmax(-1)
    t = time.perf_counter()
    machine.run_hard(pc, regs, mem)
    return time.perf_counter() - t


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


def main():
    rng = random.Random(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'task':<6} {'B':>4} {'mode':<8} {'steps':>6} {'machine ex*steps/s':>19} {'interp ex*steps/s':>18} {'ratio':>7}")
    for task in ("fib", "sort"):
        for B in (1, 32, 256, 2048):
            program, entry, args = workload(task, B, rng)
            machine = Machine(program)
            machine_no_grad(machine, entry, args[:2])  # warm up (tables, allocator)
            work, t_interp = interpreter(program, entry, args)
            rate_interp = work / t_interp
            t = machine_no_grad(machine, entry, args) if B <= 256 else float("nan")
            steps = max(program.run(entry, *copy_args(a), return_steps=True)[1] for a in args)
            print(f"{task:<6} {B:>4} {'no grad':<8} {steps:>6} {work / t:>19,.0f} {rate_interp:>18,.0f} {work / t / rate_interp:>7.3f}")
            t = machine_hard(machine, entry, args)
            print(f"{task:<6} {B:>4} {'hard':<8} {steps:>6} {work / t:>19,.0f} {rate_interp:>18,.0f} {work / t / rate_interp:>7.3f}")
            if B <= 32:  # B=256 with gradients: minutes on 2 cores; see the docstring
                t, steps, norm = machine_backward(machine, program, entry, args)
                print(f"{task:<6} {B:>4} {'fwd+bwd':<8} {steps:>6} {work / t:>19,.0f} {rate_interp:>18,.0f} "
                      f"{work / t / rate_interp:>7.3f}   |grad| {norm:.3g}")
    print("peak memory of forward+backward through 1,000 steps of recursive fib (V=128, R=3, D=16, N=128):")
    for B, ckpt in [(32, None), (32, 64), (32, 32)]:
        cmd = [sys.executable, __file__, "--memory", str(B), str(ckpt)]
        mib = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        print(f"  B={B:<3} checkpoint_every={str(ckpt):<5} {mib:8.0f} MiB")


def hard_on(device, sizes=(256, 4096, 65536)):
    """`python tests/bench_reasoning.py --hard cuda`: the hard path alone on a device, at large batches.

    The interpreter's rate (per example it does not depend on B) is measured on min(B, 4096) examples."""
    rng = random.Random(0)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print(f"hard path on {name}, torch {torch.__version__}")
    print(f"{'task':<6} {'B':>6} {'steps':>6} {'machine ex*steps/s':>19} {'interp ex*steps/s':>18} {'ratio':>7}")
    for task in ("fib", "sort"):
        for B in sizes:
            program, entry, args = workload(task, B, rng)
            machine = Machine(program).to(device)
            pc, regs, mem, _ = machine.init_state([entry] * B, [copy_args(a) for a in args])
            pc, regs, mem = pc.argmax(-1).to(device), regs.argmax(-1).to(device), mem.argmax(-1).to(device)
            machine.run_hard(pc[:2], regs[:2], mem[:2])  # warm up
            sample = args[:4096]
            work_s, t_interp = interpreter(program, entry, sample)
            work = work_s * B / len(sample) if task == "fib" else \
                sum(program.run(entry, *copy_args(a), return_steps=True)[1] for a in args)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            _, _, halted, steps, *_ = machine.run_hard(pc, regs, mem)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter() - t
            assert bool(halted.all())
            rate = work_s / t_interp
            print(f"{task:<6} {B:>6} {steps:>6} {work / t:>19,.0f} {rate:>18,.0f} {work / t / rate:>7.3f}")


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
    """`python tests/bench_reasoning.py --alu`: time and memory of one op (forward + backward) on soft
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
    if len(sys.argv) > 2 and sys.argv[1] == "--hard":
        hard_on(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--memory":
        print(peak_memory(int(sys.argv[2]), None if sys.argv[3] == "None" else int(sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--alu":
        alu_cost()
    elif len(sys.argv) > 1 and sys.argv[1] == "--alu-one":
        alu_cost_one(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
