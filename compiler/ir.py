"""The program format (the IR), its printed form, and the reference interpreter that defines it.

Read in this order: the primitive operations (the ALU: reasoning/ tabulates exactly these), the
opcodes and `Instr`, the types of values, `Function`/`Program` and the disassembly, `hole`, and last
`execute`, the interpreter behind `Program.run`: what every instruction means, one step at a time.
"""

import os
from dataclasses import dataclass, field

# -----------------------------------------------------------------------------
# 1. Primitive operations: the ALU. Each one maps two values in [0, V) to a value in [0, V).
# reasoning/ tabulates exactly these functions into its lookup tables, so the two machines agree.

PRIMITIVES = {
    "add": lambda a, b, V: (a + b) % V,
    "sub": lambda a, b, V: (a - b) % V,
    "mul": lambda a, b, V: (a * b) % V,
    "floordiv": lambda a, b, V: a // b if b else 0,  # the compiler checks for zero first, like Python
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
    "bitand": lambda a, b, V: (a & b) % V,
    "bitor": lambda a, b, V: (a | b) % V,
    "bitxor": lambda a, b, V: (a ^ b) % V,
    "lshift": lambda a, b, V: a * pow(2, b, V) % V,
    "rshift": lambda a, b, V: a >> b,
    "pow": lambda a, b, V: pow(a, b, V),
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
#   fail   #k                stop with error k: the message is Program.errors[k]

OPCODES = ("const", "mov", *PRIMITIVES, "load", "store", "jump", "branch", "call", "ret", "halt", "fail")


class CompileError(Exception):
    """A construct outside the supported subset, with the source position it came from: `.lineno`,
    `.col_offset`, and, for functions read from a file, `.filename` and `.function`."""

    def __init__(self, message, lineno=None, col_offset=None, filename=None, function=None):
        self.message, self.lineno, self.col_offset = message, lineno, col_offset
        self.filename, self.function = filename, function
        super().__init__(self._text())

    def _text(self):
        if self.lineno is None:
            return self.message
        where = f"line {self.lineno}, column {self.col_offset}"
        if self.filename:
            where = f"{os.path.basename(self.filename)}, {where}, in {self.function}"
        return f"{where}: {self.message}"


class ExecutionError(RuntimeError):
    """A program stopped with an error (`fail`: assert, raise, an index past a list's end...), ran past
    a limit of the machine (registers, memory, call depth, steps), or got bad input."""


def _error(message, node):
    return CompileError(message, getattr(node, "lineno", None), getattr(node, "col_offset", None))


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
    wrap_ok: bool = False  # wrapping modulo V here is compiled control flow, not the user's arithmetic


# Types of values, as the compiler infers them. A list or string takes two registers (base, length); a
# tuple is its parts side by side. "char" is a one-character string: its code, in one register.
INT, CHAR, STR, LIST, CHARS = "int", "char", "str", "list", "list[str]"
SEQS = (STR, LIST, CHARS)

_REQUIRED = object()  # Param.default of a parameter without a default


@dataclass
class Param:
    name: str
    is_list: bool = False  # a list or string: it takes two argument registers, base address and length
    type: str | None = None  # INT, STR, LIST or CHARS (None: LIST if is_list else INT)
    default: object = _REQUIRED  # a constant, for a call that leaves this argument out

    def __post_init__(self):
        self.type = self.type or (LIST if self.is_list else INT)


def _width(t):
    """How many registers a value of type t takes."""
    return sum(map(_width, t)) if isinstance(t, tuple) else 2 if t in SEQS else 1


@dataclass
class Function:
    name: str
    entry: int  # first line of the function in Program.instructions
    params: list[Param] = field(default_factory=list)
    returns: object = INT  # the type of the return value (a tuple of types for several values)
    bias: dict = field(default_factory=dict)  # variables kept as value + b, so they may count down to -b

    @property
    def n_arg_regs(self):
        return sum(_width(p.type) for p in self.params)


@dataclass
class Hole:
    """One `hole(alt0, alt1, ...)` call site: its value is alternative `Program.run(..., holes=[...])[index]`."""
    index: int
    function: str
    lineno: int
    text: str  # the call's source
    n_alternatives: int
    register: int  # h{index}: holds the chosen alternative for a whole run; no instruction writes it


@dataclass
class Program:
    instructions: list[Instr]
    functions: dict[str, Function]
    n_regs: int
    arg_regs: list[int]  # the argument window, a0 first; a0 also carries return values
    n_values: int = 128
    source_lines: list[str] = field(default_factory=list)  # the compiled source, for the disassembly
    errors: list[str] = field(default_factory=list)  # `fail #k` stops the run with errors[k]
    holes: list[Hole] = field(default_factory=list)
    reserved: list[int] = field(default_factory=list)  # initial contents of the reserved cells (see top)
    line_numbers: list[int] = field(default_factory=list)  # source line -> its line in its own file

    def __len__(self):
        return len(self.instructions)

    @property
    def hole_regs(self):
        return [h.register for h in self.holes]

    def reg_name(self, r):
        """a{k} for the argument window, h{i} for hole i, r{k} otherwise."""
        if r in self.arg_regs:
            return f"a{self.arg_regs.index(r)}"
        return f"h{self.hole_regs.index(r)}" if r in self.hole_regs else f"r{r}"

    def format_instr(self, ins):
        """One instruction as assembly text, e.g. `add    r2, r0, #1`."""
        ops = []
        if ins.dst is not None:
            ops.append(self.reg_name(ins.dst))
        if ins.a is not None:
            ops.append(self.reg_name(ins.a))
        if ins.op in PRIMITIVES:
            ops.append(self.reg_name(ins.b) if ins.b is not None else f"#{ins.imm}")
        elif ins.op == "const":
            ops.append(str(ins.imm))
        elif ins.op == "store":
            ops.append(self.reg_name(ins.b))
        elif ins.op == "fail":
            ops.append(f"#{ins.imm}")
        if ins.target is not None:
            ops.append(f"@{ins.target}")
        return f"{ins.op:<8} {', '.join(ops)}"

    def __str__(self):
        """A disassembly: function labels, line numbers, instructions, notes, and the source line each
        run of instructions came from (`; 3| return n`); then the holes and the error messages."""
        starts = {f.entry: f for f in self.functions.values()}
        lines, last = [], None
        for i, ins in enumerate(self.instructions):
            if i in starts:
                f, last = starts[i], None
                args = ", ".join(p.name + ("[]" if p.is_list else "") for p in f.params)
                kept = ", ".join(f"{v} + {b}" for v, b in f.bias.items())
                lines.append(f"{f.name}({args}):" + (f"  ; registers hold {kept} (counting down past 0)" if kept else ""))
            src = ""
            if ins.lineno is not None and ins.lineno != last:
                text = self.source_lines[ins.lineno - 1].strip() if 0 < ins.lineno <= len(self.source_lines) else ""
                shown = self.line_numbers[ins.lineno - 1] if ins.lineno <= len(self.line_numbers) else ins.lineno
                src, last = f"{shown:>3}| {text}", ins.lineno
            note = f"  ({ins.note})" if ins.note else ""
            lines.append(f"  {i:4d}  {self.format_instr(ins):<24} ; {src}{note}".rstrip(" ;"))
        for h in self.holes:
            lines.append(f"hole {h.index} in {h.function}, line {h.lineno}: h{h.index} chooses one of "
                         f"{h.n_alternatives}: {h.text}")
        lines += [f"error #{k}: {message}" for k, message in enumerate(self.errors)]
        return "\n".join(lines)

    def run(self, name, *args, holes=None, n_cells=None, max_depth=64, max_steps=1_000_000, return_steps=False):
        """Run function `name` on ints, strings and Python lists; lists are mutated in place like CPython.

        `holes`: the chosen alternative of each hole (default: all 0). Returns the function's return value
        (an int, a str, a list or a tuple, as its type says), and the number of steps taken if
        `return_steps`. A `fail` raises ExecutionError. The interpreter itself is section 3 of this file.
        """
        return execute(self, name, *args, holes=holes, n_cells=n_cells, max_depth=max_depth,
                       max_steps=max_steps, return_steps=return_steps)


def hole(*alternatives):
    """A choice left open in a library's source: `hole(a[j] > key, a[j] < key)`.

    Compiled, the program evaluates only the alternative chosen for the run (`Program.run(...,
    holes=[i, ...])`, or the machine's hole registers). In plain CPython this function makes the source
    run as written with every hole at alternative 0; note that CPython evaluates *all* alternatives
    (as arguments of this call), which matters only if they have side effects.
    """
    if len(alternatives) < 2:
        raise TypeError("hole(...) needs at least two alternatives")
    return alternatives[0]


HEAP_POINTER, HEAP_END, RETURN_CELLS = 0, 1, 2  # the reserved memory cells (see the docstring of compiler/__init__.py)

# -----------------------------------------------------------------------------
# 3. The reference interpreter: what the IR means, one instruction at a time.


def execute(program, name, *args, holes=None, n_cells=None, max_depth=64, max_steps=1_000_000, return_steps=False):
    """`Program.run`: run function `name` of `program` on ints, strings and lists, mutating lists in place."""
    V, code, arg_regs = program.n_values, program.instructions, program.arg_regs
    n_cells = V if n_cells is None else n_cells
    if name not in program.functions:
        raise ExecutionError(f"unknown function {name!r}; the program defines {sorted(program.functions)}")
    fn = program.functions[name]
    memory, regs, lists = _lay_out_arguments(fn, args, program.n_regs, arg_regs, V, n_cells, program)
    for h, choice in zip(program.holes, _hole_choices(program, holes)):
        regs[h.register] = choice
    stack = []  # (saved registers, return line)
    pc, steps = fn.entry, 0
    while True:
        if steps >= max_steps:
            raise ExecutionError(f"step limit: {name} did not halt within max_steps={max_steps}")
        if not 0 <= pc < len(code):
            raise ExecutionError(f"pc {pc} is outside the program's {len(code)} lines")
        steps += 1
        ins = code[pc]
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
            value = regs[ins.a] if op == "ret" else regs[arg_regs[0]]
            if op == "halt" or not stack:
                _copy_back(memory, lists)
                value = _result(fn, value, memory)
                return (value, steps) if return_steps else value
            regs, pc = stack.pop()
            regs[arg_regs[0]] = value
        elif op == "fail":
            raise ExecutionError(program.errors[ins.imm] if ins.imm < len(program.errors) else f"error {ins.imm}")
        else:
            raise ExecutionError(f"line {pc - 1}: unknown opcode {op!r}")


def _address(value, n_cells, line):
    if value >= n_cells:
        raise ExecutionError(f"line {line}: memory address {value} is past the last of n_cells={n_cells} cells")
    return value


def _hole_choices(program, holes):
    """The chosen alternative of every hole (all 0 by default), checked."""
    if holes is None:
        return [0] * len(program.holes)
    if not isinstance(holes, (list, tuple)) or len(holes) != len(program.holes):
        raise ExecutionError(f"holes must be a list of {len(program.holes)} choices (one per hole), got {holes!r}")
    for h, c in zip(program.holes, holes):
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < h.n_alternatives:
            raise ExecutionError(f"hole {h.index} ({h.text}) has {h.n_alternatives} alternatives: its choice must be "
                                 f"an int in [0, {h.n_alternatives}), got {c!r}")
    return list(holes)


def _lay_out_arguments(fn, args, n_regs, arg_regs, V, n_cells, program=None):
    """Check the arguments against `fn`'s parameters; place ints in registers, lists and strings in
    memory after the program's reserved cells, and set the heap pointer past them.

    Returns (memory, registers, [(python list, base address, of characters?)]) for the interpreter.
    """
    params, args = fn.params, list(args)
    missing = [p for p in params[len(args):] if p.default is _REQUIRED]
    if len(args) > len(params) or missing:
        raise ExecutionError(f"{fn.name} takes {len(params)} arguments ({', '.join(p.name for p in params)}), got {len(args)}")
    args += [p.default for p in params[len(args):]]
    if fn.n_arg_regs > len(arg_regs):
        raise ExecutionError(f"{fn.name} needs {fn.n_arg_regs} argument registers, the program has {len(arg_regs)}")
    reserved = program.reserved if program is not None else []
    if reserved and len(reserved) >= n_cells:
        raise ExecutionError(f"the program's {len(reserved)} reserved cells do not fit in n_cells={n_cells}")
    memory, regs, lists, free, window = [0] * n_cells, [0] * n_regs, [], len(reserved), iter(arg_regs)
    memory[:len(reserved)] = reserved
    for p, x in zip(params, args):
        want = {INT: "an int", CHAR: "a character (a str of length 1)", STR: "a str", LIST: "a list of ints",
                CHARS: "a list of characters"}[p.type]
        chars = p.type in (CHAR, STR, CHARS)
        ok = isinstance(x, str) and (p.type == STR or len(x) == 1) if p.type in (CHAR, STR) else \
            isinstance(x, list) if p.type in (LIST, CHARS) else isinstance(x, int) and not isinstance(x, bool)
        if not ok:
            raise ExecutionError(f"argument {p.name} of {fn.name} must be {want}, got {type(x).__name__}")
        values = list(x) if p.type in SEQS else [x]
        for v in values:
            if chars and not (isinstance(v, str) and len(v) == 1 and ord(v) < V) or \
                    not chars and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < V):
                raise ExecutionError(f"argument {p.name} of {fn.name}: {v!r} is not "
                                     f"{'a character with code' if chars else 'an int'} in [0, {V})")
        values = [ord(v) for v in values] if chars else values
        if p.type in SEQS:
            if len(x) >= V:
                raise ExecutionError(f"list {p.name} has {len(x)} elements; a length must be a value below V={V}")
            if free + len(x) > n_cells:
                raise ExecutionError(f"list {p.name} does not fit: memory has n_cells={n_cells} cells")
            memory[free:free + len(x)] = values
            regs[next(window)], regs[next(window)] = free, len(x)
            if p.type != STR:
                lists.append((x, free, p.type == CHARS))
            free += len(x)
        else:
            regs[next(window)] = values[0]
    if reserved:
        if free >= n_cells:
            raise ExecutionError(f"the arguments fill all n_cells={n_cells} cells: no room is left for the heap")
        memory[HEAP_POINTER], memory[HEAP_END] = free, n_cells - 1
    return memory, regs, lists


def _copy_back(memory, lists):
    for x, base, *chars in lists:
        values = memory[base:base + len(x)]
        x[:] = [chr(v) for v in values] if chars and chars[0] else values


def _result(fn, value, memory):
    """The Python value that `fn` returned: a0 (and the return cells) read by its return type."""
    t = fn.returns
    slots = iter([value] + list(memory[RETURN_CELLS:RETURN_CELLS + _width(t) - 1]))

    def decode(t):
        if isinstance(t, tuple):
            return tuple(decode(x) for x in t)
        if t in SEQS:
            base, n = next(slots), next(slots)
            cells = list(memory[base:base + n])
            return "".join(map(chr, cells)) if t == STR else [chr(c) for c in cells] if t == CHARS else cells
        v = next(slots)
        return chr(v) if t == CHAR else v
    return decode(t)
