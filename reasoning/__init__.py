"""
The differentiable computer: a register machine whose state is made of probability distributions, and
the layer through which a LLaMA calls it.

Read it in this order, one file per section of the package:

1. ops.py, the operation library: every primitive of compiler.PRIMITIVES as a lookup table applied to
   distributions, `out[k] = sum over a, b with T[a, b] = k of p(a) q(b)`, and faster equal forms
   (a circulant matrix for add/sub, cumulative sums for comparisons and min/max); 1b: the other ALU, the
   primitives as circuits of gates on the probabilities of a value's bits (`Machine(..., alu="circuits")`);
2. machine.py, `Machine`: a compiled `Program` turned into one-hot field matrices (opcode, dst, a, b, imm, target),
   one step of the machine as an expectation over the program counter (`_step`: halt, ALU, stack, next
   pc), and the adaptive loop (`forward`) that runs until the machine has halted;
3. hard.py, the hard path: exact executors on integer states (`Machine.run_hard`, and `run`/`run_batch`
   for int-in/int-out use) that must agree exactly with the reference interpreter `Program.run` in
   compiler/, which defines what every instruction means;
4. exact.py, exact probabilistic execution (`Machine.run_distribution`, and the holes): the state is a
   weighted set of hard runs, one per value of the soft inputs, so the output distribution and its
   gradient are exact;
5. layer.py, the reasoning layer (`ReasoningLayer`, `AugmentedLlama`): the transformer chooses a
   program, hands it the prompt, the machine runs it, and the answer is read back into the residual
   stream.

State (batched, B examples; every row is a probability vector, so a one-hot state is an ordinary machine),
a `MachineState`:
    pc        [B, L]        program counter over the L program lines (its mass is the not-yet-halted mass)
    registers [B, R, V]     R registers, each a distribution over the V values
    memory    [B, N, V]     N <= V cells; an address is a value, addresses >= N do not exist
    saved     [B, D, R, V]  call stack: the register file saved by each of up to D nested calls
    ret_to    [B, D, L]     call stack: the return line of each call
    sp        [B, D + 1]    stack pointer distribution over 0..D (0: empty stack)
    halted    [B]           mass that has halted so far

One step. The machine executes "the expected instruction": each field of the program (opcode, operand
registers, ...) is mixed by the pc with one matmul, the operations are applied to the mixed operands and
every write is a convex blend weighted by the probability that it happens. On a one-hot state this is
exactly one instruction of `Program.run`. On a soft state it is a *mean-field approximation*: operands
and fields are mixed before the op is applied (E[f(x, y)] is replaced by f(E x, E y) over lines), and
correlations between registers, memory, the stack pointer and the pc are dropped (each is kept as its
own marginal). This approximation is unstable over long runs (tests/soft_vs_hard.py measures how, and its
docstring says why); long programs want hard executions (sections 3 and 4). The registers, memory and
stack describe the running mass only (they are conditional on not having halted); the mass that halts at
a step leaves the pc, and its return value and memory are added to the outputs weighted by that mass,
which makes the outputs the expectation over halting time.

Soft edge cases, which a hard run reports as `ExecutionError` like `Program.run`: a load from an address
>= N reads the value 0 and a store there is dropped; a call with a full stack keeps sp at D and
overwrites nothing.
"""

from .ops import (ALUS, CIRCUITS, FAST_FORMS, apply_circuit, apply_op, apply_table, from_bits, n_bits,  # noqa: F401
                  op_table, to_bits)
from .hard import (ARITHMETIC, HALTED, PYTHON_FORMS, STATUS, TORCH_FORMS, HardRun,  # noqa: F401
                   Outcome, PythonExecutor, run_torch)
from .exact import Distribution, top_assignments  # noqa: F401
from .machine import (CUDA_MIN_BATCH, EXECUTORS, MIN_MASS, SUPPORT_MAX, WRITES, Machine, MachineOutput,  # noqa: F401
                      MachineState)
from .layer import (GAIN_SCALE, MIN_CHOICE, ArgumentHeads, AugmentedLlama, ReasoningLayer,  # noqa: F401
                    run_warnings, segment_logsumexp, token_characters)
