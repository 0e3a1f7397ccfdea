"""
Compile restricted Python functions into register-machine programs.

This file is the "neurally compiled library" half of the project: plain Python algorithms become
programs that the differentiable machine in reasoning.py runs inside the network. Read it top to bottom:

1. the value model and the primitive operations (the machine's lookup tables are built from these),
2. the program format (the IR): `Instr`, `Function`, `Program`, and its printed disassembly,
3. the compiler passes over Python's `ast`: parse and validate, allocate registers, lower, resolve labels,
4. the reference interpreter, `Program.run`, which *defines* what the IR means.

Value model. Every value is an integer in [0, V), V = `n_values` (default 128, as in the paper).
Arithmetic wraps modulo V; comparisons give 0 or 1. `a // 0` and `a % 0` are 0 (a machine cannot raise).

Register file and calling convention. A program has `n_regs` registers r0..r{R-1}. The last few, the
*argument window* `a0, a1, ...` (= `Program.arg_regs`), carry arguments into a call and the return value
out of it. A function's prologue copies its parameters out of the window into its own registers; a
caller evaluates every argument first, then moves them into the window, then `call`s. `call` pushes the
whole register file and the return address onto the call stack and jumps; `ret x` pops them, puts the
value of `x` into `a0` of the restored file and jumps back; the caller then moves `a0` where it needs it.
A `ret` with an empty stack halts the machine with that value: that is how a top-level call ends.

Lists live in memory, a flat array of `n_cells` cells, each holding a value. A list argument occupies two
argument registers, its base address and its length; `len(a)` reads the second one, `a[i]` loads cell
`base + i`. `Program.run` lays list arguments out one after another from address 0, in argument order.
"""

from dataclasses import dataclass, field

# -----------------------------------------------------------------------------
# 1. Primitive operations: the ALU. Each one maps two values in [0, V) to a value in [0, V).
# reasoning.py tabulates exactly these functions into its lookup tables, so the two machines agree.

PRIMITIVES = {
    "add": lambda a, b, V: (a + b) % V,
    "sub": lambda a, b, V: (a - b) % V,
    "mul": lambda a, b, V: (a * b) % V,
    "floordiv": lambda a, b, V: a // b if b else 0,
    "mod": lambda a, b, V: a % b if b else 0,
    "lt": lambda a, b, V: int(a < b),
    "le": lambda a, b, V: int(a <= b),
    "gt": lambda a, b, V: int(a > b),
    "ge": lambda a, b, V: int(a >= b),
    "eq": lambda a, b, V: int(a == b),
    "ne": lambda a, b, V: int(a != b),
    "and": lambda a, b, V: int(bool(a) and bool(b)),
    "or": lambda a, b, V: int(bool(a) or bool(b)),
    "min": lambda a, b, V: min(a, b),
    "max": lambda a, b, V: max(a, b),
}

# -----------------------------------------------------------------------------
# 2. The program format.
#
#   const  dst, imm          r[dst] = imm
#   mov    dst, a            r[dst] = r[a]
#   <prim> dst, a, b         r[dst] = PRIM(r[a], r[b])      prim is any key of PRIMITIVES
#   <prim> dst, a, #imm      r[dst] = PRIM(r[a], imm)       (b is None: the second operand is immediate)
#   load   dst, a            r[dst] = memory[r[a]]
#   store  a, b              memory[r[a]] = r[b]
#   jump   target            pc = target
#   branch a, target         if r[a] == 0: pc = target      (branch if zero)
#   call   target            push (registers, pc + 1); pc = target
#   ret    a                 v = r[a]; pop (registers, return pc); r[a0] = v; pc = return pc
#                            (with an empty stack: halt, returning v)
#   halt                     stop; the result is r[a0]

OPCODES = ("const", "mov", *PRIMITIVES, "load", "store", "jump", "branch", "call", "ret", "halt")


class CompileError(Exception):
    """A construct outside the supported subset, with the source position it came from."""

    def __init__(self, message, lineno=None, col_offset=None):
        where = f"line {lineno}, column {col_offset}: " if lineno is not None else ""
        super().__init__(where + message)
        self.lineno = lineno
        self.col_offset = col_offset


class ExecutionError(RuntimeError):
    """A program ran past a limit of the machine (registers, memory, call depth, steps) or got bad input."""


@dataclass
class Instr:
    op: str  # one of OPCODES
    dst: int | None = None  # register written
    a: int | None = None  # first source register
    b: int | None = None  # second source register (None: use imm)
    imm: int | None = None  # immediate value
    target: int | None = None  # jump / branch / call target line
    lineno: int | None = None  # source line this instruction came from
    note: str = ""  # for the disassembly: variable or callee names


@dataclass
class Param:
    name: str
    is_list: bool = False  # a list takes two argument registers: base address and length


@dataclass
class Function:
    name: str
    entry: int  # first line of the function in Program.instructions
    params: list[Param] = field(default_factory=list)

    @property
    def n_arg_regs(self):
        return sum(2 if p.is_list else 1 for p in self.params)


def _reg_name(r, arg_regs):
    return f"a{arg_regs.index(r)}" if r in arg_regs else f"r{r}"


