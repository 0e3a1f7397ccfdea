"""
The differentiable computer: a register machine whose state is made of probability distributions.

Read it top to bottom:

1. the operation library: every primitive of compiler.PRIMITIVES as a lookup table applied to
   distributions, `out[k] = sum over a, b with T[a, b] = k of p(a) q(b)`, and faster equal forms
   (a circulant matrix for add/sub, cumulative sums for comparisons and min/max);
2. `Machine`: a compiled `Program` turned into one-hot field matrices (opcode, dst, a, b, imm, target),
   one step of the machine as an expectation over the program counter, and the adaptive loop that runs
   until the machine has halted;
3. the hard, int-in/int-out interface (`Machine.run`, `Machine.run_batch`) that must agree exactly with
   the reference interpreter `Program.run` in compiler.py, which defines what every instruction means.

State (batched, B examples; every row is a probability vector, so a one-hot state is an ordinary machine):
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
own marginal). This approximation is unstable over long runs: a small error on the pc or a register
(soft inputs, round-off) grows geometrically with the steps, and so do gradients at one-hot inputs
(tests/soft_vs_hard.py measures it). Long programs therefore want one-hot (hard) executions, e.g. one per
candidate argument value, weighted by the argument's distribution. The registers, memory and stack describe the running mass only (they are conditional on
not having halted); the mass that halts at a step leaves the pc, and its return value and memory are
added to the outputs weighted by that mass, which makes the outputs the expectation over halting time.

Soft edge cases, which a hard run reports as `ExecutionError` like `Program.run`: a load from an address
>= N reads the value 0 and a store there is dropped; a call with a full stack keeps sp at D and
overwrites nothing.
"""

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from compiler import OPCODES, PRIMITIVES, ExecutionError, Program, _copy_back, _lay_out_arguments

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
    pc step after step (see tests/soft_vs_hard.py); this form is exact on one-hot inputs.
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


def apply_op(name, p, q, support=None):
    """The primitive `name` on distributions, by its fast form if it has one, else by its table."""
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
SUPPORT_MAX = 8  # without gradients, ops on operands with at most this many live values use the table
# Below this running mass an example counts as halted: its state is not renormalised further, so that
# float round-off on a halted example's pc is never blown up into a full state.
MIN_MASS = 1e-6


@dataclass
class MachineOutput:
    value: torch.Tensor  # [B, V] returned value, expectation over halting time (its mass is `halted`)
    memory: torch.Tensor  # [B, N, V] memory when halting, expectation over halting time
    halted: torch.Tensor  # [B] halted mass (>= 1 - eps unless max_steps ran out)
    steps: int  # steps run: the slowest example's


