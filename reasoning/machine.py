"""Section 2: the machine: `Machine`, its soft step and adaptive loop, and its hard entry points."""

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from compiler import OPCODES, PRIMITIVES, ExecutionError, Program, _copy_back, _lay_out_arguments, _result

from .exact import ExactExecution
from .hard import (HALTED, PROGRAM_FIELDS, PythonExecutor, check_batch, check_inputs, check_program, pack,
                   program_arrays, run_cached, run_torch, stop_message)
from .ops import ALUS, apply_op, n_bits, op_table


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
                         f"'circuits' (gates on bit probabilities, reasoning/ops.py, section 1b)")
    if alu == "circuits":
        n_bits(V)  # V must be a power of two
    return R, N


class Machine(ExactExecution, nn.Module):
    """A differentiable register machine running a compiled `Program` (see the module docstring).

    From a product state, the step is the exact update of sp, stack, halting and value, and of every field
    where the pc's lines read the same operands (tests/test_reasoning.py); its own extra error, the operand
    mixing, is at most the pc's off-line mass per write. Why a soft run still drifts from the hard one over
    long runs: tests/soft_vs_hard.py's docstring.
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
    def run_hard(self, pc, registers, memory, max_steps=10_000, cache=None, executor="auto"):
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
        """
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        pc, registers, memory = check_inputs(self, pc, registers, memory, max_steps)
        run = lambda *state: self._execute(*state, executor)
        out = run(pc, registers, memory, max_steps) if cache is None else \
            run_cached(run, pc, registers, memory, max_steps, cache)
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
