"""How far the soft (mean-field) machine drifts from the hard one as its inputs get less certain.

    python tests/scripts/soft_vs_hard.py

The argument n of recursive Fibonacci is given as a one-hot distribution smoothed by epsilon,
(1 - eps) one_hot(n) + eps / V. A perfect probabilistic machine would return fib(n) with probability at
least 1 - eps (the other inputs' answers carry the rest). The mean-field machine mixes operands across
program lines and drops correlations between registers, so its error grows with eps and with the
number of steps (deeper recursion). Printed: steps run, total variation distance between the soft
output and the hard answer's one-hot, and the probability of the right answer.

The last three columns are exact probabilistic execution (`Machine.run_distribution`) on the same smoothed
argument: one hard thread per value of n (128 threads), weighted by its probability. "TV(exact, truth)" is
its distance to the true output distribution, computed by brute force: the reference interpreter run on
every n with the same step budget, weighted the same way (both conditional on halting within the budget;
threads with a large n run out of steps, like the interpreter). The mean field smooths every register (the
others are overwritten before fib reads them); exact execution takes the argument n as its soft input.

Why the mean field drifts (notes moved here from reasoning.py). A small error on the pc or a register
(soft inputs, round-off) grows geometrically with the steps, and so do gradients at one-hot inputs; long
programs therefore want one-hot (hard) executions, e.g. one per candidate argument value, weighted by the
argument's distribution. This comes from the mean-field state, not from a defect in the step. Every
register, stack slot and sp is one marginal that all the pc's mass shares. Take fib(4) with 0.1% of
fib(3) mixed in: at step 13 the 0.1% reaches `ret r0` of a base case while the rest is at `sub`. Its pop
restores the saved slot, which holds the *other* run's caller (r0 = 3, not 2), and sets a0. The big mass
then reads that a0 in `mov r0, a0; lt; branch`, and at step 18 0.6% of it takes the wrong arm and runs on
as a new out-of-step run. The stray mass grows ~x1.4 a step (~x10 a recursion level), the same rate as
the gradients at one-hot inputs. For 2-input mixtures with weight 1e-3, the TV to the exact mixture is
2e-3 for fib(1), 7e-2 for fib(2), ~0.5 for fib(3) and ~0.9 for fib(4). An exact product-of-marginals
filter without operand mixing fails the same way (3e-2, 0.2, 0.7).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from compiler import compile_source
from corpus import CORPUS
from reasoning import Machine

program = compile_source(next(case.source for case in CORPUS if case.name == "fib_recursive"))
machine = Machine(program)
V = program.n_values

from compiler import ExecutionError


def truth(n, eps, max_steps):
    """P(fib returns k | it halts within max_steps) for the argument (1 - eps) one_hot(n) + eps / V."""
    p = torch.zeros(V, dtype=torch.float64)
    for m in range(V):
        try:
            p[program.run("fib", m, max_steps=max_steps)] += (1 - eps) * (m == n) + eps / V
        except ExecutionError:  # out of steps
            pass
    return p / p.sum()


print(f"{'n':>2} {'hard steps':>10} {'eps':>6} {'soft steps':>10} {'halted':>7} {'TV(soft, hard)':>15} {'p(fib(n))':>10}"
      f" {'TV(exact, truth)':>17} {'exact p(fib(n))':>16} {'threads':>8}")
for n in range(4, 9):
    answer, hard_steps = program.run("fib", n, return_steps=True)
    assert machine.run("fib", n) == answer
    for eps in (1e-3, 1e-2, 1e-1):
        pc, regs, mem, _ = machine.init_state(["fib"], [[n]])
        regs = (1 - eps) * regs + eps / V  # every register smoothed; a0 carries n
        with torch.no_grad():
            out = machine(pc, regs, mem, max_steps=4 * hard_steps)
        p = out.value[0] / out.halted[0]  # the output distribution given halting
        tv = 0.5 * (p - torch.nn.functional.one_hot(torch.tensor(answer), V)).abs().sum().item()
        arg = (1 - eps) * torch.nn.functional.one_hot(torch.tensor(n), V).double() + eps / V
        exact = machine.run_distribution("fib", arg, max_steps=4 * hard_steps)
        q = exact.value / exact.value.sum()  # given halting, like the mean field's column
        tv_exact = 0.5 * (q - truth(n, eps, 4 * hard_steps)).abs().sum().item()
        print(f"{n:>2} {hard_steps:>10} {eps:>6g} {out.steps:>10} {out.halted[0].item():>7.4f} {tv:>15.4f} {p[answer].item():>10.4f}"
              f" {tv_exact:>17.1e} {q[answer].item():>16.4f} {exact.threads:>8}")