class Machine(nn.Module):
    """A differentiable register machine running a compiled `Program` (see the module docstring)."""

    def __init__(self, program: Program, n_regs=None, n_cells=None, max_depth=16, trainable=False, sharpness=10.0):
        super().__init__()
        V, L = program.n_values, len(program.instructions)
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
        self.register_buffer("e_a0", one_hot(self.arg_regs[0], R))  # [R] the result register a0
        self.register_buffer("e_0", one_hot(0, V))  # [V] the value 0
        self.register_buffer("writes", torch.tensor([float(op in WRITES) for op in self.ops]))
        self.register_buffer("steps_on", torch.tensor([float(op in WRITES or op == "store") for op in self.ops]))
        self.prims = [op for op in self.ops if op in PRIMITIVES]
        tables = torch.stack([op_table(op, V) for op in self.prims]) if self.prims else torch.zeros(0, V, V)
        self.register_buffer("tables", tables.long(), persistent=False)  # [n_prims, V, V] for one-hot operands

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
        for n in names:
            if n not in self.program.functions:
                raise ExecutionError(f"unknown function {n!r}; the program defines {sorted(self.program.functions)}")
        entries = torch.tensor([self.program.functions[n].entry for n in names])
        return F.one_hot(entries, self.L).to(self.e_a0.dtype)

    def init_state(self, names, args_list):
        """Hard inputs -> (pc [B, L], registers [B, R, V], memory [B, N, V], per-example list bindings).

        Arguments go into the argument window and lists into memory from address 0, exactly as
        `Program.run` lays them out (the same function does it).
        """
        pc = self.entry_pc(names)
        regs, mems, lists = [], [], []
        for name, args in zip(names, args_list):
            fn = self.program.functions[name]
            mem, r, bound = _lay_out_arguments(fn, list(args), self.R, self.arg_regs, self.V, self.N)
            regs.append(r), mems.append(mem), lists.append(bound)
        return pc, self.one_hot(regs), self.one_hot(mems), lists

    # --- one step ----------------------------------------------------------------

    def _step(self, f, state, fast, check):
        """One instruction, as an expectation over the pc (mean field on soft states, exact on one-hot).

        fast (no gradients): sums and blends skip their terms that are exactly zero (a one-hot pc turns
        `p @ field` into a row gather, one-hot operands turn an op into one table lookup, and blends
        touch only the entries whose weight is nonzero, in place); none of this changes a value.
        check (hard runs): raise ExecutionError where `Program.run` would.
        """
        pc, regs, mem, saved, ret_to, sp, halted, value, mem_out = state
        B, is_, zero = pc.shape[0], f["is"], pc.new_zeros(self.L)
        is_ret, is_halt = is_.get("ret", zero), is_.get("halt", zero)
        calls = "call" in self.col
        line = pc.argmax(-1) if fast and self._one_hot(pc) else None  # [B] the line, for a hard pc
        if line is None:
            mm, read = (lambda p, M: p @ M), _read
        else:  # p lives on the pc's line only: p @ M = p.sum() M[line]; a hard field row picks one register
            mm = lambda p, M: M[line] * p.sum(-1, keepdim=True)
            read = (lambda sel, regs: _read(sel, regs)) if self.trainable else \
                (lambda sel, regs: regs[torch.arange(B), sel.argmax(-1)] * sel.sum(-1, keepdim=True))
        s0 = sp[:, :1] if calls else pc.new_ones(B, 1)  # [B, 1] P(stack empty): a ret there halts
        # Halting: `ret a` on an empty stack returns r[a]; `halt` returns r[a0].
        stop = pc * (is_halt + is_ret * s0)  # [B, L] joint mass that halts now
        h = stop.sum(-1)  # [B]
        if not fast or h.max() > 0:
            res = mm(pc * is_ret, f["a"]) * s0 + (pc @ is_halt)[:, None] * self.e_a0  # [B, R]
            value = value + _read(res, regs)
            mem_out = _blend(mem_out, h, mem, fast, add=True)
            halted = halted + h
        go = pc - stop  # [B, L] joint mass that runs on
        mass = go.sum(-1, keepdim=True)
        cond = go / mass.clamp_min(MIN_MASS)  # [B, L] the pc of the running mass, normalised
        w, a_sel, b_sel, W, y_imm = mm(cond, f["mix"]).split(f["sizes"], -1)
        x, y = read(a_sel, regs), read(b_sel, regs) + y_imm  # operands: r[a]; r[b] or the immediate
        live = (w.amax(0) > 0).tolist() if fast else [True] * len(self.ops)
        on = lambda op: op in self.col and live[self.col[op]]
        wt = lambda op: w[:, self.col[op]]
        addr, off = x[:, :self.N], x[:, self.N:].sum(-1)  # addresses >= N do not exist
        if check:
            bad = sum(wt(op) for op in ("load", "store") if op in self.col) * off > 0.5
            self._check(pc, bad, lambda b: f"memory address {int(x[b].argmax())} is past the last of n_cells={self.N} cells")
        # The value written to r[dst], conditional on a write: a mixture of the ops' results.
        val = x.new_zeros(B, self.V)
        prims = [op for op in self.prims if on(op)]
        if prims and fast and self._one_hot(x) and self._one_hot(y):
            # Both operands one-hot: the table's sum has a single term, out = one_hot(T[a, b]).
            j = torch.tensor([self.prims.index(op) for op in prims])[:, None]
            outs = F.one_hot(self.tables[j, x.argmax(-1), y.argmax(-1)], self.V).to(x.dtype)  # [n, B, V]
            val = val + (w[:, [self.col[op] for op in prims]].T[..., None] * outs).sum(0)
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
                out = torch.bmm(addr[:, None], mem)[:, 0] + off[:, None] * self.e_0
            else:
                out = apply_op(op, x, y, support)
            val = val + wt(op)[:, None] * out
        val = val / (w @ self.writes).clamp_min(MIN_MASS)[:, None]
        new_pc, popped = pc.new_zeros(pc.shape), None
        if calls:  # every stack update reads the stack as it was before this step
            new_sp = sp
            if on("ret"):  # pop: registers come back except a0 := r[a]; jump to the return line; sp -= 1
                pop = (pc @ is_ret)[:, None] / mass.clamp_min(MIN_MASS) * sp[:, 1:]  # [B, D] P(pop slot d-1)
                q = pop.sum(-1)  # [B] P(this step pops)
                rows = q.nonzero()[:, 0] if fast else slice(None)
                take = (lambda t: t.index_select(0, rows)) if fast else (lambda t: t)
                qr = take(q)[:, None, None]
                restored = torch.bmm(take(pop)[:, None], take(saved).flatten(2)).view(-1, self.R, self.V)  # mass q
                restored = restored + self.e_a0[:, None] * (qr * take(x)[:, None] - restored)
                popped = (rows, restored - qr * take(regs))  # the change to the registers
                new_pc = new_pc + torch.bmm((pop * mass)[:, None], ret_to)[:, 0]
                new_sp = new_sp + F.pad(pop, (0, 1)) - q[:, None] * sp
            if on("call"):  # push (registers, line after the call) at sp; sp += 1
                c = wt("call")
                if check:
                    self._check(pc, c * sp[:, -1] > 0.5, lambda b: f"call depth limit: more than max_depth={self.D} nested calls")
                push = c[:, None] * sp[:, :-1]  # [B, D] P(this call writes slot d)
                back = F.pad((cond * is_["call"])[:, :-1], (1, 0))  # [B, L] the line after the call, mass c
                saved = _blend(saved, push, regs[:, None], fast)
                if fast:  # c is one of 0, 1 where push != 0 in a hard run
                    ret_to = _blend(ret_to, push, (back / c.clamp_min(MIN_MASS)[:, None])[:, None], fast)
                else:  # the same blend, push (back / c - ret_to), without dividing by c
                    ret_to = ret_to + sp[:, :-1, None] * (back[:, None] - c[:, None, None] * ret_to)
                up = torch.cat([sp[:, :1] * 0, sp[:, :-2], sp[:, -2:].sum(-1, keepdim=True)], -1)  # full stays full
                new_sp = new_sp + c[:, None] * (up - sp)
            sp = new_sp
        if on("store"):  # memory[r[a]] = r[b]
            mem = _blend(mem, wt("store")[:, None] * addr, y[:, None], fast)
        regs = _blend(regs, W, val[:, None], fast)
        if popped is not None:
            rows, change = popped
            if fast:
                regs.index_copy_(0, rows, regs.index_select(0, rows) + change)
            else:
                regs = regs + change
        # Next line: branch jumps when r[a] == 0; jump and call jump; the rest go on to line + 1.
        z = x[:, :1]  # [B, 1] P(r[a] == 0)
        jumps = is_.get("jump", zero) + is_.get("call", zero)
        is_branch = is_.get("branch", zero)
        new_pc = new_pc + F.pad((go * (f["seq"] + is_branch * (1 - z)))[:, :-1], (1, 0))
        new_pc = new_pc + mm(go * (jumps + is_branch * z), f["target"])
        return new_pc, regs, mem, saved, ret_to, sp, halted, value, mem_out

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
        """Up to n steps, stopping early once every example has halted: (state..., steps taken)."""
        for i in range(n):
            if state[6].min() >= 1 - eps:
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
        state = (pc, registers, memory, saved, ret_to, sp, zeros(), zeros(self.V), zeros(self.N, self.V))
        chunk = checkpoint_every if (checkpoint_every and not fast) else max_steps
        steps = 0
        while steps < max_steps and state[6].min() < 1 - eps:
            n = min(chunk, max_steps - steps)
            if chunk < max_steps:
                *state, k = checkpoint(self._chunk, f, n, eps, fast, _check, *state, use_reentrant=False)
            else:
                *state, k = self._chunk(f, n, eps, fast, _check, *state)
            steps += k
        return MachineOutput(value=state[7], memory=state[8], halted=state[6], steps=steps)

    # --- 3. hard use: ints in, ints out -----------------------------------------

    @torch.no_grad()
    def run_batch(self, names, args_list, max_steps=10_000):
        """Run `names[i](*args_list[i])` for every i in one batch on one-hot states.

        Programs (chosen by the initial pc) and inputs may differ across the batch. Returns the list of
        results; list arguments are mutated in place, as `Program.run` and CPython do.
        """
        pc, regs, mem, lists = self.init_state(names, args_list)
        out = self(pc, regs, mem, max_steps=max_steps, eps=0.5, _check=True)
        for b, name in enumerate(names):
            if out.halted[b] < 0.5:
                raise ExecutionError(f"step limit: {name} did not halt within max_steps={max_steps}")
        _, mem_values = out.memory.max(-1)  # [B, N]
        for b, bound in enumerate(lists):
            _copy_back(mem_values[b].tolist(), bound)
        return out.value.argmax(-1).tolist()

    def run(self, name, *args, max_steps=10_000):
        """`Program.run(name, *args)` on the tensor machine: same result, lists mutated the same way."""
        return self.run_batch([name], [args], max_steps)[0]
