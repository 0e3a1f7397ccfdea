"""
The differentiable computer: a register machine whose state is made of probability distributions, and
the layer through which a LLaMA calls it.

Read it top to bottom:

1. the operation library: every primitive of compiler.PRIMITIVES as a lookup table applied to
   distributions, `out[k] = sum over a, b with T[a, b] = k of p(a) q(b)`, and faster equal forms
   (a circulant matrix for add/sub, cumulative sums for comparisons and min/max); 1b: the other ALU, the
   primitives as circuits of gates on the probabilities of a value's bits (`Machine(..., alu="circuits")`);
2. `Machine`: a compiled `Program` turned into one-hot field matrices (opcode, dst, a, b, imm, target),
   one step of the machine as an expectation over the program counter (`_step`: halt, ALU, stack, next
   pc), and the adaptive loop (`forward`) that runs until the machine has halted;
3. the hard path: exact executors on integer states (`Machine.run_hard`, and `run`/`run_batch`
   for int-in/int-out use) that must agree exactly with the reference interpreter `Program.run` in
   compiler.py, which defines what every instruction means;
4. exact probabilistic execution (`Machine.run_distribution`, and the holes): the state is a
   weighted set of hard runs, one per value of the soft inputs, so the output distribution and its
   gradient are exact;
5. the reasoning layer (`ReasoningLayer`, `AugmentedLlama`): the transformer chooses a
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
own marginal). This approximation is unstable over long runs (tests/scripts/soft_vs_hard.py measures how, and its
docstring says why); long programs want hard executions (sections 3 and 4). The registers, memory and
stack describe the running mass only (they are conditional on not having halted); the mass that halts at
a step leaves the pc, and its return value and memory are added to the outputs weighted by that mass,
which makes the outputs the expectation over halting time.

Soft edge cases, which a hard run reports as `ExecutionError` like `Program.run`: a load from an address
>= N reads the value 0 and a store there is dropped; a call with a full stack keeps sp at D and
overwrites nothing.
"""

from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from compiler import (INT, LIST, OPCODES, PRIMITIVES, SEQS, ExecutionError, Program, _copy_back,
                      _lay_out_arguments, _result)





# -----------------------------------------------------------------------------
# 1. The operation library. p, q: [B, V] distributions of the two operands; out: [B, V].


@lru_cache(maxsize=None)
def op_table(name, V):
    """The primitive `name` tabulated: T[a, b] = PRIMITIVES[name](a, b, V), a [V, V] LongTensor."""
    f = PRIMITIVES[name]
    return torch.tensor([[f(a, b, V) for b in range(V)] for a in range(V)], dtype=torch.long)


def apply_table(T, p, q, support=None):
    """out[k] = sum over a, b with T[a, b] = k of p(a) q(b): the definition of an op on distributions.

    `support`: the only columns b where q can be nonzero (a [K] index); skipping the rest is exact and
    turns an op with a one-hot (e.g. immediate) second operand into a gather of p by T[:, b].
    """
    if support is not None:
        T, q = T[:, support], q[:, support]
    B, V = p.shape
    joint = (p[:, :, None] * q[:, None, :]).reshape(B, -1)  # [B, V * K]: p(a) q(b)
    return p.new_zeros(B, V).scatter_add(1, T.reshape(1, -1).expand(B, -1), joint)


def _circular(p, q, sign):
    """add (sign +1) or sub (-1): out[k] = sum_a p(a) q(sign (k - a) mod V), a circular convolution.

    q is gathered into its circulant matrix [B, V, V] and multiplied by p. An FFT would be O(V log V)
    but leaves ~1e-7 round-off on exact zeros, and the mean-field stack amplifies any error on the
    pc step after step (see tests/scripts/soft_vs_hard.py); this form is exact on one-hot inputs.
    """
    V = p.shape[-1]
    k = torch.arange(V, device=p.device)
    index = (sign * (k[None, :] - k[:, None])) % V  # [a, k] -> b with a + b = k (or a - b = k)
    return torch.bmm(p[:, None], q[:, index])[:, 0]


def _bit(p1, p, q):
    """A comparison's output: mass p1 on the value 1, the rest of the joint mass |p| |q| on 0."""
    total = p.sum(-1) * q.sum(-1)
    return F.pad(torch.stack([total - p1, p1], -1), (0, p.shape[-1] - 2))


def _at_least(p):
    """S[k] = P(a >= k), a reversed cumulative sum."""
    return p.sum(-1, keepdim=True) - p.cumsum(-1) + p


# Each equals apply_table(op_table(name, V), p, q) for any non-negative p, q (tests/test_reasoning.py).
FAST_FORMS = {
    "add": lambda p, q: _circular(p, q, +1),
    "sub": lambda p, q: _circular(p, q, -1),
    "lt": lambda p, q: _bit((q * (p.cumsum(-1) - p)).sum(-1), p, q),  # P(a < b) = sum_b q(b) P(a <= b - 1)
    "le": lambda p, q: _bit((q * p.cumsum(-1)).sum(-1), p, q),
    "gt": lambda p, q: _bit((p * (q.cumsum(-1) - q)).sum(-1), p, q),
    "ge": lambda p, q: _bit((p * q.cumsum(-1)).sum(-1), p, q),
    "eq": lambda p, q: _bit((p * q).sum(-1), p, q),
    "ne": lambda p, q: _bit(p.sum(-1) * q.sum(-1) - (p * q).sum(-1), p, q),
    "and": lambda p, q: _bit((p.sum(-1) - p[:, 0]) * (q.sum(-1) - q[:, 0]), p, q),
    "or": lambda p, q: _bit(p.sum(-1) * q.sum(-1) - p[:, 0] * q[:, 0], p, q),
    # P(min >= k) = P(a >= k) P(b >= k); the pmf is its difference. max likewise with P(max <= k).
    "min": lambda p, q: (lambda G: G - F.pad(G[:, 1:], (0, 1)))(_at_least(p) * _at_least(q)),
    "max": lambda p, q: (lambda G: G - F.pad(G[:, :-1], (1, 0)))(p.cumsum(-1) * q.cumsum(-1)),
}  # mul, floordiv and mod have no such structure: they use the table.


# -----------------------------------------------------------------------------
# 1b. The other ALU: ops as differentiable circuits over the bits of a value (the paper's other ALU, its
# section 4.1 as its reviewers describe it).
#
# A value in [0, V), V = 2^n, is n bits, low bit first. A circuit keeps of a value's distribution only
# the probability that each bit is 1, treats the n bits as independent Bernoullis and computes with gates
# on those probabilities. A gate on independent inputs is exact (P(x AND y) = P(x) P(y)); the error is
# in what the bits leave out, in three places, none of which exists on one-hot inputs (there every circuit
# equals its table: tests/test_reasoning.py checks all V x V pairs):
#   - to_bits keeps a value's bit marginals and drops their correlations (1/2 on the value 1 and 1/2 on 2
#     becomes uniform over 0..3); and/or test a != 0 as 1 - prod_i (1 - P(bit i)), not as 1 - p(0);
#   - from_bits returns the product of the result's bit marginals: a sum's bits are correlated through
#     its carries (a + b with a, b uniform over {0, 1}: p(0) = 1/4, p(1) = 1/2, p(2) = 1/4 comes back as
#     3/8, 3/8, 1/8, 1/8 over 0..3), and that is lost;
#   - min/max select a or b by comparing the very bits they select: the MUX's inputs are not independent.
# On inputs that are products over their bits, comparisons, eq/ne, and/or and the bitwise ops are exact,
# and add, sub and the shifts have exact bit marginals (tests). The price of the table's exactness is
# V x V entries per op; a circuit is O(log V) gates (plus O(V log V) to change representation).
# `python tests/scripts/alu_arithmetic.py --soft` measures the distance to the table on random soft inputs.


def n_bits(V):
    """log2 V, the number of bits of a value; V must be a power of two (at least 2)."""
    n = V.bit_length() - 1
    if V < 2 or V != 1 << n:
        raise ValueError(f"the circuit ALU needs V to be a power of two (a value is log2 V bits), got V={V}; "
                         f"use n_values=2**k, or alu='tables'")
    return n


def to_bits(p):
    """Value distributions p [B, V] -> (P(bit i = 1) [B, n], low bit first; p's mass [B]).

    The marginals only: P(bit i = 1) sums p over the values whose bit i is set, which are the second
    halves of p's blocks of 2^(i + 1) values. (Not a matmul with a [V, n] bit matrix: on this CPU a
    [2, V] x [V, n] matmul can cost milliseconds.) The mass is kept apart so that a circuit, like a
    table, is bilinear: |out| = |p| |q|, and a zero row stays zero.
    """
    (B, V), mass = p.shape, p.sum(-1)
    ones = torch.stack([p.reshape(B, -1, 2, 1 << i)[:, :, 1].sum((1, 2)) for i in range(n_bits(V))], -1)  # [B, n]
    return ones / mass.clamp_min(torch.finfo(p.dtype).tiny)[:, None], mass


def from_bits(bits, mass):
    """(bits [B, n], mass [B]) -> the product distribution over values [B, 2^n], times the mass:
    out[k] = mass prod_i (bits_i if bit i of k is set else 1 - bits_i)."""
    out = mass[:, None]  # [B, 1]: the distribution over the low 0 bits
    for i in range(bits.shape[-1]):  # over the low i bits -> over the low i + 1 (bit i is the high one)
        b = bits[:, i:i + 1]
        out = torch.cat([out * (1 - b), out * b], -1)  # [B, 2^(i + 1)]
    return out


# Gates on the probabilities of independent bits, elementwise ([B] or [B, n]).
NOT = lambda x: 1 - x
AND = lambda x, y: x * y
OR = lambda x, y: x + y - x * y
XOR = lambda x, y: x + y - 2 * x * y
MUX = lambda s, x, y: s * x + (1 - s) * y  # s ? x : y


def ripple_add(a, b, carry):
    """a + b + carry by one full adder per bit, from the low end: (sum bits [B, n], carry out [B]).

    a, b [B, n]; carry: P(carry in), a number or [B]. The carry into bit i depends on the bits below i
    only, so each gate's inputs are independent: the sum's marginals are exact for product inputs.
    """
    out = []
    for i in range(a.shape[-1]):
        half = XOR(a[:, i], b[:, i])
        out.append(XOR(half, carry))
        carry = AND(a[:, i], b[:, i]) + AND(half, carry)  # two disjoint ways to carry: their P's add
    return torch.stack(out, -1), carry


def at_least(a, b):
    """P(a >= b) [B]: a - b = a + NOT b + 1 carries out of the top bit exactly when it does not borrow."""
    return ripple_add(a, NOT(b), 1)[1]


def equal(a, b):
    """P(a == b) [B]: every bit agrees."""
    return NOT(XOR(a, b)).prod(-1)


def nonzero(a):
    """P(a != 0) [B]: some bit is set."""
    return NOT(NOT(a).prod(-1))


def shift(a, b, left):
    """a << b or a >> b, bits pushed off the end lost: a barrel shifter. Stage j shifts by 2^j where
    bit j of b is set (one MUX per bit); a shift by n or more leaves 0, as the primitives do at V = 2^n."""
    n = a.shape[-1]
    for j in range(n):
        k = min(1 << j, n)
        moved = F.pad(a, (k, 0))[:, :n] if left else F.pad(a, (0, k))[:, k:]  # low bit first: left is up
        a = MUX(b[:, j:j + 1], moved, a)
    return a


# Each maps the operands' bits a, b [B, n] to the result's bits [B, n], or to P(result = 1) [B] for the
# ops whose result is 0 or 1.
CIRCUITS = {
    "add": lambda a, b: ripple_add(a, b, 0)[0],
    "sub": lambda a, b: ripple_add(a, NOT(b), 1)[0],  # two's complement: a - b = a + NOT b + 1 mod 2^n
    "lt": lambda a, b: NOT(at_least(a, b)),
    "le": lambda a, b: at_least(b, a),
    "gt": lambda a, b: NOT(at_least(b, a)),
    "ge": at_least,
    "eq": equal,
    "ne": lambda a, b: NOT(equal(a, b)),
    "and": lambda a, b: AND(nonzero(a), nonzero(b)),
    "or": lambda a, b: OR(nonzero(a), nonzero(b)),
    "min": lambda a, b: MUX(at_least(a, b)[:, None], b, a),
    "max": lambda a, b: MUX(at_least(a, b)[:, None], a, b),
    "bitand": AND,  # bitand ... rshift: primitives from the compiler branch (coord CONTRACTS.md section 2)
    "bitor": OR,
    "bitxor": XOR,
    "lshift": lambda a, b: shift(a, b, left=True),
    "rshift": lambda a, b: shift(a, b, left=False),
}  # mul, floordiv, mod and pow have no circuit here: they use the table.


def apply_circuit(name, p, q):
    """The primitive `name` as a circuit on value distributions p, q [B, V]: to bits, gates, back."""
    (a, mass_a), (b, mass_b) = to_bits(p), to_bits(q)
    out = CIRCUITS[name](a, b)
    if out.dim() == 1:  # a 0/1 result: the value 1 is bit 0 set, every other bit clear
        out = F.pad(out[:, None], (0, a.shape[-1] - 1))
    return from_bits(out, mass_a * mass_b)


ALUS = ("tables", "circuits")


def apply_op(name, p, q, support=None, alu="tables"):
    """The primitive `name` on distributions. alu="tables": by its fast form if it has one, else by its
    table; exact. alu="circuits": by its circuit if it has one (section 1b: equal on one-hot inputs, an
    approximation on soft ones), else as with tables. `support` only speeds up a table."""
    if alu not in ALUS:
        raise ValueError(f"alu={alu!r} is not an ALU; use 'tables' (lookup tables, exact on distributions) "
                         f"or 'circuits' (gates on bit probabilities)")
    if alu == "circuits" and name in CIRCUITS:
        return apply_circuit(name, p, q)
    if name in FAST_FORMS and support is None:
        return FAST_FORMS[name](p, q)
    return apply_table(op_table(name, p.shape[-1]).to(p.device), p, q, support)


# -----------------------------------------------------------------------------
# 2. The machine.


