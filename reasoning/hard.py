"""Section 3: the hard path's exact executors on integer states, their input checks and messages."""

from typing import NamedTuple

import numpy as np
import torch

from compiler import OPCODES, PRIMITIVES


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


def run_cached(run, pc, registers, memory, max_steps, cache):
    """`run(pc, registers, memory, max_steps) -> Outcome` through `cache`, a dict owned by the caller.

    A hard run is a function of (initial state, max_steps), so a cache keyed on them is exact: equal rows
    of a batch run once, and rows seen before do not run. One dict per machine (the program is not in
    the key). The caller decides when to clear it; each entry holds one example's outcome (~N ints).
    """
    if len(pc) == 0:
        return run(pc, registers, memory, max_steps)
    state = torch.cat([pc[:, None], registers, memory], 1).cpu().numpy().astype(np.int32)  # [B, 1 + R + N]
    keys = [(max_steps, row.tobytes()) for row in state]
    todo = list(dict.fromkeys(k for k in keys if k not in cache))  # distinct, in first-seen order
    if todo:
        first = {k: b for b, k in reversed(list(enumerate(keys)))}
        idx = torch.tensor([first[k] for k in todo], device=pc.device)
        fields = [t.cpu().numpy() for t in run(pc[idx], registers[idx], memory[idx], max_steps)]
        for j, k in enumerate(todo):
            cache[k] = tuple(f[j].copy() for f in fields)
    got = [cache[k] for k in keys]
    return Outcome(*[torch.from_numpy(np.stack([g[i] for g in got])).to(pc.device) for i in range(7)])


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