@dataclass
class Program:
    instructions: list[Instr]
    functions: dict[str, Function]
    n_regs: int
    arg_regs: list[int]  # the argument window, a0 first; a0 also carries return values
    n_values: int = 128

    def __len__(self):
        return len(self.instructions)

    def format_instr(self, ins):
        """One instruction as assembly text, e.g. `add    r2, r0, #1`."""
        reg = lambda r: _reg_name(r, self.arg_regs)
        ops = []
        if ins.dst is not None:
            ops.append(reg(ins.dst))
        if ins.a is not None:
            ops.append(reg(ins.a))
        if ins.op in PRIMITIVES:
            ops.append(reg(ins.b) if ins.b is not None else f"#{ins.imm}")
        elif ins.op == "const":
            ops.append(str(ins.imm))
        if ins.target is not None:
            ops.append(f"@{ins.target}")
        return f"{ins.op:<8} {', '.join(ops)}"

    def __str__(self):
        """A disassembly: function labels, line numbers, instructions, source lines and notes."""
        starts = {f.entry: f for f in self.functions.values()}
        lines = []
        for i, ins in enumerate(self.instructions):
            if i in starts:
                f = starts[i]
                args = ", ".join(p.name + ("[]" if p.is_list else "") for p in f.params)
                lines.append(f"{f.name}({args}):")
            text = self.format_instr(ins)
            src = f"line {ins.lineno}" if ins.lineno is not None else ""
            note = f"  {ins.note}" if ins.note else ""
            lines.append(f"  {i:4d}  {text:<28} ; {src}{note}".rstrip())
        return "\n".join(lines)

    # -------------------------------------------------------------------------
    # 4. The reference interpreter: what the IR means, one instruction at a time.

    def run(self, name, *args, n_cells=None, max_depth=64, max_steps=1_000_000, return_steps=False):
        """Run function `name` on ints and Python lists; lists are mutated in place like CPython would.

        Returns the function's return value (and the number of steps taken, if `return_steps`).
        """
        V = self.n_values
        n_cells = V if n_cells is None else n_cells
        if name not in self.functions:
            raise ExecutionError(f"unknown function {name!r}; the program defines {sorted(self.functions)}")
        fn = self.functions[name]
        memory, regs, lists = _lay_out_arguments(fn, args, self.n_regs, self.arg_regs, V, n_cells)
        stack = []  # (saved registers, return line)
        pc, steps = fn.entry, 0
        while True:
            if steps >= max_steps:
                raise ExecutionError(f"step limit: {name} did not halt within max_steps={max_steps}")
            steps += 1
            ins = self.instructions[pc]
            op, pc = ins.op, pc + 1
            if op == "const":
                regs[ins.dst] = ins.imm % V
            elif op == "mov":
                regs[ins.dst] = regs[ins.a]
            elif op in PRIMITIVES:
                b = regs[ins.b] if ins.b is not None else ins.imm % V
                regs[ins.dst] = PRIMITIVES[op](regs[ins.a], b, V)
            elif op == "load":
                regs[ins.dst] = memory[_address(regs[ins.a], n_cells, pc - 1)]
            elif op == "store":
                memory[_address(regs[ins.a], n_cells, pc - 1)] = regs[ins.b]
            elif op == "jump":
                pc = ins.target
            elif op == "branch":
                if regs[ins.a] == 0:
                    pc = ins.target
            elif op == "call":
                if len(stack) >= max_depth:
                    raise ExecutionError(f"call depth limit: more than max_depth={max_depth} nested calls")
                stack.append((list(regs), pc))
                pc = ins.target
            elif op in ("ret", "halt"):
                value = regs[ins.a] if op == "ret" else regs[self.arg_regs[0]]
                if op == "halt" or not stack:
                    _copy_back(memory, lists)
                    return (value, steps) if return_steps else value
                regs, pc = stack.pop()
                regs[self.arg_regs[0]] = value
            else:
                raise ExecutionError(f"line {pc - 1}: unknown opcode {op!r}")


def _address(value, n_cells, line):
    if value >= n_cells:
        raise ExecutionError(f"line {line}: memory address {value} is past the last of n_cells={n_cells} cells")
    return value


def _lay_out_arguments(fn, args, n_regs, arg_regs, V, n_cells):
    """Check the arguments against `fn`'s parameters; place ints in registers and lists in memory.

    Returns (memory, registers, [(python list, base address)]) for the interpreter.
    """
    if len(args) != len(fn.params):
        raise ExecutionError(f"{fn.name} takes {len(fn.params)} arguments ({', '.join(p.name for p in fn.params)}), got {len(args)}")
    if fn.n_arg_regs > len(arg_regs):
        raise ExecutionError(f"{fn.name} needs {fn.n_arg_regs} argument registers, the program has {len(arg_regs)}")
    memory, regs, lists, free, window = [0] * n_cells, [0] * n_regs, [], 0, iter(arg_regs)
    for p, x in zip(fn.params, args):
        if p.is_list != isinstance(x, list):
            raise ExecutionError(f"argument {p.name} of {fn.name} must be {'a list' if p.is_list else 'an int'}, got {type(x).__name__}")
        values = x if p.is_list else [x]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < V:
                raise ExecutionError(f"argument {p.name} of {fn.name}: {v!r} is not an int in [0, {V})")
        if p.is_list:
            if len(x) >= V:
                raise ExecutionError(f"list {p.name} has {len(x)} elements; a length must be a value below V={V}")
            if free + len(x) > n_cells:
                raise ExecutionError(f"list {p.name} does not fit: memory has n_cells={n_cells} cells")
            memory[free:free + len(x)] = x
            regs[next(window)], regs[next(window)] = free, len(x)
            lists.append((x, free))
            free += len(x)
        else:
            regs[next(window)] = x
    return memory, regs, lists


def _copy_back(memory, lists):
    for x, base in lists:
        x[:] = memory[base:base + len(x)]