def _blend(t, w, new, fast, add=False):
    """t + w (new - t), or t + w new if add: a write with probability w.

    w [B] or [B, K] covers t's leading dims; new has t's shape or size 1 in dim 1 (broadcast over K).
    Without gradients (fast) it works in place and only where w != 0. (index_select/index_copy_, not
    t[idx]: on CPU, advanced indexing can cost milliseconds even for a few rows.)
    """
    shape = (*w.shape, *[1] * (t.dim() - w.dim()))
    if not fast:
        return t + w.view(shape) * (new if add else new - t)
    idx = w.flatten().nonzero()[:, 0]  # entries of t's leading dims that get written
    if len(idx):
        flat = t.view(-1, *t.shape[w.dim():])
        if w.dim() == 2 and new.shape[1] == 1:
            n = new[:, 0].index_select(0, idx // w.shape[1])
        else:
            n = new.reshape(flat.shape).index_select(0, idx)
        old = flat.index_select(0, idx)
        wi = w.flatten().index_select(0, idx).view(-1, *shape[w.dim():])
        flat.index_copy_(0, idx, old + wi * (n if add else n - old))
    return t


def _read(sel, regs):
    """sum_r sel[b, r] regs[b, r, :]: a register read mixed over registers, sel [B, R] -> [B, V].

    Written as a product and a sum, not a bmm: with K = R this small, CPU bmm can cost milliseconds.
    """
    return (sel[..., None] * regs).sum(-2)

WRITES = ("const", "mov", *PRIMITIVES, "load")  # opcodes that write r[dst] and go on to the next line
EXECUTORS = ("auto", "python", "torch", "graph")  # how run_hard runs (see Machine.run_hard)
# From this batch size on, "auto" runs a CUDA device's batch on the torch executor rather than in Python
# on the host: the crossing point of the README's H100 figures (the torch path at B = 4,096 was 1.4x the
# interpreter, at 65,536 19.5x; the Python translation is ~5x at any B). Not re-measured on a GPU.
CUDA_MIN_BATCH = 16_384
SUPPORT_MAX = 8  # without gradients, ops on operands with at most this many live values use the table
# Below this running mass an example counts as halted: its state is not renormalised further, so that
# float round-off on a halted example's pc is never blown up into a full state.
MIN_MASS = 1e-6


class MachineState(NamedTuple):
    """The mean-field machine's state between steps (B examples; the module docstring says what each is)."""
    pc: torch.Tensor  # [B, L]
    registers: torch.Tensor  # [B, R, V]
    memory: torch.Tensor  # [B, N, V]
    saved: torch.Tensor  # [B, D, R, V] call stack: saved register files
    ret_to: torch.Tensor  # [B, D, L] call stack: return lines
    sp: torch.Tensor  # [B, D + 1]
    halted: torch.Tensor  # [B] mass that has halted so far
    value: torch.Tensor  # [B, V] the returned value so far, weighted by the mass that returned it
    memory_out: torch.Tensor  # [B, N, V] the memory at halting, likewise
    failed_at: torch.Tensor  # [B, L] mass that stopped at a `fail`, by line

    def stopped(self):
        """[B] the mass that has stopped: halted or failed."""
        return self.halted + self.failed_at.sum(-1)


@dataclass
class MachineOutput:
    value: torch.Tensor  # [B, V] returned value, expectation over halting time (its mass is `halted`)
    memory: torch.Tensor  # [B, N, V] memory when halting, expectation over halting time
    halted: torch.Tensor  # [B] halted mass (>= 1 - eps unless max_steps ran out)
    steps: int  # steps run: the slowest example's
    failed: torch.Tensor = None  # [B] mass that stopped at a `fail` (an error: assert, index...), not halted
    failed_at: torch.Tensor = None  # [B, L] that mass by the line of its `fail`


def _machine_sizes(program, n_regs, n_cells, max_depth, alu):
    """(R, N): the register file and memory sizes of a Machine, checked against the program."""
    check_program(program)
    V = program.n_values
    used = [r for ins in program.instructions for r in (ins.dst, ins.a, ins.b) if r is not None]
    need = max([program.n_regs, *[r + 1 for r in used], *[r + 1 for r in program.arg_regs]])
    R = program.n_regs if n_regs is None else n_regs
    N = V if n_cells is None else n_cells
    if R < need:
        raise ValueError(f"n_regs={R} is too small: the program uses {need} registers")
    if not 0 < N <= V:
        raise ValueError(f"n_cells={N} must be in [1, V={V}]: an address is a value")
    if max_depth < 1:
        raise ValueError(f"max_depth={max_depth} must be at least 1")
    if alu not in ALUS:
        raise ValueError(f"alu={alu!r} is not an ALU; use 'tables' (the default: exact lookup tables) or "
                         f"'circuits' (gates on bit probabilities, reasoning.py section 1b)")
    if alu == "circuits":
        n_bits(V)  # V must be a power of two
    return R, N


class Machine(nn.Module):
    """A differentiable register machine running a compiled `Program` (see the module docstring).

    From a product state, the step is the exact update of sp, stack, halting and value, and of every field
    where the pc's lines read the same operands (tests/test_reasoning.py); its own extra error, the operand
    mixing, is at most the pc's off-line mass per write. Why a soft run still drifts from the hard one over
    long runs: tests/scripts/soft_vs_hard.py's docstring.
    """

    def __init__(self, program: Program, n_regs=None, n_cells=None, max_depth=16, trainable=False, sharpness=10.0,
                 alu="tables"):
        super().__init__()
        V, L = program.n_values, len(program.instructions)
        R, N = _machine_sizes(program, n_regs, n_cells, max_depth, alu)
        self.alu = alu  # how the mean-field step applies primitives to soft operands (section 1b)
        self.program, self.V, self.L, self.R, self.N, self.D = program, V, L, R, N, max_depth
        self.arg_regs, self.trainable = list(program.arg_regs), trainable
        # Only the opcodes the program uses get a column (the others have zero pc mass); a trainable
        # program can re-weight among these, not invent new ones.
        self.ops = tuple(op for op in OPCODES if any(ins.op == op for ins in program.instructions))
        self.col = {op: j for j, op in enumerate(self.ops)}
        imm = lambda ins: ins.op == "const" or (ins.op in PRIMITIVES and ins.b is None)
        one_hot = lambda idx, n: F.one_hot(torch.tensor(idx), n).float()
        ins = program.instructions
        fields = {  # one-hot rows; a field a line does not use points at 0 (its weight is zero)
            "op": one_hot([self.col[i.op] for i in ins], len(self.ops)),  # [L, n_ops]
            "dst": one_hot([i.dst or 0 for i in ins], R),  # [L, R]
            "a": one_hot([i.a or 0 for i in ins], R),  # [L, R]
            "b": one_hot([i.b or 0 for i in ins], R),  # [L, R]
            "use_imm": one_hot([int(imm(i)) for i in ins], 2),  # [L, 2]: column 1 = immediate operand
            "imm": one_hot([(i.imm or 0) % V for i in ins], V),  # [L, V]
            "target": one_hot([i.target or 0 for i in ins], L),  # [L, L]
        }
        for name, x in fields.items():
            if trainable:  # logits; softmax(sharpness * one-hot) is nearly the compiled program
                setattr(self, name, nn.Parameter(sharpness * x))
            else:
                self.register_buffer(name, x)
        # Holes (compiler.hole): one learned distribution per hole over its alternatives, uniform at first.
        # A hole's choice is fixed for a whole run: it is the initial value of the hole's register, which
        # no instruction writes. A machine (mean field) or a thread (exact) runs every alternative.
        n_alt = torch.tensor([h.n_alternatives for h in program.holes], dtype=torch.long)
        if len(n_alt):
            self.hole_logits = nn.Parameter(torch.zeros(len(n_alt), int(n_alt.max())))
        else:  # no holes: no parameter (a checkpoint of a library without holes has no such tensor)
            self.register_buffer("hole_logits", torch.zeros(0, 0), persistent=False)
        self.register_buffer("hole_mask", torch.arange(self.hole_logits.shape[1])[None] < n_alt[:, None],
                             persistent=False)  # [n_holes, max alternatives]
        self.register_buffer("e_a0", one_hot(self.arg_regs[0], R))  # [R] the result register a0
        self.register_buffer("e_0", one_hot(0, V))  # [V] the value 0
        self.register_buffer("writes", torch.tensor([float(op in WRITES) for op in self.ops]))
        self.register_buffer("steps_on", torch.tensor([float(op in WRITES or op == "store") for op in self.ops]))
        self.prims = [op for op in self.ops if op in PRIMITIVES]
        self._tables = None  # [n_prims, V, V], built on first use: see `tables`
        for key, x in program_arrays(program).items():  # [L + 1] each: the program for the tensor hard path
            self.register_buffer("hard_" + key, x, persistent=False)
        self._python = None  # the program translated into Python (section 3a), built on first use

    @property
    def tables(self):
        """[n_prims, V, V]: each primitive the program uses, tabulated, for one-hot operands. Built on first
        use, not in __init__: V x V entries each (a million at V = 1,024), and the hard path needs none."""
        if self._tables is None or self._tables.device != self.e_a0.device:
            V, tables = self.V, [op_table(op, self.V) for op in self.prims]
            self._tables = (torch.stack(tables) if tables else torch.zeros(0, V, V, dtype=torch.long)).to(self.e_a0.device)
        return self._tables

    # --- program tensors -------------------------------------------------------

    def fields(self):
        """The program as distributions: each field row-softmaxed when trainable, the buffers otherwise."""
        names = ("op", "dst", "a", "b", "use_imm", "imm", "target")
        get = (lambda n: getattr(self, n).softmax(-1)) if self.trainable else (lambda n: getattr(self, n))
        f = {n: get(n) for n in names}
        writes = f["op"] @ self.writes  # [L] P(line writes r[dst])
        # Everything that is mixed by the pc, side by side, so that a step mixes them with one matmul.
        f["mix"] = torch.cat([f["op"], f["a"], f["b"] * f["use_imm"][:, :1], f["dst"] * writes[:, None],
                              f["imm"] * f["use_imm"][:, 1:]], 1)  # [L, n_ops + 3R + V]
        f["sizes"] = [len(self.ops), self.R, self.R, self.R, self.V]
        f["is"] = {op: f["op"][:, j] for op, j in self.col.items()}  # [L] each
        f["seq"] = f["op"] @ self.steps_on  # [L] P(line goes on to line + 1)
        return f

    # --- building inputs -------------------------------------------------------

    def one_hot(self, values):
        """Ints (any shape) in [0, V) -> one-hot distributions [..., V]."""
        values = torch.as_tensor(values, dtype=torch.long)
        if values.numel() and (values.min() < 0 or values.max() >= self.V):
            raise ValueError(f"values must be ints in [0, V={self.V}), got min {values.min()} max {values.max()}")
        return F.one_hot(values, self.V).to(self.e_a0.dtype)

    def entry_pc(self, names):
        """One-hot program counters [B, L] at the entry lines of the named functions."""
        return F.one_hot(torch.tensor(self._entries(names)), self.L).to(self.e_a0.dtype)

    def _entries(self, names):
        for n in names:
            if not isinstance(n, str) or n not in self.program.functions:
                raise ExecutionError(f"unknown function {n!r}; the program defines {sorted(self.program.functions)}")
        return [self.program.functions[n].entry for n in names]

    def init_state(self, names, args_list):
        """Hard inputs -> (pc [B, L], registers [B, R, V], memory [B, N, V], per-example list bindings)."""
        pcs, regs, mems, lists = self._lay_out(names, args_list)
        return F.one_hot(torch.tensor(pcs), self.L).to(self.e_a0.dtype), self.one_hot(regs), self.one_hot(mems), lists

    def _lay_out(self, names, args_list):
        """Hard inputs as ints: (entry lines [B], registers [B][R], memory [B][N], list bindings [B]).

        Arguments go into the argument window and lists into memory from address 0, exactly as
        `Program.run` lays them out (the same function does it).
        """
        pcs, regs, mems, lists = self._entries(names), [], [], []
        for i, (name, args) in enumerate(zip(names, args_list)):
            if not isinstance(args, (list, tuple)):
                raise ExecutionError(f"the arguments of example {i} ({name}) must be a list or tuple, e.g. (5,), "
                                     f"got {type(args).__name__}")
            fn = self.program.functions[name]
            mem, r, bound = _lay_out_arguments(fn, list(args), self.R, self.arg_regs, self.V, self.N, self.program)
            regs.append(r), mems.append(mem), lists.append(bound)
        return pcs, regs, mems, lists

    # --- one step ----------------------------------------------------------------
    # A step, as the math: halting takes the mass at `ret` on an empty stack and at `halt` out of the pc
    # (`_halt`); the running mass's instruction is mixed by the pc (`_mix`, `_select`); the ALU computes
    # the value written to r[dst] (`_alu`); `ret` and `call` update the stack (`_pop`, `_push`); memory and
    # registers take their writes; the pc moves on (`_next_pc`). fast (no gradients): each helper skips
    # terms that are exactly zero (a one-hot pc turns `p @ field` into a row gather, one-hot operands turn
    # an op into one table lookup, and blends touch only the entries whose weight is nonzero, in place);
    # none of this changes a value. check (hard runs): raise ExecutionError where `Program.run` would.

    def _step(self, f, state, fast, check):
        """One instruction, as an expectation over the pc (mean field on soft states, exact on one-hot)."""
        s = MachineState(*state)
        hard = s.pc.argmax(-1) if fast and self._one_hot(s.pc) else None  # [B] the line, for a hard pc
        s, go = self._halt(f, s, hard, fast)  # go [B, L]: the joint mass that runs on
        mass = go.sum(-1, keepdim=True)
        cond = go / mass.clamp_min(MIN_MASS)  # [B, L] the pc of the running mass, normalised
        p_op, a_sel, b_sel, p_dst, y_imm = self._mix(cond, f["mix"], hard).split(f["sizes"], -1)
        x = self._select(a_sel, s.registers, hard)  # [B, V] the operands: r[a];
        y = self._select(b_sel, s.registers, hard) + y_imm  # r[b] or the immediate
        live = (p_op.amax(0) > 0).tolist() if fast else [True] * len(self.ops)
        on = lambda op: op in self.col and live[self.col[op]]  # op may run in this step
        addr, off = x[:, :self.N], x[:, self.N:].sum(-1)  # addresses >= N do not exist
        if check:
            bad = sum(p_op[:, self.col[op]] for op in ("load", "store") if op in self.col) * off > 0.5
            self._check(s.pc, bad, lambda b: f"memory address {int(x[b].argmax())} is past the last of n_cells={self.N} cells")
        val = self._alu(p_op, x, y, addr, off, s.memory, on, fast)
        new_pc, saved, ret_to, sp, popped = s.pc.new_zeros(s.pc.shape), s.saved, s.ret_to, s.sp, None
        if "call" in self.col:  # every stack update reads the stack as it was before this step
            if on("ret"):
                new_pc, popped, sp = self._pop(f, s, x, mass, fast)
            if on("call"):
                saved, ret_to, sp = self._push(f, s, p_op[:, self.col["call"]], cond, sp, fast, check)
        memory = s.memory
        if on("store"):  # memory[r[a]] = r[b]
            memory = _blend(memory, p_op[:, self.col["store"]][:, None] * addr, y[:, None], fast)
        registers = _blend(s.registers, p_dst, val[:, None], fast)
        if popped is not None:
            rows, change = popped
            if fast:
                registers.index_copy_(0, rows, registers.index_select(0, rows) + change)
            else:
                registers = registers + change
        new_pc = self._next_pc(f, new_pc, go, x, hard)
        return s._replace(pc=new_pc, registers=registers, memory=memory, saved=saved, ret_to=ret_to, sp=sp)

    def _mix(self, p, M, hard):
        """p @ M: rows of a program field M [L, K] mixed by pc mass p [B, L]. On a hard pc (`hard`: its
        line [B]) p lives on one line, so p @ M = p.sum() M[line]: a row gather."""
        if hard is None:
            return p @ M
        return M[hard] * p.sum(-1, keepdim=True)

    def _select(self, sel, registers, hard):
        """A register read mixed over registers, sel [B, R] -> [B, V]. With a hard pc and a fixed program,
        the field row is one-hot: it picks one register."""
        if hard is None or self.trainable:
            return _read(sel, registers)
        return registers[torch.arange(len(sel)), sel.argmax(-1)] * sel.sum(-1, keepdim=True)

    def _halt(self, f, s, hard, fast):
        """The mass that stops now leaves the pc: `ret a` on an empty stack returns r[a] and `halt` returns
        r[a0] (into value and memory_out, weighted by that mass); `fail` stops its mass with an error,
        neither halted nor running on. Returns the state and the joint mass that runs on, go [B, L]."""
        pc, is_, zero = s.pc, f["is"], s.pc.new_zeros(self.L)
        is_ret, is_halt = is_.get("ret", zero), is_.get("halt", zero)
        empty = s.sp[:, :1] if "call" in self.col else pc.new_ones(len(pc), 1)  # [B, 1] P(stack empty)
        stop = pc * (is_halt + is_ret * empty)  # [B, L] joint mass that halts now
        halting = stop.sum(-1)  # [B]
        if not fast or halting.max() > 0:
            res = self._mix(pc * is_ret, f["a"], hard) * empty + (pc @ is_halt)[:, None] * self.e_a0  # [B, R]
            s = s._replace(value=s.value + _read(res, s.registers), halted=s.halted + halting,
                           memory_out=_blend(s.memory_out, halting, s.memory, fast, add=True))
        go = pc - stop
        if "fail" in self.col:
            fails = pc * is_["fail"]  # [B, L]
            s, go = s._replace(failed_at=s.failed_at + fails), go - fails
        return s, go

    def _alu(self, p_op, x, y, addr, off, memory, on, fast):
        """The value written to r[dst], conditional on a write [B, V]: the ops' results mixed by p_op."""
        val = x.new_zeros(len(x), self.V)
        prims = [op for op in self.prims if on(op)]
        if prims and fast and self._one_hot(x) and self._one_hot(y):
            # Both operands one-hot: the table's sum has a single term, out = one_hot(T[a, b]).
            j = torch.tensor([self.prims.index(op) for op in prims])[:, None]
            outs = F.one_hot(self.tables[j, x.argmax(-1), y.argmax(-1)], self.V).to(x.dtype)  # [n, B, V]
            val = val + (p_op[:, [self.col[op] for op in prims]].T[..., None] * outs).sum(0)
            prims = []
        support = None
        if prims and fast:  # the second operand's live values; few of them: the table restricted is exact
            live_y = (y.amax(0) > 0).nonzero()[:, 0]
            support = live_y if len(live_y) <= SUPPORT_MAX else None
        for op in self.ops:
            if op not in WRITES or not on(op) or (op in PRIMITIVES and op not in prims):
                continue
            if op == "const":
                out = y
            elif op == "mov":
                out = x
            elif op == "load":
                out = torch.bmm(addr[:, None], memory)[:, 0] + off[:, None] * self.e_0
            else:
                out = apply_op(op, x, y, support, self.alu)
            val = val + p_op[:, self.col[op]][:, None] * out
        return val / (p_op @ self.writes).clamp_min(MIN_MASS)[:, None]

    def _pop(self, f, s, x, mass, fast):
        """`ret a` with a non-empty stack: the registers come back except a0 := r[a], the pc jumps to the
        return line, sp -= 1. Returns (pc mass at the return lines [B, L], (rows, the change to the
        registers), sp)."""
        sp = s.sp
        pop = (s.pc @ f["is"]["ret"])[:, None] / mass.clamp_min(MIN_MASS) * sp[:, 1:]  # [B, D] P(pop slot d-1)
        q = pop.sum(-1)  # [B] P(this step pops)
        rows = q.nonzero()[:, 0] if fast else slice(None)
        take = (lambda t: t.index_select(0, rows)) if fast else (lambda t: t)
        qr = take(q)[:, None, None]
        restored = torch.bmm(take(pop)[:, None], take(s.saved).flatten(2)).view(-1, self.R, self.V)  # mass q
        restored = restored + self.e_a0[:, None] * (qr * take(x)[:, None] - restored)
        popped = (rows, restored - qr * take(s.registers))
        new_pc = torch.bmm((pop * mass)[:, None], s.ret_to)[:, 0]
        return new_pc, popped, sp + F.pad(pop, (0, 1)) - q[:, None] * sp

    def _push(self, f, s, c, cond, sp, fast, check):
        """`call` with probability c [B]: push (registers, line after the call) at sp; sp += 1. `sp` is the
        stack pointer after any pop of this step; the push reads s.sp, the one before. Returns (saved,
        ret_to, sp)."""
        if check:
            self._check(s.pc, c * s.sp[:, -1] > 0.5, lambda b: f"call depth limit: more than max_depth={self.D} nested calls")
        push = c[:, None] * s.sp[:, :-1]  # [B, D] P(this call writes slot d)
        back = F.pad((cond * f["is"]["call"])[:, :-1], (1, 0))  # [B, L] the line after the call, mass c
        saved = _blend(s.saved, push, s.registers[:, None], fast)
        if fast:  # c is one of 0, 1 where push != 0 in a hard run
            ret_to = _blend(s.ret_to, push, (back / c.clamp_min(MIN_MASS)[:, None])[:, None], fast)
        else:  # the same blend, push (back / c - ret_to), without dividing by c
            ret_to = s.ret_to + s.sp[:, :-1, None] * (back[:, None] - c[:, None, None] * s.ret_to)
        up = torch.cat([s.sp[:, :1] * 0, s.sp[:, :-2], s.sp[:, -2:].sum(-1, keepdim=True)], -1)  # full stays full
        return saved, ret_to, sp + c[:, None] * (up - s.sp)

    def _next_pc(self, f, new_pc, go, x, hard):
        """new_pc plus where the running mass go [B, L] goes: branch jumps when r[a] == 0; jump and call jump
        to their target; the rest go on to line + 1."""
        zero = go.new_zeros(self.L)
        z = x[:, :1]  # [B, 1] P(r[a] == 0)
        jumps = f["is"].get("jump", zero) + f["is"].get("call", zero)
        is_branch = f["is"].get("branch", zero)
        new_pc = new_pc + F.pad((go * (f["seq"] + is_branch * (1 - z)))[:, :-1], (1, 0))
        return new_pc + self._mix(go * (jumps + is_branch * z), f["target"], hard)

    @staticmethod
    def _one_hot(x):
        """Is every row of x [B, V] one-hot or all zero (a halted example's)?"""
        top = x.amax(-1)
        return bool((((top == 1) & (x.sum(-1) == 1)) | ((top == 0) & (x.sum(-1) == 0))).all())

    def _check(self, pc, bad, message):
        if bad.any():
            b = int(bad.nonzero()[0, 0])
            raise ExecutionError(f"line {int(pc[b].argmax())}: {message(b)}")

    # --- the adaptive loop -------------------------------------------------------

    def _chunk(self, f, n, eps, fast, check, *state):
        """Up to n steps, stopping early once every example has stopped: (state..., steps taken). The state
        comes and goes as separate tensors, which is what `checkpoint` saves."""
        state = MachineState(*state)
        for i in range(n):
            if state.stopped().min() >= 1 - eps:
                return (*state, i)
            state = self._step(f, state, fast, check)
        return (*state, n)

    def forward(self, pc, registers, memory, max_steps=10_000, eps=1e-4, checkpoint_every=64, _check=False):
        """Run from pc [B, L], registers [B, R, V], memory [B, N, V] until every example has halted mass
        >= 1 - eps, or max_steps. Returns a `MachineOutput` (expectations over halting time).

        With gradients, each chunk of `checkpoint_every` steps is checkpointed: only the state at chunk
        boundaries is kept and a chunk's steps are recomputed in the backward pass (None: keep all).
        """
        B = pc.shape[0]
        if registers.shape[1:] != (self.R, self.V) or memory.shape[1:] != (self.N, self.V) or pc.shape[1:] != (self.L,):
            raise ValueError(f"expected pc [B, {self.L}], registers [B, {self.R}, {self.V}], memory "
                             f"[B, {self.N}, {self.V}]; got {tuple(pc.shape)}, {tuple(registers.shape)}, {tuple(memory.shape)}")
        f = self.fields()
        D, L = (self.D, self.L) if "call" in self.col else (0, 1)  # no calls: no stack
        zeros = lambda *shape: registers.new_zeros(B, *shape)
        saved = zeros(D, self.R, self.V)
        saved[..., 0] = 1  # [B, D, R, V] empty slots hold the value 0
        ret_to = zeros(D, L)
        ret_to[..., 0] = 1  # [B, D, L]
        sp = zeros(D + 1)
        sp[:, 0] = 1  # [B, D + 1] empty stack
        fast = not torch.is_grad_enabled()
        if fast:  # the fast path updates the state in place
            registers, memory = registers.clone(), memory.clone()
        state = MachineState(pc, registers, memory, saved, ret_to, sp, halted=zeros(), value=zeros(self.V),
                             memory_out=zeros(self.N, self.V), failed_at=zeros(self.L))
        chunk = checkpoint_every if (checkpoint_every and not fast) else max_steps
        steps = 0
        while steps < max_steps and state.stopped().min() < 1 - eps:
            n = min(chunk, max_steps - steps)
            if chunk < max_steps:
                *state, k = checkpoint(self._chunk, f, n, eps, fast, _check, *state, use_reentrant=False)
            else:
                *state, k = self._chunk(f, n, eps, fast, _check, *state)
            state, steps = MachineState(*state), steps + k
        return MachineOutput(value=state.value, memory=state.memory_out, halted=state.halted, steps=steps,
                             failed=state.failed_at.sum(-1), failed_at=state.failed_at)

    # --- 3. hard use: ints in, ints out -----------------------------------------

    @torch.no_grad()
    def run_batch(self, names, args_list, max_steps=10_000, executor="auto"):
        """Run `names[i](*args_list[i])` for every i in one batch, exactly as `Program.run` would.

        Programs (chosen by the initial pc) and inputs may differ across the batch. Returns the list of
        results (ints, or lists, strings and tuples as the functions' types say); list arguments are
        mutated in place, as `Program.run` and CPython do. A run that does not return (a `fail`, the step
        limit...) raises `ExecutionError` with `Program.run`'s message. executor: as in `run_hard`, or
        "distribution": the distribution machine (`forward`) on one-hot states, checked at every step
        (slower by orders of magnitude; the tests use it to check `forward`).
        """
        names, args_list = check_batch(names, args_list, max_steps)
        if executor == "distribution":
            return self._run_batch_distribution(names, args_list, max_steps)
        pcs, regs, mems, lists = self._lay_out(names, args_list)
        device = self.e_a0.device
        if self._executor(executor, device, len(names)) == "python":
            rows = self.python_executor().run_all(pcs, regs, mems, max_steps)
        else:
            long = lambda x: torch.tensor(x, dtype=torch.long, device=device)
            out = self._execute(long(pcs), long(regs), long(mems), max_steps, executor)
            rows = list(zip(*[t.tolist() for t in (out.status, out.value, out.pc, out.registers, out.steps)]))
            mems = out.memory.tolist()
        for name, row in zip(names, rows):
            if row[0] != HALTED:
                raise ExecutionError(stop_message(self, name, row, max_steps))
        results = []
        for name, row, bound, mem in zip(names, rows, lists, mems):
            _copy_back(mem, bound)
            results.append(_result(self.program.functions[name], row[1], mem))  # lists, strings, tuples
        return results

    def run(self, name, *args, max_steps=10_000):
        """`Program.run(name, *args)` on the machine: same result, lists mutated the same way."""
        return self.run_batch([name], [args], max_steps)[0]

    def _run_batch_distribution(self, names, args_list, max_steps):
        """run_batch on the distribution machine: one-hot inputs, exact, `Program.run`'s checks each step."""
        pc, regs, mem, lists = self.init_state(names, args_list)
        out = self(pc, regs, mem, max_steps=max_steps, eps=0.5, _check=True)
        for b, name in enumerate(names):
            if out.failed[b] > 0.5:
                k = self.program.instructions[int(out.failed_at[b].argmax())].imm
                raise ExecutionError(self.program.errors[k])
            if out.halted[b] < 0.5:
                raise ExecutionError(f"step limit: {name} did not halt within max_steps={max_steps}")
        _, mem_values = out.memory.max(-1)  # [B, N]
        results = []
        for b, (name, bound) in enumerate(zip(names, lists)):
            memory = mem_values[b].tolist()
            _copy_back(memory, bound)
            results.append(_result(self.program.functions[name], int(out.value[b].argmax()), memory))
        return results

    # --- the hard path: one-hot states kept as integers --------------------------

    def list_registers(self, B, base, length):
        """Integer registers [B, R] holding one list argument (base address, length) in a0, a1."""
        regs = torch.zeros(B, self.R, dtype=torch.long, device=self.e_a0.device)
        regs[:, self.arg_regs[0]], regs[:, self.arg_regs[1]] = base, length
        return regs

    @torch.no_grad()
    def run_hard(self, pc, registers, memory, max_steps=10_000, cache=None, executor="auto", distinct=False):
        """The machine on hard states, every distribution kept as its one value: pc [B] (lines), registers
        [B, R] and memory [B, N] (ints in [0, V)). Returns a `HardRun`: value [B], memory [B, N], halted [B],
        steps, wrapped [B], error [B]. Equal to `forward` on one-hot inputs and to `Program.run` (tests).

        An example that reaches an address >= N, calls past max_depth or runs out of steps stops with
        halted False and error -1; one that stops at `fail #k`, with halted False and error k.
        executor (section 3): "python", the program translated into Python and run one example at a time
        (the fastest on a CPU, at any B); "torch", every example stepping together as tensors (a GPU's
        path); "graph", the torch executor replayed as CUDA graphs (CUDA only; not yet measured); "auto":
        torch on a CUDA device from CUDA_MIN_BATCH examples on, else python. The trainable program's
        logits do not affect the hard path: it runs the program as compiled.
        cache: a dict that memoises whole runs by their initial state (run_cached, 3c); equal rows run once.
        distinct: run each distinct row once, without keeping anything (run_distinct, 3c).
        """
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        pc, registers, memory = check_inputs(self, pc, registers, memory, max_steps)
        run = lambda *state: self._execute(*state, executor)
        if cache is not None:
            out = run_cached(run, pc, registers, memory, max_steps, cache)
        elif distinct:
            out = run_distinct(run, pc, registers, memory, max_steps)
        else:
            out = run(pc, registers, memory, max_steps)
        return out.hard_run()

    def python_source(self):
        """The program as the Python function that the "python" executor runs (one block per leaf)."""
        return self.python_executor().source

    def python_executor(self):
        if self._python is None:
            self._python = PythonExecutor(self.program, self.R, self.N, self.D)
        return self._python

    def _executor(self, executor, device, B):
        if executor == "auto":
            return "torch" if device.type == "cuda" and B >= CUDA_MIN_BATCH else "python"
        return "torch" if executor == "graph" else executor

    def _execute(self, pc, registers, memory, max_steps, executor="auto"):
        """A hard run as an Outcome (why each example stopped, where, its registers, ...)."""
        if self._executor(executor, pc.device, len(pc)) == "python":
            ints = lambda t: t.cpu().numpy().tolist()  # numpy's tolist is the faster
            mem = ints(memory)
            rows = self.python_executor().run_all(ints(pc), ints(registers), mem, max_steps)
            return pack(rows, mem, self.R, self.N, pc.device)
        if executor == "graph" and pc.device.type != "cuda":
            raise ValueError(f"executor='graph' replays CUDA graphs: it needs tensors on a CUDA device, not {pc.device}")
        P = {k: getattr(self, "hard_" + k) for k in PROGRAM_FIELDS}
        tables = (self.prims, lambda op: self.tables[self.prims.index(op)])
        return run_torch(P, pc, registers, memory, max_steps, self.V, self.D, self.arg_regs[0], tables,
                         graphs=executor == "graph")

    # --- exact probabilistic execution (the threads of section 4) -----------------

    def run_distribution(self, name, *args, holes=None, max_threads=4096, max_steps=10_000):
        """`name(*args)` on soft inputs, exactly: a `Distribution` over what it returns.

        Each argument is an int, a 1-D tensor of V probabilities (it may require grad), or, for a list
        parameter, a list of those. Every soft input is independent of the others. Each assignment of
        values to the soft inputs is a thread, run on the hard path, weighted by the product of its
        values' probabilities; with more than `max_threads` assignments the heaviest are run and the rest
        is reported as `dropped`. The program's holes are soft inputs too: by default each takes its
        learned distribution (`hole_probs`); `holes` may give, per hole, an int (the alternative) or a
        tensor of probabilities over its alternatives. On one-hot inputs this is one hard run.
        """
        if not isinstance(max_threads, int) or max_threads < 1:
            raise ValueError(f"max_threads must be an int >= 1, got {max_threads!r}")
        if name not in self.program.functions:
            raise ExecutionError(f"unknown function {name!r}; the program defines {sorted(self.program.functions)}")
        fn = self.program.functions[name]
        if len(args) != len(fn.params):
            raise ExecutionError(f"{name} takes {len(fn.params)} arguments ({', '.join(p.name for p in fn.params)}), "
                                 f"got {len(args)}")
        template, places, dists = self._soft_arguments(fn, args)
        memory, regs, lists = _lay_out_arguments(fn, template, self.R, self.arg_regs, self.V, self.N, self.program)
        where = self._argument_places(fn, template)  # param name -> ("reg", r) or ("mem", base)
        slots = [(where[n][0], where[n][1] + i) for n, i in places]
        for i, (reg, p) in enumerate(self._hole_inputs(holes)):
            slots.append(("reg", reg))
            dists.append(p)
        # The threads: the heaviest joint assignments of the soft inputs' supports.
        device = self.e_a0.device
        supports = [d.nonzero()[:, 0] for d in dists]
        if dists:
            weight, choice, dropped = top_assignments([d[s][None] for d, s in zip(dists, supports)], max_threads)
            live = weight[0].detach() > 0
            weight, choice, dropped = weight[0][live], choice[0][live], dropped[0]
        else:
            weight, choice, dropped = torch.ones(1), torch.zeros(1, 0, dtype=torch.long), torch.zeros(())
        M = len(weight)
        regs = torch.tensor(regs, device=device).repeat(M, 1)  # [M, R]
        memory = torch.tensor(memory, device=device).repeat(M, 1)  # [M, N]
        for f, ((kind, at), s) in enumerate(zip(slots, supports)):
            values = s.to(device)[choice[:, f].to(device)]  # [M] this input's value in each thread
            (regs if kind == "reg" else memory)[:, at] = values
        pc = torch.full((M,), fn.entry, dtype=torch.long, device=device)
        out = self.run_hard(pc, regs, memory, max_steps)
        value, mem, halted = out[0], out[1], out[2]
        failed = getattr(out, "error", torch.full_like(value, -1)) >= 0
        wrapped = getattr(out, "wrapped", torch.zeros_like(halted))
        weight = weight.to(device)
        w_ok = weight * halted  # [M] the mass of each thread that returned
        dist = weight.new_zeros(self.V).index_add(0, value, w_ok)  # [V]
        cells = []
        for x, base, _ in lists:  # each list's cells at the end, over the threads that returned
            n = len(x)
            got = mem[:, base:base + n]  # [M, n]
            cells.append(weight.new_zeros(n, self.V).index_put(
                (torch.arange(n, device=device).repeat(M), got.flatten()), w_ok.repeat_interleave(n), accumulate=True))
        return Distribution(value=dist, memory=cells, dropped=dropped, not_halted=(weight * (~halted & ~failed)).sum(),
                            failed=(weight * failed).sum(), wrapped=(weight * wrapped).sum(), threads=M, steps=out[3])

    def _soft_arguments(self, fn, args):
        """run_distribution's arguments split: (template: the arguments with 0 where an input is soft,
        places: (parameter, index in it) of each soft input, dists: their distributions, checked)."""
        name = fn.name
        template, places, dists = [], [], []  # the arguments with 0 where soft; where each soft input goes
        for p, x in zip(fn.params, args):
            what = f"argument {p.name} of {name}"
            if p.type not in (INT, LIST):  # characters and strings are given as they are
                if torch.is_tensor(x) or isinstance(x, list) and any(torch.is_tensor(v) for v in x):
                    raise ExecutionError(f"{what}: soft inputs are ints or lists of ints; a {p.type} must be given as is")
                template.append(x)
                continue
            if p.type == LIST:
                if torch.is_tensor(x) and x.dim() == 2:
                    x = list(x)
                if not isinstance(x, (list, tuple)):
                    raise ExecutionError(f"{what} must be a list (of ints or distributions), got {type(x).__name__}")
                items = [(f"{what}, item {i}", v) for i, v in enumerate(x)]
            else:
                items = [(what, x)]
            ints = []
            for label, v in items:
                if torch.is_tensor(v) and v.dim() > 0:
                    dists.append(_soft_input(v, self.V, label))
                    places.append((p.name, len(ints)))
                    ints.append(0)
                else:
                    ints.append(int(v) if torch.is_tensor(v) else v)
            template.append(ints if p.type == LIST else ints[0])
        return template, places, dists

    def _argument_places(self, fn, args):
        """Where each parameter's value lives when `_lay_out_arguments` lays out `args` (defaults filled
        in): ("reg", r) for an int, ("mem", base) for a list or string: the argument window is filled in
        parameter order, and sequences go one after another after the program's reserved cells."""
        args = list(args) + [p.default for p in fn.params[len(args):]]
        window, free, where = iter(self.arg_regs), len(self.program.reserved), {}
        for p, x in zip(fn.params, args):
            if p.type in SEQS:
                next(window), next(window)
                where[p.name], free = ("mem", free), free + len(x)
            else:
                where[p.name] = ("reg", next(window))
        return where

    def hole_probs(self):
        """[n_holes, max alternatives]: each hole's learned distribution (0 past its alternatives)."""
        return self.hole_logits.masked_fill(~self.hole_mask, float("-inf")).softmax(-1)

    def _hole_inputs(self, holes=None):
        """[(register, [V] distribution of its value)] for each hole: the learned ones, or `holes` (per hole,
        an int, the alternative, or a tensor of probabilities over its alternatives)."""
        program_holes = self.program.holes
        if holes is None:
            holes = list(self.hole_probs()) if program_holes else []
        if len(holes) != len(program_holes):
            raise ExecutionError(f"the program has {len(program_holes)} holes, got choices for {len(holes)}")
        out = []
        for h, x in zip(program_holes, holes):
            k, what = h.n_alternatives, f"hole {h.index} ({h.text}, line {h.lineno})"
            if torch.is_tensor(x) and x.dim() > 0:
                p = x[:k]
                if x.shape[0] > k and bool((x[k:].detach() != 0).any()):
                    raise ValueError(f"{what} has {k} alternatives; its distribution puts mass past them")
                p = F.pad(p, (0, self.V - len(p)))
            else:
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < k:
                    raise ExecutionError(f"{what} has {k} alternatives: choose 0..{k - 1}, got {x!r}")
                p = F.one_hot(torch.tensor(x), self.V).float()
            out.append((h.register, _soft_input(p, self.V, what)))
        return out

    def soft_holes(self, registers, holes=None):
        """registers [B, R, V] with every hole's register set to its distribution (for the mean field)."""
        registers = registers.clone()
        for reg, p in self._hole_inputs(holes):
            registers[:, reg] = p.to(registers.dtype)
        return registers


# -----------------------------------------------------------------------------
# 3. The hard path: exact executors on integer states, behind `Machine.run_hard` and `Machine.run_batch`.
#
# A hard (one-hot) state is an ordinary machine state: a line, R register values, N memory cells and a
# call stack. The distribution step above is exact on such states but spends a [V]-vector on every value;
# here each value is one int. Two executors, both exact (tests/test_reasoning.py runs each against
# `Program.run` on the whole compiler corpus and against the distribution machine step for step):
#   3a. `PythonExecutor`, the CPU path: the program translated once into one Python function whose
#       registers are local variables, one example at a time. Its speed does not depend on B, V or N.
#   3b. `run_torch`, the batched tensor path (a GPU's): every example steps together, a few dozen integer
#       tensor ops per step whatever B is. Ops are computed, not looked up in V x V tables.
# Both say why each example stopped (`RUNNING`: it ran out of steps) and whether an add, sub or mul
# without `wrap_ok` wrapped modulo V. Then 3c: `run_cached`, whole runs memoised by their initial state;
# 3d: the input checks and error messages of `run_hard` and `run_batch`.

# Why an example stopped. RUNNING at the end: it used up max_steps.
STATUS = ("RUNNING", "HALTED", "FAILED", "BAD_ADDRESS", "TOO_DEEP", "OFF_END")
RUNNING, HALTED, FAILED, BAD_ADDRESS, TOO_DEEP, OFF_END = range(len(STATUS))


class HardRun(NamedTuple):
    """The result of `Machine.run_hard`."""
    value: torch.Tensor  # [B] long   the returned value (0 if not halted)
    memory: torch.Tensor  # [B, N] long memory at the end
    halted: torch.Tensor  # [B] bool   returned normally within max_steps
    steps: int  # the slowest example's step count
    wrapped: torch.Tensor  # [B] bool   some add/sub/mul without wrap_ok wrapped modulo V
    error: torch.Tensor  # [B] long   -1, or k when the run stopped at `fail #k`


class Outcome(NamedTuple):
    """Everything an executor knows at the end, per example: enough for HardRun and for error messages."""
    status: torch.Tensor  # [B] long   RUNNING, HALTED, FAILED, ... (why it stopped)
    value: torch.Tensor  # [B] long   the returned value, or k for `fail #k`
    pc: torch.Tensor  # [B] long   the line it stopped at (a failing instruction's own line)
    registers: torch.Tensor  # [B, R] long
    memory: torch.Tensor  # [B, N] long
    steps: torch.Tensor  # [B] long   instructions executed, the stopping one included
    wrapped: torch.Tensor  # [B] bool

    def hard_run(self):
        halted = self.status == HALTED
        return HardRun(value=torch.where(halted, self.value, 0), memory=self.memory, halted=halted,
                       steps=int(self.steps.max()) if len(self.steps) else 0, wrapped=self.wrapped,
                       error=torch.where(self.status == FAILED, self.value, -1))


# --- 3a. The program as Python source ---------------------------------------------

# Each primitive as a Python expression of its operands {a}, {b} (register names or literals); each equals
# PRIMITIVES[name] on [0, V) (tests). add, sub and mul are `_arithmetic`: they wrap and raise a flag.
PYTHON_FORMS = {
    "floordiv": "{a} // {b} if {b} else 0", "mod": "{a} % {b} if {b} else 0",
    "lt": "1 if {a} < {b} else 0", "le": "1 if {a} <= {b} else 0", "gt": "1 if {a} > {b} else 0",
    "ge": "1 if {a} >= {b} else 0", "eq": "1 if {a} == {b} else 0", "ne": "1 if {a} != {b} else 0",
    "and": "1 if {a} and {b} else 0", "or": "1 if {a} or {b} else 0",
    "min": "{a} if {a} < {b} else {b}", "max": "{a} if {a} > {b} else {b}",
}
ARITHMETIC = {"add": "+", "sub": "-", "mul": "*"}


def _arithmetic(ins, d, a, b, V):
    """add/sub/mul into register d, wrapped into [0, V); the flag is raised unless the compiler said the
    wrap is part of its own control flow (ins.wrap_ok)."""
    flag = "" if ins.wrap_ok else "; wrapped = True"
    fix = {"add": f"if {d} >= {V}: {d} -= {V}", "sub": f"if {d} < 0: {d} += {V}",
           "mul": f"if {d} >= {V}: {d} %= {V}"}[ins.op]
    return [f"{d} = {a} {ARITHMETIC[ins.op]} {b}", fix + flag]


class PythonExecutor:
    """A program translated into one Python function, built once per machine (`Machine.python_source()`
    prints it).

    Every *block* (a straight run of lines, following jumps and calls, up to a branch, ret, halt or fail)
    becomes a few plain Python statements on local variables r0, r1, ..., reached through a binary tree
    of `if pc < k` tests. The interpreter pays a dispatch on the opcode name, attribute look-ups and a
    list access per instruction; the translation pays a few comparisons per block.

    `run(pc, registers, memory, max_steps)` runs one example exactly as `Program.run` would. The function
    `self.blocks` runs whole blocks; a block is entered only when it fits in the steps left, so the last
    few steps, and a start in the middle of a block, go through `self.lines`, the same translation with
    one line per block. `cap` bounds a block's length (and so the size of the source).
    """

    def __init__(self, program, n_regs, n_cells, max_depth, cap=32):
        self.program, self.R, self.N, self.D = program, n_regs, n_cells, max_depth
        code = program.instructions
        starts = {f.entry for f in program.functions.values()} | {len(code)}
        for line, ins in enumerate(code):
            if ins.op in ("branch", "call"):
                starts.add(line + 1)  # the fall-through of a branch, the return address of a call
        self.source, self.entries = self._translate("run_blocks", starts, cap)
        line_source, _ = self._translate("run_lines", range(len(code) + 1), 1)
        namespace = {f"prim_{name}": f for name, f in PRIMITIVES.items()}  # primitives without a form
        namespace.update({name: i for i, name in enumerate(STATUS)})
        exec(compile(self.source, "<blocks>", "exec"), namespace)
        exec(compile(line_source, "<lines>", "exec"), namespace)
        self.blocks, self.lines = namespace["run_blocks"], namespace["run_lines"]

    def run(self, pc, registers, memory, max_steps):
        """One example: pc (a line), registers (R ints), memory (N ints, a list changed in place).
        Returns (status, value, pc, registers, steps, wrapped) as plain Python values."""
        stack, steps, wrapped = [], 0, False
        while pc not in self.entries and steps < max_steps:  # a start in mid-block: line by line
            status, value, pc, registers, steps, wrapped = self.lines(pc, registers, memory, stack, steps,
                                                                      steps + 1, wrapped)
            if status != RUNNING:
                return status, value, pc, registers, steps, wrapped
        out = self.blocks(pc, registers, memory, stack, steps, max_steps, wrapped)
        if out[0] == RUNNING:  # the next block would pass max_steps: its lines one at a time
            out = self.lines(out[2], out[3], memory, stack, out[4], max_steps, out[5])
        return out

    def run_all(self, pcs, registers, memory, max_steps):
        """`run` on every example: lists in (memory rows changed in place), a list of rows out."""
        return [self.run(p, r, m, max_steps) for p, r, m in zip(pcs, registers, memory)]

    def _translate(self, name, starts, cap):
        """(source of the function `name`, its entry lines): a loop around a binary tree of `if pc < k`
        tests whose leaves are the blocks at every line reachable from `starts` by a block's exit."""
        regs = "(" + ", ".join(f"r{k}" for k in range(self.R)) + ",)"
        blocks, todo = {}, list(starts)
        while todo:
            line = todo.pop()
            if line not in blocks:
                blocks[line], exits = self._block(line, cap, regs)
                todo += exits

        def tree(lines, indent):
            if len(lines) == 1:
                return [indent + s for s in blocks[lines[0]]]
            mid = len(lines) // 2
            return [f"{indent}if pc < {lines[mid]}:", *tree(lines[:mid], indent + "    "),
                    f"{indent}else:", *tree(lines[mid:], indent + "    ")]

        head = [f"def {name}(pc, regs, m, stack, steps, limit, wrapped):", f"    {regs[1:-1]} = regs", "    while True:"]
        return "\n".join(head + tree(sorted(blocks), "        ")) + "\n", set(blocks)

    def _block(self, start, cap, regs):
        """(Python statements for the block at line `start`, the lines it may go on to). The lines run in
        order, jumps and calls followed, up to a branch/ret/halt/fail, a line already in the block or `cap`
        lines. A stopped example returns (status, value, pc, registers, steps, wrapped)."""
        code, V, N, D, a0 = self.program.instructions, self.program.n_values, self.N, self.D, self.program.arg_regs[0]
        stop = lambda status, value, line, steps="steps": f"return {status}, {value}, {line}, {regs}, {steps}, wrapped"
        if start == len(code):
            return [stop("OFF_END", 0, start)], []  # ran past the last line
        body, line, n, seen, control, exits = [], start, 0, set(), None, []
        while control is None:
            ins, n = code[line], n + 1
            seen.add(line)
            a, d = f"r{ins.a}", f"r{ins.dst}"
            b = f"r{ins.b}" if ins.b is not None else str((ins.imm or 0) % V)
            body.append(f"# {line}: {self.program.format_instr(ins)}")
            nxt = line + 1
            if ins.op == "const":
                body.append(f"{d} = {ins.imm % V}")
            elif ins.op == "mov":
                body.append(f"{d} = {a}")
            elif ins.op in ARITHMETIC:
                body += _arithmetic(ins, d, a, b, V)
            elif ins.op in PRIMITIVES:
                body.append(f"{d} = " + (PYTHON_FORMS[ins.op].format(a=a, b=b) if ins.op in PYTHON_FORMS
                                         else f"prim_{ins.op}({a}, {b}, {V})"))
            elif ins.op in ("load", "store"):
                body.append(f"if {a} >= {N}: " + stop("BAD_ADDRESS", 0, line, f"steps + {n}"))
                body.append(f"{d} = m[{a}]" if ins.op == "load" else f"m[{a}] = {b}")
            elif ins.op == "call":
                body.append(f"if len(stack) >= {D}: " + stop("TOO_DEEP", 0, line, f"steps + {n}"))
                body.append(f"stack.append(({regs[1:-2]}, {line + 1}))")
                nxt = ins.target
            elif ins.op == "jump":
                nxt = ins.target
            elif ins.op == "branch":
                control, exits = [f"pc = {ins.target} if {a} == 0 else {line + 1}"], [ins.target, line + 1]
            elif ins.op == "ret":
                control = ["if not stack: " + stop("HALTED", a, line), f"v = {a}",
                           f"{regs[1:-1]} pc = stack.pop()", f"r{a0} = v"]
            elif ins.op == "halt":
                control = [stop("HALTED", f"r{a0}", line)]
            elif ins.op == "fail":
                control = [stop("FAILED", ins.imm or 0, line)]
            else:
                raise ValueError(f"line {line}: unknown opcode {ins.op!r}")
            if control is None and (n >= cap or nxt in seen or nxt == len(code)):
                control, exits = [f"pc = {nxt}"], [nxt]
            line = nxt
        guard = f"if steps + {n} > limit: " + stop("RUNNING", 0, start)
        return [guard, *body, f"steps += {n}", *control], exits


def pack(rows, memory, R, N, device):
    """PythonExecutor.run_all's rows and its memory lists -> an Outcome of tensors on `device`."""
    B = len(rows)
    status, value, pc, registers, steps, wrapped = zip(*rows) if B else [()] * 6
    long = lambda x, *shape: torch.from_numpy(np.array(x, dtype=np.int64).reshape(B, *shape)).to(device)
    return Outcome(status=long(status), value=long(value), pc=long(pc), registers=long(registers, R),
                   memory=long(memory, N), steps=long(steps), wrapped=long(wrapped).bool())


# --- 3b. The batched tensor executor -----------------------------------------------
#
# Every example of the batch steps together: a step is a few dozen integer tensor ops whatever B is, so it
# pays off where launching an op is cheap against B examples' work (a GPU at large B). Primitives are
# computed (`TORCH_FORMS`), not looked up in V x V tables, so V = 1,024 costs what V = 128 does. The loop
# checks for finished examples every `check_every` steps only (each check is a host sync), and can replay
# those steps as a CUDA graph.

# Each primitive on long tensors; add, sub and mul give the exact result, wrapped (and flagged) after.
# Each equals PRIMITIVES[name] on [0, V) (tests). A primitive not here is looked up in its table.
TORCH_FORMS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "floordiv": lambda x, y: torch.where(y == 0, 0, x // y.clamp(min=1)),
    "mod": lambda x, y: torch.where(y == 0, 0, x % y.clamp(min=1)),
    "lt": lambda x, y: (x < y).long(), "le": lambda x, y: (x <= y).long(), "gt": lambda x, y: (x > y).long(),
    "ge": lambda x, y: (x >= y).long(), "eq": lambda x, y: (x == y).long(), "ne": lambda x, y: (x != y).long(),
    "and": lambda x, y: ((x != 0) & (y != 0)).long(), "or": lambda x, y: ((x != 0) | (y != 0)).long(),
    "min": torch.minimum, "max": torch.maximum,
}
OP = {name: i for i, name in enumerate(OPCODES)}
PROGRAM_FIELDS = ("op", "imm", "use_imm", "wrap_ok", "dst", "a", "b", "target")


def program_arrays(program):
    """The program as integer arrays over its lines plus one: line L, past the end, stops an example
    that runs off the program (op -1). [L + 1] each."""
    ins, V = program.instructions, program.n_values
    col = lambda key: [getattr(i, key) or 0 for i in ins] + [0]
    return {"op": torch.tensor([OPCODES.index(i.op) for i in ins] + [-1]),
            "imm": torch.tensor([(i.imm or 0) % V for i in ins] + [0]),
            "use_imm": torch.tensor([i.b is None for i in ins] + [False]),
            "wrap_ok": torch.tensor([bool(getattr(i, "wrap_ok", False)) for i in ins] + [False]),
            "dst": torch.tensor(col("dst")), "a": torch.tensor(col("a")), "b": torch.tensor(col("b")),
            "target": torch.tensor(col("target"))}


def _alu(op, x, y, V, prims, table):
    """(the value a writing instruction computes [B], whether add/sub/mul wrapped [B]). prims: the
    primitives the program uses; table(name): its [V, V] table, for a primitive without a torch form."""
    val, wraps = x, torch.zeros_like(x, dtype=torch.bool)
    for name in prims:
        is_op = op == OP[name]
        out = TORCH_FORMS[name](x, y) if name in TORCH_FORMS else table(name)[x, y]
        if name in ARITHMETIC:
            wraps = wraps | (is_op & ((out < 0) | (out >= V)))
            out = out % V
        val = torch.where(is_op, out, val)
    return val, wraps


class TorchState(NamedTuple):
    pc: torch.Tensor  # [B] the line
    regs: torch.Tensor  # [B, R]
    mem: torch.Tensor  # [B, N]
    saved: torch.Tensor  # [B, D, R] the call stack: registers saved by each call
    ret_to: torch.Tensor  # [B, D] the call stack: return lines
    sp: torch.Tensor  # [B] the stack depth
    status: torch.Tensor  # [B] RUNNING until the example stops
    value: torch.Tensor  # [B] the returned value, or k for `fail #k`
    steps: torch.Tensor  # [B] steps taken
    wrapped: torch.Tensor  # [B] bool


def torch_step(P, s, V, a0, tables):
    """One step of every running example (tables: (prims, table) as `_alu` takes them). regs, mem, saved and ret_to are written in place (so that a
    CUDA graph replays onto the same tensors); the per-example vectors are new tensors."""
    B, N, D = s.mem.shape[0], s.mem.shape[1], s.saved.shape[1]
    rows = torch.arange(B, device=s.pc.device)
    running = s.status == RUNNING
    op, a, dst, imm = P["op"][s.pc], P["a"][s.pc], P["dst"][s.pc], P["imm"][s.pc]
    is_ = lambda name: running & (op == OP[name])
    x = s.regs[rows, a]
    y = torch.where(P["use_imm"][s.pc], imm, s.regs[rows, P["b"][s.pc]])
    bad = (is_("load") | is_("store")) & (x >= N)  # addresses >= N do not exist
    deep = is_("call") & (s.sp >= D)
    cell = x.clamp(max=N - 1)
    val, wraps = _alu(op, x, y, V, *tables)
    val = torch.where(op == OP["const"], imm, torch.where(op == OP["mov"], x, val))
    val = torch.where(op == OP["load"], s.mem[rows, cell], val)
    writes = running & (op >= 0) & (op <= OP["load"]) & ~bad  # const, mov, the primitives, load
    s.regs[rows, dst] = torch.where(writes, val, s.regs[rows, dst])
    s.mem[rows, cell] = torch.where(is_("store") & ~bad, y, s.mem[rows, cell])
    call, slot = is_("call") & ~deep, s.sp.clamp(max=D - 1)
    s.saved[rows, slot] = torch.where(call[:, None], s.regs, s.saved[rows, slot])
    s.ret_to[rows, slot] = torch.where(call, s.pc + 1, s.ret_to[rows, slot])
    ret = is_("ret")
    pop, top = ret & (s.sp > 0), (s.sp - 1).clamp(min=0)  # restore the caller's registers, a0 := r[a]
    restored = s.saved[rows, top].clone()
    restored[:, a0] = x
    s.regs.copy_(torch.where(pop[:, None], restored, s.regs))
    nxt = torch.where(is_("jump") | call | (is_("branch") & (x == 0)), P["target"][s.pc], s.pc + 1)
    nxt = torch.where(pop, s.ret_to[rows, top], nxt)
    halt = (ret & (s.sp == 0)) | is_("halt")
    status = torch.where(halt, HALTED, torch.where(is_("fail"), FAILED, s.status))
    status = torch.where(bad, BAD_ADDRESS, torch.where(deep, TOO_DEEP, status))
    status = torch.where(running & (op < 0), OFF_END, status)
    value = torch.where(ret & (s.sp == 0), x, torch.where(is_("halt"), s.regs[:, a0], s.value))
    value = torch.where(is_("fail"), imm, value)
    on = running & (status == RUNNING)  # runs on to the next line
    stepped = running & (op >= 0)  # ran past the end: no instruction, no step
    return s._replace(pc=torch.where(on, nxt, s.pc), sp=s.sp + call.long() - pop.long(), status=status,
                      value=value, steps=s.steps + stepped.long(), wrapped=s.wrapped | (wraps & writes & ~P["wrap_ok"][s.pc]))


def run_torch(P, pc, regs, mem, max_steps, V, D, a0, tables, check_every=16, graphs=False):
    """Every example stepping together until all have stopped or max_steps: an Outcome.

    `check_every` steps run between two checks for running examples (each check is a host sync); steps
    past an example's stop change nothing. `graphs`: replay those steps as one CUDA graph (CUDA only).
    """
    B, R = regs.shape
    zeros = lambda *shape: torch.zeros(B, *shape, dtype=torch.long, device=pc.device)
    s = TorchState(pc.clone(), regs.clone(), mem.clone(), zeros(D, R), zeros(D), zeros(), zeros(), zeros(),
                   zeros(), zeros().bool())
    advance = lambda s, k: _steps(P, s, k, V, a0, tables)
    if graphs:
        advance = _graphed(advance, s, check_every)
    done = 0
    while done < max_steps and bool((s.status == RUNNING).any()):
        k = min(check_every, max_steps - done)
        s, done = advance(s, k), done + k
    return Outcome(status=s.status, value=s.value, pc=s.pc, registers=s.regs, memory=s.mem, steps=s.steps,
                   wrapped=s.wrapped)


def _steps(P, s, k, V, a0, tables):
    for _ in range(k):
        s = torch_step(P, s, V, a0, tables)
    return s


def _graphed(advance, s0, k):
    """`advance` for k steps captured once as a CUDA graph on static copies of the state; a call copies
    the state in, replays and returns the static state (a chunk shorter than k runs eagerly).
    NOT YET MEASURED: no GPU was lent while this was written (see README)."""
    static = TorchState(*[t.clone() for t in s0])
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs asks
        advance(TorchState(*[t.clone() for t in s0]), k)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = advance(static, k)
        for t, o in zip(static, out):
            if t.data_ptr() != o.data_ptr():
                t.copy_(o)

    def replay(s, n):
        if n != k:
            return advance(s, n)
        if s is not static:
            for t, o in zip(static, s):
                t.copy_(o)
        graph.replay()
        return static

    return replay


# --- 3c. Memoised runs ------------------------------------------------------------


def distinct_rows(state):
    """(first [D], inverse [B]) for the distinct rows of an int array state [B, C]: row b equals row
    first[inverse[b]], and the first[d] are increasing. The rows are told apart by a random 64-bit hash
    (one integer product a row, wrapping), then checked against their group's first row; a collision
    (never seen) falls back to sorting the rows themselves, so the result is exact either way."""
    weights = np.random.default_rng(0).integers(1, 2 ** 62, size=state.shape[1], dtype=np.int64)
    _, first, inverse = np.unique(state.astype(np.int64) @ weights, return_index=True, return_inverse=True)
    if not (state == state[first[inverse]]).all():
        _, first, inverse = np.unique(state, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # the groups in order of first appearance
    return first[order], np.argsort(order)[inverse.reshape(-1)]  # argsort of a permutation: its inverse


def run_distinct(run, pc, registers, memory, max_steps):
    """`run(...) -> Outcome` with each distinct initial state run once (exact: a run is a function of its
    state). Sort-8's training threads repeat ~30% of their rows (draws with replacement)."""
    if len(pc) == 0:
        return run(pc, registers, memory, max_steps)
    first, inverse = distinct_rows(torch.cat([pc[:, None], registers, memory], 1).cpu().numpy())
    if len(first) == len(pc):
        return run(pc, registers, memory, max_steps)
    idx, inverse = torch.from_numpy(first).to(pc.device), torch.from_numpy(inverse).to(pc.device)
    return Outcome(*[f[inverse] for f in run(pc[idx], registers[idx], memory[idx], max_steps)])


def run_cached(run, pc, registers, memory, max_steps, cache):
    """`run(pc, registers, memory, max_steps) -> Outcome` through `cache`, a dict owned by the caller.

    A hard run is a function of (initial state, max_steps), so a cache keyed on them is exact: equal rows
    of a batch run once, and rows seen before do not run. One dict per machine (the program is not in
    the key). The caller decides when to clear it; each entry holds one example's outcome (~N ints).
    """
    if len(pc) == 0:
        return run(pc, registers, memory, max_steps)
    state = torch.cat([pc[:, None], registers, memory], 1).cpu().numpy().astype(np.int32)  # [B, 1 + R + N]
    first, inverse = distinct_rows(state)
    keys = [(max_steps, state[b].tobytes()) for b in first]
    todo = [j for j, k in enumerate(keys) if k not in cache]
    if todo:
        idx = torch.from_numpy(first[todo]).to(pc.device)
        fields = [t.cpu().numpy() for t in run(pc[idx], registers[idx], memory[idx], max_steps)]
        for i, j in enumerate(todo):
            cache[keys[j]] = tuple(f[i].copy() for f in fields)
    got = [cache[k] for k in keys]
    inverse = torch.from_numpy(inverse)
    return Outcome(*[torch.from_numpy(np.stack([g[i] for g in got]))[inverse].to(pc.device) for i in range(7)])


# --- 3d. Input checks and error messages: a clear error instead of a silent 0 or an IndexError ---


# What each opcode must have besides `op` (a primitive: dst, a, and b or imm).
OPERANDS = {"const": ("dst", "imm"), "mov": ("dst", "a"), "load": ("dst", "a"), "store": ("a", "b"),
            "jump": ("target",), "branch": ("a", "target"), "call": ("target",), "ret": ("a",), "halt": (),
            "fail": ("imm",)}


def check_program(program):
    """A ValueError naming the line for what no machine can run: an unknown opcode, a missing operand, a
    register that is not an index 0, 1, ... or a jump outside the program. (Machine checks the count.)"""
    L = len(program.instructions)
    for line, ins in enumerate(program.instructions):
        if ins.op not in OPCODES:
            raise ValueError(f"line {line}: unknown opcode {ins.op!r}; the machine runs {', '.join(OPCODES)}")
        need = OPERANDS.get(ins.op, ("dst", "a", "b" if ins.imm is None else "imm"))
        for key in need:
            if getattr(ins, key) is None:
                raise ValueError(f"line {line}: `{ins.op}` needs its {key} field, which is None")
        for key in ("dst", "a", "b"):
            r = getattr(ins, key)
            if r is not None and (not isinstance(r, (int, np.integer)) or r < 0):
                raise ValueError(f"line {line}: {key} = {r!r} is not a register; registers are 0, 1, ... (r0, r1, ...)")
        if ins.target is not None and not (isinstance(ins.target, (int, np.integer)) and 0 <= ins.target < L):
            raise ValueError(f"line {line}: target {ins.target!r} is not a line of the program (0..{L - 1})")
        if ins.imm is not None and not isinstance(ins.imm, (int, np.integer)):
            raise ValueError(f"line {line}: immediate {ins.imm!r} is not an int")


def check_inputs(machine, pc, registers, memory, max_steps):
    """run_hard's inputs as integer tensors on one device, or a clear error (issue 15)."""
    check_max_steps(max_steps)
    pc, registers, memory = (torch.as_tensor(t) for t in (pc, registers, memory))
    B = pc.shape[0] if pc.dim() == 1 else -1
    if pc.dim() != 1 or registers.shape != (B, machine.R) or memory.shape != (B, machine.N):
        raise ValueError(f"run_hard expects pc [B], registers [B, R={machine.R}] and memory [B, N={machine.N}] with "
                         f"one B; got {tuple(pc.shape)}, {tuple(registers.shape)} and {tuple(memory.shape)}")
    for name, t, hi, what in (("pc", pc, machine.L, "a line of the program"), ("registers", registers, machine.V,
                              "a value"), ("memory", memory, machine.V, "a value")):
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise ValueError(f"run_hard: {name} must hold ints, got dtype {t.dtype}")
        if t.device != pc.device:
            raise ValueError(f"run_hard: pc is on {pc.device} but {name} on {t.device}: put them on one device")
        if t.numel() and (t.min() < 0 or t.max() >= hi):
            i = tuple(((t < 0) | (t >= hi)).nonzero()[0].tolist())
            raise ValueError(f"run_hard: {name}[{', '.join(map(str, i))}] = {int(t[i])} is not {what} "
                             f"(0..{hi - 1}; V={machine.V}, L={machine.L})")
    return pc.long(), registers.long(), memory.long()


def check_batch(names, args_list, max_steps):
    """run_batch's inputs as lists, or a clear error (issue 15)."""
    if isinstance(names, str) or isinstance(args_list, (str, bytes)):
        raise ValueError("run_batch takes a list of function names and a list of argument tuples, e.g. "
                         "run_batch(['fib', 'fib'], [(5,), (6,)]); for one call use run(name, *args)")
    names, args_list = list(names), list(args_list)
    if len(names) != len(args_list):
        raise ValueError(f"run_batch got {len(names)} function names and {len(args_list)} argument tuples: "
                         "give one tuple of arguments per name")
    if not names:
        raise ValueError("run_batch got an empty batch: give at least one function name and its arguments")
    check_max_steps(max_steps)
    return names, args_list


def check_max_steps(max_steps):
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise ValueError(f"max_steps must be an int >= 0, got {max_steps!r}")


def stop_message(machine, name, row, max_steps):
    """Why a run did not return, in `Program.run`'s words; row = (status, value, pc, registers, ...)."""
    status, value, pc, regs = row[:4]
    if status == FAILED:
        errors = getattr(machine.program, "errors", [])
        return errors[value] if 0 <= value < len(errors) else f"line {pc}: fail #{value}"
    if status == BAD_ADDRESS:
        address = regs[machine.program.instructions[pc].a]
        return f"line {pc}: memory address {address} is past the last of n_cells={machine.N} cells"
    if status == TOO_DEEP:
        return f"line {pc}: call depth limit: more than max_depth={machine.D} nested calls"
    if status == OFF_END:
        return f"pc {pc} is outside the program's {machine.L} lines"
    return f"step limit: {name} did not halt within max_steps={max_steps}"


# -----------------------------------------------------------------------------
# 4. Exact probabilistic execution: the state is a weighted set of hard runs ("threads").
#
# The mean-field machine keeps one marginal per register and cell and so forgets which value of one goes
# with which value of another; over long runs that error grows (see `Machine`). Here nothing is forgotten:
# every soft input (an argument or memory cell given as a distribution over values, a hole of the program,
# the program choice in the reasoning layer) is split into one thread per value of its support, every
# thread is an ordinary machine run on the hard path, and the output distribution is the sum of the
# threads' weights by what they return. The weight of a thread is the product of its inputs'
# probabilities, a differentiable function of them, so the gradient is the exact derivative of the output
# distribution wherever a thread was run: stable at any depth, since no derivative crosses a step.
#
# All the splits happen before the first step (a thread picks a value for every soft input at once). This
# gives the same distribution as splitting when a value is first read, and lets one batched hard run
# execute every thread. When the joint support is larger than `max_threads`, the heaviest assignments are
# kept (`top_assignments`, exactly the top k, as in the top-k proofs of Scallop/DeepProbLog) and the mass of
# the rest is reported as `dropped`, never renormalised away. Threads that end in the same output are
# merged by adding their weights.


def top_assignments(factors, k):
    """The k most probable joint assignments of independent discrete inputs, for each of B examples.

    factors: a list of F >= 1 tensors [B, S_f], row b of factor f the distribution of input f of example b
    over its S_f values. Returns (weight [B, K], choice [B, K, F] value indices, dropped [B]), K <= k,
    sorted by weight; an assignment of weight 0 (a value outside an input's support, or padding when
    fewer than k assignments exist) is a row of weight 0 that the caller skips.

    A beam that keeps the k heaviest prefixes after each input is exact: a pruned prefix has k kept
    prefixes at least as heavy, and each of them, completed with the same values, weighs at least as much
    as any completion of it, so no completion of it is among the k heaviest. `dropped` adds up the
    pruned prefixes' weights: the mass of all the assignments that were not kept (inputs sum to 1).
    """
    weight = factors[0].new_ones(factors[0].shape[0], 1)  # [B, 1] the empty prefix
    B = weight.shape[0]
    choice = torch.zeros(B, 1, 0, dtype=torch.long, device=weight.device)
    dropped = weight.new_zeros(B)
    for p in factors:
        S = p.shape[1]
        cand = (weight[:, :, None] * p[:, None, :]).flatten(1)  # [B, K * S] every prefix extended
        top = cand.detach().topk(min(k, cand.shape[1]), dim=1).indices  # [B, K'] sorted, heaviest first
        kept = cand.gather(1, top)
        if kept.shape[1] < cand.shape[1]:
            dropped = dropped + (cand.sum(1) - kept.sum(1))
        prev = choice.gather(1, (top // S)[..., None].expand(-1, -1, choice.shape[2]))
        choice, weight = torch.cat([prev, (top % S)[..., None]], 2), kept
    return weight, choice, dropped


@dataclass
class Distribution:
    """What `Machine.run_distribution` returns. Masses add up: value.sum() + not_halted + failed + dropped = 1."""

    value: torch.Tensor  # [V] P(the run returns k)
    memory: list  # per list argument, [len, V]: P(the run returns and cell i of the list then holds k)
    dropped: torch.Tensor  # [] mass of input assignments not run (more than max_threads)
    not_halted: torch.Tensor  # [] mass of runs that did not return (out of steps, past memory or call depth)
    failed: torch.Tensor  # [] mass of runs that stopped at an `assert` / `raise`
    wrapped: torch.Tensor  # [] mass of runs in which some arithmetic wrapped around modulo V
    threads: int  # hard runs made
    steps: int  # the longest run's steps


def _soft_input(x, V, what):
    """A soft argument checked: a 1-D tensor of V probabilities (non-negative, finite, summing to 1)."""
    if x.dim() != 1 or x.shape[0] != V:
        raise ValueError(f"{what}: a distribution must be a 1-D tensor of V={V} probabilities, got shape "
                         f"{tuple(x.shape)}")
    d = x.detach()
    if not torch.isfinite(d).all() or (d < 0).any():
        raise ValueError(f"{what}: probabilities must be finite and non-negative, got min {float(d.min())}")
    if abs(float(d.sum()) - 1) > 1e-4:
        raise ValueError(f"{what}: probabilities must sum to 1, got {float(d.sum()):.6f}")
    return x


# -----------------------------------------------------------------------------
# 5. The reasoning layer: how the transformer calls the library.


def token_characters(tokenizer, vocab_size, n_values):
    """For each token id, its characters as values (a tuple), or () for a token that is not text
    made of characters below `n_values` (special tokens, non-ASCII pieces): such tokens write nothing."""
    specials = set(tokenizer.special_tokens.values())
    table = []
    for i in range(vocab_size):
        if i in specials or i >= tokenizer.vocab_size:
            chars = b""
        elif tokenizer.sp is not None:
            chars = b"" if tokenizer.sp.is_control(i) else tokenizer.sp.id_to_piece(i).replace("\u2581", " ").encode()
        else:
            chars = tokenizer.model.decode_single_token_bytes(i)
        table.append(tuple(chars) if all(c < n_values for c in chars) else ())
    return table


@dataclass
class ReasoningConfig:
    """Every setting of the reasoning layer in one place. `AugmentedLlama` is built from one, checkpoints and
    exports store it (`to_dict`; nanoGPT stores its model_args so), and train.py's flags default to it.

    entries: the library's entry points the layer chooses among (None: no layer, the plain LLaMA);
    layer_after: the block it follows (None: the middle one); grad: "exact" or "mean_field" (how gradients
    cross the machine); interface: "tape" (the prompt's characters in memory) or "args" (argument heads);
    max_threads: threads per example under exact execution; max_steps / max_steps_train: machine steps
    before a run counts as not halted, in evaluation / training; n_cells (None: V) and max_depth: the
    machine's memory and call stack; trainable_library: the program's logits train (mean field only);
    args_len: cells of the args entry's list argument; machine_loss: weight of the machine's own
    likelihood of the answer (None: 1 with args, 0 with the tape); read_window: characters each position
    reads back; gate_bias: the write gate's starting logit (open); gate_window: positions the gate reads;
    reader: where the argument heads look, "runs", "ordinal" or "query" (None: ordinal for several slots,
    query for one, what checkpoints stored before the runs reader; train.py names its default, runs for
    several slots; `ArgumentHeads`); late_copy: the read character's vector is also added after the
    LLaMA's last block, with a gain of its own (`ReasoningLayer.forward`; False: what checkpoints made
    before it stored; train.py turns it on with --interface args); token_values: the runs reader's values
    also read the window of the tokens' own vectors (`ArgumentHeads`; False: what checkpoints made before it
    stored; train.py turns it on for sort4 and sort-8 with the runs reader); vector_grad: the codes of what
    is read back and copied train the token vectors (`ReasoningLayer.codes`; True: what checkpoints made
    before it stored, and train.py's default).
    """
    entries: list = None
    layer_after: int = None
    grad: str = "exact"
    interface: str = "tape"
    max_threads: int = 8
    max_steps: int = 20_000
    max_steps_train: int = 3_000
    n_cells: int = None
    max_depth: int = 16
    trainable_library: bool = False
    args_len: int = 0
    machine_loss: float = None
    read_window: int = 4
    gate_bias: float = 6.0
    gate_window: int = 3
    reader: str = None
    late_copy: bool = False
    token_values: bool = False
    vector_grad: bool = True

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The config a checkpoint or an export stored; a setting this version does not know is an error."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown reasoning settings {sorted(unknown)}: stored by another version of "
                             "reasoning.py")
        return cls(**{"reader": "query", **d})  # stored before there was a choice: the query reader

    @property
    def machine_loss_weight(self):
        return (1.0 if self.interface == "args" else 0.0) if self.machine_loss is None else self.machine_loss


GAIN_SCALE = 30.0
TABLE_LIMIT = 1 << 16  # the args interface runs every joint assignment when there are at most this many
READ_ROWS = 8  # with the args interface, the heaviest answers the LLaMA reads back per example
ROW_KEYS = ("rows_b", "rows_ok", "rows_chars", "rows_weight")
MIN_CHOICE = 1e-3  # programs less likely than this are not run (their mass is dropped)


def ordinal_attention(mark, n_slots):
    """[B, S, T]: where slot s reads, from the marks [B, T] (P(a number ends just before position t)).

    Each mark covers the interval [marks before it, marks up to it) of the running count; slot s reads the
    positions that cover [s, s + 1), each in proportion to the overlap. With marks of 0 and 1 slot s reads
    exactly the (s + 1)-th marked position; a number marked half at two neighbouring positions is read
    whole by one slot, and the slots after it are not shifted. A slot's row sums to 1 when the marks add
    up to at least s + 1, and to less (the rest: no such number) when they do not."""
    upto = torch.cumsum(mark, 1)[:, None]  # [B, 1, T]
    s = torch.arange(n_slots, device=mark.device, dtype=upto.dtype)[None, :, None]  # [1, S, 1]
    return (torch.minimum(upto, s + 1) - torch.maximum(upto - mark[:, None], s)).clamp_min(0)


def unit(h):
    """h [..., D] scaled to unit length per position (as the heads read the stream)."""
    return h * torch.rsqrt(h.float().pow(2).sum(-1, keepdim=True) + 1e-6).to(h.dtype)


def run_ends(inside):
    """[B, T]: P(a number ends just before position t), from inside [B, T], P(position t is part of a number).

    With the positions independent, a number ends before t when t - 1 is in one and t is not: the marks are
    inside[t - 1] (1 - inside[t]), and with insides of 0 and 1 there is exactly one mark per run of number
    positions, at the position after its last one. Their sum is the expected number of runs."""
    return F.pad(inside, (1, 0))[:, :-1] * (1 - inside)


class ArgumentHeads(nn.Module):
    """The paper's interface: the network writes the program's inputs (`interface="args"`).

    For each argument slot s (an int parameter of the entry point, or one cell of its fixed-length list
    parameter) the heads give a distribution over the V values: [B, S, V]. Each prompt position is seen
    with the `window - 1` positions before it (their states side by side), and a decoder shared by the
    slots (a value is a value wherever it was read) maps such a window to V logits. Where each slot looks
    is the reader (`reader`, ReasoningConfig):

    - "ordinal" (the default for several slots): slot s reads the (s + 1)-th number of the prompt.
      Every position has a learned *mark*, the probability that a number ends just before it, and slot s
      reads the positions whose marks bring the running count from s to s + 1 (`ordinal_attention`; a
      monotonic attention in the spirit of Raffel et al. 2017, with one head per slot and no loop). The
      slots read "the first number, the second, ..." in the prompt's order, which a content query cannot
      say: LLaMA's states carry no absolute position (RoPE turns only q and k), so a query for "the first
      number" waits for the LLaMA to learn to count. A mark at the position after a number sees its digits
      in its window; a number that ends the prompt is followed by one learned *end* state. When the marks
      add up to fewer than S, the missing slots' mass is uniform over the values.
    - "runs" (train.py's default for several slots): the ordinal reader whose marks say where a run of
      number positions ends. The heads give each position the probability that it is part of a number
      (the BOS and the end state are not), and a number ends before t when t - 1 is in one and t is not
      (`run_ends`). The free marks could put one number's end at two neighbouring positions in shares
      (on sort-8's held-out "Sort these: {xs} ->" they did, and the count fell short of 8); a run has one
      end. The runs of the positions between the numbers end just before each number but the first, and
      a window there sees the number before: read from the states alone, the heads learned either
      convention or a blend of both, by seed. So the probability also has a term from the token's own
      vector (`e`: the LLaMA's token vectors, the embedding table when it is tied): a digit is in a number
      wherever it stands, while a space is between two numbers in one place and between two words in
      another, so only "the digits are the number" is a rule that a token's own vector can carry.
      With `token_values` the values read that way too: a second decoder maps the window of the tokens'
      own vectors to V logits, added to the states' (zero at first). A number's digits name its value
      wherever it stands; the states at a phrasing never seen in training carry other context, and
      sort-8's heads read from them alone misread held-out phrasings by seed (README).
    - "query" (the default for one slot): one learned query per slot attends over the prompt. With one
      slot there is no order to read, and the query finds the number by what it is, also in words:
      fib_words 100% after 200 iterations, 56% with the ordinal reader, whose marks must first learn
      where a number word ends (README "The paper's interface").

    Nothing parses the text: marks, values and queries are learned from what the machine answers.
    The entry point is `f(x1, ..., [xs], m)`: ints, at most one list of `args_len` cells, and last the
    answer tape m, into which it prints its answer and returns where it starts (tasks.py). `layout` says
    where each slot lives in the machine: an argument register or a memory cell (lists are laid out from
    address 0, as `Program.run` does), and where m begins.
    """

    def __init__(self, dim, machine, entry, args_len, window=4, reader=None, token_values=False):
        super().__init__()
        if reader not in (None, "ordinal", "runs", "query"):
            raise ValueError(f"reader must be 'ordinal', 'runs' or 'query', got {reader!r}")
        if token_values and reader != "runs":
            raise ValueError(f"token_values: only the runs reader reads the tokens' own vectors, got reader {reader!r}")
        fn = machine.program.functions[entry]
        *inputs, tape = fn.params
        if not fn.params or not tape.is_list:
            raise ValueError(f"the args interface needs an entry point whose last parameter is the answer tape "
                             f"(a list, e.g. fib_args(n, m)); {entry} has parameters "
                             f"({', '.join(p.name for p in fn.params)})")
        lists = [p for p in inputs if p.is_list]
        if len(lists) > 1:
            raise ValueError(f"{entry}: the args interface fills at most one list parameter, got {len(lists)}")
        if bool(lists) != (args_len > 0):
            raise ValueError(f"{entry}: a list parameter needs a fixed length args_len > 0 (and only then); "
                             f"got args_len={args_len}")
        n_slots = len(inputs) - len(lists) + args_len
        if n_slots < 1:
            raise ValueError(f"{entry} takes no arguments before its tape: nothing for the heads to fill")
        template = [[0] * args_len if p.is_list else 0 for p in inputs] + [[0] * (machine.N - args_len)]
        memory, regs, _ = _lay_out_arguments(fn, template, machine.R, machine.arg_regs, machine.V, machine.N,
                                             machine.program)
        where = machine._argument_places(fn, template)
        self.slots = [where[p.name] if not p.is_list else ("mem", where[p.name][1] + i)
                      for p in inputs for i in range(args_len if p.is_list else 1)]  # ("reg" | "mem", index)
        self.tape_base = where[tape.name][1]  # the answer tape m starts at this cell
        self.register_buffer("regs", torch.tensor(regs), persistent=False)  # [R] the registers before the heads
        self.register_buffer("memory", torch.tensor(memory), persistent=False)  # [N]
        # With a byte tokenizer "42" is two positions, and a tiny LLaMA's state at the "2" need not say what
        # came before it: the window puts a number's digits side by side.
        reader = reader or ("ordinal" if n_slots > 1 else "query")  # one slot: there is no order to read
        self.window, self.reader = window, reader
        self.decode = nn.Linear(dim * window, machine.V)
        if reader == "query":
            self.query = nn.Parameter(torch.randn(n_slots, dim) * dim ** -0.5)  # distinct: the slots must differ
            self.key = nn.Linear(dim * window, dim, bias=False)
        else:
            self.n_slots = n_slots
            self.mark = nn.Linear(dim * window, 1)
            nn.init.zeros_(self.mark.weight)
            nn.init.zeros_(self.mark.bias)
            self.end = nn.Parameter(torch.randn(dim) * dim ** -0.5)  # the state after the prompt's last token
            if reader == "runs":  # what the token itself says about being in a number (zero: no opinion yet)
                self.kind = nn.Linear(dim, 1, bias=False)
                nn.init.zeros_(self.kind.weight)
            if token_values:  # what the window's tokens themselves say the value is (zero: nothing yet)
                self.decode_tokens = nn.Linear(dim * window, machine.V, bias=False)
                nn.init.zeros_(self.decode_tokens.weight)

    def forward(self, h, call_pos, e=None):
        """[B, S, V]: each slot's distribution over the values, from the prompt's hidden states h [B, T, D]
        (and, for the runs reader, its tokens' own vectors e [B, T, D], both of unit length)."""
        return self.read(h, call_pos, e)[0]

    def read(self, h, call_pos, e=None):
        """(slots [B, S, V] as `forward`, unread [B]): with a reader that counts, the probability that the last
        slot found no number (the marks add up to fewer than S: the prompt holds fewer numbers than the
        entry takes); 0 with the query reader, which always reads somewhere."""
        if self.reader == "query":
            slots = self._query(h, call_pos)
            return slots, slots.new_zeros(len(slots))
        slots, mark, _ = self._ordinal(h, call_pos, e)
        return slots, (self.n_slots - mark.sum(1)).clamp(0, 1)

    def explain(self, h, call_pos, e=None):
        """(slots [B, S, V], marks [B, T + 1], values [B, T + 1, V]): what a counting reader gives, and what it
        saw position by position (the prompt and its end state); tests/scripts/by_phrasing.py --show."""
        return self._ordinal(h, call_pos, e)

    def _ordinal(self, h, call_pos, e=None):
        B, T, D = h.shape
        h = h * D ** 0.5  # the layer passes states of unit length; at unit RMS a value's logit can grow sharp fast
        # The prompt and then the end state; what follows (the answer's tokens, in training) is not read.
        h = torch.cat([h, h.new_zeros(B, 1, D)], 1)
        pos = torch.arange(T + 1, device=h.device)[None]  # [1, T + 1]
        after = pos == (call_pos + 1)[:, None]  # [B, T + 1]
        h = torch.where(after[..., None], self.end.to(h.dtype), h)
        seen = self._windows(h)  # [B, T + 1, W D]
        prompt = pos <= (call_pos + 1)[:, None]
        # The marks start equal (zero weights), at the rate that spreads the S slots evenly over the prompt:
        # slot s first looks around (s + 1) / S of the way along, whatever the prompt's length.
        rate = (self.n_slots / (call_pos + 2).float()).clamp(max=0.5)[:, None]  # [B, 1]
        logit = self.mark(seen).squeeze(-1).float()
        if self.reader == "runs":
            # d (1 - d) = rate: the inside probability d that gives the same starting marks (at most 1/4)
            d = (1 - (1 - 4 * rate.clamp(max=0.25)).sqrt()) / 2
            # P(position t is in a number) [B, T + 1]; the BOS and the end state are in none (the prompt's text
            # lies between them), so a number that ends the prompt ends at the end state
            if e is None:
                raise ValueError("the runs reader reads the tokens' own vectors e too")
            logit = logit + F.pad(self.kind(e * D ** 0.5).squeeze(-1).float(), (0, 1))
            inside = torch.sigmoid(logit + torch.logit(d)) * (prompt & ~after & (pos > 0))
            mark = run_ends(inside) * prompt
        else:
            mark = torch.sigmoid(logit + torch.logit(rate)) * prompt  # [B, T + 1]
        attn = ordinal_attention(mark, self.n_slots)  # [B, S, T + 1]
        logits = self.decode(seen).float()  # [B, T + 1, V]
        if hasattr(self, "decode_tokens"):  # the end state's own vector: zero
            logits = logits + self.decode_tokens(self._windows(F.pad(e * D ** 0.5, (0, 0, 0, 1)))).float()
        values = torch.softmax(logits, -1)
        missing = (1 - attn.sum(-1, keepdim=True)).clamp_min(0)  # fewer marks than slots
        return attn @ values + missing / values.shape[-1], mark, values

    def _windows(self, h):
        T = h.shape[1]
        return torch.cat([F.pad(h, (0, 0, k, 0))[:, :T] for k in reversed(range(self.window))], -1)  # [B, T, W D]

    def _query(self, h, call_pos):
        T, D = h.shape[1:]
        h = h * D ** 0.5  # as in _ordinal
        prompt = torch.arange(T, device=h.device)[None] <= call_pos[:, None]  # [B, T]
        seen = self._windows(h)
        scores = torch.einsum("sd,btd->bst", self.query, self.key(seen)) * D ** -0.5  # [B, S, T]
        attn = torch.softmax(scores.masked_fill(~prompt[:, None], float("-inf")), -1)
        return torch.softmax(self.decode(attn @ seen).float(), -1)  # [B, S, V]

    def fill(self, values):
        """Hard inputs for the slots' values [M, S]: (registers [M, R], memory [M, N])."""
        regs = self.regs.repeat(len(values), 1)
        memory = self.memory.repeat(len(values), 1)
        for s, (kind, at) in enumerate(self.slots):
            (regs if kind == "reg" else memory)[:, at] = values[:, s]
        return regs, memory

    def fill_soft(self, dists, V):
        """Soft inputs for the mean field: (registers [B, R, V], memory [B, N, V]) with the slots' distributions."""
        B = dists.shape[0]
        regs = F.one_hot(self.regs, V).to(dists.dtype).repeat(B, 1, 1)
        memory = F.one_hot(self.memory, V).to(dists.dtype).repeat(B, 1, 1)
        for s, (kind, at) in enumerate(self.slots):
            target = regs if kind == "reg" else memory
            target = target.index_copy(1, torch.tensor([at], device=dists.device), dists[:, s:s + 1])
            regs, memory = (target, memory) if kind == "reg" else (regs, target)
        return regs, memory


class ReasoningLayer(nn.Module):
    """Connects a transformer to a `Machine` running the compiled library.

    It sits after one transformer block. For each example, at the *call position* (the last prompt token):

    - choose: a linear head on the call position's hidden state plus an attention pooling of the whole
      prompt (one learned query) gives a distribution over the library's entry points. The pooling lets
      the choice rest on the words of the request, wherever they are, rather than on how the prompt ends:
      a tiny model then generalises better to unseen phrasings and to long lists. The choice is the
      machine's initial program counter, so choosing a program and running it are one mechanism.
    - write: every prompt position writes its token's characters into memory, as a *text tape* (see
      tasks.py). A gate head (on the states of the token and the two before it) gives the probability
      that a position writes; the cell of a token's first character is the number of characters the
      tokens before it wrote, so a tape of any length is laid out exactly. The gate starts open. The
      value written is the character itself (a fixed table): a learned value head would only learn the
      characters it saw.
    - run: the entry point gets the whole memory as its list argument `m` (base 0, length `n_cells`).
    - read back: the program returns the address where its answer text starts. The position that has
      emitted `o` answer characters since the call reads the answer's characters `o, ..., o + K-1`
      (K = `read_window`, at most the longest token: 1 for bytes). The query is fixed, so the alignment
      holds for answers longer than any in training. Each character is embedded as the model's own output
      vector of that character's token (NUL: end-of-text) and added to the residual stream through a
      projection and a gain, both initialised to zero: a pretrained LLaMA starts out unchanged.

    How gradients cross the machine (`grad`):
    - "exact": exact probabilistic execution (section 4). The program choice and every token's write
      decision are independent soft inputs; a thread is one program and one tape (an open/closed decision
      per token), laid out from the open tokens and run on the hard path; the read-back mixes the
      threads' answers by their weights, so the choice head and the gate head get the exact gradient of
      that mixture: a gate learns to close a token when the threads that leave it out answer better.
      There are 2^T tapes, so not all are run (`threads`): every program that is not negligible, on the
      likeliest tape and, while training, on tapes that move one unit (a number, or one other token) to
      all closed or all open, drawn at random and weighted so that the mixture is unbiased for the
      neighbourhood of the likeliest tape. The mass outside it is reported as `dropped`. Without the gate's uncertainty (one tape) this is the exact expectation over
      the program choice, which is how the choice head learns.
    - "mean_field": one soft run of the differentiable machine with the pc in superposition over the
      entry points, the tape written with the soft gate weights; gradients flow through every step of
      the machine into the choice and gate heads. Slower by orders of magnitude on a CPU, and unstable on
      long runs (the paper's method, kept for comparison).
    With `interface="args"` (the paper's) `ArgumentHeads` write the entry point's numbers instead of the
    tape, and the machine runs one entry point (`run_args_exact`: every joint assignment when they are few,
    else the likeliest and its one-slot changes; `run_args_mean_field`); the loss then also holds the
    machine's own likelihood of the answer (`machine_nll`). Everything else (read back, rows) is shared.
    A program that has not returned within `max_steps` (`max_steps_train` while training: a program run on
    another task's prompt may take very long, e.g. fib of a list's first number) reads as nothing; the
    run reports that mass per example (`not_halted`), with the `dropped` mass, the mass whose arithmetic
    wrapped modulo V (`wrapped`) and whether the likeliest tape overflowed memory (`overflow`).
    """

    def __init__(self, dim, machine, token_chars, char_token_ids, config):
        super().__init__()
        entries, grad, interface, max_threads = config.entries, config.grad, config.interface, config.max_threads
        if grad not in ("exact", "mean_field"):
            raise ValueError(f"grad must be 'exact' or 'mean_field', got {grad!r}")
        if interface not in ("tape", "args"):
            raise ValueError(f"interface must be 'tape' or 'args', got {interface!r}")
        if interface == "args" and len(entries) != 1:
            raise ValueError(f"the args interface runs one entry point (its heads fill its arguments), got {list(entries)}")
        self.interface = interface
        self.arg_heads = (ArgumentHeads(dim, machine, entries[0], config.args_len, reader=config.reader,
                                        token_values=config.token_values)
                          if interface == "args" else None)
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.machine, self.entries, self.grad, self.max_threads = machine, list(entries), grad, max_threads
        self._tables = {}  # the args interface's runs of every assignment (`args_table`)
        self.seed = 0  # of the threads drawn while training (see `draw`)
        self.max_steps, self.max_steps_train = config.max_steps, config.max_steps_train
        self.choose = nn.Linear(dim, len(self.entries))
        self.choose_query = nn.Parameter(torch.zeros(dim))  # zero: pooling starts as the prompt's mean
        self.gate_window = config.gate_window  # the gate reads its token's state and those of the tokens before it
        self.gate = nn.Linear(dim * self.gate_window, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, config.gate_bias)  # open: a fresh layer copies the whole prompt
        self.K = max(1, max(len(c) for c in token_chars))  # the most characters one token writes
        self.window = min(self.K, config.read_window)  # how many characters each position reads back
        chars = torch.zeros(len(token_chars), self.K, dtype=torch.long)
        for i, c in enumerate(token_chars):
            chars[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        self.register_buffer("token_chars", chars, persistent=False)  # [vocab, K]
        self.register_buffer("token_len", torch.tensor([len(c) for c in token_chars]), persistent=False)  # [vocab]
        digits = [bool(c) and all(48 <= x <= 57 for x in c) for c in token_chars]  # tokens of digits only
        self.register_buffer("token_digits", torch.tensor(digits), persistent=False)  # [vocab]
        self.register_buffer("entry_lines", torch.tensor([machine.program.functions[e].entry for e in self.entries]),
                             persistent=False)  # [E]
        self.register_buffer("char_token_ids", torch.tensor(char_token_ids), persistent=False)  # [V]
        # What is read goes into the residual stream two ways, both zero at the start: a learned projection,
        # and a learned gain on the read character's own output-token vector (see read_back).
        self.out_proj = nn.Linear(self.window * dim, dim, bias=False)
        nn.init.zeros_(self.out_proj.weight)
        self.gain = nn.Parameter(torch.zeros(()))
        self.late_copy, self.vector_grad = config.late_copy, config.vector_grad
        if config.late_copy:  # and, past the blocks above, once more on the way out (see forward)
            self.late_gain = nn.Parameter(torch.zeros(()))

    # -- the heads -------------------------------------------------------------

    def choose_program(self, h, call_pos):
        """[B, E]: the distribution over entry points, from the call position and a pooling of the prompt."""
        B = h.shape[0]
        prompt = torch.arange(h.shape[1], device=h.device)[None] <= call_pos[:, None]  # [B, T]
        attn = torch.softmax((h @ self.choose_query).masked_fill(~prompt, float("-inf")), -1)  # [B, T]
        h_pool = (attn[..., None] * h).sum(1)  # [B, D] attention pooling over the prompt
        return torch.softmax(self.choose(h[torch.arange(B), call_pos] + h_pool).float(), -1)

    def gates(self, h, tokens, call_pos):
        """(gate [B, T], length [B, T]): P(token t writes), 0 for tokens with nothing to write; its characters."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        length = self.token_len[tokens] * (pos[None] <= call_pos[:, None])  # [B, T] characters each can write
        # Whether a number is a distractor shows in the words before it ("Ignore 42."), so the gate reads a
        # window of the last `gate_window` positions; a tiny LLaMA's own state at the digit did not tell.
        window = torch.cat([F.pad(h, (0, 0, k, 0))[:, :h.shape[1]] for k in reversed(range(self.gate_window))], -1)
        return torch.sigmoid(self.gate(window).squeeze(-1).float()) * (length > 0), length

    # -- write -----------------------------------------------------------------

    def lay_out(self, tokens, length, open_):
        """Tapes: the characters of the open tokens, one after another from cell 0, NUL after them.

        tokens, length [M, T]; open_ [M, T] bool. Returns (cells [M, N] ints, cell [M, T, K] where each
        character of each token goes if it is written, overflow [M]: the tape did not fit with its NUL)."""
        M, T = tokens.shape
        N = self.machine.N
        written = length * open_
        address = torch.cumsum(written, 1) - written  # [M, T] the cell of each token's first character
        k = torch.arange(self.K, device=tokens.device)
        cell = address[..., None] + k  # [M, T, K]
        ok = (k < written[..., None]) & (cell < N)
        cells = torch.zeros(M, N + 1, dtype=torch.long, device=tokens.device)  # one spare cell for the misses
        cells.scatter_(1, torch.where(ok, cell, N).flatten(1), (self.token_chars[tokens] * ok).flatten(1))
        return cells[:, :N], cell, written.sum(1) >= N

    def soft_tape(self, tokens, length, gate):
        """Memory [B, N, V] as written with the soft gate weights: a later write to a cell wins (mean field).
        A token's cells are those of the likeliest tape (gates > 1/2), as the mean field has one layout."""
        B, T = tokens.shape
        V, N = self.machine.V, self.machine.N
        _, cell, _ = self.lay_out(tokens, length, gate > 0.5)
        ok = (torch.arange(self.K, device=tokens.device) < length[..., None]) & (cell < N)
        memory = F.one_hot(torch.zeros(B, N, dtype=torch.long, device=tokens.device), V).to(gate.dtype)
        rows = torch.arange(B, device=tokens.device)
        for t in range(T):
            for k in range(self.K):
                if not ok[:, t, k].any():
                    continue
                w = (gate[:, t] * ok[:, t, k])[:, None]  # [B, 1]
                c = cell[:, t, k].clamp(max=N - 1)
                new = F.one_hot(self.token_chars[tokens[:, t], k], V).to(gate.dtype)
                memory = memory.index_put((rows, c), (1 - w) * memory[rows, c] + w * new)
        return memory

    # -- run -------------------------------------------------------------------

    def run(self, h, tokens, call_pos, max_steps, token_vectors=None):
        """Choose, write, run. Returns the run (a dict) that `read_back` uses and `forward` reuses: the
        heads' outputs, `answer` [B, N + 1, V] (P(the answer's o-th character is c); its total is the
        mass that returned) and the per-example masses and flags of the docstring."""
        choice = self.choose_program(h, call_pos)  # [B, E]
        if self.interface == "args":
            runs = self.arg_heads.reader == "runs" and token_vectors is not None
            e = unit(token_vectors[tokens]) if runs else None  # each token's own vector: the runs reader's
            args, unread = self.arg_heads.read(h, call_pos, e)  # [B, S, V], [B]
            run = self.run_args_exact if self.grad == "exact" else self.run_args_mean_field
            return {"choice": choice, "args": args, "unread": unread.detach(), **run(args, max_steps, tokens, call_pos)}
        gate, length = self.gates(h, tokens, call_pos)  # [B, T]
        run = self.run_exact if self.grad == "exact" else self.run_mean_field
        return {"choice": choice, "gate": gate, **run(tokens, length, choice, gate, max_steps)}

    def draw(self, q, n, tokens, writes):
        """n draws with replacement from each row of q [B, T]. An example's draws depend only on its prompt
        and `self.seed` (train.py sets it each iteration), not on the batch it is in, so one process or
        several, one micro-step or several, run the same threads (and a resumed run is exact)."""
        draws = []
        for b in range(len(q)):
            key = hash((self.seed, tuple(tokens[b][writes[b]].tolist()))) % 2 ** 62
            g = torch.Generator(device=q.device).manual_seed(key)
            draws.append(torch.multinomial(q[b], n, replacement=True, generator=g))
        return torch.stack(draws)  # [B, n]

    def units(self, tokens, writes):
        """unit [B, T]: which unit each token belongs to, and n_units [B]. A unit is a number (a maximal run
        of writing tokens made of digits only) or any other writing token on its own."""
        digit = self.token_digits[tokens] & writes  # [B, T]
        start = writes & ~(digit & F.pad(digit[:, :-1], (1, 0)))  # a unit starts here (or continues a number)
        unit = (torch.cumsum(start.long(), 1) - 1).clamp(min=0)  # [B, T]
        return unit, start.sum(1)

    def threads(self, tokens, length, choice, gate):
        """Which (program, tape) threads each example runs, and their weights (the class docstring).

        Programs: every entry point of probability >= MIN_CHOICE. Tapes: the likeliest (each gate decided
        by > 1/2) and, while training, `n` *moves* drawn around it. A move sets one unit (`units`: a number,
        or one other token) all closed or all open, where that differs from the likeliest tape: a number is
        kept off the tape or written as a whole ("42" needs both digits closed; closing one leaves another
        number, and a toggle of a half-closed "42" would open the closed digit). Moves are drawn with
        replacement from q(c) = (1/C_b + P(move c) / sum_d P(move d)) / 2 over the example's C_b moves, and
        a move's thread is weighted P(program) P(its tape) / (n q(c)), the Hansen-Hurwitz estimator: its
        expectation over the draws is exactly the mixture over every move, so the mixture and its gradient
        are unbiased for the neighbourhood {likeliest tape, every move}; what lies outside it (and the
        programs below MIN_CHOICE) is `dropped`. Half of q is uniform so that every unit is sometimes
        moved (a gate that is never moved gets no gradient); the other half goes where a move is likely.
        Each example runs at most `max_threads` threads: n = max_threads // programs - 1.

        Returns b, e, move (-1: none) [M] (example, program, move c: unit c % T set closed (c < T) or open),
        weight [M], the likeliest decisions open_ [B, T], the units [B, T] and dropped [B]."""
        B, T = gate.shape
        device = gate.device
        writes = length > 0
        open_ = (gate > 0.5) & writes  # [B, T] the likeliest tape's decisions
        p_map = torch.where(open_, gate, 1 - gate)  # [B, T] P(the likeliest decision); 1 where nothing is written
        p_flip = (1 - p_map) * writes  # [B, T] P(the other decision)
        tape = p_map.prod(1)  # [B] P(the likeliest tape)
        unit, _ = self.units(tokens, writes)
        log_ratio = torch.where(writes, p_flip.clamp_min(1e-30).log() - p_map.log(), 0)  # [B, T]
        moves = []  # per target state (closed, open): [B, U = T] P(tape with the move) / P(likeliest tape)
        for changed in (open_, writes & ~open_):  # the tokens a move to closed / to open changes
            log_move = torch.zeros_like(log_ratio).scatter_add(1, unit, log_ratio * changed)
            exists = torch.zeros_like(unit).scatter_add(1, unit, changed.long()) > 0  # the move changes something
            moves.append(log_move.exp() * exists)
        ratio = torch.cat(moves, 1)  # [B, 2T]
        exists = ratio.detach() > 0
        live = choice.detach() >= MIN_CHOICE  # [B, E]
        n_prog = live.sum(1)  # [B]
        n = (self.max_threads // n_prog - 1).clamp(min=0) * self.training  # [B] moves drawn per example
        drawn = torch.full((B, max(1, int(n.max()))), -1, dtype=torch.long, device=device)
        q = torch.zeros(B, 2 * T, device=device)
        if n.max() > 0:
            share = ratio.detach() / ratio.detach().sum(1, keepdim=True).clamp_min(1e-30)
            q = (exists / exists.sum(1, keepdim=True).clamp_min(1) + share) / 2  # [B, 2T]
            draws = self.draw(q.clamp_min(1e-30) * exists, drawn.shape[1], tokens, writes)  # [B, n_max]
            drawn = torch.where(torch.arange(drawn.shape[1], device=device) < n[:, None], draws, -1)
        options = torch.cat([torch.full((B, 1), -1, dtype=torch.long, device=device), drawn], 1)  # [B, 1 + n_max]
        be, e = live.nonzero(as_tuple=True)  # the (example, program) pairs
        j = torch.arange(options.shape[1], device=device)
        pair, j = (options[be] >= 0).logical_or(j == 0).nonzero(as_tuple=True)  # skip unused draws
        b, e, move = be[pair], e[pair], options[be[pair], j]
        c = move.clamp(min=0)
        hh = ratio[b, c] / (n[b] * q[b, c]).clamp_min(1e-30)  # Hansen-Hurwitz weight of one draw
        weight = choice[b, e] * tape[b] * torch.where(move >= 0, hh, torch.ones_like(hh))
        neighbourhood = tape * (1 + ratio.sum(1) * (n > 0))  # [B] its exact mass
        dropped = 1 - (choice * live).sum(1) * neighbourhood
        return b, e, move, weight, open_, unit, dropped.detach()

    def run_exact(self, tokens, length, choice, gate, max_steps):
        """The threads of each example, run on the hard path in one batch; their answers mixed by weight."""
        B, T = tokens.shape
        N = self.machine.N
        b, e, move, weight, open_, unit, dropped = self.threads(tokens, length, choice, gate)
        moved = (unit[b] == (move % T)[:, None]) & (move >= 0)[:, None] & (length[b] > 0)  # [M, T] its unit
        decisions = torch.where(moved, (move >= T)[:, None], open_[b])  # [M, T] set closed (< T) or open
        cells, _, overflow = self.lay_out(tokens[b], length[b], decisions)
        regs = self.machine.list_registers(len(b), base=0, length=N)
        out = self.machine.run_hard(self.entry_lines[e], regs, cells, max_steps, distinct=True)  # equal draws run once
        likeliest = move < 0
        overflow = torch.zeros(B, dtype=torch.bool, device=tokens.device).index_put((b[likeliest],), overflow[likeliest])
        return {**self.answers(out, b, weight, B, out[0]), "dropped": dropped, "overflow": overflow}

    def answers(self, out, b, weight, B, start):
        """The threads grouped by what they answer: one *row* per (example, answer text), its weight the
        sum of its threads' (threads that agree merge), plus a row for what did not return, which reads
        nothing. out: the hard run of the threads, b [M] their examples, start [M] where each answer starts.

        Returns rows_b [U] (the example), rows_chars [U, N + 1] (the answer's characters, NUL from its end
        on), rows_ok [U] (it returned), rows_weight [U], thread_row [M] (each thread's row); and the masses
        per example that the run reports."""
        N = self.machine.N
        memory, halted = out[1], out[2]
        where = start[:, None] + torch.arange(N + 1, device=b.device)  # [M, N + 1] past memory: NUL
        chars = memory.gather(1, where.clamp(max=N - 1)) * (where < N) * halted[:, None]
        chars = chars * (torch.cumsum(chars == 0, 1) == 0)  # nothing after the first NUL is ever read
        key = torch.cat([b[:, None], halted[:, None].long(), chars], 1)
        first, inverse = (torch.from_numpy(x).to(b.device) for x in distinct_rows(key.cpu().numpy()))
        by_example = torch.argsort(key[first, 0], stable=True)  # the rows of an example together
        rows, inverse = key[first[by_example]], torch.argsort(by_example)[inverse]
        per_example = lambda x: weight.new_zeros(B).index_add(0, b, x.to(weight.dtype)).detach()  # [B] a mass
        error = getattr(out, "error", torch.full_like(start, -1))  # [M] the `fail` each thread stopped at, or -1
        failed = error >= 0
        wrapped = getattr(out, "wrapped", torch.zeros_like(halted))
        return {"rows_b": rows[:, 0], "rows_ok": rows[:, 1].bool(), "rows_chars": rows[:, 2:],
                "rows_weight": weight.new_zeros(len(rows)).index_add(0, inverse, weight), "thread_row": inverse,
                "steps": out[3], "threads": len(b),
                "error": torch.full((B,), -1, dtype=torch.long, device=b.device).scatter_reduce(0, b, error, "amax"),
                "not_halted": per_example(weight * (~halted & ~failed)), "failed": per_example(weight * failed),
                "wrapped": per_example(weight * wrapped)}

    def run_args_exact(self, args, max_steps, tokens, call_pos):
        """The args interface's exact execution: the answers' distribution, grouped into rows.

        When every joint assignment of the slots fits in `TABLE_LIMIT` (fib: 128; add: 128^2), the entry is
        run once on all of them (`args_table`, kept) and each example's distribution over the answers is
        exact: the product of its slots' distributions summed per answer. More slots (sort): in evaluation
        the 8 x READ_ROWS (at most `max_threads`) heaviest joint assignments (exactly the top k,
        `top_assignments`), in training the
        likeliest assignment and its neighbourhood (`neighbourhood`). Either way `all_rows` holds every
        answer for the machine's own loss (`machine_nll`), and the LLaMA reads back the `READ_ROWS`
        heaviest answers of each example (the rest of the mass is `dropped`, and flagged when large)."""
        B, S, V = args.shape
        if V ** S <= TABLE_LIMIT:
            table = self.args_table(S, max_steps)
            joint = args[:, 0]
            for s in range(1, S):  # [B, V^S], assignment a = sum_s value_s V^(S-1-s)
                joint = (joint[:, :, None] * args[:, s, None, :]).flatten(1)
            U = len(table["chars"])
            mass = joint.new_zeros(B, U).index_add(1, table["answer"], joint)  # [B, U] P(answer u)
            b = torch.arange(B, device=args.device).repeat_interleave(U)
            u = torch.arange(U, device=args.device).repeat(B)
            rows = {"rows_b": b, "rows_ok": table["ok"][u], "rows_chars": table["chars"][u],
                    "rows_weight": mass.flatten()}
            flags = {k: (joint @ table[k].to(joint.dtype)).detach() for k in ("not_halted", "failed", "wrapped")}
            rows = {**rows, **flags, "steps": table["steps"], "threads": B * V ** S,
                    "error": torch.full((B,), -1, dtype=torch.long, device=args.device)}
            dropped = torch.zeros(B, device=args.device)
            rows["whole_answers"] = True
        else:
            if self.training:
                b, values, weight, dropped = self.neighbourhood(args, tokens, call_pos)
            else:
                # READ_ROWS answers are read back: the 8 x READ_ROWS heaviest assignments nearly always hold them
                k = min(self.max_threads, 8 * READ_ROWS)
                weight, values, dropped = top_assignments(list(args.unbind(1)), k)  # [B, K], [B, K, S]
                b, k = (weight.detach() > 0).nonzero(as_tuple=True)  # [M] the threads
                values, weight = values[b, k], weight[b, k]
            regs, memory = self.arg_heads.fill(values)
            entry = self.entry_lines[0].expand(len(b))
            out = self.machine.run_hard(entry, regs, memory, max_steps, distinct=True)  # equal draws run once
            rows = self.answers(out, b, weight, B, out[0] + self.arg_heads.tape_base)
            if self.training:
                # The likelihood given the neighbourhood: each example's row weights divided by their sum
                # (the estimated neighbourhood mass). Left unnormalised, the mass outside the neighbourhood
                # counts as a wrong answer, and the quickest way to raise the likelihood is to pull mass into
                # it: the heads grew confident on wrong values (measured: entropy 4.85 -> 0.68 nats, sort8 0%).
                rows["rows_weight"] = shares(rows["rows_weight"], rows["rows_b"], B)
        read, lost = heaviest_rows(rows, B, READ_ROWS)
        lost = lost * (1 - dropped) if self.training and V ** S > TABLE_LIMIT else lost  # normalised: a share
        if self.training:  # the LLaMA's likelihood given the rows it reads: no pull on mass into them (see above)
            read["rows_weight"] = shares(read["rows_weight"], read["rows_b"], B)
        rows.pop("thread_row", None)
        return {**rows, **read, "all_rows": {k: rows[k] for k in ROW_KEYS}, "dropped": (dropped + lost).detach(),
                "overflow": torch.zeros(B, dtype=torch.bool, device=args.device)}

    def args_table(self, S, max_steps):
        """The entry run once on every joint assignment of its S slots (V^S runs, kept per max_steps): the
        distinct answers (chars [U, N + 1], ok [U]), each assignment's answer [V^S] and its flags."""
        key = (S, max_steps)
        if key not in self._tables:
            V = self.machine.V
            a = torch.arange(V ** S, device=self.entry_lines.device)
            values = torch.stack([a // V ** (S - 1 - s) % V for s in range(S)], 1)  # [V^S, S]
            regs, memory = self.arg_heads.fill(values)
            out = self.machine.run_hard(self.entry_lines[0].expand(len(a)), regs, memory, max_steps)
            rows = self.answers(out, torch.zeros_like(a), torch.ones(len(a), device=a.device), 1,
                                out[0] + self.arg_heads.tape_base)
            error = getattr(out, "error", torch.full_like(a, -1))
            halted = out[2]
            self._tables[key] = {"chars": rows["rows_chars"], "ok": rows["rows_ok"], "answer": rows["thread_row"],
                                 "not_halted": ~halted & (error < 0), "failed": error >= 0,
                                 "wrapped": getattr(out, "wrapped", torch.zeros_like(halted)), "steps": out[3]}
        return self._tables[key]

    def neighbourhood(self, args, tokens, call_pos):
        """Training threads for several slots: the likeliest assignment and n = max_threads - 1 draws from
        its neighbourhood, the S (V - 1) assignments that change one slot's value, drawn with replacement
        from q(s, v) = (uniform + P(change s to v) / sum) / 2 and weighted P(that assignment) / (n q), the
        Hansen-Hurwitz estimator of the tape's moves (`threads`): the mixture and its gradient are unbiased
        for {likeliest, every one-slot change}. So each slot's head gets, in expectation, the exact
        gradient of its own distribution given the other slots' likeliest values: how a single argument
        (fib's, enumerated in full) learns. The top k of the joint would keep only the near-ties of the
        likeliest assignment and never try a value the heads think unlikely. The mass outside the
        neighbourhood is `dropped`. Returns b [M], values [M, S], weight [M], dropped [B]."""
        B, S, V = args.shape
        p_map, best = args.max(-1)  # [B, S]
        likeliest = p_map.prod(1)  # [B] P(the likeliest assignment)
        other = ~F.one_hot(best, V).bool()  # [B, S, V] the values a change can take
        ratio = (args / p_map[..., None] * other).flatten(1)  # [B, S V] P(one change) / P(likeliest)
        n = self.max_threads - 1
        if n >= S * (V - 1):  # room for the whole neighbourhood: every one-slot change, no draw
            change = torch.arange(S * V, device=args.device)  # slot change // V takes the value change % V
            values = best[:, None, :].repeat(1, 1 + S * V, 1)  # [B, 1 + S V, S]
            values[:, 1:].scatter_(2, (change // V)[None, :, None].expand(B, -1, 1),
                                   (change % V)[None, :, None].expand(B, -1, 1))
            weight = likeliest[:, None] * torch.cat([torch.ones_like(ratio[:, :1]), ratio], 1)
            b, k = (weight.detach() > 0).nonzero(as_tuple=True)  # a "change" to the likeliest value has ratio 0
            return b, values[b, k], weight[b, k], (1 - likeliest * (1 + ratio.sum(1))).detach()
        values = best[:, None, :].repeat(1, 1 + n, 1)  # [B, 1 + n, S]
        weight = likeliest[:, None].repeat(1, 1 + n)
        if n > 0:
            valid = other.flatten(1).float()
            share = ratio.detach() / ratio.detach().sum(1, keepdim=True).clamp_min(1e-30)
            q = (valid / valid.sum(1, keepdim=True) + share) / 2  # [B, S V]
            prompt = torch.arange(tokens.shape[1], device=tokens.device)[None] <= call_pos[:, None]
            drawn = self.draw(q.clamp_min(1e-30) * valid, n, tokens, prompt)  # [B, n]
            values[:, 1:].scatter_(2, (drawn // V)[..., None], (drawn % V)[..., None])
            hh = ratio.gather(1, drawn) / (n * q.gather(1, drawn))  # [B, n]
            weight = likeliest[:, None] * torch.cat([torch.ones_like(hh[:, :1]), hh], 1)
        dropped = 1 - likeliest * (1 + ratio.sum(1) * (n > 0))
        b = torch.arange(B, device=args.device).repeat_interleave(1 + n)
        return b, values.flatten(0, 1), weight.flatten(), dropped.detach()

    def run_args_mean_field(self, args, max_steps, tokens=None, call_pos=None):
        """The paper's method: one soft run with the argument distributions in the registers and cells."""
        B = args.shape[0]
        regs, memory = self.arg_heads.fill_soft(args, self.machine.V)
        pc = F.one_hot(self.entry_lines[:1], self.machine.L).to(args.dtype).expand(B, -1)
        out = self.machine(pc, regs, memory, max_steps=max_steps)
        value = F.pad(out.value, (self.arg_heads.tape_base, 0))[:, :self.machine.V]  # the start, as a cell
        zero = torch.zeros(B, device=args.device)
        return {"answer": self.answer_of_soft_run(value, out.memory), **self.one_row_each(B, args.device),
                "steps": out.steps, "threads": B,
                "dropped": zero, "not_halted": (1 - out.halted).detach(), "failed": getattr(out, "failed", zero).detach(),
                "wrapped": zero, "overflow": torch.zeros(B, dtype=torch.bool, device=args.device)}

    def run_mean_field(self, tokens, length, choice, gate, max_steps):
        """One soft run: all programs in superposition on the soft tape."""
        B = tokens.shape[0]
        N = self.machine.N
        memory = self.soft_tape(tokens, length, gate)
        pc = choice @ F.one_hot(self.entry_lines, self.machine.L).to(choice.dtype)  # [B, L] superposition
        regs = self.machine.one_hot(self.machine.list_registers(B, base=0, length=N))
        out = self.machine(pc, regs, memory, max_steps=max_steps)
        answer = self.answer_of_soft_run(out.value, out.memory)
        _, _, overflow = self.lay_out(tokens, length, gate > 0.5)
        zero = torch.zeros(B, device=tokens.device)
        return {"answer": answer, **self.one_row_each(B, tokens.device), "steps": out.steps, "threads": B, "dropped": zero,
                "not_halted": (1 - out.halted).detach(), "failed": getattr(out, "failed", zero).detach(),
                "wrapped": zero, "overflow": overflow}

    @staticmethod
    def one_row_each(B, device):
        """The mean field's rows: one per example, of weight 1 (its answer is the soft `answer`)."""
        return {"rows_b": torch.arange(B, device=device), "rows_weight": torch.ones(B, device=device)}

    def answer_of_soft_run(self, start, memory):
        """answer[b, o] = sum_s P(start = s) memory[s + o] [B, N + 1, V]: a shifted copy of P(start) [B, V]
        times the memory [B, N, V], whose cells past the end (a start s >= N, or s + o >= N) hold NUL."""
        B, N, V = memory.shape
        O = N + 1
        nul = F.one_hot(torch.zeros(B, V + O - N, dtype=torch.long, device=memory.device), V).to(memory.dtype)
        cells = torch.cat([memory, nul], 1)  # [B, V + O, V]
        o, c = torch.arange(O, device=memory.device), torch.arange(V + O, device=memory.device)
        src = c[None, :] - o[:, None]  # [O, V + O]: shifted[b, o, c] = P(start = c - o)
        shifted = start[:, src.clamp(0, V - 1)] * ((src >= 0) & (src < V))  # [B, O, V + O]
        return torch.bmm(shifted, cells)  # [B, O, V]

    # -- the machine's own likelihood -------------------------------------------

    def answer_text(self, targets):
        """The characters of each example's answer: targets [B, T] (token ids, -100 off the answer) ->
        chars [B, N + 1], NUL after the text. Tokens that are not text (<eos>) add nothing."""
        B = targets.shape[0]
        N = self.machine.N
        ids = targets.clamp(min=0)
        n = self.token_len[ids] * (targets != -100)  # [B, T] characters of each answer token
        ok = torch.arange(self.K, device=targets.device) < n[..., None]  # [B, T, K]
        where = (torch.cumsum(ok.flatten(1), 1) - 1).clamp(max=N + 1)  # [B, T K] the place of each character
        chars = torch.zeros(B, N + 2, dtype=torch.long, device=targets.device)  # one spare place: too long
        chars.scatter_(1, torch.where(ok.flatten(1), where, N + 1), (self.token_chars[ids] * ok).flatten(1))
        return chars[:, :N + 1]

    def machine_nll(self, run, targets):
        """[B]: -log of the probability, under the run itself (before the LLaMA reads anything back), that
        the machine's answer is the target's. The paper's own loss (the program's output distribution
        against the label), and DeepProbLog's. It is what lets the argument heads learn before the LLaMA
        has learned to copy what it reads back: through the read-back alone the right value's row scores no
        better than a wrong one's until the LLaMA copies, and it only learns to copy from rows that are
        right (measured: README "The paper's interface").

        When the run holds every answer (`whole_answers`: the args table) this is exact. When it holds a
        sample (sort's neighbourhood), a whole answer is right only once every slot is, which a sample
        around a wrong assignment never shows; so the loss gives credit per *word* of the answer (the text
        between spaces): -sum over the target's words of log P(the machine's answer has that word, as
        often), minus log P(it has as many words). An answer of one word is scored whole either way."""
        chars = self.answer_text(targets)  # [B, N + 1]
        rows = run.get("all_rows", run)  # every answer, also those the LLaMA does not read back
        B = chars.shape[0]
        if "rows_chars" not in rows:  # the mean field: its soft answer [B, N + 1, V], per character
            p = run["answer"].float().gather(2, chars[..., None])[..., 0]  # [B, N + 1]
            counted = torch.cumsum(chars == 0, 1) <= 1  # the text and its NUL
            return -(torch.log(p.clamp(0, 1) + 1e-6) * counted).sum(1)
        b, w = rows["rows_b"], rows["rows_weight"].float()
        ok = rows["rows_ok"]
        if run.get("whole_answers"):
            p = w.new_zeros(B).index_add(0, b, w * ((rows["rows_chars"] == chars[b]).all(1) & ok))
            return -torch.log(p.clamp(0, 1) + 1e-6)
        want, want_n = words(chars)  # [B, W] each word's hash and its occurrence number; [B]
        have, have_n = words(rows["rows_chars"])  # [U, W']
        same = want[b][:, :, None, 0:1] == have[:, None, :, 0:1]  # [U, W, W', 1] the same word
        times = same[..., 0].sum(2)  # [U, W] how often the row has each of the target's words
        right = torch.cat([times > want[b][..., 1], (have_n == want_n[b])[:, None]], 1) & ok[:, None]
        p = w.new_zeros(B, right.shape[1]).index_add(0, b, w[:, None] * right)  # [B, W + 1]
        counted = torch.cat([want[..., 1] >= 0, torch.ones_like(want_n[:, None], dtype=torch.bool)], 1)
        # And the whole answer, where the sample holds it right. Per word, a value that the likeliest
        # assignment misses is credited to every slot whose change puts it in the answer (a sorted list
        # does not say which slot held it), and the slot that did hold it, read as another value, need not
        # even be drawn: seen alone, that was a single value read wrong in every prompt (README). The whole
        # answer is right only when that slot changes, so there all its credit goes to it.
        whole = w.new_zeros(B).index_add(0, b, w * ((rows["rows_chars"] == chars[b]).all(1) & ok))
        shown = whole.detach() > 0
        return (-(torch.log(p.clamp(0, 1) + 1e-6) * counted).sum(1)
                - torch.log(torch.where(shown, whole.clamp(0, 1), torch.ones_like(whole))))

    # -- read back -------------------------------------------------------------

    def offsets(self, tokens, call_pos):
        """[B, T, window]: the answer characters each position reads: the characters emitted so far, on."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        emitted = torch.cumsum(self.token_len[tokens] * (pos[None] > call_pos[:, None]), 1)  # [B, T]
        return emitted[..., None] + torch.arange(self.window, device=tokens.device)

    def codes(self, token_vectors):
        """The token vectors [vocab, D] (the output head: the embedding table, when tied) as the codes of what
        is read back and copied (`read_back`, the late copy and its own term in `AugmentedLlama.forward`).

        With `vector_grad` off (train.py's --vector_grad off) the copies do not train the vectors:
        a row that reads 7 where the answer says 8 asks the copy to turn the code of 7 into an 8, which pulls
        the two vectors together, and two close digits are then confused by the copy and by the heads, which
        read the tokens' vectors too. Measured on sort-8 with the copies training them (README "The paper's
        interface"): seed 2's 7 and 8 ended at cosine 0.60 (the other pairs of digits 0.21-0.59) and 13 of its
        15 misses were a 7 for an 8 or an 8 for a 7; seed 1's 2 and 5 at 0.50, and 6 of its 7 misses read whole
        answered a 5 as a 2. The heads' own view of each token (the runs reader's) still trains the vectors:
        reading tells digits apart, and with that view cut too the heads counted one-digit numbers worse.
        Off, sort-8's seeds 0 / 1 / 2 ended at 98.0% / 48.5% / 97.5% (on: 98.5% / 89.0% / 92.5%): the pairs
        of digits went, but seed 1's heads read nothing right on one held-out phrasing, so it is not the
        default."""
        return token_vectors if self.vector_grad else token_vectors.detach()

    def read_back(self, run, tokens, call_pos, token_vectors):
        """The embedding of what each row's positions read, [U, T, window, D] (tokens, call_pos per row).

        A character is embedded as its token's row of `token_vectors`, the model's output head (the
        token embeddings, when tied; NUL as end-of-text). So reading a character and predicting it share
        one vector: a gain learned on the characters seen in training carries over to every other one.
        Exact rows read their answer's characters (a row that did not return reads nothing); the mean
        field's read the expected output vector under its soft answer.
        """
        E_val = token_vectors[self.char_token_ids]  # [V, D]
        U = len(tokens)
        if "rows_chars" in run:
            chars = run["rows_chars"]  # [U, N + 1]
            off = self.offsets(tokens, call_pos).clamp(max=chars.shape[1] - 1)  # past the end: NUL
            read = chars[torch.arange(U, device=chars.device)[:, None, None], off]  # [U, T, window]
            return E_val[read] * run["rows_ok"][:, None, None, None].to(E_val.dtype)
        answer = run["answer"]  # [U, N + 1, V]
        off = self.offsets(tokens, call_pos).clamp(max=answer.shape[1] - 1)
        read = answer[torch.arange(U, device=answer.device)[:, None, None], off]  # [U, T, window, V]
        return read @ E_val.to(read.dtype)

    def forward(self, h, tokens, call_pos, token_vectors, cache=None, start_pos=0):
        """h [B, T', D] -> (h of each row plus what its positions from the call on read back [U, T', D], the run,
        late [U, T', D] or None).

        `late` (with `late_copy`) is what `AugmentedLlama` adds after the LLaMA's last block: the read
        character's vector times a gain of its own, zero at first. The blocks between here and the output
        learn to copy what is read back on the prompts they train on; on a phrasing never seen they can
        disturb it (sort-8's "ascending order [{cs}]:" with seed 2: 0.667 of the answers right, the heads'
        values all right and the first numbers of the answer garbled), and on the way out the read
        character reaches the output head (the same vectors, when tied) past them. `AugmentedLlama.forward`'s
        loss also asks the copy alone (its logits through the output head) for the answer: without that
        term seed 2 still garbled that phrasing (0.500 answered, 0.967 read whole), with it every phrasing
        was answered at least as often as read. The gain itself ended at 1.3-1.8 either way, so the term
        works through the vectors it copies with too (README "The paper's interface").

        Without `cache` the machine runs on the prompts and h, tokens [B, T] and call_pos [B] are per
        example; each example's hidden states are copied to its rows (`run["rows_b"]`). With `cache` (the
        run of the prompts, in `AugmentedLlama.generate`) they are already per row. `tokens` is the whole
        sequence; h holds its last T' positions, from `start_pos` (T' = T except in KV-cached decoding)."""
        max_steps = self.max_steps if not self.training else min(self.max_steps, self.max_steps_train)
        if cache is None and start_pos > 0:
            raise ValueError("the machine runs on the whole prompt: pass the run of the prompt as cache")
        # The heads read the stream scaled to unit length per position: a pretrained LLaMA's stream holds
        # "massive activations" (SmolLM2 after block 14: RMS ~1000 at the first token, ~6 elsewhere), which
        # would swamp the prompt pooling; and unit length keeps the choice's steps (about lr x |h|_1 per
        # Adam step) small next to the read-back's, so the choice follows read-backs that already inform.
        run = cache
        if cache is None:
            run = self.run(unit(h), tokens, call_pos, max_steps, token_vectors)
            rows = run["rows_b"]
            h, tokens, call_pos = h[rows], tokens[rows], call_pos[rows]
        codes = self.codes(token_vectors)
        emb = self.read_back(run, tokens, call_pos, codes)[:, start_pos:].to(h.dtype)  # [U, T', window, D]
        # The gain path adds the read character's vector at the residual stream's scale (RMS 1); the gain
        # is stored divided by GAIN_SCALE so that Adam, which moves a parameter by about lr per step,
        # can move this single number far enough within a short run.
        char = emb[:, :, 0] * torch.rsqrt(codes.float().pow(2).mean().to(h.dtype))
        delta = self.out_proj(emb.flatten(2)) + GAIN_SCALE * self.gain * char  # [U, T', D]
        after = torch.arange(start_pos, tokens.shape[1], device=h.device)[None] >= call_pos[:, None]  # [U, T']
        late = GAIN_SCALE * self.late_gain * char * after[..., None] if self.late_copy else None
        return h + delta * after[..., None], run, late


def words(chars):
    """The words (runs of characters other than space, up to the first NUL) of each text chars [M, C]:
    (words [M, W, 2]: each word's hash and how many times it came before in its text, -1 past the last
    word; n [M]: the number of words). Two words are equal when their hashes are (a polynomial hash
    modulo a prime below 2^31: collisions are possible but need two words that differ)."""
    M, C = chars.shape
    text = torch.cumsum(chars == 0, 1) == 0  # before the first NUL
    letter = text & (chars != 32)
    start = letter & ~F.pad(letter, (1, 0))[:, :C]  # a word begins
    word = torch.cumsum(start, 1) - 1  # [M, C] the word of each character (letters only)
    n = start.sum(1)
    W = max(int(n.max()), 1) if M else 1
    pos = torch.arange(C, device=chars.device) - torch.cummax(torch.where(start, torch.arange(C, device=chars.device),
                                                                          0), 1).values  # place in the word
    P = 2_147_483_647
    power = torch.ones(C, dtype=torch.long, device=chars.device)
    for i in range(1, C):
        power[i] = power[i - 1] * 131 % P
    term = torch.where(letter, (chars + 1) * power[pos] % P, 0)
    hashes = torch.zeros(M, W + 1, dtype=torch.long, device=chars.device)
    hashes.scatter_add_(1, torch.where(letter, word, W), term)
    hashes = hashes[:, :W] % P
    valid = torch.arange(W, device=chars.device)[None] < n[:, None]
    before = ((hashes[:, :, None] == hashes[:, None, :]) & valid[:, None, :]).tril(-1).sum(2)  # [M, W]
    hashes = torch.where(valid, hashes, -1)
    return torch.stack([hashes, torch.where(valid, before, -1)], 2), n


def shares(weight, b, B):
    """Each row's weight divided by the total of its example's rows (b [U] the example of each of the
    weights [U]): the likelihood given those rows."""
    total = weight.new_zeros(B).index_add(0, b, weight)
    return weight / total[b].clamp_min(1e-30)


def heaviest_rows(rows, B, k):
    """The k heaviest rows of each of B examples (rows_b sorted or not): (those rows' ROW_KEYS, the
    weight of each example's other rows [B], which nothing reads back)."""
    w = rows["rows_weight"].detach()
    order = torch.argsort(w, descending=True, stable=True)
    order = order[torch.argsort(rows["rows_b"][order], stable=True)]  # by example, heaviest first
    b = rows["rows_b"][order]
    first = torch.searchsorted(b, b, right=False)  # where each example's rows begin
    rank = torch.arange(len(b), device=b.device) - first
    keep = order[(rank < k) & (w[order] > 0)]
    keep = keep.sort().values
    lost = w.new_zeros(B).index_add(0, rows["rows_b"], w) - w.new_zeros(B).index_add(0, rows["rows_b"][keep], w[keep])
    return {key: rows[key][keep] for key in ROW_KEYS}, lost.clamp_min(0)


def segment_logsumexp(x, segment, n):
    """out[s] = log sum over i with segment[i] = s of exp(x[i]), for s in 0..n-1 (x [I], segment [I])."""
    top = x.new_full((n,), float("-inf")).scatter_reduce(0, segment, x.detach(), "amax")
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return top + x.new_zeros(n).index_add(0, segment, torch.exp(x - top[segment])).log()


class AugmentedLlama(nn.Module):
    """A `Llama` with a `ReasoningLayer` after block `layer_after` (default: the middle block).

    With `entries=None` it is the plain LLaMA (the `--baseline`), so both are trained and evaluated by the
    same code. `forward(tokens, call_pos, cache=None) -> (logits, cache)`: the cache holds the machine's
    run, which depends on the prompt only, so `generate` runs the machine once per prompt.
    """

    def __init__(self, llama, tokenizer, program=None, entries=None, config=None, **settings):
        """config: a `ReasoningConfig` (default: its defaults); `settings` change its fields by name
        (e.g. grad="mean_field"); `entries`, when given, are its entries."""
        super().__init__()
        self.llama = llama
        config = replace(config or ReasoningConfig(), **settings)
        if entries is not None:
            config = replace(config, entries=list(entries))
        self.config = config
        self.layer_after = llama.args.n_layers // 2 - 1 if config.layer_after is None else config.layer_after
        if not 0 <= self.layer_after < llama.args.n_layers:
            raise ValueError(f"layer_after={self.layer_after}: the model has blocks 0..{llama.args.n_layers - 1}")
        self.layer = None
        if config.entries is not None:
            if program is None:
                raise ValueError("a reasoning layer needs the compiled library (program) its entries are in")
            V = program.n_values
            machine = Machine(program, n_cells=config.n_cells, max_depth=config.max_depth,
                              trainable=config.trainable_library)
            chars = token_characters(tokenizer, llama.args.vocab_size, V)
            char_ids = [tokenizer.eos_id] + [_token_of_char(tokenizer, c) for c in range(1, V)]
            self.layer = ReasoningLayer(llama.args.dim, machine, chars, char_ids, config)

    share_prefix = True  # the training loss runs the rows' shared prompt once (False: once a row, as a check)

    def forward(self, tokens, call_pos, cache=None, start_pos=0, targets=None):
        """tokens [B, T] -> (logits of positions start_pos.. [U, T - start_pos, vocab], the machine's run).

        With the layer there is one row of logits per row of the run (an example's distinct answers, see
        `ReasoningLayer.answers`); the baseline has one per example. With `targets` [B, T] (-100 off the
        answer) it returns instead the answers' negative log-likelihood, summed over the batch: for each
        example, -log sum over its rows of weight * P(answer | the row), the exact mixture over the threads
        (the mean field and the baseline have one row of weight 1: the usual cross-entropy).
        start_pos > 0 only inside `generate`, whose KV cache holds the earlier positions."""
        llama = self.llama
        h = llama.tok_embeddings(tokens[:, start_pos:])
        if self.layer is None:
            h, run, late, P = llama.blocks(h, start_pos), None, None, 0  # llama.forward up to its head
        else:
            h = llama.blocks(h, start_pos, stop=self.layer_after + 1)  # [B, T', D] the blocks below the layer
            below = h
            h, run, late = self.layer(h, tokens, call_pos, llama.output.weight, cache, start_pos)  # [U, T', D]
            # In training, the positions before the earliest call are the same in every row of an example (the
            # read-back starts at the call): the blocks above run them once an example (`blocks_sharing`), and
            # only the positions from P on, which hold every target, reach the output head.
            P = 0 if targets is None or cache is not None or not self.share_prefix else \
                min([int(call_pos.min()), *(targets != -100).any(0).nonzero()[:1, 0].tolist()])
            if P > 0:
                h = llama.blocks_sharing(below[:, :P], h[:, P:], run["rows_b"], first=self.layer_after + 1)
                late = late[:, P:] if late is not None else None
            else:
                h = llama.blocks(h, start_pos, first=self.layer_after + 1)
            if late is not None:  # the late copy, on the way out
                h = h + late  # [U, T' - P, D]
        if targets is None:
            return llama.output(llama.norm(h)), run
        rows = torch.arange(len(tokens), device=tokens.device) if run is None else run["rows_b"]
        weight = torch.ones(len(rows), device=tokens.device) if run is None else run["rows_weight"]
        # The output head at the answer's positions only: the others have no target (about half of sort-8's)
        u, t = (targets[rows] != -100).nonzero(as_tuple=True)  # [K] each answer token's row and position
        want, t = targets[rows][u, t], t - P  # h holds the positions from P on

        def mixture_nll(logits):  # -sum over examples of log sum over its rows of weight * P(answer | row)
            nll = F.cross_entropy(logits.float(), want, reduction="none")  # [K]
            per_row = nll.new_zeros(len(rows)).index_add(0, u, nll)  # [U] -log P(answer | row)
            return -segment_logsumexp(torch.log(weight.float()) - per_row, rows, len(tokens)).sum()

        loss = mixture_nll(llama.output(llama.norm(h[u, t])))
        if late is not None:  # the late copy by itself (its logits through the output head) gives the answer too
            loss = loss + mixture_nll(late[u, t].float() @ self.layer.codes(llama.output.weight).float().T)
        # The machine's own likelihood of the answer (`ReasoningLayer.machine_nll`): by default weighted 1
        # with the args interface, whose heads cannot learn without it, and 0 with the tape, which learns
        # through the read-back alone (its results were measured so).
        if self.layer is not None and self.config.machine_loss_weight > 0:
            loss = loss + self.config.machine_loss_weight * self.layer.machine_nll(run, targets).sum()
        return loss, run

    @torch.no_grad()
    def generate(self, prompts, max_new_tokens, eos_id):
        """Greedy answers: token lists `prompts`, each ending at its call position -> (new tokens of each,
        cut before eos; the machine's run). The machine runs once on the whole batch. Then each group of
        prompts of one length is decoded with the LLaMA's KV cache, one cache row per row of the run: the
        next token of an example is the argmax of the mixture of its rows' next-token distributions, each
        weighted by its weight times the likelihood it gave the tokens chosen so far (exact marginal).
        run["warnings"] lists, per prompt, why its answer may be wrong (`run_warnings`; empty: no reason
        known). A prompt of max_seq_len tokens or more is a ValueError: no room is left to answer."""
        device = self.llama.tok_embeddings.weight.device
        for i, p in enumerate(prompts):  # a prompt that fills the context leaves no room for an answer
            if len(p) >= self.llama.args.max_seq_len:
                raise ValueError(f"prompt {i} is {len(p)} tokens long; the model reads at most "
                                 f"{self.llama.args.max_seq_len - 1} (max_seq_len {self.llama.args.max_seq_len}) "
                                 "and would have no room left to answer")
        T = max(len(p) for p in prompts)
        tokens = torch.tensor([p + [eos_id] * (T - len(p)) for p in prompts], device=device)  # [B, T]
        calls = torch.tensor([len(p) - 1 for p in prompts], device=device)  # [B]
        run = None if self.layer is None else self(tokens[:, :calls.max() + 1], calls)[1]
        rows_b = torch.arange(len(prompts), device=device) if run is None else run["rows_b"]  # [U]
        log_w = torch.zeros(len(rows_b), device=device) if run is None else run["rows_weight"].float().log()
        out = [None] * len(prompts)
        for length in sorted({len(p) for p in prompts}):
            rows = (calls[rows_b] == length - 1).nonzero()[:, 0]  # the rows of this group's examples
            examples, local = torch.unique(rows_b[rows], return_inverse=True)  # [G], [g] row -> example
            sub = None if run is None else _rows(run, rows)
            seq, c, lw = tokens[rows_b[rows], :length], calls[rows_b[rows]], log_w[rows]
            new = [[] for _ in examples]
            done, fed = torch.zeros(len(examples), dtype=torch.bool, device=device), 0
            self.llama._setup_cache(len(rows), min(length + max_new_tokens, self.llama.args.max_seq_len))
            try:
                for _ in range(min(max_new_tokens, self.llama.args.max_seq_len - length)):
                    logits, _ = self(seq, c, cache=sub, start_pos=fed)
                    fed = seq.shape[1]
                    log_p = torch.log_softmax(logits[:, -1].float(), -1)  # [g, vocab]
                    mixture = _by_example(lw[None] + log_p.T, local, len(examples))  # [G, vocab]
                    nxt = mixture.argmax(-1)  # [G]
                    done |= nxt == eos_id
                    for j in (~done).nonzero()[:, 0].tolist():
                        new[j].append(int(nxt[j]))
                    if done.all():
                        break
                    lw = lw + log_p.gather(1, nxt[local][:, None])[:, 0]
                    seq = torch.cat([seq, nxt[local][:, None]], 1)
            finally:
                self.llama._setup_cache(None, None)
            for j, i in enumerate(examples.tolist()):
                out[i] = new[j]
        if run is not None:
            run["warnings"] = run_warnings(run, self.layer)
        return out, run


WARN_MASS = 0.1  # a flagged share of an example's run at least this large is a warning
WARN_DROPPED = 0.5  # the share that exact execution did not run: the answer then stands on the smaller part


def run_warnings(run, layer):
    """Why an answer may be wrong though the model gives it: per example, a list of messages (empty: none).
    From the run's masses: the library did not finish (steps, call depth), stopped at an error (assert,
    raise, an index past the end), wrapped a value modulo V, or the prompt overflowed the tape; the argument
    heads found fewer numbers than the entry takes (`unread`); or most of the model's probability was not
    run (`dropped`). `generate` puts them in run["warnings"]."""
    machine, V = layer.machine, layer.machine.V
    per = {k: run[k].tolist() for k in ("not_halted", "failed", "wrapped", "dropped", "overflow")}
    per["unread"] = run["unread"].tolist() if "unread" in run else [0.0] * len(per["failed"])  # tape: none
    errors = run["error"].tolist() if "error" in run else [-1] * len(per["failed"])
    out = []
    for b in range(len(per["failed"])):
        w = []
        if per["overflow"][b]:
            w.append(f"the prompt does not fit the library's tape ({machine.N} cells): its end was cut off")
        if per["not_halted"][b] >= WARN_MASS:
            w.append(f"the library did not finish ({per['not_halted'][b]:.0%} of the run): no result within "
                     f"{layer.max_steps} steps, or recursion deeper than the call stack ({machine.D})")
        if per["failed"][b] >= WARN_MASS:
            why = machine.program.errors[errors[b]] if 0 <= errors[b] < len(machine.program.errors) else "an error"
            w.append(f"the library stopped with an error ({per['failed'][b]:.0%} of the run): {why}")
        if per["wrapped"][b] >= WARN_MASS:
            w.append(f"a value passed {V - 1} and wrapped around ({per['wrapped'][b]:.0%} of the run): the library "
                     f"computes modulo {V}, so the input is out of its range")
        if per["unread"][b] >= WARN_MASS:
            w.append(f"the argument heads found fewer numbers in the prompt than {layer.entries[0]} takes "
                     f"({len(layer.arg_heads.slots)}): the last read nothing ({per['unread'][b]:.0%})")
        if per["dropped"][b] >= WARN_DROPPED:
            what = "the likeliest tape only" if layer.interface == "tape" else "the heaviest arguments' answers"
            w.append(f"{per['dropped'][b]:.0%} of the model's probability was not run or not read back (exact "
                     f"execution keeps {what}): the answer stands on the rest")
        out.append(w)
    return out


def _by_example(scores, local, G):
    """[vocab, g] per-row log scores -> [G, vocab]: the log of each example's sum over its rows."""
    top = scores.new_full((scores.shape[0], G), float("-inf")).scatter_reduce(1, local.expand_as(scores), scores, "amax")
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = scores.new_zeros(scores.shape[0], G).index_add(1, local, torch.exp(scores - top[:, local]))
    return (top + total.log()).T


def _rows(run, rows):
    """The rows of a run that reading back needs, restricted to `rows` (the mean field's rows are examples)."""
    return {k: v[rows] for k, v in run.items() if k.startswith("rows_") or k == "answer"}


def _token_of_char(tokenizer, c):
    ids = tokenizer.encode(chr(c))
    return ids[0] if len(ids) == 1 else tokenizer.eos_id
