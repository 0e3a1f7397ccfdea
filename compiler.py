"""
Compile restricted Python functions into register-machine programs.

This module is the "neurally compiled library" half of the project: plain Python algorithms become
programs that the differentiable machine in reasoning.py runs inside the network. Read it top to bottom:

1. the value model and the primitive operations (the machine's lookup tables are built from these), the
   program format (`Instr`, `Function`, `Program` and its printed disassembly), and the reference
   interpreter, `execute` behind `Program.run`, which *defines* what the IR means;
2. the passes over Python's `ast`, in their order: parse, validate, resolve; infer (types), allocate;
   lower (`_Lowerer`, assembled from one class per kind of construct: core, expressions, indexes, lists,
   calls, statements); simplify, link;
3. last, the pipeline that runs them: `compile_source(src)` and `compile_functions(*fns)`.

Value model. Every value is an integer in [0, V), V = `n_values` (default 128, as in the paper).
Arithmetic wraps modulo V (a negative number -c is the value V - c); comparisons give 0 or 1. A constant
outside [0, V) is a CompileError. A character is its code (`ord`), so a string is a list of codes.

Register file and calling convention. A program has `n_regs` registers r0..r{R-1}. The last few, the
*argument window* `a0, a1, ...` (= `Program.arg_regs`), carry arguments into a call and the return value
out of it. A function's prologue copies its parameters out of the window into its own registers; a
caller evaluates every argument first, then moves them into the window, then `call`s. `call` pushes the
whole register file and the return address onto the call stack and jumps; `ret x` pops them, puts the
value of `x` into `a0` of the restored file and jumps back; the caller then moves `a0` where it needs it.
A `ret` with an empty stack halts the machine with that value: that is how a top-level call ends. Just
below the window sit the *hole registers* h0, h1, ... (see `hole`): no instruction writes them.

Lists and strings live in memory, a flat array of `n_cells` cells, each holding a value. A list (or
string) value is two registers, its base address and its length; `len(a)` reads the second one, `a[i]`
checks `i < len(a)` and loads cell `base + i`. Memory, from address 0:

    [ reserved cells | list arguments, one after another | heap ... | spare cell ]

- The reserved cells exist only in programs that need them (`Program.reserved` holds their initial
  contents; a program of int and list-argument functions has none, so its first list starts at 0):
  cell 0 is the *heap pointer* (the next free cell), cell 1 the *heap end* (n_cells - 1), then the
  *return cells*, then constant data (string constants, laid out once).
- The heap is a bump allocator: a list literal, `[x] * n`, a slice, a comprehension, `a + b`... take
  cells from the heap pointer up; taking more than there is stops the run with an error (MemoryError).
  A function whose return value holds no list frees what it took when it returns (it restores the heap
  pointer it found), so the heap grows and shrinks like a stack; a function returning a list leaves
  the list (and whatever else it took) to its caller. `append` grows a list in place when the list ends
  at the heap pointer, and otherwise copies it to the top first.
- A function returns several values (a tuple, or a list's base and length) in a0 and the return cells:
  the first value in a0, the k-th in return cell k - 1; the caller reads them right after the call.
The pointer and the results live in memory, not in registers, because `ret` restores the caller's
registers: a callee's allocation must survive its return.

Errors. `assert`, `raise`, an index past a list's end, a division by zero, `pop` from an empty list
and a full heap compile to `fail #k`: the run stops and `Program.run` raises `ExecutionError` with
`Program.errors[k]`, which names the file, line and function ("tasks.py line 85 in parse_number:
AssertionError: number too large").
"""

import ast
import inspect
import os
import textwrap
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple


# -----------------------------------------------------------------------------
# 1. Primitive operations: the ALU. Each one maps two values in [0, V) to a value in [0, V).
# reasoning.py tabulates exactly these functions into its lookup tables, so the two machines agree.

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


HEAP_POINTER, HEAP_END, RETURN_CELLS = 0, 1, 2  # the reserved memory cells (see the module docstring)

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


_UNSUPPORTED = {name: message for names, message in [  # ast node classes -> what a student should write instead
    ("Import ImportFrom", "imports are not supported: a program can call only the functions compiled with it"),
    ("ClassDef", "classes are not supported: write top-level functions over ints, lists and strings"),
    ("FunctionDef AsyncFunctionDef", "nested functions are not supported: define every function at the top level"),
    ("Lambda", "lambdas are not supported: define a top-level function with def"),
    ("Global Nonlocal", "global/nonlocal variables are not supported: pass values as arguments, return results"),
    ("Try TryStar", "try/except is not supported: an error stops the machine and cannot be caught; test the "
                    "condition with if instead"),
    ("With AsyncWith Await AsyncFor", "with/async are not supported: use plain statements and loops"),
    ("Delete", "del is not supported: use pop() on a list the function made"),
    ("Yield YieldFrom", "generators (yield) are not supported: return a list"),
    ("Match", "match statements are not supported: use if/elif/else"),
    ("Dict DictComp", "dicts are not supported: use a list indexed by the key (keys are small ints)"),
    ("Set SetComp", "sets are not supported: use a list of flags indexed by the value"),
    ("Starred", "unpacking with * (f(*x), [*a, *b]) is not supported: pass arguments one by one, join lists with +"),
    ("NamedExpr", "the walrus operator (:=) is not supported: assign in a statement of its own"),
    ("Div", "true division (/) is not supported: use // (values are ints)"),
    ("MatMult", "@ is not supported: multiply in a loop"),
    ("Slice", "a slice is only supported as a[i:j] (a copy)"),
]for name in names.split()}
_ALLOWED = set("""Return Assign AugAssign AnnAssign For While If Expr Pass Break Continue BoolOp BinOp UnaryOp
    IfExp Compare Call Constant Name Subscript Tuple List ListComp GeneratorExp comprehension Attribute Slice
    Assert Raise keyword JoinedStr FormattedValue Load Store And Or Add Sub Mult FloorDiv Mod Pow BitAnd BitOr BitXor LShift RShift Not
    USub UAdd Invert Lt LtE Gt GtE Eq NotEq In NotIn Is IsNot""".split())
_ALLOWED_TYPES = {getattr(ast, name) for name in _ALLOWED}
_NO_EFFECT = _ALLOWED_TYPES - {ast.Call}  # expressions that may not stand alone as statements
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.FloorDiv: "floordiv", ast.Mod: "mod",
           ast.BitAnd: "bitand", ast.BitOr: "bitor", ast.BitXor: "bitxor", ast.LShift: "lshift",
           ast.RShift: "rshift", ast.Pow: "pow"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}
_NEGATE = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}
_SWAP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne", "add": "add", "mul": "mul",
         "min": "min", "max": "max", "bitand": "bitand", "bitor": "bitor", "bitxor": "bitxor"}  # op(x, y) == SWAP[op](y, x)
_EXACT = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "pow": lambda a, b: a ** b if b < 64 else 1 << 64,
          "lshift": lambda a, b: a << min(b, 64)}  # ops whose result can pass V: a constant must not
# Builtins the compiler treats specially; a variable may not shadow one that its function calls.
_NONZERO = "@nonzero"  # among a _Lowerer's facts: (_NONZERO, ("!=0", x)) while x != 0
_BUILTINS = ("len", "min", "max", "range", "sum", "abs", "ord", "chr", "int", "bool", "str", "list", "sorted",
             "reversed", "enumerate", "zip", "any", "all", "divmod", "pow", "isinstance", "hole")
_SEQ_METHODS = ("append", "pop", "insert", "extend", "index", "count", "reverse", "sort", "copy", "clear",
                "remove", "join", "lower", "upper", "isdigit", "isalpha", "isalnum", "isspace", "isupper",
                "islower")
_GROWS = ("append", "pop", "insert", "extend", "clear", "remove")  # methods that change a list's length
_STR_ONLY = ("lower", "upper", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower")


def _drop_docstring(body):
    doc = body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    return body[1:] if doc and isinstance(body[0].value.value, str) else body


def parse(src):
    """Pass 1: source text -> ast.Module, with the docstrings of the module and its functions dropped."""
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in strings
            warnings.simplefilter("ignore")
            module = ast.parse(src)
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes; absurdly deep nesting
        raise CompileError(f"cannot parse the source: {e}") from None
    module.body = _drop_docstring(module.body)
    for node in module.body:
        if isinstance(node, ast.FunctionDef):
            node.body = _drop_docstring(node.body)
    return module


def validate(module, V):
    """Pass 2: reject, with its position, every construct outside the supported subset. The exception of
    a `raise` and the message of an `assert` are never evaluated (they only name the error), so they
    may hold anything."""
    for fdef in module.body:
        if not isinstance(fdef, ast.FunctionDef):
            name = type(fdef).__name__
            raise _error(_UNSUPPORTED.get(name, f"only function definitions (def) may appear at the top level, "
                                                f"not {name}"), fdef)
        args = fdef.args
        if fdef.decorator_list:
            raise _error(f"decorators are not supported (on {fdef.name})", fdef.decorator_list[0])
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            raise _error(f"{fdef.name}: only positional parameters are supported (no *args, **kwargs or "
                         "keyword-only parameters)", fdef)
        stack = list(reversed(fdef.body))
        while stack:
            node = stack.pop()
            kind = type(node)
            if kind not in _ALLOWED_TYPES:
                name = kind.__name__
                raise _error(_UNSUPPORTED.get(name, f"{name} is not supported in a compiled function"),
                             _positioned(fdef, node))
            if kind is ast.Constant:
                _check_constant(node, V)
            elif kind is ast.Raise:
                continue
            elif kind in (ast.For, ast.While) and node.orelse:
                raise _error(f"{kind.__name__.lower()} ... else is not supported: use a flag variable", node)
            elif kind is ast.Expr and type(node.value) in _NO_EFFECT:
                raise _error("only calls may stand alone as statements; this expression has no effect", node)
            children = [node.target, node.value] if kind is ast.AnnAssign else \
                [node.test] if kind is ast.Assert else _kids(node)
            stack.extend(c for c in reversed(children) if c is not None)


def _positioned(fdef, node):
    """node if it has a source position, else its nearest ancestor in fdef that has one."""
    parents = {id(c): p for p in ast.walk(fdef) for c in ast.iter_child_nodes(p)}
    while not hasattr(node, "lineno") and id(node) in parents:
        node = parents[id(node)]
    return node


def _check_constant(node, V):
    v = node.value
    if isinstance(v, bool) or v is None:
        return
    if isinstance(v, str):
        bad = [c for c in v if ord(c) >= V]
        if bad:
            raise _error(f"the character {bad[0]!r} has code {ord(bad[0])}: characters are values in [0, {V})", node)
        return
    if not isinstance(v, int):
        raise _error(f"{type(v).__name__} constants like {v!r:.20} are not supported: values are ints in "
                     f"[0, {V})", node)
    if v >= V:
        raise _error(f"the constant {v} is too large: values are ints in [0, {V})", node)


@dataclass
class _Fn:
    """What the compiler knows about one function while it compiles it."""
    node: ast.FunctionDef
    params: list[Param]
    annotated: set = field(default_factory=set)  # parameters whose type an annotation states
    nodes: list = field(default_factory=list)  # every node of the body, walked once
    by_class: dict = field(default_factory=dict)  # ast class -> [(place in `nodes`, node)]
    kinds: dict = field(default_factory=dict)  # memo of of_kind
    memo: dict = field(default_factory=dict)  # node -> its type, once settled
    locals: list[str] = field(default_factory=list)  # assigned names that are not parameters
    is_leaf: bool = True  # calls no compiled function: its parameters can stay in the argument window
    counters: set = field(default_factory=set)  # for-loop variables that can be the loop counter itself
    types: dict = field(default_factory=dict)  # variable -> type
    returns: object = None  # the return type (None while unknown)
    fresh: bool = True  # every list it returns is a new one (not an argument): the caller owns it
    heap: bool = False  # may take heap cells; it frees them on return unless it returns a list
    bias: dict = field(default_factory=dict)  # int variable -> b: its register holds value + b (see _biases)
    guarded: set = field(default_factory=set)  # decrements x -= c after a test x > c - 1 (x stays >= 0)
    regs: dict = field(default_factory=dict)  # int/char variable -> register (window slot k is -1 - k)
    lists: dict = field(default_factory=dict)  # list/str variable -> (base register, length register)
    n_fixed: int = 0  # registers r0.. taken by parameters and locals; temporaries go above
    n_temps: int = 0  # the most temporaries live at once

    def of_kind(self, *kinds):
        """The nodes of the body of these ast classes, in walk order."""
        got = self.kinds.get(kinds)
        if got is None:
            if not self.by_class:
                for i, n in enumerate(self.nodes):
                    self.by_class.setdefault(type(n), []).append((i, n))
            places = [x for k in kinds for x in self.by_class.get(k, ())]
            got = self.kinds[kinds] = [n for _, n in sorted(places, key=lambda x: x[0])]
        return got

    @property
    def frees_heap(self):
        return self.heap and not any(t in SEQS for t in _flat(self.returns))


def _flat(t):
    return [x for part in t for x in _flat(part)] if isinstance(t, tuple) else [t]


def _kids(node):
    """node's children (as ast.iter_child_nodes), listed once and kept on the node: the passes visit
    the same subtrees many times."""
    try:
        return node._kids
    except AttributeError:
        kids = node._kids = list(ast.iter_child_nodes(node))
        return kids


def _walk(node):
    """node and every node under it, breadth first (as ast.walk)."""
    out = [node]
    for n in out:  # the list grows while it is read
        out.extend(_kids(n))
    return out


def _names(nodes, ctx=ast.Load):
    return {n.id for root in nodes for n in _walk(root) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _call_name(node):
    """'f' for a call f(...), None otherwise."""
    return node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None


def _method(node):
    """(object, method name) for a call x.m(...), else (None, None)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.value, node.func.attr
    return None, None


def _direct_counters(fdef, nodes):
    """Loop variables that may serve as their own loop counter: only ever assigned by `for ... in range`,
    never read outside the body of a loop over them, and no loop over them nested in another. Others
    get a hidden counter copied into them each iteration, so that changing `i` in the body or reading
    it after the loop behaves as in Python."""
    bad = set()

    def visit(node, inside):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and _call_name(node.iter) == "range":
            bad.update({node.target.id} & inside)
            visit(node.iter, inside)
            for s in node.body:
                visit(s, inside | {node.target.id})
            return
        if isinstance(node, ast.Name) and (isinstance(node.ctx, ast.Store) or node.id not in inside):
            bad.add(node.id)
        for child in _kids(node):
            visit(child, inside)

    for s in fdef.body:
        visit(s, frozenset())
    return {n.target.id for n in nodes if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and
            _call_name(n.iter) == "range"} - bad


class _RenameComprehensions(ast.NodeTransformer):
    """Give every comprehension variable a name of its own (`x@3:14`), so that it neither leaks into
    nor clobbers the function's variables, as in Python 3. The first iterable is read outside."""

    def __init__(self):
        self.scope = {}

    def visit_Name(self, node):
        node.id = self.scope.get(node.id, node.id)
        return node

    def visit_ListComp(self, node):
        outer = dict(self.scope)
        for i, gen in enumerate(node.generators):
            gen.iter = self.visit(gen.iter)
            for t in ast.walk(gen.target):
                if isinstance(t, ast.Name):
                    self.scope[t.id] = f"{t.id}@{t.lineno}:{t.col_offset}"
            gen.target = self.visit(gen.target)
            gen.ifs = [self.visit(c) for c in gen.ifs]
        node.elt = self.visit(node.elt)
        self.scope = outer
        return node

    visit_GeneratorExp = visit_ListComp


def _annotation_type(ann):
    """The type an annotation states, or None for no (or an unknown) annotation."""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            ann = ast.parse(ann.value, mode="eval").body
        except SyntaxError:
            return None
    name = ann.id if isinstance(ann, ast.Name) else None
    if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name):
        inner = ann.slice.id if isinstance(ann.slice, ast.Name) else None
        if ann.value.id in ("list", "List", "Sequence", "MutableSequence"):
            return {"int": LIST, "bool": LIST, "str": CHARS}.get(inner)
        return None
    if name in ("float", "complex", "dict", "set", "Dict", "Set"):
        raise _error(f"parameters of type {name} are not supported: values are ints, lists and strings", ann)
    return {"int": INT, "bool": INT, "str": STR, "list": LIST, "List": LIST}.get(name)


def _default_value(node, V):
    """A parameter's default: a constant (an int, a negative int, a bool or a string)."""
    neg = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    c = node.operand if neg else node
    if isinstance(c, ast.Constant) and isinstance(c.value, int) and (not neg or c.value < V):
        return (-c.value) % V if neg else int(c.value)
    if isinstance(c, ast.Constant) and isinstance(c.value, str) and not neg:
        return c.value
    raise _error("a default value must be a constant int or string (lists and None are not supported: pass "
                 "the value)", node)


def resolve(module, V):
    """Pass 3: the function table: each function's parameters with their types and defaults, its
    locals, and its holes. A parameter without an annotation is a list iff it is used as one (found by
    iterating to a fixed point, since calls propagate list-ness)."""
    table = {}
    for fdef in module.body:
        if fdef.name in table or fdef.name in _BUILTINS:
            raise _error(f"function {fdef.name} is defined twice or shadows a builtin", fdef)
        table[fdef.name] = _function_entry(fdef, V)
    _parameter_types(table)
    holes = []
    for fn in table.values():
        params = {p.name for p in fn.params}
        stores = [n for n in fn.of_kind(ast.Name) if isinstance(n.ctx, ast.Store)]
        for n in sorted(stores, key=lambda n: (n.lineno, n.col_offset)):
            if n.id not in params and n.id not in fn.locals:
                fn.locals.append(n.id)
        calls = fn.of_kind(ast.Call)
        called = {_call_name(n) for n in calls}
        for name in sorted(called & (params | set(fn.locals)) & set(_BUILTINS)):
            raise _error(f"'{name}' names a variable of {fn.node.name} and is called as the builtin {name}(): "
                         "rename the variable", fn.node)
        fn.is_leaf = not called & set(table)
        fn.counters = _direct_counters(fn.node, fn.nodes)
        for n in sorted((n for n in calls if _call_name(n) == "hole"), key=lambda n: (n.lineno, n.col_offset)):
            if len(n.args) < 2 or n.keywords or any(isinstance(a, ast.Starred) for a in n.args):
                raise _error("hole(...) needs two or more alternatives, by position: hole(a < b, a > b)", n)
            n.hole = len(holes)
            holes.append(n)
    return table


def _function_entry(fdef, V):
    """A function's entry in the table: its parameters with the types their annotations and defaults
    state, and its nodes. A generator expression that a list is made from (''.join, list, sorted) is
    a list comprehension, and `reversed(range(c, stop))` (c a constant) is `range(stop - 1, c - 1, -1)`."""
    for n in _walk(fdef):  # the children validate listed (a replaced child's own children are the same)
        if isinstance(n, ast.Call) and len(n.args) == 1 and isinstance(n.args[0], ast.GeneratorExp) and \
                (_call_name(n) in ("list", "sorted") or _method(n)[1] == "join"):
            g = n.args[0]
            n.args[0] = ast.copy_location(ast.ListComp(g.elt, g.generators), g)
        if isinstance(n, (ast.For, ast.comprehension)) and _call_name(n.iter) == "reversed" and \
                len(n.iter.args) == 1 and _call_name(n.iter.args[0]) == "range":
            n.iter = _reversed_range(n.iter.args[0]) or n.iter
    nodes = [n for s in fdef.body for n in _walk(s)]
    if any(isinstance(n, (ast.ListComp, ast.GeneratorExp)) for n in nodes):
        _RenameComprehensions().visit(fdef)
    args, defaults = fdef.args.args, fdef.args.defaults
    types = [_annotation_type(a.annotation) if a.annotation else None for a in args]
    params = [Param(a.arg, type=t) for a, t in zip(args, types)]
    annotated = {a.arg for a, t in zip(args, types) if t is not None}
    for p, d in zip(params[len(params) - len(defaults):], defaults):
        p.default = _default_value(d, V)
        if isinstance(p.default, str) and p.name not in annotated:
            p.type = CHAR if len(p.default) == 1 else STR
            annotated.add(p.name)
    for p in params:
        p.is_list = p.type in SEQS
    return _Fn(fdef, params, annotated=annotated, nodes=nodes)


def _reversed_range(r):
    """range(stop - 1, c - 1, -1) for r = range(c, stop) with a constant c >= 0 (or range(stop)); else None."""
    start, stop = (ast.Constant(0), r.args[0]) if len(r.args) == 1 else r.args if len(r.args) == 2 else (None, None)
    if r.keywords or not (isinstance(start, ast.Constant) and type(start.value) is int):
        return None
    minus_one = ast.UnaryOp(ast.USub(), ast.Constant(1))
    last = ast.BinOp(stop, ast.Sub(), ast.Constant(1))
    end = ast.Constant(start.value - 1) if start.value > 0 else minus_one
    return ast.fix_missing_locations(ast.copy_location(ast.Call(r.func, [last, end, minus_one], []), r))


def _parameter_types(table):
    """The type of each parameter without an annotation: a string if used as one (`_used_as_strings`),
    else a list if used as one, iterating to a fixed point since calls propagate list-ness; else an int."""
    for fn in table.values():
        chars, strings = _used_as_strings(fn)
        for p in fn.params:
            if p.name not in fn.annotated and p.name in chars | strings:
                p.type, p.is_list = (CHAR, False) if p.name in chars else (STR, True)
                fn.annotated.add(p.name)
    changed = True
    while changed:
        changed = False
        for fn in table.values():
            listy = _used_as_lists(fn, table)
            for p in fn.params:
                if p.name in listy and not p.is_list and p.name not in fn.annotated:
                    p.type, p.is_list, changed = LIST, True, True


def _used_as_strings(fn):
    """(names used as characters, names used as strings) in `fn`. A name is a character if it is passed
    to ord() or compared with a one-character string; a string if a string method is called on it or
    its elements (x[i], or the variable of a loop over it) are used as characters."""
    over = {}  # loop variable -> the name it runs over
    for n in fn.of_kind(ast.For, ast.comprehension):
        f, targets = _call_name(n.iter), n.target.elts if isinstance(n.target, ast.Tuple) else [n.target]
        seqs = n.iter.args if f == "zip" else n.iter.args[:1] if f in ("enumerate", "reversed") else [n.iter]
        targets = targets[1:] if f == "enumerate" else targets if f == "zip" else [n.target]
        over.update({t.id: s.id for t, s in zip(targets, seqs) if isinstance(t, ast.Name) and isinstance(s, ast.Name)})
    chars, strings, used = set(), set(), []  # `used`: expressions used as characters
    one_char = lambda e: isinstance(e, ast.Constant) and isinstance(e.value, str) and len(e.value) == 1
    for n in fn.of_kind(ast.Call, ast.Compare):
        obj, method = _method(n)
        if method in _STR_ONLY and isinstance(obj, ast.Name):
            strings.add(obj.id)
            used.append(obj)
        if _call_name(n) == "ord" and len(n.args) == 1:
            used.append(n.args[0])
        if isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            for op, a, b in zip(n.ops, sides, sides[1:]):
                in_str = isinstance(op, (ast.In, ast.NotIn)) and isinstance(b, ast.Constant) and isinstance(b.value, str)
                used += [a] if one_char(b) or in_str else [b] if one_char(a) else []
    for e in used:
        if isinstance(e, ast.Subscript) and isinstance(e.value, ast.Name) and not isinstance(e.slice, ast.Slice):
            strings.add(e.value.id)
        elif isinstance(e, ast.Name) and e.id in over:
            strings.add(over[e.id])
        elif isinstance(e, ast.Name):
            chars.add(e.id)
    return chars - strings, strings


def _used_as_lists(fn, table):
    """Names that `fn` uses as lists: indexed, len()'d, iterated, searched, or passed to a list parameter."""
    listy = set()
    name = lambda n: n.id if isinstance(n, ast.Name) else None
    for node in fn.of_kind(ast.Subscript, ast.For, ast.comprehension, ast.Compare, ast.Call):
        if isinstance(node, ast.Subscript):
            listy.add(name(node.value))
        elif isinstance(node, (ast.For, ast.comprehension)):
            it = node.iter
            listy.add(name(it))
            if _call_name(it) in ("enumerate", "reversed", "zip"):
                listy.update(name(a) for a in (it.args if _call_name(it) == "zip" else it.args[:1]))
        elif isinstance(node, ast.Compare):
            listy.update(name(c) for op, c in zip(node.ops, node.comparators) if isinstance(op, (ast.In, ast.NotIn)))
        elif isinstance(node, ast.Call):
            f = _call_name(node)
            if f in ("len", "sorted", "list", "sum", "any", "all", "reversed", "enumerate") or \
                    f in ("min", "max") and len(node.args) == 1:
                listy.update(name(a) for a in node.args[:1])
            obj, m = _method(node)
            if m in _SEQ_METHODS and m not in ("join",) + _STR_ONLY:
                listy.add(name(obj))
            callee = table.get(f)
            for p, arg in zip(callee.params if callee else [], node.args):
                if p.is_list:
                    listy.add(name(arg))
    return listy - {None}


# -- types --------------------------------------------------------------------------------------------

ANY_LIST = "list?"  # while inferring: `[]` before anything says what it holds
_SETTLED = (INT, CHAR, STR, LIST, CHARS)


def _elem(t):
    return CHAR if t in (STR, CHARS) else INT


def _is_seq(t):
    return t in SEQS or t == ANY_LIST


def _show(t):
    return "(" + ", ".join(map(_show, t)) + ")" if isinstance(t, tuple) else \
        {INT: "an int", CHAR: "a character", STR: "a string", LIST: "a list", CHARS: "a list of characters",
         ANY_LIST: "a list", "None": "None"}.get(t, str(t))


def _unify(a, b, what, node):
    """The one type that both a and b are, e.g. list? and list -> list; else a CompileError."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    pair = {a, b}
    if pair in ({ANY_LIST, LIST}, {ANY_LIST, CHARS}):
        return (pair - {ANY_LIST}).pop()
    if pair == {STR, CHAR}:
        return STR  # a character is a string of length 1
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return tuple(_unify(x, y, what, node) for x, y in zip(a, b))
    raise _error(f"{what} is {_show(a)} in one place and {_show(b)} in another: a value keeps one type", node)


class _Typer:
    """The type of an expression from the types of the variables (`fn.types`) and of the functions'
    results. None means "not known yet" (while `infer` iterates); what can never be typed raises.
    With `final` (the types are settled), each node's type is computed once."""

    def __init__(self, fn, table, final=False):
        self.fn, self.table, self.final = fn, table, final

    def of(self, node):
        memo = self.fn.memo
        if node in memo:
            return memo[node]
        method = getattr(self, "t_" + type(node).__name__, None)
        if method is None:
            raise _error(f"{type(node).__name__} is not supported here", node)
        t = method(node)
        if self.final or t in _SETTLED or isinstance(t, tuple) and all(x in _SETTLED for x in t):
            memo[node] = t  # a settled type cannot change as inference goes on
        return t

    def t_Constant(self, node):
        v = node.value
        if isinstance(v, str):
            return CHAR if len(v) == 1 else STR
        return "None" if v is None else INT

    def t_Name(self, node):
        if node.id in self.table:
            raise _error(f"function '{node.id}' used as a value: call it, as {node.id}(...)", node)
        return self.fn.types.get(node.id)

    def t_BinOp(self, node):
        x, y = self.of(node.left), self.of(node.right)
        if x is None or y is None:
            return None
        if x == INT and y == INT:
            return INT
        add, mul = isinstance(node.op, ast.Add), isinstance(node.op, ast.Mult)
        if add and {x, y} <= {STR, CHAR}:
            return STR
        if add and _is_seq(x) and _is_seq(y) and STR not in (x, y):
            return _unify(x, y, "the list", node)
        if mul and (INT, CHAR) in ((x, y), (y, x)):
            return STR
        if mul and INT in (x, y) and _is_seq(x if y == INT else y):
            return x if y == INT else y
        raise _error(f"{type(node.op).__name__} of {_show(x)} and {_show(y)} is not supported", node)

    def t_UnaryOp(self, node):
        t = self.of(node.operand)
        if isinstance(node.op, ast.Not) or t in (INT, None):
            return INT
        raise _error(f"{type(node.op).__name__} of {_show(t)} is not supported", node)

    def t_BoolOp(self, node):
        types = [self.of(v) for v in node.values]
        if any(t not in (INT, None) for t in types):
            raise _error("and/or of lists or strings is only supported as a condition (if, while)", node)
        return INT if None not in types else None

    def t_Compare(self, node):
        return INT

    def t_IfExp(self, node):
        return _unify(self.of(node.body), self.of(node.orelse), "the conditional expression", node)

    def t_Subscript(self, node):
        t = self.of(node.value)
        if t is not None and not _is_seq(t):
            raise _error(f"{_show(t)} cannot be indexed: only lists and strings can", node)
        return t if isinstance(node.slice, ast.Slice) or t is None else _elem(t)

    def t_List(self, node):
        t = None
        for e in node.elts:
            t = _unify(t, self.of(e), "an element of the list", e)
        if t is not None and t not in (INT, CHAR):
            raise _error("a list holds ints or characters: lists of lists are not supported", node)
        return ANY_LIST if not node.elts else None if t is None else CHARS if t == CHAR else LIST

    t_Tuple = lambda self, node: (lambda ts: None if None in ts else tuple(ts))([self.of(e) for e in node.elts])

    def t_ListComp(self, node):
        t = self.of(node.elt)
        if t is not None and t not in (INT, CHAR):
            raise _error("a comprehension makes a list of ints or characters, not of lists", node.elt)
        return None if t is None else CHARS if t == CHAR else LIST

    def t_NamedExpr(self, node):
        return self.of(node.value)

    def t_JoinedStr(self, node):
        return None  # refused where it is lowered (dead code, e.g. under `if not isinstance(...)`, may hold one)

    def t_GeneratorExp(self, node):
        raise _error("a generator expression is only supported inside sum, min, max, any and all: "
                     "write a list comprehension [...]", node)

    def t_Call(self, node):
        name = _call_name(node)
        if name in self.table:
            return self.table[name].returns
        obj, method = _method(node)
        if method is not None:
            return self.method_type(node, obj, method)
        args = [a for a in node.args]
        if name in ("len", "ord", "abs", "sum", "any", "all", "bool", "int", "isinstance", "pow"):
            return INT
        if name == "chr":
            return CHAR
        if name == "str":
            return STR
        if name in ("min", "max"):
            if len(args) == 1:
                a = args[0]
                t = self.of(a.elt) if isinstance(a, ast.GeneratorExp) else self.of(a)
                return t if isinstance(a, ast.GeneratorExp) or t is None else _elem(t)
            t = None
            for a in args:
                t = _unify(t, self.of(a), f"an argument of {name}", a)
            return t
        if name in ("list", "sorted"):
            if not args:
                return ANY_LIST
            if _call_name(args[0]) == "range":
                return LIST
            t = self.of(args[0])
            return None if t is None else CHARS if _elem(t) == CHAR else LIST
        if name == "divmod":
            return INT, INT
        if name == "hole":
            t = None
            for a in args:
                t = _unify(t, self.of(a), "an alternative of the hole", a)
            return t
        if name in ("range", "enumerate", "zip", "reversed"):
            raise _error(f"{name}(...) is only supported as the iterable of a for loop", node)
        hint = " (a compiled function returns its result instead)" if name == "print" else ""
        raise _error(f"unknown function '{name or ast.unparse(node.func)}'{hint}: only functions compiled together "
                     f"and the builtins {', '.join(b for b in _BUILTINS if b != 'hole')} can be called", node)

    def method_type(self, node, obj, method):
        if isinstance(obj, ast.Name) and obj.id not in self.fn.locals and obj.id not in self.table and \
                obj.id not in [p.name for p in self.fn.params]:  # math.gcd(...): a module's function
            raise _error(f"{obj.id}.{method}(...) is not supported: modules cannot be imported; write "
                         f"{method} as a top-level function and compile it with this one", node)
        t = self.of(obj)
        if method == "join" and isinstance(obj, ast.Constant) and obj.value == "":
            return STR
        if method not in _SEQ_METHODS or method == "join" or t is not None and not (_is_seq(t) or t == CHAR):
            raise _error(f"the method .{method}() is not supported: lists and strings support "
                         f".{'(), .'.join(m for m in _SEQ_METHODS if m != 'join')}() and ''.join(...)", node)
        if method in _STR_ONLY and t not in (STR, CHAR, None):
            raise _error(f".{method}() is a string method: {ast.unparse(obj)} is {_show(t)}", node)
        if method in ("index", "count") or method.startswith("is"):
            return INT
        if method in ("copy", "lower", "upper"):
            return t
        if method == "pop":
            return None if t is None else _elem(t)
        raise _error(f".{method}() changes the list and returns None: call it as a statement", node)


def _iter_type(typer, it):
    """The type of the loop variable of `for x in it`."""
    f = _call_name(it)
    seq_elem = lambda node: (lambda t: None if t is None else _elem(t))(typer.of(node))
    if f == "range":
        return INT
    if f == "enumerate":
        return None if seq_elem(it.args[0]) is None else (INT, seq_elem(it.args[0]))
    if f == "zip":
        ts = [seq_elem(a) for a in it.args]
        return None if None in ts else tuple(ts)
    if f == "reversed":
        return seq_elem(it.args[0])
    if isinstance(it, ast.Tuple):
        t = None
        for e in it.elts:
            t = _unify(t, typer.of(e), "an element of the tuple", e)
        return t
    t = typer.of(it)
    if t is not None and not _is_seq(t):
        raise _error(f"cannot loop over {_show(t)}: loop over a list, a string or range(...)", it)
    return None if t is None else _elem(t)


def _bind(fn, target, t, node, params):
    """Record that `target` is assigned a value of type t."""
    if isinstance(target, ast.Name):
        name = target.id
        what = f"parameter '{name}'" if name in params else f"variable '{name}'"
        fn.types[name] = _unify(fn.types.get(name), t, what, node)
    elif isinstance(target, (ast.Tuple, ast.List)):
        if t is not None and (not isinstance(t, tuple) or len(t) != len(target.elts)):
            raise _error(f"cannot unpack {_show(t)} into {len(target.elts)} names: unpack a tuple of that many "
                         "values, like a, b = b, a or q, r = divmod(x, y)", node)
        for i, e in enumerate(target.elts):
            _bind(fn, e, None if t is None else t[i], node, params)
    elif isinstance(target, ast.Starred):
        raise _error("starred assignment (*x) is not supported", target)


def infer(table):
    """Pass 4: the type of every variable and every function's result, by unifying the types of all the
    values assigned to a name (iterated to a fixed point, since results flow through calls)."""
    for fn in table.values():
        fn.types = {p.name: p.type for p in fn.params}
    for _ in range(2 * len(table) + 4):
        changed = False
        for fn in table.values():
            before = (dict(fn.types), fn.returns)
            _infer_function(fn, table)
            changed = changed or (fn.types, fn.returns) != before
        if not changed:
            break
    for fn in table.values():
        fn.returns = INT if fn.returns in (None, "None") else fn.returns
        fn.types = {k: LIST if t == ANY_LIST else INT if t is None else t for k, t in fn.types.items()}
        fn.returns = tuple(LIST if t == ANY_LIST else t for t in fn.returns) if isinstance(fn.returns, tuple) \
            else LIST if fn.returns == ANY_LIST else fn.returns
        for name, t in fn.types.items():
            if isinstance(t, tuple):
                raise _error(f"'{name}' holds a tuple: unpack it into names instead (a, b = ...)", fn.node)
            if t == "None":
                raise _error(f"'{name}' is None: None is not a value of the machine", fn.node)
        for p in fn.params:
            p.type = fn.types[p.name]
            p.is_list = p.type in SEQS
    _check_ownership(table)


def _infer_function(fn, table):
    typer, params = _Typer(fn, table), {p.name for p in fn.params}
    for node in fn.of_kind(ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.comprehension, ast.Return, ast.Call):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _bind(fn, target, typer.of(node.value), node, params)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            _bind(fn, node.target, typer.of(node.value), node, params)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            t = typer.of(ast.copy_location(ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value), node))
            _bind(fn, node.target, t, node, params)
        elif isinstance(node, (ast.For, ast.comprehension)):
            _bind(fn, node.target, _iter_type(typer, node.iter), node.iter, params)
        elif isinstance(node, ast.Return):
            t = typer.of(node.value) if node.value is not None else "None"
            if t != "None":  # a bare return (or return None) returns 0, like falling off the end
                fn.returns = _unify(fn.returns, t, f"the result of {fn.node.name}", node)
        elif isinstance(node, ast.Call):
            obj, method = _method(node)
            if method in ("append", "insert") and isinstance(obj, ast.Name) and node.args:
                t = typer.of(node.args[-1])
                if t in (INT, CHAR):
                    _bind(fn, obj, CHARS if t == CHAR else LIST, node, params)
            elif method == "extend" and isinstance(obj, ast.Name) and node.args:
                _bind(fn, obj, typer.of(node.args[0]), node, params)
            callee = table.get(_call_name(node))
            for p, arg in zip(callee.params if callee else [], node.args):
                if p.type in (INT, CHAR) and p.name not in callee.annotated:  # a character argument
                    t = typer.of(arg)
                    if t == CHAR:
                        callee.types[p.name] = p.type = CHAR
                        callee.memo.clear()  # types computed from it as an int are stale


def _is_fresh(node, fn, table):
    """Is this list value a new one (not a name for an existing list)?"""
    if isinstance(node, ast.IfExp):
        return _is_fresh(node.body, fn, table) and _is_fresh(node.orelse, fn, table)
    if isinstance(node, (ast.Name, ast.Subscript)) and not isinstance(getattr(node, "slice", None), ast.Slice):
        return False
    callee = table.get(_call_name(node))
    return callee.fresh if callee else not (_method(node)[1] == "pop")


def _check_ownership(table):
    """Lists whose length changes (append, pop, +=, ...) must be owned by one name: made by the function
    itself, never a parameter or a second name for a list (b = a). Also finds which functions return new
    lists and which may take heap cells."""
    stores = {}
    for fn in table.values():
        stores[fn.node.name] = [(n, t) for n in fn.of_kind(ast.Assign, ast.AnnAssign)
                                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                                if isinstance(t, ast.Name) and fn.types.get(t.id) in SEQS and n.value is not None]
    changed = any(t in SEQS for fn in table.values() for t in _flat(fn.returns))
    while changed:  # a function's result is fresh if every list it returns is
        changed = False
        for fn in table.values():
            owned = _owned(fn, table, stores[fn.node.name])
            rets = [n.value for n in fn.of_kind(ast.Return) if n.value]
            parts = [e for r in rets for e in (r.elts if isinstance(r, ast.Tuple) else [r])]
            fresh = all(e.id in owned if isinstance(e, ast.Name) else _is_fresh(e, fn, table)
                        for e in parts if _Typer(fn, table).of(e) in SEQS)
            if fresh != fn.fresh:
                fn.fresh, changed = fresh, True
    for fn in table.values():
        params, grown = {p.name for p in fn.params}, {}
        for n in fn.of_kind(ast.Call, ast.AugAssign):
            obj, method = _method(n)
            if method in _GROWS and isinstance(obj, ast.Name):
                grown.setdefault(obj.id, n)
            if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and fn.types.get(n.target.id) in (LIST, CHARS):
                grown.setdefault(n.target.id, n)
        owned = _owned(fn, table, stores[fn.node.name]) if grown else set()
        for name, n in grown.items():
            if name in params:
                raise _error(f"'{name}' is a parameter: append/pop/insert/extend/+= may only change a list the "
                             "function made itself (the caller's list would not see its new length); make a copy "
                             f"with {name} = {name}[:] first or return a new list", n)
            if name not in owned:
                raise _error(f"'{name}' may be a second name for another list, so its length cannot change: make "
                             f"it a new list (e.g. {name} = other[:]) before changing its length", n)
        for n, t in stores[fn.node.name]:
            if isinstance(n.value, ast.Name) and (n.value.id in grown or t.id in grown):
                raise _error(f"{t.id} = {n.value.id} makes a second name for a list whose length changes: copy it "
                             f"with {t.id} = {n.value.id}[:]", n)
        typer = _Typer(fn, table)
        fn.heap = any(_allocates(n, typer, table) for n in fn.of_kind(ast.List, ast.ListComp, ast.Subscript, ast.BinOp,
                                                                        ast.AugAssign, ast.Call))


def _owned(fn, table, stores):
    """Local list variables all of whose values are new lists."""
    params = {p.name for p in fn.params}
    bad = {t.id for n, t in stores if not _is_fresh(n.value, fn, table)} | params
    loops = {n.target.id for n in fn.of_kind(ast.For, ast.comprehension) if isinstance(n.target, ast.Name)}
    return {name for name, t in fn.types.items() if t in SEQS} - bad - loops


def _allocates(node, typer, table):
    """May this node take heap cells? (Over-approximating is harmless.)"""
    if isinstance(node, (ast.List, ast.ListComp)) or isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return True
    if isinstance(node, ast.BinOp) or isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        return typer.of(node if isinstance(node, ast.BinOp) else node.target) not in (INT, CHAR)
    if isinstance(node, ast.Call):
        callee = table.get(_call_name(node))
        return _call_name(node) in ("list", "sorted", "str") or _method(node)[1] in ("copy", "lower", "upper", "append",
                                                                                      "insert", "extend", "join") or \
            callee is not None and any(t in SEQS for t in _flat(callee.returns))
    return False


def allocate(fn):
    """Pass 5: registers for parameters and locals (a list or string takes two: base and length). A leaf
    function keeps its parameters where they arrive, in the argument window (no call can overwrite
    them); other functions copy them out in a prologue. Parameters that are never read get no register.
    A function that frees its heap cells on return keeps the heap pointer it found in a hidden local.
    Temporaries are stacked above r{n_fixed}."""
    used, slot, nxt = {n.id for n in fn.of_kind(ast.Name)}, 0, 0
    for p in fn.params:
        width = _width(p.type)
        if fn.is_leaf:
            regs = [-1 - (slot + j) for j in range(width)]
        else:
            regs = list(range(nxt, nxt + width)) if p.name in used else []
            nxt += len(regs)
        slot += width
        if regs:
            if width == 2:
                fn.lists[p.name] = tuple(regs)
            else:
                fn.regs[p.name] = regs[0]
    fn.bias = _biases(fn)
    for name in fn.locals + (["@heap"] if fn.frees_heap else []):
        if fn.types.get(name, INT) in SEQS:
            fn.lists[name], nxt = (nxt, nxt + 1), nxt + 2
        else:
            fn.regs[name], nxt = nxt, nxt + 1
    fn.n_fixed = nxt


def _unique_lists(fn, table):
    """Local list variables that are the only reference to their list: never copied to another name,
    passed to a function that may return it, or iterated by a loop that assigns them."""
    out = {name for name in fn.locals if fn.types.get(name) in SEQS}
    if not out:
        return out
    parents = {c: p for p in fn.nodes for c in _kids(p)}
    for n in fn.of_kind(ast.Name):
        if not (isinstance(n.ctx, ast.Load) and n.id in out):
            continue
        p = parents.get(n)
        callee = table.get(_call_name(p)) if isinstance(p, ast.Call) else None
        ok = isinstance(p, (ast.Subscript, ast.Attribute, ast.BinOp, ast.Compare, ast.Return)) or \
            isinstance(p, ast.Call) and (callee is None or callee.fresh) or \
            isinstance(p, ast.For) and p.iter is n and n.id not in _names(p.body, ast.Store) or \
            isinstance(p, ast.comprehension)
        if not ok:
            out.discard(n.id)
    return out


def _key(index):
    """How an index expression is recognised in the facts: ("#", c) for a constant, ("+", x, d) for a
    variable x plus (or minus) a constant d, else its source."""
    if isinstance(index, ast.Constant) and isinstance(index.value, int):
        return "#", index.value
    if isinstance(index, ast.Name):
        return "+", index.id, 0
    if isinstance(index, ast.BinOp) and isinstance(index.left, ast.Name) and isinstance(index.op, (ast.Add, ast.Sub)) \
            and isinstance(index.right, ast.Constant) and type(index.right.value) is int:
        return "+", index.left.id, index.right.value * (1 if isinstance(index.op, ast.Add) else -1)
    return ast.dump(index)


def _biases(fn):
    """Int locals that count down past 0 and are compared: `j = i - 1 ... while j >= 0` (insertion
    sort), `high = mid - 1 ... while low <= high` (binary search). Such a variable's register holds its
    value plus a bias b (its largest constant decrement), so that -b..-1 compare as in Python; reading
    it subtracts b again. Its values must stay in [-b, V - b)."""
    if not fn.of_kind(ast.Sub, ast.USub):
        return {}  # nothing counts down
    names = {n for n in fn.locals if fn.types.get(n) == INT and "@" not in n} - \
        {n.target.id for n in fn.of_kind(ast.For, ast.comprehension) if isinstance(n.target, ast.Name)}
    dec, bad, compared = {}, set(), set()
    const = lambda v: v.value if isinstance(v, ast.Constant) and type(v.value) is int else None
    guarded = set()  # `while x > e ...: ... x -= 1` (or `if x > e: x -= 1`): the test keeps x >= 0
    for w in fn.of_kind(ast.While, ast.If):
        tests = w.test.values if isinstance(w.test, ast.BoolOp) and isinstance(w.test.op, ast.And) else [w.test]
        for t in (t for t in tests if isinstance(t, ast.Compare) and len(t.ops) == 1):
            (x, e), op = (t.left, t.comparators[0]), type(t.ops[0])
            if isinstance(e, ast.Name) and op in (ast.Lt, ast.LtE):  # e < x is x > e
                (x, e), op = (e, x), {ast.Lt: ast.Gt, ast.LtE: ast.GtE}[op]
            if not isinstance(x, ast.Name):
                continue
            stores = [s for s in _walk(w) if isinstance(s, (ast.Assign, ast.AugAssign)) and
                      x.id in _names([s], ast.Store)]
            step = stores[0] if len(stores) == 1 and stores[0] in w.body else None
            c = const(step.value) if isinstance(step, ast.AugAssign) and isinstance(step.op, ast.Sub) else None
            if c and (op is ast.Gt and (c == 1 or (const(e) or 0) >= c - 1) or op is ast.GtE and (const(e) or 0) >= c):
                guarded.add(step)
    fn.guarded = guarded

    def assigned(target, value):
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            return [p for t, v in zip(target.elts, value.elts) for p in assigned(t, v)]
        return [(target.id, value)] if isinstance(target, ast.Name) else []

    for n in fn.of_kind(ast.Assign, ast.AugAssign, ast.Compare):
        pairs = [p for t in n.targets for p in assigned(t, n.value)] if isinstance(n, ast.Assign) else []
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            if not isinstance(n.op, (ast.Add, ast.Sub)):
                bad.add(n.target.id)
            elif isinstance(n.op, ast.Sub) and const(n.value) and n not in guarded:
                dec[n.target.id] = max(dec.get(n.target.id, 0), const(n.value))
        for name, v in pairs:
            c = const(v.right) if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Sub) else \
                const(v.operand) if isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.USub) else None
            if c:
                dec[name] = max(dec.get(name, 0), c)
        if isinstance(n, ast.Compare) and any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in n.ops):
            for x in [n.left, *n.comparators]:
                x = x.left if isinstance(x, ast.BinOp) and isinstance(x.op, (ast.Add, ast.Sub)) else x
                if isinstance(x, ast.Name):
                    compared.add(x.id)
    return {name: min(dec[name], 4) for name in fn.locals if name in names & set(dec) & compared - bad}


class _Label:
    """A jump target whose line is known only when the program is laid out (pass 8, `link`)."""


A0 = -1  # window slot 0: arguments in, results out
HOLE0 = -1000  # hole i is register HOLE0 - i until `link` places the hole registers

class Operand(NamedTuple):
    """What one instruction reads: a register (`Operand(r)`), or a constant (`Operand(imm=c)`), which
    becomes an #immediate. A list or string value is a pair of operands, (base, length)."""
    reg: int | None = None
    imm: int | None = None


HEAP_FULL = ("MemoryError", "the heap is full: the lists need more memory cells than are free (make fewer or "
                            "shorter lists, or run with more n_cells)")


@dataclass
class _Shared:
    """What the functions of one program share while they are lowered."""
    V: int
    n_ret: int  # return cells: the most values a function returns, minus the one in a0
    locate: object  # source line -> "tasks.py line 185" (or "line 7")
    check_bounds: bool = True
    errors: list = field(default_factory=list)  # fail messages
    data: list = field(default_factory=list)  # constant cells, after the return cells
    interned: dict = field(default_factory=dict)  # tuple of values -> address in data
    used: bool = False  # the program needs the reserved cells

    def intern(self, values):
        """The address of constant cells holding `values` (a string constant, say), laid out once."""
        self.used = True
        key = tuple(values)
        if key not in self.interned:
            self.interned[key] = RETURN_CELLS + self.n_ret + len(self.data)
            self.data.extend(key)
        return self.interned[key]

    def error(self, message):
        if message not in self.errors:
            self.errors.append(message)
        return self.errors.index(message)


class _Core:
    """Emitting, temporaries, constant folding, names and operands: what every other part uses."""

    # -- helpers: emitting, temporaries, constants, names --------------------------------------------
    def emit(self, op, note="", **fields):
        self.items.append(Instr(op, lineno=self.line, note=note, **fields))

    def temp(self):
        self.depth += 1
        self.fn.n_temps = max(self.fn.n_temps, self.depth)
        return self.fn.n_fixed + self.depth - 1

    def place(self, label):
        self.items.append(label)
        return label

    def type(self, node):
        return self.typer.of(node)

    def fail_label(self, kind, detail, node=None):
        """The label of a `fail` (at the end of the function) that stops the run with this error."""
        line = getattr(node, "lineno", self.line)
        k = self.sh.error(f"{self.sh.locate(line)} in {self.fn.node.name}: {kind}: {detail}")
        if k not in self.stubs:
            self.stubs[k] = (_Label(), line)
        return self.stubs[k][0]

    def fold(self, node):
        """The value of a constant expression, computed as the machine would, or None. A constant that
        only fits in more than [0, V) (100 + 100, 10 ** 9) is a CompileError: it would wrap silently."""
        if node not in self.folded:
            self.folded[node] = self._fold(node)
        return self.folded[node]

    def _fold(self, node):
        method = getattr(self, "fold_" + type(node).__name__, None)
        return None if method is None else method(node)

    def fold_Constant(self, node):
        if isinstance(node.value, int):
            return int(node.value)
        if isinstance(node.value, str) and len(node.value) == 1:
            return ord(node.value)  # a character is its code
        return None

    def fold_Call(self, node):
        return self.isinstance_of(*node.args) if _call_name(node) == "isinstance" and len(node.args) == 2 else None

    def fold_UnaryOp(self, node):
        x = self.fold(node.operand)
        return None if x is None else (-x) % self.V if isinstance(node.op, ast.USub) else \
            int(not x) if isinstance(node.op, ast.Not) else (self.V - 1 - x) if isinstance(node.op, ast.Invert) else x

    def fold_BinOp(self, node):
        if self.type(node) not in (INT, None):
            return None  # 'a' + 'b' is a string
        return self.fold_binary(node, node.left, node.op, node.right)

    def fold_Compare(self, node):
        return self.fold_binary(node, node.left, node.ops[0], node.comparators[0]) if len(node.ops) == 1 else None

    def fold_binary(self, node, left, op, right):
        op = _BINOPS.get(type(op)) or _CMPOPS.get(type(op))
        x, y = self.fold(left), self.fold(right)
        if op is None or x is None or y is None:
            return None
        if op in ("floordiv", "mod") and y == 0:
            raise _error("division by zero", node)
        if op in _NEGATE:  # a comparison with a negative number compares signed numbers, as Python does
            return int({"lt": int.__lt__, "le": int.__le__, "gt": int.__gt__, "ge": int.__ge__, "eq": int.__eq__,
                        "ne": int.__ne__}[op](self.signed(left), self.signed(right)))
        if op in _EXACT and self.exact(left) is not None and self.exact(right) is not None and \
                _EXACT[op](self.exact(left), self.exact(right)) >= self.V:
            raise _error(f"the constant {ast.unparse(node)} is {self.V} or more: values are ints in "
                         f"[0, {self.V}); it would wrap around silently", node)
        return PRIMITIVES[op](x, y, self.V)

    def exact(self, node):
        """A constant expression's value if it is made of non-negative constants only, else None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return int(node.value)
        if isinstance(node, ast.BinOp) and _BINOPS.get(type(node.op)) in _EXACT:
            x, y = self.exact(node.left), self.exact(node.right)
            return None if x is None or y is None else _EXACT[_BINOPS[type(node.op)]](x, y)
        return self.fold(node) if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Sub) and \
            self.exact(node.left) is not None and self.exact(node.right) is not None else None

    def int_reg(self, node):
        if not isinstance(node, ast.Name):
            raise _error("expected a variable name here", node)
        if node.id in self.fn.regs:
            return self.fn.regs[node.id]
        if node.id in self.fn.lists:
            raise _error(f"'{node.id}' is a list and cannot be used as an int: lists support a[i], a[i] = x, "
                         "len(a), for x in a, and being passed and returned", node)
        if node.id in self.table:
            raise _error(f"function '{node.id}' used as a value: call it, as {node.id}(...)", node)
        raise _error(f"name '{node.id}' is not defined: use a parameter or assign the variable first", node)

    def list_regs(self, node):
        if isinstance(node, ast.Name) and node.id in self.fn.lists:
            return self.fn.lists[node.id]
        name = getattr(node, "id", None)
        if name in self.fn.regs:
            raise _error(f"'{name}' is {_show(self.fn.types.get(name, INT))}, not a list: only lists and strings "
                         "can be indexed, len()'d or iterated", node)
        raise _error(f"'{name or ast.unparse(node)}' is not a list: only lists and strings can be indexed, "
                     "len()'d, iterated or passed as lists", node)

    def has_call(self, node):
        if node not in self.calls:
            self.calls[node] = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in self.table
                                   for n in _walk(node))
        return self.calls[node]

    def reads(self, node):
        if node in self.read_cache:
            return self.read_cache[node]
        regs = self.read_cache[node] = set()
        for name in _names([node]):
            regs.update(self.fn.lists.get(name, ()), [self.fn.regs.get(name)])
        return regs

    # -- expressions with one register ---------------------------------------------------------------
    def operand(self, node, volatile=False):
        """An operand for one instruction. With `volatile`, a call's result may be left in a0, to be
        used before anything else can overwrite it."""
        c = self.fold(node)
        if c is not None:
            return Operand(imm=c)
        if isinstance(node, ast.Name):
            return self.read(node)
        if _call_name(node) == "len" and len(node.args) == 1 and not node.keywords:
            return self.seq(node.args[0])[1]
        if volatile and _call_name(node) in self.table:
            self.call(node)
            return Operand(A0)
        t = self.temp()
        self.value(node, t)
        return Operand(t)

    def operands(self, nodes):
        """Operands of `nodes`, evaluated left to right; a call result stays in a0 if no later call follows."""
        return [self.operand(n, volatile=not any(map(self.has_call, nodes[i + 1:]))) for i, n in enumerate(nodes)]

    def alu(self, op, dst, x, y, wrap_ok=False):
        """dst = op(x, y) for operands x, y: constants fold, and a constant goes second as an #immediate."""
        if x.reg is None and y.reg is None:
            return self.emit("const", dst=dst, imm=PRIMITIVES[op](x.imm, y.imm, self.V))
        if x.reg is None and op in _SWAP:
            op, x, y = _SWAP[op], y, x
        elif x.reg is None:
            t = self.temp()
            self.emit("const", dst=t, imm=x.imm)
            x = Operand(t)
            self.depth -= 1
        self.emit(op, dst=dst, a=x.reg, b=y.reg, imm=y.imm, wrap_ok=wrap_ok)

    def move(self, dst, opd):
        r, c = opd
        if r is None:
            self.emit("const", dst=dst, imm=c)
        elif r != dst:
            self.emit("mov", dst=dst, a=r)

    def signed(self, node):
        """A constant as a Python int, sign included (`-1` is -1 here, not V - 1), or None."""
        neg = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
        c = self.fold(node.operand if neg else node)
        return None if c is None else -c if neg else c


class _Expressions:
    """Methods `value_<Node>`: leave an expression's value in a register. Conditions jump instead."""

    def value(self, node, dst):
        """Emit code that leaves the value of expression `node` (an int or a character) in register `dst`."""
        mark, c = self.depth, self.fold(node)
        early = isinstance(node, ast.BoolOp) or isinstance(node, ast.Compare) and len(node.ops) > 1 or \
            isinstance(node, ast.Subscript) or isinstance(node, ast.Call) and _call_name(node) not in self.table
        if c is None and early and dst in self.reads(node):  # dst is written before node is fully read
            t = self.temp()
            self.value(node, t)
            self.emit("mov", dst=dst, a=t)
        elif c is not None:
            self.emit("const", dst=dst, imm=c)
        else:
            t = self.type(node)
            if t not in (INT, CHAR, None):
                raise _error(f"{ast.unparse(node)} is {_show(t)} and cannot be used as a number here", node)
            method = getattr(self, "value_" + type(node).__name__, None)
            if method is None:
                raise _error(f"{type(node).__name__} is not supported here: a tuple only in a tuple assignment "
                             "(a, b = b, a) or a return", node)
            method(node, dst)
        self.depth = mark

    def read(self, node):
        """The operand of variable `node`: its register, or for a biased one its register minus the bias."""
        r = self.int_reg(node)
        if node.id not in self.fn.bias:
            return Operand(r)
        t = self.temp()
        self.emit("sub", dst=t, a=r, imm=self.fn.bias[node.id])
        return Operand(t)

    def value_JoinedStr(self, node, dst):
        raise _error("f-strings are not supported except as the message of raise or assert: values are ints", node)

    seq_JoinedStr = value_JoinedStr

    def value_Name(self, node, dst):
        if node.id in self.fn.bias:
            return self.emit("sub", dst=dst, a=self.int_reg(node), imm=self.fn.bias[node.id])
        if self.int_reg(node) != dst:
            self.emit("mov", dst=dst, a=self.int_reg(node))

    def rebias(self, name):
        """After writing the value of biased variable `name` into its register: add the bias."""
        if name in self.fn.bias:
            r = self.fn.regs[name]
            self.emit("add", dst=r, a=r, imm=self.fn.bias[name], wrap_ok=True)

    def shifted(self, node):
        """(register, offset) when node is a biased variable x, or x + c, or x - c: its value is
        register - offset. None otherwise."""
        c = 0
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)) and self.signed(node.right) is not None:
            c = self.signed(node.right) * (1 if isinstance(node.op, ast.Add) else -1)
            node = node.left
        if isinstance(node, ast.Name) and node.id in self.fn.bias:
            return self.int_reg(node), self.fn.bias[node.id] - c
        return None

    def cmp_operands(self, left, right):
        """Operands for comparing left with right when either is a biased variable (or one plus a
        constant): both sides are shifted up by the other's offset, so that nothing goes below 0 and
        -1 < 0 holds. None when neither side is biased."""
        neg = lambda n: isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) and self.fold(n) is None
        if neg(left) and neg(right):  # -a op -b is b op a
            return tuple(reversed(self.operands([left.operand, right.operand])))
        if neg(left) or neg(right):  # x op -e for x, e >= 0 is (x or e) op 0 (-e op x is 0 op (x or e))
            other, e = (right, left.operand) if neg(left) else (left, right.operand)
            s = self.temp()
            self.alu("or", s, *self.operands([other, e]))
            return (Operand(imm=0), Operand(s)) if neg(left) else (Operand(s), Operand(imm=0))
        sl, sr = self.shifted(left), self.shifted(right)
        c = self.signed(right) if sl is None and sr is None else None
        if c is not None and c < 0:  # x op -c: x + c op 0
            sr = (None, -c)
        elif sl is None and sr is None and self.signed(left) is not None and self.signed(left) < 0:
            sl = (None, -self.signed(left))
        if sl is None and sr is None:
            return None
        opd = lambda r: Operand(imm=0) if r is None else Operand(r)  # a negative constant -c is 0 with offset c
        x, kx = (opd(sl[0]), sl[1]) if sl else (self.operand(left, volatile=not self.has_call(right)), 0)
        if x.reg == A0 and sr is None:
            x, kx = self.copy_of(x), 0
        y, ky = (opd(sr[0]), sr[1]) if sr else (self.operand(right, volatile=True), 0)  # operands, offsets
        m = min(kx, ky)
        if any(o.reg is None and o.imm + k >= self.V for o, k in ((x, ky - m), (y, kx - m))):
            return (self.operand(left) if sl else x), (self.operand(right) if sr else y)  # too close to V: unsigned
        return self.plus(x, ky - m), self.plus(y, kx - m)

    def plus(self, opd, k):
        if k == 0:
            return opd
        if opd.reg is None:
            return Operand(imm=opd.imm + k)
        t = self.temp()
        self.emit("add", dst=t, a=opd.reg, imm=k)
        return Operand(t)

    def value_BinOp(self, node, dst):
        op = _BINOPS[type(node.op)]
        if op in ("floordiv", "mod") and self.fold(node.right) == 0:
            raise _error("division by zero", node)
        if op in ("floordiv", "mod") and self.fold(node.right) is None:  # Python raises on a zero divisor
            mark = self.depth
            y = self.operand(node.right) if isinstance(node.right, ast.Name) or not self.has_call(node.left) \
                else None
            if y is None:  # the left side makes a call: keep Python's order, left first
                x = self.operand(node.left)
                x = x if x.reg != A0 else Operand(self.temp())
                y = self.operand(node.right, volatile=True)
                self.check_divisor(y, node.right, node)
                self.alu(op, dst, x, y)
            else:
                if y.reg is not None and not isinstance(node.right, ast.Name):
                    y = Operand(y.reg)
                self.check_divisor(y, node.right, node)
                self.alu(op, dst, self.operand(node.left, volatile=True), y)
            self.depth = mark
            return
        self.binary(op, dst, node.left, node.right)

    def value_UnaryOp(self, node, dst):
        if isinstance(node.op, ast.UAdd):
            return self.value(node.operand, dst)
        if isinstance(node.op, ast.Not) and self.type(node.operand) not in (INT, CHAR):
            return self.condition(node, dst)
        zero = Operand(imm=0)
        x = self.operand(node.operand, volatile=True)
        if isinstance(node.op, ast.Not):
            self.alu("eq", dst, x, zero)
        elif isinstance(node.op, ast.Invert):
            self.alu("sub", dst, Operand(imm=self.V - 1), x)  # ~x == -x - 1
        else:
            self.alu("sub", dst, zero, x)

    def unchain(self, node):
        """a < b <= c with a biased variable or a negative number in it -> a < (t := b) and t <= c: each
        link compares on its own (see cmp_operands); a middle operand is still evaluated once."""
        neg = lambda x: isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub)
        if not isinstance(node, ast.Compare) or len(node.ops) < 2 or \
                not any(self.shifted(x) or neg(x) for x in [node.left, *node.comparators]):
            return node
        left, links = node.left, []
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            later = right
            inner = right.operand if neg(right) else right  # -e stays negated: bind e
            if i < len(node.ops) - 1 and not isinstance(inner, (ast.Name, ast.Constant)):
                name = f"@chain{id(right)}"
                self.fn.regs[name], self.fn.types[name] = self.temp(), INT
                bound = ast.NamedExpr(ast.Name(name, ast.Store()), inner)
                right = ast.UnaryOp(ast.USub(), bound) if neg(right) else bound
                later = ast.UnaryOp(ast.USub(), ast.Name(name, ast.Load())) if neg(later) else ast.Name(name, ast.Load())
            links.append(ast.Compare(left, [op], [right], lineno=node.lineno, col_offset=node.col_offset))
            left = later
        return ast.BoolOp(ast.And(), links, lineno=node.lineno, col_offset=node.col_offset)

    def value_NamedExpr(self, node, dst):  # made by unchain only: users' walrus is refused by validate
        r = self.fn.regs[node.target.id]
        self.value(node.value, r)
        self.move(dst, Operand(r))

    def value_Compare(self, node, dst):
        if self.unchain(node) is not node:
            return self.value(self.unchain(node), dst)
        simple = all(isinstance(op, tuple(_CMPOPS)) for op in node.ops) and \
            all(self.type(x) in (INT, CHAR, None) for x in [node.left, *node.comparators])
        if not simple:
            return self.condition(node, dst)
        end, left = _Label(), node.left
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            nxt = node.comparators[i + 1:i + 2]
            if len(node.ops) == 1:
                self.binary(_CMPOPS[type(op)], dst, left, right)
                break
            x = left if isinstance(left, tuple) else self.operand(left, volatile=not self.has_call(right))
            left = self.operand(right, volatile=not nxt)  # a middle operand is read twice: not in a0
            self.alu(_CMPOPS[type(op)], dst, x, left)
            if nxt:
                self.emit("branch", a=dst, target=end)
        self.items.append(end)

    def condition(self, node, dst):
        """dst = 1 if the condition holds else 0, through branch_if."""
        t, skip = self.temp(), _Label()
        self.emit("const", dst=t, imm=0)
        self.branch_if(node, skip, False)
        self.emit("const", dst=t, imm=1)
        self.place(skip)
        self.emit("mov", dst=dst, a=t)

    def value_BoolOp(self, node, dst):
        end = _Label()
        saved = dict(self.safe)
        for v in node.values[:-1]:
            self.value(v, dst)
            if isinstance(node.op, ast.And):
                self.emit("branch", a=dst, target=end)  # a falsy x: `x and y` is x
            else:
                nxt = _Label()
                self.emit("branch", a=dst, target=nxt)
                self.emit("jump", target=end)  # a truthy x: `x or y` is x
                self.items.append(nxt)
            self.learn(v, isinstance(node.op, ast.And))
        self.value(node.values[-1], dst)
        self.safe = saved
        self.items.append(end)

    def value_IfExp(self, node, dst):
        orelse, end = _Label(), _Label()
        self.branch_if(node.test, orelse, False)
        saved = self.learn(node.test, True)
        self.value(node.body, dst)
        self.safe = saved
        self.emit("jump", target=end)
        self.items.append(orelse)
        self.learn(node.test, False)
        self.value(node.orelse, dst)
        self.safe = saved
        self.items.append(end)

    def value_Subscript(self, node, dst):
        if isinstance(node.slice, ast.Slice):
            raise _error(f"{ast.unparse(node)} is a list: a slice cannot be used as a number", node)
        addr = self.temp()
        self.address(node, addr)
        self.emit("load", dst=dst, a=addr)

    def value_Call(self, node, dst):
        name = _call_name(node)
        if name in self.table:
            if _width(self.table[name].returns) != 1:
                raise _error(f"{name} returns {_show(self.table[name].returns)}: assign it to names", node)
            self.call(node)
            return None if dst == A0 else self.emit("mov", dst=dst, a=A0)
        obj, method = _method(node)
        if method is not None:
            return getattr(self, "method_" + method)(node, obj, dst)
        if node.keywords and name not in ("sorted",):
            raise _error(f"keyword arguments are not supported in {name}(): pass arguments by position", node.keywords[0])
        return getattr(self, "builtin_" + name)(node, dst)

    def binary(self, op, dst, left, right):
        """dst = op(left, right), using dst itself for one side where that is safe, so that a long chain
        like a + b + c + d needs one temporary, not one per operator."""
        ops = self.cmp_operands(left, right) if op in _NEGATE else None
        if ops is not None:
            return self.alu(op, dst, *ops)
        simple = lambda n: isinstance(n, ast.Name) and n.id not in self.fn.bias or self.fold(n) is not None
        if not simple(left) and dst not in self.reads(right) and (dst >= 0 or not self.has_call(right)):
            self.value(left, dst)
            self.alu(op, dst, Operand(dst), self.operand(right, volatile=True))
        elif simple(left) and not simple(right) and self.operand(left).reg != dst:
            self.value(right, dst)
            self.alu(op, dst, self.operand(left), Operand(dst))
        else:
            self.alu(op, dst, *self.operands([left, right]))

    # -- conditions: jump on the truth of an expression, without materialising a bool -----------------
    def branch_if(self, node, label, when):
        """Jump to `label` if bool(node) == when, else fall through. Short-circuits like Python."""
        c, mark = self.fold(node), self.depth
        if c is not None:
            return self.emit("jump", target=label) if bool(c) == when else None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.branch_if(node.operand, label, not when)
        node = self.unchain(node)
        t = None if isinstance(node, ast.BoolOp) else self.type(node)
        if isinstance(node, ast.BoolOp) or isinstance(node, ast.Compare) and len(node.ops) > 1:
            self.branch_chain(node, label, when)
        elif isinstance(node, ast.Compare) and self.simple_compare(node):
            x, y = self.cmp_operands(node.left, node.comparators[0]) or self.operands([node.left, node.comparators[0]])
            self.depth = mark  # the operands are read by the comparison itself: its result may reuse them
            self.branch_cmp(_CMPOPS[type(node.ops[0])], x, y, label, when)
        elif t == CHAR:  # a character is a string of length 1: always true
            if when:
                self.emit("jump", target=label)
        elif _is_seq(t):  # a list or string is true when it is not empty
            length = self.seq(node, readonly=True)[1]
            self.branch_if_value(length, label, when)
        else:
            if isinstance(node, ast.Compare):
                r = self.temp()
                self.compare_special(node, r)
                r = Operand(r)
            else:
                r = self.operand(node, volatile=True)
            self.depth = mark
            self.branch_if_value(r, label, when)
        self.depth = mark

    def branch_chain(self, node, label, when):
        """branch_if for `a and b ...`, `a or b ...` and a chained comparison `a < b < c` (an and of its links)."""
        is_and = isinstance(node, ast.Compare) or isinstance(node.op, ast.And)
        parts = node.values if isinstance(node, ast.BoolOp) else list(zip(node.ops, node.comparators))
        skip, left, saved = _Label(), getattr(node, "left", None), dict(self.safe)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            target, on = (label, when) if last or is_and != when else (skip, not when)
            if isinstance(part, tuple):  # one link a < b of a chain; b is evaluated once
                op, right = part
                if type(op) not in _CMPOPS:
                    raise _error("in, not in and is cannot be chained with other comparisons", node)
                x = left if isinstance(left, Operand) else self.operand(left, not self.has_call(right))
                left = self.operand(right, volatile=last)
                self.branch_cmp(_CMPOPS[type(op)], x, left, target, on)
            else:
                self.branch_if(part, target, on)
                self.learn(part, is_and)  # the later parts run only when this one was true (and) / false (or)
        self.safe = saved
        self.items.append(skip)

    def branch_if_value(self, r, label, when):
        r = self.reg(r)
        if when:
            t = self.temp()
            self.emit("eq", dst=t, a=r, imm=0)
            r = t
        self.emit("branch", a=r, target=label)

    def branch_cmp(self, op, x, y, label, when):
        """Jump to `label` if op(x, y) == when: `branch` jumps on zero, so compute the comparison that
        is false exactly when we want to jump."""
        t = self.temp()
        self.alu(_NEGATE[op] if when else op, t, x, y)
        if self.items[-1].op == "const":  # both constant: decide now
            self.items.pop()
            self.branch_if(ast.Constant(PRIMITIVES[op](x.imm, y.imm, self.V)), label, when)
        else:
            self.emit("branch", a=t, target=label)
        self.depth -= 1

    def simple_compare(self, node):
        """A comparison of ints (or characters) with < <= > >= == !=, which the ALU does directly."""
        return all(type(op) in _CMPOPS for op in node.ops) and \
            all(self.type(x) in (INT, None) for x in [node.left, *node.comparators]) or \
            all(type(op) in _CMPOPS for op in node.ops) and all(self.type(x) == CHAR for x in [node.left, *node.comparators])

    def compare_special(self, node, dst):
        """dst = a comparison the ALU cannot do in one step: in / not in, is (not) None, == of lists or
        strings, and == between an int and a string (always false, as in Python)."""
        if len(node.ops) != 1:
            raise _error("chained comparisons of lists or strings are not supported", node)
        op, left, right = node.ops[0], node.left, node.comparators[0]
        lt, rt = self.type(left), self.type(right)
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise _error("is / is not are only supported against None: compare values with == and !=", node)
            return self.emit("const", dst=dst, imm=int(isinstance(op, ast.IsNot)))  # no value of the machine is None
        if isinstance(op, (ast.In, ast.NotIn)):
            self.contains(left, right, dst, node)
        elif isinstance(op, (ast.Eq, ast.NotEq)):
            if (lt == INT) != (rt == INT):  # an int never equals a string or a list
                return self.emit("const", dst=dst, imm=int(isinstance(op, ast.NotEq)))
            if {lt, rt} <= {STR, CHAR} or lt == rt or _is_seq(lt) and _is_seq(rt):
                self.seq_equal(left, right, dst)
            else:
                raise _error(f"cannot compare {_show(lt)} with {_show(rt)}", node)
        else:
            raise _error(f"{type(op).__name__} of {_show(lt)} and {_show(rt)} is not supported: compare ints or "
                         "characters", node)
        if isinstance(op, (ast.NotIn, ast.NotEq)):
            self.emit("eq", dst=dst, a=dst, imm=0)

    def contains(self, x, container, dst, node):
        """dst = x in container: an == chain for a few constants, else a search loop."""
        ct = self.type(container)
        if ct is None or isinstance(ct, tuple):
            ct = LIST if all(self.type(e) == INT for e in getattr(container, "elts", [])) else CHARS
        if self.type(x) != _elem(ct) and not (self.type(x) in (STR, CHAR) and ct == STR):
            raise _error(f"{ast.unparse(x)} is {_show(self.type(x))}; {ast.unparse(container)} holds "
                         f"{_show(_elem(ct))}s", node)
        if self.type(x) == STR:
            raise _error("searching for a string in a string is not supported: search for one character", node)
        xr = Operand(self.reg(self.operand(x)))
        consts = [ord(e.value) if isinstance(e.value, str) else e.value for e in getattr(container, "elts", [])
                  if isinstance(e, ast.Constant)] if isinstance(container, (ast.Tuple, ast.List)) else \
            [ord(c) for c in container.value] if isinstance(container, ast.Constant) else None
        if consts is not None and len(consts) == len(getattr(container, "elts", consts)) and len(consts) <= 8:
            t = self.temp()
            self.emit("const", dst=dst, imm=0)
            for c in consts:
                self.alu("eq", t, xr, Operand(imm=c))
                self.emit("or", dst=dst, a=dst, b=t)
            return
        base, length = self.seq(container, readonly=True)
        found, done = self.temp(), _Label()
        self.emit("const", dst=found, imm=1)
        self.each_equal(base, length, xr, lambda k: self.emit("jump", target=done))
        self.emit("const", dst=found, imm=0)
        self.place(done)
        self.emit("mov", dst=dst, a=found)

    def seq_equal(self, left, right, dst):
        """dst = left == right for two lists or strings: same length, same elements."""
        (ab, an), (bb, bn) = self.seq(left, readonly=True), self.seq(right, readonly=True)
        eq, t, u, done = self.temp(), self.temp(), self.temp(), _Label()
        self.alu("eq", eq, an, bn)
        self.emit("branch", a=eq, target=done)

        def body(k):
            self.alu("add", t, ab, Operand(k))
            self.emit("load", dst=t, a=t)
            self.alu("add", u, bb, Operand(k))
            self.emit("load", dst=u, a=u)
            self.emit("eq", dst=eq, a=t, b=u)
            self.emit("branch", a=eq, target=done)
        self.repeat(an, body)
        self.place(done)
        self.emit("mov", dst=dst, a=eq)


class _Indexes:
    """`address` and `check_index` for a[i]; `learn`, `facts`, `forget`: what is known about indexes."""

    # -- indexing: a[i] with its bounds check -------------------------------------------------------
    def address(self, node, dst):
        """dst = the memory address of a[i], after checking that 0 <= i < len(a) (else IndexError); a
        constant -c counts from the end, as in Python. The check is left out where the index is known to
        be in range (`learn`)."""
        base, length = self.seq(node.value, readonly=True)
        index, name = node.slice, getattr(node.value, "id", None)
        neg = isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub) and self.fold(index.operand)
        if neg:
            c = self.fold(index.operand)
            self.check_index(Operand(imm=c - 1), length, node, name, ast.Constant(c - 1))
            self.alu("add", dst, base, length)
            return self.emit("sub", dst=dst, a=dst, imm=c)
        i = self.operand(index)
        if self.type(index) not in (INT, None):
            raise _error(f"a list index must be an int, not {_show(self.type(index))}", index)
        self.check_index(i, length, node, name, index)
        self.alu("add", dst, base, i)

    def check_index(self, i, length, node, name, index):
        """Stop with IndexError unless i < length."""
        if not self.sh.check_bounds or (name, _key(index)) in self.safe:
            return
        if i.reg is None and any(k[0] == name and k[1][0] == "#" and k[1][1] >= i.imm for k in self.safe):
            return
        if i.reg is None and length.reg is None:
            if i.imm >= length.imm:
                raise _error(f"index {ast.unparse(index)} is past the end of a sequence of length {length.imm}", node)
            return
        t = self.temp()
        self.alu("lt", t, i, length)
        kind = "string" if self.type(node.value) == STR else "list"
        self.emit("branch", a=t, target=self.fail_label("IndexError", f"{kind} index out of range", node))
        self.depth -= 1

    # -- what is known about indexes: facts that let `address` leave out a bounds check ----------------
    def learn(self, node, truth):
        """Record the indexes known to be in range when bool(node) == truth; returns the facts before."""
        saved = dict(self.safe)
        for name, index in self.facts(node, truth):
            self.safe[(name, _key(index))] = _names([index])
        for x, low in self.lower_bounds(node, truth):  # x >= low: a[x + d] in range -> a[x + d - k] too
            for (name, key), names in list(self.safe.items()):
                if key[0] == "+" and key[1] == x:
                    for k in range(1, min(low + key[2], 8) + 1):  # x + d - k >= low + d - k >= 0
                        self.safe[(name, ("+", x, key[2] - k))] = names
        for x in self.nonzero(node, truth):
            self.safe[_NONZERO, ("!=0", x)] = {x}
        return saved

    def nonzero(self, node, truth):
        """Names known to be nonzero when bool(node) == truth (`while b:`, `if b != 0`, `if n == 0: return`)."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.nonzero(node.operand, not truth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) == truth:
            return [x for v in node.values for x in self.nonzero(v, truth)]
        if isinstance(node, ast.Name) and truth and self.type(node) == INT:
            return [node.id]
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name)):
            return []
        kind, c = _CMPOPS.get(type(node.ops[0])), self.signed(node.comparators[0])
        kind = kind and (kind if truth else _NEGATE[kind])
        if node.left.id in self.fn.bias or c is None:
            return []
        return [node.left.id] if kind == "ne" and c == 0 or kind == "gt" and c >= 0 or kind == "ge" and c > 0 else []

    def learn_accesses(self, s):
        """After statement s, the indexes it certainly used are known to be in range (while neither the
        index nor the list changes)."""
        accesses = self.accessed(s) if self.fn.lists else None
        if not accesses:
            return
        stores, grown, _, _ = self.summary(s)
        for name, index in accesses:
            names = _names([index])
            if name not in stores | grown and not names & stores:
                self.safe[(name, _key(index))] = names

    def check_divisor(self, y, node, at):
        """Stop with ZeroDivisionError if the divisor y (the value of node) is 0, unless it is known not to be."""
        if not (isinstance(node, ast.Name) and (_NONZERO, ("!=0", node.id)) in self.safe):
            self.emit("branch", a=y.reg, target=self.fail_label("ZeroDivisionError", "division by zero", at))

    def lower_bounds(self, node, truth):
        """(x, c) for the conditions x > c - 1 / x >= c (c > 0) that hold when bool(node) == truth; x > y
        for a variable y gives x >= 1 (values are never below 0)."""
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) == truth:
            return [b for v in node.values for b in self.lower_bounds(v, truth)]
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and _CMPOPS.get(type(node.ops[0]))):
            return []
        (x, y), kind = (node.left, node.comparators[0]), _CMPOPS[type(node.ops[0])]
        kind = kind if truth else _NEGATE[kind]
        if kind in ("lt", "le"):  # y > x is x < y
            (x, y), kind = (y, x), _SWAP[kind]
        if not isinstance(x, ast.Name):
            return []  # (a counting-down x compares as in Python: x > 0 holds of its value)
        c = self.signed(y)
        low = c + 1 if kind == "gt" and c is not None else c if kind == "ge" else \
            1 if kind == "gt" and isinstance(y, ast.Name) and y.id not in self.fn.bias else None
        return [(x.id, low)] if low and low > 0 else []

    def accessed(self, node):
        """(list, index) of every a[i] that evaluating node certainly does (not under and/or/if-else):
        had i been out of range, the run would have stopped."""
        out, stack = [], [node]
        while stack:
            n = stack.pop()
            if isinstance(n, (ast.BoolOp, ast.IfExp, ast.ListComp, ast.GeneratorExp, ast.Lambda)):
                continue
            if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and not isinstance(n.slice, ast.Slice) \
                    and n.value.id in self.fn.lists:
                out.append((n.value.id, n.slice))
            stack.extend(_kids(n))
        return out

    def len_of(self, node):
        """a if node is len(a) (or a variable n = len(a)), else None."""
        if _call_name(node) == "len" and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
            return node.args[0].id
        return self.lengths.get(node.id) if isinstance(node, ast.Name) else None

    def facts(self, node, truth):
        """(list name, index) pairs with 0 <= index < len(list) whenever bool(node) == truth."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.facts(node.operand, not truth)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) == truth:
            return [f for v in node.values for f in self.facts(v, truth)]
        if isinstance(node, ast.Name) and truth and node.id in self.fn.lists:
            return [(node.id, ast.Constant(0))]
        if not isinstance(node, ast.Compare) or not truth and len(node.ops) > 1:
            return []
        out, left = self.accessed(node) if truth else [], node.left
        for op, right in zip(node.ops, node.comparators):
            kind = _CMPOPS.get(type(op))
            kind = _NEGATE[kind] if kind and not truth else kind
            small, big = (left, right) if kind in ("lt", "le") else (right, left)
            extra, name = 0, self.len_of(big)
            if name is None and isinstance(big, ast.BinOp) and isinstance(big.op, ast.Sub):
                extra, name = self.fold(big.right), self.len_of(big.left)  # small < len(a) - c
            if _names([small]) & set(self.fn.bias):
                name = None  # a counting-down variable may be negative: a[-1] is not a[V - 1]
            if kind in ("lt", "le", "gt", "ge") and name and extra is not None:
                top = extra - (kind in ("le", "ge"))  # small + d < len(a) for d = 0 .. top
                k = self.fold(small)
                if k is not None and top >= 0:
                    out.append((name, ast.Constant(k + top)))
                elif isinstance(small, ast.Name):
                    out += [(name, small if d == 0 else ast.BinOp(ast.Name(small.id, ast.Load()), ast.Add(),
                                                                  ast.Constant(d))) for d in range(top + 1)]
                elif top >= 0:
                    out.append((name, small))
            left = right
        return out

    def forget(self, names, down=()):
        """Facts about names that were just assigned no longer hold; for names in `down`, which only
        counted down (and stayed >= 0), facts a[x + d] with d >= 0 still hold."""
        names, down = set(names) - set(down), set(down)
        keep = lambda k: k[1][0] == "+" and k[1][1] in down and k[1][2] >= 0
        self.safe = {k: v for k, v in self.safe.items() if k[0] not in names | down and
                     not v & names and (not v & down or keep(k))}
        self.lengths = {n: a for n, a in self.lengths.items() if n not in names and a not in names}


class _Lists:
    """Methods `seq_<Node>` and `seqmethod_<name>`: a sequence value into (base, length) registers."""

    # -- lists and strings: (base, length) operand pairs ----------------------------------------------
    def reg(self, opd):
        """A register holding the operand (a constant goes into a new temporary)."""
        if opd.reg is not None:
            return opd.reg
        t = self.temp()
        self.emit("const", dst=t, imm=opd.imm)
        return t

    def seq(self, node, readonly=False):
        """A list or string as a pair of operands (base, length). A variable's are its own registers; a
        string constant (and, when `readonly`, a literal of constants) is constant data; anything else
        is built into two new temporaries."""
        t = self.type(node)
        if isinstance(node, ast.Name) and t != CHAR:
            b, n = self.list_regs(node)
            return Operand(b), Operand(n)
        if t == CHAR and not (isinstance(node, ast.Constant)):  # a character where a string is wanted
            x = self.operand(node)
            p = self.alloc(Operand(imm=1))
            self.emit("store", a=p, b=self.reg(x))
            return Operand(p), Operand(imm=1)
        if not _is_seq(t) and t != CHAR:
            raise _error(f"{ast.unparse(node)} is {_show(t)}, not a list or string", node)
        if _call_name(node) in self.table:
            return tuple(self.call_parts(node))
        if isinstance(node, ast.Constant) or readonly and isinstance(node, (ast.List, ast.Tuple)) and \
                all(self.fold(e) is not None or isinstance(e, ast.Constant) for e in node.elts):
            values = [ord(c) for c in node.value] if isinstance(node, ast.Constant) else \
                [ord(e.value) if isinstance(e, ast.Constant) and isinstance(e.value, str) else self.fold(e)
                 for e in node.elts]
            return Operand(imm=self.sh.intern(values)), Operand(imm=len(values))
        b, n = self.temp(), self.temp()
        self.seq_into(node, b, n)
        return Operand(b), Operand(n)

    def seq_into(self, node, b, n):
        """Build the list or string `node` and leave its base and length in registers b and n."""
        if isinstance(node, (ast.Name, ast.Constant)) or self.type(node) == CHAR:
            base, length = self.seq(node)
            self.move(b, base), self.move(n, length)
            return
        method = getattr(self, "seq_" + type(node).__name__, None)
        if method is None:
            raise _error(f"{type(node).__name__} does not make a list here", node)
        mark = self.depth
        method(node, b, n)
        self.depth = mark

    def alloc(self, n):
        """A new temporary holding the base of n fresh heap cells (n: an operand); stops with MemoryError
        when the heap is full. Cell 0 holds the heap pointer, cell 1 the heap end."""
        self.sh.used = True
        p, e = self.temp(), self.temp()
        self.emit("const", dst=e, imm=HEAP_POINTER)
        self.emit("load", dst=p, a=e)  # p = the heap pointer: the base of the new cells
        if n == Operand(imm=0):
            self.depth -= 1
            return p
        self.emit("const", dst=e, imm=HEAP_END)
        self.emit("load", dst=e, a=e)
        self.emit("sub", dst=e, a=e, b=p)  # the cells left (the pointer never passes the end)
        self.alu("le", e, n, Operand(e))
        self.emit("branch", a=e, target=self.fail_label(*HEAP_FULL))
        self.alu("add", e, Operand(p), n)
        z = self.temp()
        self.emit("const", dst=z, imm=HEAP_POINTER)
        self.emit("store", a=z, b=e)  # the pointer moves past them
        self.depth -= 2
        return p

    def repeat(self, n, body, start=Operand(imm=0)):
        """for k in range(start, n): body(k), with k in a new temporary; n is read before each pass."""
        outer = self.depth
        k, top, test = self.temp(), _Label(), _Label()
        self.move(k, start)
        self.emit("jump", target=test)
        self.place(top)
        mark = self.depth
        body(k)
        self.depth = mark
        self.emit("add", dst=k, a=k, imm=1)
        self.place(test)
        self.branch_cmp("lt", Operand(k), n, top, True)
        self.depth = outer

    def copy(self, dst, src, n, reverse=False):
        """Copy n cells from address src to address dst (operands); reversed: dst[k] = src[n - 1 - k]."""
        mark = self.depth
        t, u = self.temp(), self.temp()

        def body(k):
            self.alu("add", t, src, Operand(k))
            self.emit("load", dst=u, a=t)
            if reverse:
                self.alu("add", t, dst, n)
                self.emit("sub", dst=t, a=t, b=k)
                self.emit("sub", dst=t, a=t, imm=1)
            else:
                self.alu("add", t, dst, Operand(k))
            self.emit("store", a=t, b=u)
        self.repeat(n, body)
        self.depth = mark

    def total(self, x, y, node):
        """x + y as an operand, stopping with MemoryError if it is V or more (a list that long cannot exist)."""
        if x.reg is None and y.reg is None:
            if x.imm + y.imm >= self.V:
                raise _error(f"a list of {x.imm + y.imm} elements does not fit: lengths are values below {self.V}", node)
            return Operand(imm=x.imm + y.imm)
        t = self.temp()
        self.alu("sub", t, Operand(imm=self.V - 1), x)  # the most that can be added to x
        self.alu("le", t, y, Operand(t))
        self.emit("branch", a=t, target=self.fail_label(*HEAP_FULL, node))
        self.alu("add", t, x, y)
        return Operand(t)

    def seq_Name(self, node, b, n):
        base, length = self.seq(node)
        self.move(b, base), self.move(n, length)

    def seq_List(self, node, b, n):
        p = self.alloc(Operand(imm=len(node.elts)))
        for k, e in enumerate(node.elts):
            mark, t = self.depth, self.temp()
            self.value(e, t)
            a = self.temp()
            self.emit("add", dst=a, a=p, imm=k) if k else self.emit("mov", dst=a, a=p)
            self.emit("store", a=a, b=t)
            self.depth = mark
        self.emit("mov", dst=b, a=p)
        self.emit("const", dst=n, imm=len(node.elts))

    seq_Tuple = seq_List

    def seq_ListComp(self, node, b, n):
        """[elt for x in xs if c ...]: an empty list at the heap pointer, appended to by nested loops."""
        lst = self.alloc(Operand(imm=0)), self.temp()
        self.emit("const", dst=lst[1], imm=0)
        self.comprehension(node, lambda: self.append(lst, self.operand(node.elt), node))
        self.emit("mov", dst=b, a=lst[0])
        self.emit("mov", dst=n, a=lst[1])

    def comprehension(self, node, each):
        """each() once per element of a list comprehension or generator expression: nested loops over its
        generators, skipping an element where one of the `if`s is false."""
        def loops(gens):
            if not gens:
                return each()
            g, skip = gens[0], _Label()

            def body():
                for c in g.ifs:
                    self.branch_if(c, skip, False)
                loops(gens[1:])
                self.place(skip)
            self.iterate(g.target, g.iter, [node], body)
        loops(node.generators)

    def each_equal(self, base, length, x, found):
        """found(k) for every index k of the sequence (base, length) whose element equals operand x."""
        t = self.temp()

        def body(k):
            skip = _Label()
            self.alu("add", t, base, Operand(k))
            self.emit("load", dst=t, a=t)
            self.branch_cmp("eq", Operand(t), x, skip, False)
            found(k)
            self.place(skip)
        self.repeat(length, body)

    def seq_BinOp(self, node, b, n):
        if isinstance(node.op, ast.Add):  # concatenation: a + b + c copies each part once
            parts, stack = [], [node]
            while stack:
                x = stack.pop()
                if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Add) and self.type(x) not in (INT, CHAR):
                    stack += [x.right, x.left]
                else:
                    parts.append(x)
            ops = [self.seq(x, readonly=True) for x in parts]
            size = ops[0][1]
            for x, (_, length) in zip(parts[1:], ops[1:]):
                size = self.total(size, length, x)
            p = self.alloc(size)
            at = self.temp()
            self.emit("mov", dst=at, a=p)
            for base, length in ops:
                self.copy(Operand(at), base, length)
                self.alu("add", at, Operand(at), length)
            self.emit("mov", dst=b, a=p)
            return self.move(n, size)
        seq, count = (node.left, node.right) if self.type(node.right) == INT else (node.right, node.left)
        base, length = self.seq(seq, readonly=True)
        k = self.operand(count)
        size = self.temp()
        if length.reg is None and length.imm == 1:
            self.move(size, k)
        else:  # len * k must stay below V
            self.alu("max", size, length, Operand(imm=1))
            self.alu("floordiv", size, Operand(imm=self.V - 1), Operand(size))
            self.alu("le", size, k, Operand(size))
            self.emit("branch", a=size, target=self.fail_label(*HEAP_FULL, node))
            self.alu("mul", size, length, k)
        p = self.alloc(Operand(size))
        at = self.temp()
        self.emit("mov", dst=at, a=p)
        if length.reg is None and length.imm == 1:  # [x] * n: fill
            x = self.temp()
            self.emit("load", dst=x, a=self.reg(base))
            self.repeat(k, lambda j: (self.emit("add", dst=at, a=p, b=j), self.emit("store", a=at, b=x)))
        else:
            self.repeat(k, lambda j: (self.copy(Operand(at), base, length), self.alu("add", at, Operand(at), length)))
        self.emit("mov", dst=b, a=p)
        self.emit("mov", dst=n, a=size)

    def seq_Subscript(self, node, b, n):
        """a[lo:hi] (a copy, bounds clamped as in Python) and a[::-1] (a reversed copy)."""
        if not isinstance(node.slice, ast.Slice):
            raise _error(f"{ast.unparse(node)} is one element, not a list", node)
        sl, (base, length) = node.slice, self.seq(node.value, readonly=True)
        step = self.signed(sl.step) if sl.step is not None else 1
        if step == -1 and sl.lower is None and sl.upper is None:
            p = self.alloc(length)
            self.copy(Operand(p), base, length, reverse=True)
            self.emit("mov", dst=b, a=p)
            return self.move(n, length)
        if step != 1:
            raise _error("slices take step 1, or a[::-1] for a reversed copy", sl.step or node)
        lo = self.bound(sl.lower, length, Operand(imm=0))
        hi = self.bound(sl.upper, length, length)
        size = self.temp()
        self.alu("max", size, hi, lo)
        self.alu("sub", size, Operand(size), lo)  # hi - lo, or 0 when hi < lo
        p = self.alloc(Operand(size))
        start = self.temp()
        self.alu("add", start, base, lo)
        self.copy(Operand(p), Operand(start), Operand(size))
        self.emit("mov", dst=b, a=p)
        self.emit("mov", dst=n, a=size)

    def bound(self, node, length, default):
        """A slice bound as Python clamps it into [0, len]: -c counts from the end."""
        if node is None:
            return default
        c = self.signed(node)
        if c is not None and c < 0:
            t = self.temp()
            self.alu("max", t, length, Operand(imm=-c))
            self.emit("sub", dst=t, a=t, imm=-c)
            return Operand(t)
        x = self.operand(node)
        if x.reg is None and length.reg is None:
            return Operand(imm=min(x.imm, length.imm))
        t = self.temp()
        self.alu("min", t, x, length)
        return Operand(t)

    def seq_IfExp(self, node, b, n):
        orelse, end = _Label(), _Label()
        self.branch_if(node.test, orelse, False)
        self.seq_into(node.body, b, n)
        self.emit("jump", target=end)
        self.place(orelse)
        self.seq_into(node.orelse, b, n)
        self.place(end)

    def seq_Call(self, node, b, n):
        name = _call_name(node)
        if name in self.table:
            base, length = self.call_parts(node)
            self.move(b, base), self.move(n, length)
            return
        obj, method = _method(node)
        if method is not None:
            return getattr(self, "seqmethod_" + method)(node, obj, b, n)
        if name in ("list", "sorted"):
            if not node.args:
                self.emit("mov", dst=b, a=self.alloc(Operand(imm=0)))
                return self.emit("const", dst=n, imm=0)
            if _call_name(node.args[0]) == "range":  # list(range(...)): fill
                lst = self.alloc(Operand(imm=0)), self.temp()
                self.emit("const", dst=lst[1], imm=0)
                k = ast.Name("@k", ast.Store())
                self.fn.regs["@k"] = self.temp()
                self.iterate(k, node.args[0], [], lambda: self.append(lst, Operand(self.fn.regs["@k"]), node))
                self.emit("mov", dst=b, a=lst[0])
                return self.emit("mov", dst=n, a=lst[1])
            base, length = self.seq(node.args[0], readonly=True)
            p = self.alloc(length)
            self.copy(Operand(p), base, length)
            self.emit("mov", dst=b, a=p)
            self.move(n, length)
            if name == "sorted":
                reverse = [k for k in node.keywords if k.arg == "reverse"]
                if len(node.keywords) != len(reverse) or reverse and self.fold(reverse[0].value) is None:
                    raise _error("sorted() takes only reverse=True or reverse=False", node)
                self.sort(Operand(b), Operand(n), bool(reverse and self.fold(reverse[0].value)))
            return
        if name == "str":
            return self.str_of_int(node, b, n)
        raise _error(f"{name}(...) does not make a list", node)

    def str_of_int(self, node, b, n):
        """str(x) for an int x: its decimal digits."""
        if len(node.args) != 1 or self.type(node.args[0]) != INT:
            raise _error("str() is supported on one int", node)
        x, t, size = self.temp(), self.temp(), self.temp()
        self.value(node.args[0], x)
        self.emit("const", dst=size, imm=1)
        self.emit("mov", dst=t, a=x)
        more, done = _Label(), _Label()
        self.place(more)  # count the digits
        self.branch_cmp("ge", Operand(t), Operand(imm=10), done, False)
        self.emit("floordiv", dst=t, a=t, imm=10)
        self.emit("add", dst=size, a=size, imm=1)
        self.emit("jump", target=more)
        self.place(done)
        p = self.alloc(Operand(size))
        self.alu("add", t, Operand(p), Operand(size))
        again = self.place(_Label())
        self.emit("sub", dst=t, a=t, imm=1)
        u = self.temp()
        self.emit("mod", dst=u, a=x, imm=10)
        self.emit("add", dst=u, a=u, imm=48)
        self.emit("store", a=t, b=u)
        self.emit("floordiv", dst=x, a=x, imm=10)
        self.branch_cmp("gt", Operand(t), Operand(p), again, True)
        self.emit("mov", dst=b, a=p)
        self.emit("mov", dst=n, a=size)

    def sort(self, base, length, reverse=False):
        """Insertion sort of the cells base .. base + length - 1, in place (ascending, or descending)."""
        mark = self.depth
        key, j, t, u = self.temp(), self.temp(), self.temp(), self.temp()

        def body(i):
            inner, place = _Label(), _Label()
            self.alu("add", t, base, Operand(i))
            self.emit("load", dst=key, a=t)
            self.emit("mov", dst=j, a=i)
            self.place(inner)
            self.branch_cmp("gt", Operand(j), Operand(imm=0), place, False)
            self.alu("add", t, base, Operand(j))
            self.emit("sub", dst=t, a=t, imm=1)
            self.emit("load", dst=u, a=t)
            self.branch_cmp("lt" if reverse else "gt", Operand(u), Operand(key), place, False)
            self.emit("add", dst=t, a=t, imm=1)
            self.emit("store", a=t, b=u)
            self.emit("sub", dst=j, a=j, imm=1)
            self.emit("jump", target=inner)
            self.place(place)
            self.alu("add", t, base, Operand(j))
            self.emit("store", a=t, b=key)
        self.repeat(length, body, start=Operand(imm=1))
        self.depth = mark

    def seqmethod_copy(self, node, obj, b, n):
        self.seq_into(ast.Subscript(obj, ast.Slice(None, None, None), ast.Load(), lineno=node.lineno,
                                    col_offset=node.col_offset), b, n)

    def seqmethod_lower(self, node, obj, b, n, upper=False):
        base, length = self.seq(obj, readonly=True)
        p = self.alloc(length)
        t, u = self.temp(), self.temp()

        def body(k):
            self.alu("add", t, base, Operand(k))
            self.emit("load", dst=u, a=t)
            self.case(u, upper)
            self.alu("add", t, Operand(p), Operand(k))
            self.emit("store", a=t, b=u)
        self.repeat(length, body)
        self.emit("mov", dst=b, a=p)
        self.move(n, length)

    def seqmethod_upper(self, node, obj, b, n):
        self.seqmethod_lower(node, obj, b, n, upper=True)

    def seqmethod_join(self, node, obj, b, n):
        if not (isinstance(obj, ast.Constant) and obj.value == "" and len(node.args) == 1 and
                self.type(node.args[0]) in (CHARS, STR)):
            raise _error("only ''.join(characters) is supported: join a list of characters with no separator", node)
        self.seq_into(ast.Call(ast.Name("list", ast.Load()), node.args, [], lineno=node.lineno,
                               col_offset=node.col_offset), b, n)

    def case(self, c, upper):
        """c = c.upper() (or .lower()) for a character code in register c."""
        lo = ord("a") if upper else ord("A")
        t, skip = self.temp(), _Label()
        self.emit("sub", dst=t, a=c, imm=lo)
        self.branch_cmp("lt", Operand(t), Operand(imm=26), skip, False)
        self.emit("sub" if upper else "add", dst=c, a=c, imm=32)
        self.place(skip)
        self.depth -= 1

    def append(self, lst, x, node):
        """lst.append(x) for a list (b, n) in registers: in place when it ends at the heap pointer,
        otherwise copied to the top first; MemoryError when the heap is full."""
        mark = self.depth
        (b, n), x = lst, Operand(self.reg(x))
        z, p, end, t = self.temp(), self.temp(), self.temp(), self.temp()
        grow, back = _Label(), _Label()
        self.emit("const", dst=z, imm=HEAP_POINTER)
        self.emit("load", dst=p, a=z)
        self.emit("add", dst=end, a=b, b=n)
        self.emit("eq", dst=t, a=end, b=p)
        self.emit("branch", a=t, target=grow)  # not at the top: copy it there first
        self.emit("const", dst=t, imm=HEAP_END)
        self.emit("load", dst=t, a=t)
        self.emit("lt", dst=t, a=p, b=t)
        self.emit("branch", a=t, target=self.fail_label(*HEAP_FULL, node))
        self.emit("add", dst=p, a=p, imm=1)
        self.emit("store", a=z, b=p)
        self.place(back)
        self.emit("store", a=end, b=x.reg)
        self.emit("add", dst=n, a=n, imm=1)
        done = _Label()
        self.emit("jump", target=done)
        self.place(grow)
        self.emit("add", dst=t, a=n, imm=1)
        q = self.alloc(Operand(t))
        self.copy(Operand(q), Operand(b), Operand(n))
        self.emit("mov", dst=b, a=q)
        self.emit("add", dst=end, a=b, b=n)
        self.emit("jump", target=back)
        self.place(done)
        self.depth = mark


class _Calls:
    """Methods `builtin_<name>`, `method_<name>` (int results), `listmethod_<name>` (statements), calls."""

    # -- builtins with one-register results ---------------------------------------------------------
    def args(self, node, n, what):
        if len(node.args) not in ((n,) if isinstance(n, int) else n):
            raise _error(f"{what} takes {n if isinstance(n, int) else ' or '.join(map(str, n))} argument(s)", node)
        return node.args

    def builtin_len(self, node, dst):
        arg, = self.args(node, 1, "len()")
        self.move(dst, self.seq(arg, readonly=True)[1])

    def builtin_ord(self, node, dst):
        arg, = self.args(node, 1, "ord()")
        if self.type(arg) != CHAR:
            raise _error(f"ord() takes a character, not {_show(self.type(arg))}", node)
        self.value(arg, dst)

    def builtin_chr(self, node, dst):
        arg, = self.args(node, 1, "chr()")
        if self.type(arg) != INT:
            raise _error(f"chr() takes an int, not {_show(self.type(arg))}", node)
        self.value(arg, dst)

    def builtin_bool(self, node, dst):
        arg, = self.args(node, 1, "bool()")
        self.condition(arg, dst)

    def builtin_int(self, node, dst):
        arg, = self.args(node, 1, "int()")
        t = self.type(arg)
        if t == INT:
            return self.value(arg, dst)
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Div):
            return self.value(ast.BinOp(arg.left, ast.FloorDiv(), arg.right, lineno=arg.lineno,
                                        col_offset=arg.col_offset), dst)  # int(a / b) == a // b for a, b >= 0
        if t == CHAR:  # a digit character
            self.value(arg, dst)
            self.emit("sub", dst=dst, a=dst, imm=48, wrap_ok=True)
            ok = self.temp()
            self.emit("lt", dst=ok, a=dst, imm=10)
            self.emit("branch", a=ok, target=self.fail_label("ValueError", "invalid literal for int()", node))
            return
        raise _error(f"int() takes an int, a digit character or a / b, not {_show(t)}", node)

    def builtin_abs(self, node, dst):
        arg, = self.args(node, 1, "abs()")
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Sub):  # |x - y| = max(x, y) - min(x, y)
            x, y = self.operands([arg.left, arg.right])
            x = Operand(self.reg(x)) if x.reg == A0 else x
            t = self.temp()
            self.alu("min", t, x, y)
            self.alu("max", dst, x, y)
            return self.alu("sub", dst, Operand(dst), Operand(t))
        if isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub):  # |-x| = x (x is never negative)
            arg = arg.operand
        self.value(arg, dst)  # values are never negative

    def isinstance_of(self, x, kinds):
        """isinstance(x, kinds), known from x's type."""
        names = [k.id for k in (kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]) if isinstance(k, ast.Name)]
        py = {INT: ("int",), CHAR: ("str",), STR: ("str",), LIST: ("list",), CHARS: ("list",)}.get(self.type(x), ())
        return int(bool(set(names) & set(py)))

    def builtin_pow(self, node, dst):
        x, y = self.args(node, 2, "pow() (with two arguments; pow(a, b, m) is not supported)")
        self.value(ast.BinOp(x, ast.Pow(), y, lineno=node.lineno, col_offset=node.col_offset), dst)

    def builtin_hole(self, node, dst):
        """hole(alt0, alt1, ...): branch on the hole's register, evaluate only the chosen alternative."""
        i, end = node.hole, _Label()
        h = HOLE0 - i
        for k, alt in enumerate(node.args):
            if self.type(alt) not in (INT, CHAR):
                raise _error("a hole's alternatives must be ints or characters", alt)
            nxt = _Label()
            if k < len(node.args) - 1:
                t = self.temp()
                self.emit("eq", dst=t, a=h, imm=k, note=f"hole {i}: alternative {k}: {ast.unparse(alt)}")
                self.emit("branch", a=t, target=nxt)
                self.depth -= 1
            self.value(alt, dst)
            if k < len(node.args) - 1:
                self.emit("jump", target=end)
            self.place(nxt)
        self.place(end)

    def builtin_min(self, node, dst, name="min"):
        if node.keywords:
            raise _error(f"{name}() with key= or default= is not supported", node)
        if len(node.args) >= 2:
            ops = self.operands(node.args)
            acc = dst if len(ops) == 2 else self.temp()  # only the last instruction may write dst
            self.alu(name, acc, ops[0], ops[1])
            for i, y in enumerate(ops[2:]):
                self.alu(name, dst if i == len(ops) - 3 else acc, Operand(acc), y)
            return
        arg, = self.args(node, (1, 2), f"{name}()")
        acc, empty = self.temp(), self.fail_label("ValueError", f"{name}() arg is an empty sequence", node)
        first = self.temp()
        self.emit("const", dst=first, imm=1)

        def each(x):
            take = _Label()
            self.emit("branch", a=first, target=take)
            self.move(acc, x)
            self.emit("const", dst=first, imm=0)
            self.place(take)
            self.alu(name, acc, Operand(acc), x)
        self.fold_over(arg, each)
        self.emit("eq", dst=first, a=first, imm=0)
        self.emit("branch", a=first, target=empty)
        self.emit("mov", dst=dst, a=acc)

    def builtin_max(self, node, dst):
        self.builtin_min(node, dst, "max")

    def builtin_sum(self, node, dst):
        arg, *start = self.args(node, (1, 2), "sum()")
        acc = self.temp()
        self.move(acc, self.operand(start[0]) if start else Operand(imm=0))
        self.fold_over(arg, lambda x: self.alu("add", acc, Operand(acc), x))
        self.emit("mov", dst=dst, a=acc)

    def builtin_any(self, node, dst, all_=False):
        """any(...) stops at the first truthy element, all(...) at the first falsy one."""
        arg, = self.args(node, 1, "all()" if all_ else "any()")
        acc, done = self.temp(), _Label()
        self.emit("const", dst=acc, imm=int(all_))

        def each(x):
            keep, t = _Label(), self.temp()
            self.alu("eq" if all_ else "ne", t, x, Operand(imm=0))
            self.emit("branch", a=t, target=keep)
            self.emit("const", dst=acc, imm=int(not all_))
            self.emit("jump", target=done)
            self.place(keep)
        self.fold_over(arg, each)
        self.place(done)
        self.emit("mov", dst=dst, a=acc)

    def builtin_all(self, node, dst):
        self.builtin_any(node, dst, all_=True)

    def fold_over(self, arg, each):
        """each(x) for every element x of a list, a string or a generator expression."""
        mark = self.depth
        self._fold_over(arg, each)
        self.depth = mark

    def _fold_over(self, arg, each):
        if isinstance(arg, ast.GeneratorExp) or isinstance(arg, ast.ListComp):
            return self.comprehension(arg, lambda: each(self.operand(arg.elt)))
        base, length = self.seq(arg, readonly=True)
        t = self.temp()

        def body(k):
            self.alu("add", t, base, Operand(k))
            self.emit("load", dst=t, a=t)
            each(Operand(t))
        self.repeat(length, body)

    # -- methods ---------------------------------------------------------------------------------
    def method_pop(self, node, obj, dst):
        """x = a.pop() or a.pop(i): the last (or i-th) element, removed; IndexError on an empty list."""
        b, n = self.list_regs(obj)
        self.forget([obj.id])
        empty = self.fail_label("IndexError", "pop from empty list" if not node.args else "pop index out of range", node)
        if not node.args:
            self.emit("branch", a=n, target=empty)
            self.emit("sub", dst=n, a=n, imm=1)
            t = self.temp()
            self.emit("add", dst=t, a=b, b=n)
            return self.emit("load", dst=dst, a=t)
        i = self.temp()
        self.value(node.args[0], i)
        t, u = self.temp(), self.temp()
        self.emit("lt", dst=t, a=i, b=n)
        self.emit("branch", a=t, target=empty)
        self.emit("add", dst=t, a=b, b=i)
        self.emit("load", dst=u, a=t)
        self.emit("sub", dst=n, a=n, imm=1)
        v = self.temp()

        def shift(k):  # a[k] = a[k + 1] for k = i .. n - 1
            self.emit("add", dst=t, a=b, b=k)
            self.emit("add", dst=v, a=t, imm=1)
            self.emit("load", dst=v, a=v)
            self.emit("store", a=t, b=v)
        self.repeat(Operand(n), shift, start=Operand(i))
        self.emit("mov", dst=dst, a=u)

    def method_index(self, node, obj, dst, count=False):
        base, length = self.seq(obj, readonly=True)
        x, = self.args(node, 1, ".count()" if count else ".index()")
        x = Operand(self.reg(self.operand(x)))
        acc, done = self.temp(), _Label()
        self.emit("const", dst=acc, imm=0)

        def found(k):
            if count:
                self.emit("add", dst=acc, a=acc, imm=1)
            else:
                self.emit("mov", dst=acc, a=k)
                self.emit("jump", target=done)
        self.each_equal(base, length, x, found)
        if not count:
            self.emit("jump", target=self.fail_label("ValueError", f"{ast.unparse(node.args[0])} is not in list", node))
        self.place(done)
        self.emit("mov", dst=dst, a=acc)

    def method_count(self, node, obj, dst):
        self.method_index(node, obj, dst, count=True)

    def method_lower(self, node, obj, dst, upper=False):
        if self.type(obj) != CHAR:
            raise _error("a string's .lower()/.upper() is a string", node)
        self.value(obj, dst)
        self.case(dst, upper)

    def method_upper(self, node, obj, dst):
        self.method_lower(node, obj, dst, upper=True)

    def method_isdigit(self, node, obj, dst, ranges=((48, 57),)):
        """c.isdigit() and friends, for a character: its code is in one of the ranges. On a string: all
        its characters are, and it is not empty."""
        t = self.type(obj)

        def test(c, out):
            u = self.temp()
            self.emit("const", dst=out, imm=0)
            for lo, hi in ranges:
                self.emit("sub", dst=u, a=c, imm=lo, wrap_ok=True)
                self.emit("le", dst=u, a=u, imm=hi - lo)
                self.emit("or", dst=out, a=out, b=u)
            self.depth -= 1
        if t == CHAR:
            c = self.reg(self.operand(obj))
            return test(c, dst)
        acc, u = self.temp(), self.temp()
        base, length = self.seq(obj, readonly=True)
        self.alu("gt", acc, length, Operand(imm=0))

        def body(k):
            self.alu("add", u, base, Operand(k))
            self.emit("load", dst=u, a=u)
            w = self.temp()
            test(u, w)
            self.emit("and", dst=acc, a=acc, b=w)
        self.repeat(length, body)
        self.emit("mov", dst=dst, a=acc)

    def method_isalpha(self, node, obj, dst):
        self.method_isdigit(node, obj, dst, ((65, 90), (97, 122)))

    def method_isalnum(self, node, obj, dst):
        self.method_isdigit(node, obj, dst, ((48, 57), (65, 90), (97, 122)))

    def method_isspace(self, node, obj, dst):
        self.method_isdigit(node, obj, dst, ((9, 13), (32, 32)))

    def method_isupper(self, node, obj, dst):
        self.method_isdigit(node, obj, dst, ((65, 90),))

    def method_islower(self, node, obj, dst):
        self.method_isdigit(node, obj, dst, ((97, 122),))

    def statement_method(self, node):
        """a.append(x), a.insert(i, x), a.extend(b), a.sort(), a.reverse(), a.clear(), a.remove(x), a.pop()
        as a statement: each by its own `listmethod_...`."""
        obj, method = _method(node)
        if method == "pop":
            return self.method_pop(node, obj, self.temp())
        if method not in ("append", "insert", "extend", "sort", "reverse", "clear", "remove"):
            return self.value(node, self.temp())
        if self.type(obj) not in (LIST, CHARS):
            raise _error(f".{method}() needs a list; {ast.unparse(obj)} is {_show(self.type(obj))}", node)
        if method in _GROWS:
            self.forget([obj.id])
        getattr(self, "listmethod_" + method)(node, obj, self.list_regs(obj))

    def listmethod_append(self, node, obj, lst):
        x, = self.args(node, 1, ".append()")
        self.append(lst, self.operand(x), node)

    def listmethod_extend(self, node, obj, lst):
        other, = self.args(node, 1, ".extend()")
        self.extend(lst, other, node)

    def listmethod_insert(self, node, obj, lst):
        i, x = self.args(node, 2, ".insert()")
        i, x = self.operand(i), Operand(self.reg(self.operand(x)))
        at = self.temp()
        self.alu("min", at, i, Operand(lst[1]))  # Python inserts at the end when i > len
        self.append(lst, x, node)
        t, u = self.temp(), self.temp()
        k, top, test = self.temp(), _Label(), _Label()
        self.emit("sub", dst=k, a=lst[1], imm=1)
        self.emit("jump", target=test)
        self.place(top)  # a[k] = a[k - 1] for k = len - 1 down to at + 1
        self.emit("add", dst=t, a=lst[0], b=k)
        self.emit("sub", dst=u, a=t, imm=1)
        self.emit("load", dst=u, a=u)
        self.emit("store", a=t, b=u)
        self.emit("sub", dst=k, a=k, imm=1)
        self.place(test)
        self.branch_cmp("gt", Operand(k), Operand(at), top, True)
        self.emit("add", dst=t, a=lst[0], b=at)
        self.emit("store", a=t, b=x.reg)

    def listmethod_sort(self, node, obj, lst):
        reverse = [k for k in node.keywords if k.arg == "reverse"]
        if node.args or len(node.keywords) != len(reverse) or reverse and self.fold(reverse[0].value) is None:
            raise _error(".sort() takes only reverse=True or reverse=False", node)
        self.sort(Operand(lst[0]), Operand(lst[1]), bool(reverse and self.fold(reverse[0].value)))

    def listmethod_reverse(self, node, obj, lst):
        t, u, v, w = self.temp(), self.temp(), self.temp(), self.temp()
        self.emit("mov", dst=t, a=lst[0])
        self.emit("add", dst=u, a=lst[0], b=lst[1])
        top, test = _Label(), _Label()
        self.emit("jump", target=test)
        self.place(top)  # swap the cells at t and u - 1, moving both ends inwards
        self.emit("sub", dst=u, a=u, imm=1)
        self.emit("load", dst=v, a=t)
        self.emit("load", dst=w, a=u)
        self.emit("store", a=t, b=w)
        self.emit("store", a=u, b=v)
        self.emit("add", dst=t, a=t, imm=1)
        self.place(test)
        self.emit("add", dst=v, a=t, imm=1)
        self.branch_cmp("lt", Operand(v), Operand(u), top, True)

    def listmethod_clear(self, node, obj, lst):
        self.emit("const", dst=lst[1], imm=0)

    def listmethod_remove(self, node, obj, lst):
        x, = self.args(node, 1, ".remove()")
        i = self.temp()
        self.method_index(node, obj, i)
        self.remove_at(lst, i, node)

    def extend(self, lst, value, node):
        """lst += value: if lst ended at the heap pointer before value was made, value's cells are copied
        right after it (over value's own temporary cells, if any) and the pointer set past them; otherwise
        each element is appended (which first moves lst to the top)."""
        (b, n), mark, t, slow, done = lst, self.temp(), self.temp(), _Label(), _Label()
        self.emit("const", dst=mark, imm=HEAP_POINTER)
        self.emit("load", dst=mark, a=mark)
        base, length = self.seq(value, readonly=True)
        base, length = self.copy_of(base), self.copy_of(length)  # lst += lst reads the old length
        self.emit("add", dst=t, a=b, b=n)
        self.emit("eq", dst=mark, a=t, b=mark)
        self.emit("branch", a=mark, target=slow)
        self.emit("const", dst=mark, imm=HEAP_END)
        self.emit("load", dst=mark, a=mark)
        self.emit("sub", dst=mark, a=mark, b=t)  # cells left after lst
        self.alu("le", mark, length, Operand(mark))
        self.emit("branch", a=mark, target=self.fail_label(*HEAP_FULL, node))
        self.copy(Operand(t), base, length)
        self.alu("add", n, Operand(n), length)
        self.alu("add", t, Operand(t), length)
        self.emit("const", dst=mark, imm=HEAP_POINTER)
        self.emit("store", a=mark, b=t)
        self.emit("jump", target=done)
        self.place(slow)
        self.repeat(length, lambda k: self.append(lst, Operand(self.load_at(base, k)), node))
        self.place(done)

    def remove_at(self, lst, i, node):
        b, n = lst
        t, v = self.temp(), self.temp()
        self.emit("sub", dst=n, a=n, imm=1)

        def shift(k):
            self.emit("add", dst=t, a=b, b=k)
            self.emit("add", dst=v, a=t, imm=1)
            self.emit("load", dst=v, a=v)
            self.emit("store", a=t, b=v)
        self.repeat(Operand(n), shift, start=Operand(i))

    def load_at(self, base, k):
        t = self.temp()
        self.alu("add", t, base, Operand(k))
        self.emit("load", dst=t, a=t)
        return t

    # -- calls -------------------------------------------------------------------------------------
    def call_args(self, node, callee):
        """The argument of each parameter, by position or keyword; a left-out one is its default (a Param)."""
        params, out = callee.params, list(node.args)
        name = callee.node.name
        if len(out) > len(params):
            raise _error(f"{name} takes {len(params)} arguments ({', '.join(p.name for p in params)}), got "
                         f"{len(out)}", node)
        out += [None] * (len(params) - len(out))
        for k in node.keywords:
            i = next((i for i, p in enumerate(params) if p.name == k.arg), None)
            if i is None or out[i] is not None:
                raise _error(f"{name} has no parameter {k.arg} to pass by keyword, or it is passed twice", k)
            out[i] = k.value
        for i, (p, a) in enumerate(zip(params, out)):
            if a is None:
                if p.default is _REQUIRED:
                    raise _error(f"{name} takes {len(params)} arguments ({', '.join(p.name for p in params)}), "
                                 f"got {len(node.args) + len(node.keywords)}", node)
                out[i] = p
        return out

    def call(self, node):
        """Call a compiled function; its result is left in a0 (and the return cells). Every argument is
        evaluated first (into temporaries while a later argument still makes a call), then moved into
        the window a0, a1, ..."""
        callee = self.table[node.func.id]
        args = self.call_args(node, callee)
        last_call = max([i for i, a in enumerate(args) if isinstance(a, ast.AST) and self.has_call(a)], default=-1)
        moves, slot, mark = [], 0, self.depth
        for i, (p, arg) in enumerate(zip(callee.params, args)):
            window = -1 - slot
            slot += _width(p.type)
            if isinstance(arg, Param):  # the default
                v = arg.default
                if p.type == CHAR:
                    moves.append((window, Operand(imm=ord(v))))
                elif isinstance(v, str):
                    moves += [(window, Operand(imm=self.sh.intern(map(ord, v)))), (window - 1, Operand(imm=len(v)))]
                else:
                    moves.append((window, Operand(imm=v)))
                continue
            t = self.type(arg)
            if t != p.type and not (p.type == STR and t == CHAR) and not (_is_seq(t) and _is_seq(p.type) and
                                                                          STR not in (t, p.type)):
                raise _error(f"{callee.node.name} expects {_show(p.type)} for {p.name}, got {_show(t)}", arg)
            if p.type in SEQS:
                base, length = self.seq(arg, readonly=p.type == STR)
                moves += [(window, base), (window - 1, length)]
            elif isinstance(arg, ast.Name) or self.fold(arg) is not None:
                moves.append((window, self.operand(arg)))
            elif i >= last_call:
                self.value(arg, window)  # no call comes after it: straight into the window
            else:
                t = self.temp()
                self.value(arg, t)
                moves.append((window, Operand(t)))
        for window, opd in moves:
            self.move(window, opd)
        self.emit("call", target=callee.node.name, note=callee.node.name)
        self.depth = mark

    def call_parts(self, node):
        """Call a function that returns several values (or a list): new temporaries holding them all."""
        self.call(node)
        width = _width(self.table[node.func.id].returns)
        regs = [self.temp() for _ in range(width)]
        self.emit("mov", dst=regs[0], a=A0)
        for k, r in enumerate(regs[1:]):
            self.emit("const", dst=r, imm=RETURN_CELLS + k)
            self.emit("load", dst=r, a=r)
        return [Operand(r) for r in regs]

    def parts(self, node, t):
        """The operands of a value of type t, one per register: an int one, a list two (base, length),
        a tuple those of its parts."""
        if isinstance(node, ast.Tuple):
            if not isinstance(t, tuple) or len(t) != len(node.elts):
                raise _error(f"{ast.unparse(node)} has {len(node.elts)} values where {_show(t)} is expected", node)
            return [p for e, et in zip(node.elts, t) for p in self.parts(e, et)]
        if isinstance(t, tuple):
            if _call_name(node) in self.table:
                return self.call_parts(node)
            if _call_name(node) == "divmod":
                x, y = self.args(node, 2, "divmod()")
                x, y = self.reg(self.operand(x)), self.reg(self.operand(y))
                q, r = self.temp(), self.temp()
                self.emit("branch", a=y, target=self.fail_label("ZeroDivisionError", "division by zero", node))
                self.emit("floordiv", dst=q, a=x, b=y)
                self.emit("mod", dst=r, a=x, b=y)
                return [Operand(q), Operand(r)]
            raise _error(f"{ast.unparse(node)} is not a tuple of values", node)
        if t in SEQS:
            return list(self.seq(node))
        return [self.operand(node)]


class _Statements:
    """Methods `stmt_<Node>`: one statement each; then the loops, `iterate` and `for_range`."""

    # -- statements ----------------------------------------------------------------------------------
    def stmts(self, body):
        for s in body:
            self.line = s.lineno
            method = getattr(self, "stmt_" + type(s).__name__, None)
            if method is None:
                raise _error(f"{type(s).__name__} is not supported", s)
            mark = self.depth
            if self.drops_lists(s):
                self.scoped(s, lambda: method(s))
            else:
                method(s)
            self.depth = mark
            if isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)):
                self.learn_accesses(s)

    def drops_lists(self, s):
        """Does statement s keep no list it makes (so their heap cells can be given back after it)?"""
        if isinstance(s, (ast.Assign, ast.AnnAssign)):
            return all(isinstance(t, ast.Subscript) or isinstance(t, ast.Name) and _width(self.fn.types[t.id]) == 1
                       for t in (s.targets if isinstance(s, ast.Assign) else [s.target]))
        if isinstance(s, ast.AugAssign):
            return _width(self.type(s.target)) == 1
        return isinstance(s, ast.Expr) and _method(s.value)[1] not in _GROWS

    def scoped(self, node, emit):
        """emit() the code of `node`; if node makes lists that die with it, restore the heap pointer after."""
        if not self.makes_lists(node):
            return emit()
        m = self.temp()
        self.emit("const", dst=m, imm=HEAP_POINTER)
        self.emit("load", dst=m, a=m)
        emit()
        z = self.temp()
        self.emit("const", dst=z, imm=HEAP_POINTER)
        self.emit("store", a=z, b=m, note="give back the cells of the lists it made")
        self.depth -= 2

    def makes_lists(self, node):
        return self.fn.heap and self.summary(node)[3]

    def test_value(self, test):
        """A condition's truth in a new temporary, its lists given back (for tests that make lists)."""
        r = self.temp()
        self.scoped(test, lambda: self.condition(test, r))
        return Operand(r)

    def stmt_Assign(self, s):
        targets = s.targets
        for t in targets:
            if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Slice):
                raise _error("assigning to a slice (a[i:j] = ...) is not supported: make a new list (a = a[:i] + b) "
                             "or assign the elements one by one", t)
        if len(targets) == 1 and isinstance(targets[0], (ast.Tuple, ast.List)):
            return self.assign_tuple(targets[0], s.value)
        t = self.type(s.value)
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            name = targets[0].id
            if _width(self.fn.types[name]) == 2:
                regs = self.list_regs(targets[0])
                if name in self.unique and _is_fresh(s.value, self.fn, self.table):
                    self.replace(regs, s.value)
                elif regs[0] in self.reads(s.value) and not isinstance(s.value, ast.Name):
                    base, length = self.seq(s.value)  # build it first: the value reads the old list
                    self.move(regs[0], base), self.move(regs[1], length)
                else:
                    self.seq_into(s.value, *regs)
            else:
                self.value(s.value, self.store_reg(targets[0]))
                self.rebias(name)
            self.forget([name])
            if self.len_of(s.value) is not None and not isinstance(s.value, ast.Name):
                self.lengths[name] = self.len_of(s.value)
            if isinstance(s.value, ast.Name) and name not in self.fn.bias:  # x = y: what holds of y holds of x
                for (lst, key), names in list(self.safe.items()):
                    if key[0] == "+" and key[1] == s.value.id:
                        self.safe[(lst, ("+", name, key[2]))] = {name}
            return
        if t not in (INT, CHAR):
            raise _error("a list or string can be assigned to one name at a time", s)
        opd = self.operand(s.value, volatile=not any(map(self.has_call, targets)))
        for target in targets:
            self.assign(target, opd)

    def replace(self, regs, value):
        """s = value, where s is the only reference to its old list: if the old list ended at the heap
        pointer when the statement began, the new value is moved down over it and the heap pointer set
        after it, so that a loop doing s = s + [x] (or s += c on a string) needs memory for s only."""
        (b, n), mark, done = regs, self.temp(), _Label()
        self.emit("const", dst=mark, imm=HEAP_POINTER)
        self.emit("load", dst=mark, a=mark)
        base, length = self.seq(value)
        t = self.temp()
        self.emit("add", dst=t, a=b, b=n)
        self.emit("eq", dst=t, a=t, b=mark)
        keep = _Label()
        self.emit("branch", a=t, target=keep)  # the old list was not at the top: keep the new one where it is
        self.copy(Operand(b), base, length)
        self.alu("add", t, Operand(b), length)
        self.emit("const", dst=mark, imm=HEAP_POINTER)
        self.emit("store", a=mark, b=t, note="the new value replaces the old at the top of the heap")
        self.move(n, length)
        self.emit("jump", target=done)
        self.place(keep)
        self.move(b, base), self.move(n, length)
        self.place(done)

    def stmt_AnnAssign(self, s):
        if s.value is not None:  # a bare annotation `x: int` declares nothing
            self.stmt_Assign(ast.Assign([s.target], s.value, lineno=s.lineno, col_offset=s.col_offset))

    def stmt_AugAssign(self, s):
        op, target = _BINOPS[type(s.op)], s.target
        t = self.type(target)
        if t in (LIST, CHARS) or t == STR and target.id in self.unique:  # xs += ys extends xs in place
            self.forget([target.id])  # (a string that is the only reference to itself can grow in place too)
            lst = self.list_regs(target)
            if self.type(s.value) == CHAR:
                return self.append(lst, self.operand(s.value), s)
            return self.extend(lst, s.value, s)
        if t == STR:  # s += t makes a new string
            value = ast.BinOp(ast.Name(target.id, ast.Load()), s.op, s.value, lineno=s.lineno, col_offset=s.col_offset)
            return self.stmt_Assign(ast.Assign([target], value, lineno=s.lineno, col_offset=s.col_offset))
        if self.type(s.value) != INT:
            raise _error(f"{ast.unparse(s)}: {_show(self.type(s.value))} cannot be added to a number", s)
        zero_check = op in ("floordiv", "mod") and self.fold(s.value) is None
        if op in ("floordiv", "mod") and self.fold(s.value) == 0:
            raise _error("division by zero", s)
        if isinstance(target, ast.Subscript):  # a[i] op= x: load, evaluate x, store (Python's order)
            addr, old = self.temp(), self.temp()
            self.address(target, addr)
            self.emit("load", dst=old, a=addr)
            y = self.operand(s.value, volatile=True)
            if zero_check:
                self.check_divisor(y, s.value, s)
            self.alu(op, old, Operand(old), y)
            self.emit("store", a=addr, b=old)
        else:
            r = self.store_reg(target)
            y = self.operand(s.value, volatile=True)
            if zero_check:
                self.check_divisor(y, s.value, s)
            self.alu(op, r, Operand(r), y)
            self.forget(*(([], [target.id]) if s in self.fn.guarded else ([target.id],)))

    def stmt_Return(self, s):
        if isinstance(s.value, ast.Constant) and s.value.value is None:
            s = ast.Return(None, lineno=s.lineno, col_offset=s.col_offset)  # return None: like a bare return, 0
        t = self.fn.returns
        if _width(t) == 1:
            if s.value is not None and isinstance(s.value, ast.Name) and s.value.id not in self.fn.bias:
                return self.ret(self.int_reg(s.value))
            self.value(s.value if s.value is not None else ast.Constant(0), A0)  # a0 is free: ret overwrites it
            return self.ret(A0)
        if s.value is None:
            return self.emit("fail", imm=self.sh.error(f"{self.sh.locate(s.lineno)} in {self.fn.node.name}: "
                                                       f"TypeError: returns None where {_show(t)} is expected"))
        parts = self.parts(s.value, t)
        self.sh.used = True
        z = self.temp()
        for k, p in enumerate(parts[1:]):
            self.emit("const", dst=z, imm=RETURN_CELLS + k)
            self.emit("store", a=z, b=self.reg(p))
        self.move(A0, parts[0])
        self.ret(A0)

    def ret(self, r):
        if self.fn.frees_heap:  # give back the heap cells this call took
            t = self.temp()
            self.emit("const", dst=t, imm=HEAP_POINTER)
            self.emit("store", a=t, b=self.fn.regs["@heap"])
            self.depth -= 1
        self.emit("ret", a=r)

    def stmt_Expr(self, s):
        node = s.value
        if _call_name(node) in self.table:
            return self.call(node)
        if _method(node)[1] is not None:
            return self.statement_method(node)
        if _call_name(node) == "print":
            raise _error("print is not supported: a compiled function returns its result instead", node)
        self.value(node, self.temp())

    def stmt_If(self, s):
        c = self.fold(s.test)
        if c is not None:  # e.g. `if not isinstance(n, int): raise TypeError(...)`: only one side can run
            return self.stmts(s.body if c else s.orelse)
        test = self.test_value(s.test) if self.makes_lists(s.test) else None
        if not s.orelse and isinstance(s.body[0], (ast.Break, ast.Continue)):  # if c: break
            if not self.loops:
                raise _error(f"'{type(s.body[0]).__name__.lower()}' outside a loop", s.body[0])
            label = self.loops[-1][isinstance(s.body[0], ast.Break)]
            self.branch_if_value(test, label, True) if test else self.branch_if(s.test, label, True)
        else:
            orelse, end = _Label(), _Label()
            self.branch_if_value(test, orelse, False) if test else self.branch_if(s.test, orelse, False)
            saved = self.learn(s.test, True)
            self.stmts(s.body)
            self.safe = saved
            if s.orelse:
                self.emit("jump", target=end)
            self.items.append(orelse)
            self.learn(s.test, False)
            self.stmts(s.orelse)
            self.safe = saved
            self.items.append(end)
        self.forget_stores(s)
        ends = lambda body: body and isinstance(body[-1], (ast.Return, ast.Raise, ast.Break, ast.Continue))
        if ends(s.body) and not s.orelse:  # a guard: if i >= len(a): return ...
            self.learn(s.test, False)

    def summary(self, node):
        """(names stored, lists whose length changes, names stored other than by a guarded decrement,
        whether it may take heap cells) in node's subtree, found once per node."""
        got = self.summaries.get(node)
        if got is None:
            stores, grown, plain, makes = set(), set(), set(), False
            decremented = {id(s.target) for s in self.fn.guarded}
            header = [node]
            if isinstance(node, (ast.If, ast.While, ast.For)):  # the body's statements are summarised once
                header = [node.test] if isinstance(node, (ast.If, ast.While)) else [node.target, node.iter]
                for s in node.body + node.orelse:
                    st, g, p, m = self.summary(s)
                    stores, grown, plain, makes = stores | st, grown | g, plain | p, makes or m
            for n in (n for h in header for n in _walk(h)):
                if isinstance(n, ast.Name):
                    if isinstance(n.ctx, ast.Store):
                        stores.add(n.id)
                        if id(n) not in decremented:
                            plain.add(n.id)
                    continue
                obj, m = _method(n)
                if m in _GROWS and isinstance(obj, ast.Name):
                    grown.add(obj.id)
                elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and \
                        self.fn.types.get(n.target.id) in SEQS:
                    grown.add(n.target.id)
                makes = makes or self.fn.heap and _allocates(n, self.typer, self.table)
            got = self.summaries[node] = (stores, grown, plain, makes)
        return got

    def stored(self, nodes):
        return set().union(*(self.summary(n)[0] for n in nodes))

    def grown(self, nodes):
        """Names of lists whose length the statements may change."""
        return set().union(*(self.summary(n)[1] for n in nodes))

    def forget_stores(self, s):
        """Forget what statement s may change; a variable only counted down by guarded decrements
        keeps its upper bounds."""
        stores, grown, plain, _ = self.summary(s)
        self.forget(stores | grown, down=stores - plain - grown)

    def stmt_While(self, s):
        body, test, end = _Label(), _Label(), _Label()
        self.forget_stores(s)
        self.emit("jump", target=test)  # the test sits at the bottom: one jump per loop, not per pass
        saved = self.learn(s.test, True)
        self.loop(body, lambda: self.stmts(s.body), test, end)
        self.safe = saved
        self.line = s.lineno
        if self.makes_lists(s.test):
            self.branch_if_value(self.test_value(s.test), body, True)
        else:
            self.branch_if(s.test, body, True)
        self.items.append(end)
        self.forget_stores(s)

    def stmt_For(self, s):
        self.forget_stores(s)
        saved = dict(self.safe)  # what the body learns does not hold after the loop: it may not run
        self.iterate(s.target, s.iter, [s], lambda: self.stmts(s.body))
        self.safe = saved

    def stmt_Break(self, s):
        if not self.loops:
            raise _error("'break' outside a loop", s)
        self.emit("jump", target=self.loops[-1][1])

    def stmt_Continue(self, s):
        if not self.loops:
            raise _error("'continue' outside a loop", s)
        self.emit("jump", target=self.loops[-1][0])

    def stmt_Pass(self, s):
        pass

    def stmt_Assert(self, s):
        detail = s.msg.value if isinstance(s.msg, ast.Constant) else ast.unparse(s.msg) if s.msg else ""
        self.branch_if(s.test, self.fail_label("AssertionError", detail, s), False)

    def stmt_Raise(self, s):
        exc = s.exc.func if isinstance(s.exc, ast.Call) else s.exc
        kind = ast.unparse(exc) if exc is not None else "RuntimeError"
        args = s.exc.args if isinstance(s.exc, ast.Call) else []
        detail = args[0].value if len(args) == 1 and isinstance(args[0], ast.Constant) else \
            ", ".join(ast.unparse(a) for a in args)
        self.emit("fail", imm=self.sh.error(f"{self.sh.locate(s.lineno)} in {self.fn.node.name}: {kind}" +
                                            (f": {detail}" if detail else "")))

    def loop(self, label, body, cont, end, first=()):
        self.items.append(label)
        self.items.extend(first)
        self.loops.append((cont, end))
        body()
        self.loops.pop()
        self.items.append(cont)

    def store_reg(self, target):
        if isinstance(target, ast.Name) and target.id in self.fn.lists:
            raise _error(f"'{target.id}' is a list: assign it a list, or change its elements with "
                         f"{target.id}[i] = x", target)
        return self.int_reg(target)

    def assign(self, target, opd):
        """target = operand, for a variable or a list element."""
        r, c = opd
        mark = self.depth
        if isinstance(target, ast.Subscript):
            if self.type(target.value) == STR:
                raise _error("a string cannot be changed: build a new one (s[:i] + c + s[i + 1:])", target)
            if r is None:
                r = self.temp()
                self.emit("const", dst=r, imm=c)
            addr = self.temp()
            self.address(target, addr)
            self.emit("store", a=addr, b=r)
        elif isinstance(target, ast.Name):
            dst = self.store_reg(target)
            self.emit("const", dst=dst, imm=c) if r is None else dst != r and self.emit("mov", dst=dst, a=r)
            self.rebias(target.id)
            self.forget([target.id])
        else:
            raise _error(f"cannot assign to {type(target).__name__}: assign to a variable or a[i]", target)
        self.depth = mark

    def assign_tuple(self, target, value):
        """a, b = x, y (or = f(...), divmod(...)): every value is evaluated before anything is assigned,
        as in Python. A value read from a variable that an earlier target overwrites is copied first."""
        if isinstance(value, ast.Tuple) and len(value.elts) != len(target.elts):
            raise _error(f"tuple assignment needs a tuple of {len(target.elts)} values on the right", value)
        t = self.type(value)
        if not isinstance(t, tuple) or len(t) != len(target.elts):
            raise _error(f"cannot unpack {_show(t)} into {len(target.elts)} names: unpack a tuple of that many "
                         "values (a, b = b, a or q, r = divmod(x, y))", value)
        opds = self.parts(value, t)
        groups, k = [], 0
        for e, et in zip(target.elts, t):
            groups.append(opds[k:k + _width(et)])
            k += _width(et)
        written = set()
        for i, e in enumerate(target.elts):
            groups[i] = [Operand(self.reg(self.copy_of(p))) if p.reg in written else p for p in groups[i]]
            if isinstance(e, ast.Name):
                written.update(self.fn.lists.get(e.id, ()) or [self.fn.regs.get(e.id)])
        for e, et, g in zip(target.elts, t, groups):
            if _width(et) == 2:
                if not isinstance(e, ast.Name):
                    raise _error("a list can only be unpacked into a name", e)
                regs = self.list_regs(e)
                self.move(regs[0], g[0]), self.move(regs[1], g[1])
                self.forget([e.id])
            else:
                self.assign(e, g[0])

    def copy_of(self, opd):
        t = self.temp()
        self.move(t, opd)
        return Operand(t)

    # -- loops ------------------------------------------------------------------------------------
    def iterate(self, target, it, nodes, body):
        """for target in it: body(); `nodes` are the statements of the loop (to see what they assign).
        `it` is range(...), a list or string, enumerate(x[, start]), zip(x, y, ...) or reversed(x)."""
        f = _call_name(it)
        if f == "range":
            return self.for_range(target, it, nodes, body)
        if f in ("enumerate", "reversed") and not 1 <= len(it.args) <= (2 if f == "enumerate" else 1) or \
                f == "zip" and not it.args:
            raise _error(f"{f}(...) takes {'a list and a start' if f == 'enumerate' else 'lists'}", it)
        seqs = it.args if f == "zip" else it.args[:1] if f in ("enumerate", "reversed") else [it]
        stored = self.stored(nodes)
        ops = []
        for x in seqs:
            base, length = self.seq(x, readonly=True)
            if isinstance(x, ast.Name) and x.id in stored:  # rebound in the loop: iterate over the old list
                base, length = self.copy_of(base), self.copy_of(length)
            ops.append((base, length))
        k, top, test, end = self.temp(), _Label(), _Label(), _Label()
        if f == "reversed":
            self.move(k, ops[0][1])
        else:
            self.emit("const", dst=k, imm=0)
        start = self.operand(it.args[1]) if f == "enumerate" and len(it.args) == 2 else Operand(imm=0)
        if start[0] is not None:
            start = self.copy_of(start)
        self.emit("jump", target=test)

        def each():
            if f == "reversed":
                self.emit("sub", dst=k, a=k, imm=1)
            elems = [Operand(self.load_at(base, k)) for base, _ in ops]
            if f == "enumerate":
                i = self.temp()
                self.alu("add", i, Operand(k), start)
                elems = [Operand(i)] + elems
            if f != "reversed":
                self.emit("add", dst=k, a=k, imm=1)
            if f in ("enumerate", "zip"):
                if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) != len(elems):
                    raise _error(f"unpack {f}(...) into {len(elems)} names: for a, b in {f}(...)", target)
                for e, x in zip(target.elts, elems):
                    self.assign(e, x)
            else:
                self.assign(target, elems[0])
            body()
        self.loop(top, each, test, end)
        if f == "reversed":
            self.branch_cmp("gt", Operand(k), Operand(imm=0), top, True)
        else:
            skip = _Label()
            for _, length in ops[:-1]:
                self.branch_cmp("lt", Operand(k), length, skip, False)
            self.branch_cmp("lt", Operand(k), ops[-1][1], top, True)
            self.place(skip)
        self.place(end)

    def for_range(self, target, it, nodes, body):
        """for i in range(start, stop, step): start, stop evaluated once; a constant step of either sign.

        Layout: entry test; body; step-and-test at the bottom (one branch per pass). The bottom test is
        arranged so the counter never wraps past V: `k + step < stop` is tested as `stop - k > step`.
        A bound written `x - c` is clamped at 0 (an ascending stop) or tested first (a descending start),
        so that range(len(a) - 1) of an empty list is empty, as in Python."""
        start, stop, step = self.range_args(target, it)
        i = self.store_reg(target)
        k = i if target.id in self.fn.counters else self.temp()
        body_label, cont, end = _Label(), _Label(), _Label()
        signed_stop = self.signed(stop)
        if not isinstance(step, Operand) and step < 0 and self.minus_constant(start) and signed_stop is not None \
                and signed_stop + self.fold(start.right) >= 0:
            # range(x - c, stop, -s): empty when x - c <= stop, tested before x - c can go below 0
            lowest = Operand(imm=signed_stop + self.fold(start.right))
            self.branch_cmp("gt", self.operand(start.left), lowest, end, False)
        self.value(start, k)
        first = Operand(imm=self.fold(start)) if self.fold(start) is not None else Operand(k)
        limit = self.range_limit(target, stop, 1 if isinstance(step, Operand) else step, nodes)  # a variable step: up
        if isinstance(step, Operand):
            return self.for_range_by(i, k, first, limit, step, body, body_label, cont, end)
        self.range_facts(target, start, stop, step, nodes)
        if signed_stop is not None and signed_stop < 0:
            if step > 0:
                return self.place(end)  # range(start, -c) is empty
        else:
            self.branch_cmp("lt" if step > 0 else "gt", first, limit, end, False)
        self.loop(body_label, body, cont, end, [Instr("mov", dst=i, a=k, lineno=self.line)] if k != i else [])
        self.range_step(k, limit, step, signed_stop, body_label)
        self.items.append(end)

    def range_args(self, target, it):
        """(start, stop, step) of range(...): step an int constant, or an Operand (a register, checked != 0)."""
        if not 1 <= len(it.args) <= 3 or it.keywords:
            raise _error("for loops only run over range(stop), range(start, stop) or range(start, stop, step)", it)
        if not isinstance(target, ast.Name):
            raise _error("the loop variable of a for loop over range must be a plain name", target)
        start, stop = it.args[:2] if len(it.args) > 1 else (ast.Constant(0), it.args[0])
        step = self.signed(it.args[2]) if len(it.args) == 3 else 1
        if step == 0:
            raise _error("the step of range must not be 0", it)
        if step is None:  # a variable step: positive, as values are never negative (0 is a ValueError)
            s_reg = self.copy_of(self.operand(it.args[2])).reg
            self.emit("branch", a=s_reg, target=self.fail_label("ValueError", "range() arg 3 must not be zero", it))
            step = Operand(s_reg)
        for x in it.args:
            if self.type(x) != INT:
                raise _error(f"range() takes ints, not {_show(self.type(x))}", x)
        return start, stop, step

    def minus_constant(self, x):
        """Is x written `e - c`, c a constant, and not constant itself?"""
        return isinstance(x, ast.BinOp) and isinstance(x.op, ast.Sub) and self.fold(x.right) is not None \
            and self.fold(x) is None

    def range_limit(self, target, stop, step_up, nodes):
        """The operand the counter is tested against: the stop, evaluated once (a variable or len(a) that
        the loop does not change is used as it is)."""
        signed_stop = self.signed(stop)
        if signed_stop is not None:
            if step_up < 0 and signed_stop < -1:
                raise _error("a descending range must stop at -1 or above: values are never negative", stop)
            return Operand(imm=signed_stop % self.V)
        if step_up > 0 and self.minus_constant(stop):  # range(..., x - c): x - c clamped at 0
            t = self.temp()
            self.alu("max", t, self.operand(stop.left), Operand(imm=self.fold(stop.right)))
            self.emit("sub", dst=t, a=t, imm=self.fold(stop.right))
            return Operand(t)
        if isinstance(stop, ast.Name) and stop.id != target.id and stop.id not in self.stored(nodes):
            return self.operand(stop)
        if _call_name(stop) == "len" and not self.grown(nodes) & _names([stop]):
            return self.operand(stop)
        limit = Operand(self.temp())
        self.value(stop, limit.reg)
        return limit

    def range_step(self, k, limit, step, signed_stop, body_label):
        """The bottom of a loop over range with a constant step: step k, and go back while in range."""
        t, s_ = self.temp(), abs(step)
        if limit.reg is None:  # constant stop: continue while k + step < stop (k - step > stop, going down)
            h = limit.imm - s_ if step > 0 else signed_stop + s_
            if (h <= 0 if step > 0 else h >= self.V - 1):
                return
            self.emit("ge" if step > 0 else "le", dst=t, a=k, imm=h)
        elif step == 1:  # k + 1 <= stop < V: no wrap
            self.emit("add", dst=k, a=k, imm=1)
            self.emit("ge", dst=t, a=k, b=limit.reg)
            self.emit("branch", a=t, target=body_label)
            return
        else:
            self.emit("sub", dst=t, a=limit.reg, b=k) if step > 0 else self.emit("sub", dst=t, a=k, b=limit.reg)
            self.emit("le", dst=t, a=t, imm=s_)
        self.emit("add" if step > 0 else "sub", dst=k, a=k, imm=s_, wrap_ok=True)  # may step past the end
        self.emit("branch", a=t, target=body_label)

    def for_range_by(self, i, k, first, limit, step, body, body_label, cont, end):
        """The rest of `for i in range(start, stop, s)` for a step s in a register."""
        self.branch_cmp("lt", first, limit, end, False)
        self.loop(body_label, body, cont, end, [Instr("mov", dst=i, a=k, lineno=self.line)] if k != i else [])
        t = self.temp()
        self.alu("sub", t, limit, Operand(k))  # continue while stop - k > s: k + s never passes V
        self.alu("gt", t, Operand(t), step)
        self.alu("add", k, Operand(k), step, wrap_ok=True)
        self.emit("branch", a=t, target=end)
        self.emit("jump", target=body_label)
        self.items.append(end)

    def range_facts(self, target, start, stop, step, nodes):
        """In `for i in range(s, len(a) - c)` (a's length fixed in the loop), a[i + d] for d <= c and
        a[i - d] for d <= s are in range."""
        if step != 1:
            return
        extra = 0
        while isinstance(stop, ast.BinOp) and isinstance(stop.op, ast.Sub):
            c = self.fold(stop.right)
            extra += c or 0  # len(a) - 1 - i: i >= 0 only lowers the stop
            stop = stop.left
        name = self.len_of(stop)
        if name is None or name in self.grown(nodes) | self.stored(nodes):
            return
        i, s0 = target.id, self.fold(start) or 0
        for d in range(-min(s0, 8), min(extra, 8) + 1):
            index = ast.Name(i, ast.Load()) if d == 0 else \
                ast.BinOp(ast.Name(i, ast.Load()), ast.Add() if d > 0 else ast.Sub(), ast.Constant(abs(d)))
            self.safe[(name, _key(index))] = {i}


class _Lowerer(_Core, _Expressions, _Indexes, _Lists, _Calls, _Statements):
    """Pass 6: one function's statements -> a list of `Instr` and `_Label` items.

    Registers here are ints >= 0 (parameters, locals, temporaries), window slots -1 - k (= a{k}) or hole
    registers HOLE0 - i. An instruction reads an `Operand`: a register, or a constant that becomes an
    #immediate. A list or string value is a pair of operands (base, length)."""

    def __init__(self, fn, table, shared):
        self.fn, self.table, self.sh, self.V = fn, table, shared, shared.V
        self.typer = _Typer(fn, table, final=True)
        self.items, self.loops, self.depth, self.line = [], [], 0, fn.node.lineno
        self.folded, self.calls = {}, {}  # memos of fold() and has_call()
        self.stubs = {}  # error index -> (label, line) of its `fail` at the end of the function
        self.safe = {}  # (list name, index source) -> names it depends on: indexes known to be in range
        self.unique = _unique_lists(fn, table)
        self.summaries = {}  # node -> (names stored, lists grown, names stored other than by guarded decrements)
        self.read_cache = {}  # node -> registers it reads
        self.lengths = {}  # n -> a while n == len(a) (n = len(a))

    def lower(self):
        fn = self.fn
        if not fn.is_leaf:  # prologue: copy the parameters out of the window, where calls overwrite them
            slot = 0
            for p in fn.params:
                width = _width(p.type)
                for j, r in enumerate(fn.lists.get(p.name, ()) or [fn.regs.get(p.name)]):
                    if r is not None:
                        self.emit("mov", dst=r, a=-1 - slot - j, note=p.name + ("", ".base", ".len")[j + width - 1])
                slot += width
        if fn.frees_heap:  # remember the heap pointer, to give back on return what this call takes
            m = fn.regs["@heap"]
            self.emit("const", dst=m, imm=HEAP_POINTER, note="the heap pointer on entry")
            self.emit("load", dst=m, a=m)
            self.sh.used = True
        self.stmts(fn.node.body)
        self.line = fn.node.lineno
        if _width(fn.returns) == 1:
            self.emit("const", dst=A0, imm=0, note="no return: return 0")
            self.ret(A0)
        else:
            self.emit("fail", imm=self.sh.error(f"{self.sh.locate(self.line)} in {fn.node.name}: TypeError: reached "
                                                f"the end without returning {_show(fn.returns)}"))
        for k, (label, line) in self.stubs.items():
            self.place(label)
            self.line = line
            self.emit("fail", imm=k)
        return self.items


def simplify(items):
    """Pass 7: peephole clean-up on one function: thread jumps to jumps, drop unreferenced labels, code
    that cannot be reached, and jumps to the very next line. Repeats until nothing changes."""
    for _ in range(100):
        after, pending = {}, []  # label -> the first instruction at or after it
        for it in items:
            if isinstance(it, _Label):
                pending.append(it)
            else:
                after.update({l: it for l in pending})
                pending = []
        changed = False
        for it in items:
            hop = after.get(it.target) if isinstance(it, Instr) else None
            if hop is not None and hop is not it and hop.op == "jump" and hop.target is not it.target:
                it.target, changed = hop.target, True
        targets, out, dead = {it.target for it in items if isinstance(it, Instr)}, [], False
        for it in items:
            if isinstance(it, _Label):
                dead = dead and it not in targets
                if it in targets:
                    out.append(it)
            elif not dead:
                out.append(it)
                dead = it.op in ("jump", "ret", "halt", "fail")
        for i, it in enumerate(out):
            j = i + 1
            while isinstance(it, Instr) and it.op == "jump" and j < len(out) and isinstance(out[j], _Label):
                if out[j] is it.target:
                    out[i] = None
                    break
                j += 1
            prev = out[i - 1] if i else None  # mov x, y right after mov y, x (or mov x, x) changes nothing
            if isinstance(it, Instr) and it.op == "mov" and (it.a == it.dst or isinstance(prev, Instr) and
                                                             (prev.op, prev.dst, prev.a) == ("mov", it.a, it.dst)):
                out[i] = None
        out = [it for it in out if it is not None]
        changed = changed or len(out) != len(items)
        items = out
        if not changed:
            break
    return items


def link(table, lowered, source, V, max_regs, shared, holes):
    """Pass 8, link: lay the functions out one after another, resolve labels and call targets to lines, and
    put the hole registers and then the argument window at the top of the register file."""
    window = max([1] + [fn_.n_arg_regs for fn_ in (Function(n, 0, fn.params) for n, fn in table.items())])
    n_holes = len(holes)
    for name, fn in table.items():
        need = fn.n_fixed + fn.n_temps + n_holes + window
        if need > max_regs:
            raise _error(f"function {name} needs {need} registers ({fn.n_fixed} for variables, {fn.n_temps} for "
                         f"temporaries, {n_holes} for holes, {window} for arguments), more than max_regs={max_regs}: "
                         "simplify it or raise max_regs", fn.node)
    n_regs = max([fn.n_fixed + fn.n_temps for fn in table.values()], default=0) + n_holes + window

    def reg(r):
        if r is None or r >= 0:
            return r
        if r <= HOLE0:  # hole i -> h{i}, just below the window
            return n_regs - window - n_holes + (HOLE0 - r)
        return n_regs - window + (-1 - r)  # window slot k -> a{k}

    lines, functions, instructions = {}, {}, []
    for name, items in lowered.items():
        functions[name] = Function(name, len(instructions), table[name].params, table[name].returns, table[name].bias)
        for it in items:
            if isinstance(it, _Label):
                lines[it] = len(instructions)
            else:
                instructions.append(it)
    for ins in instructions:
        ins.dst, ins.a, ins.b = reg(ins.dst), reg(ins.a), reg(ins.b)
        if ins.target is not None:
            ins.target = functions[ins.target].entry if isinstance(ins.target, str) else lines[ins.target]
    used = sorted({ins.imm for ins in instructions if ins.op == "fail"})  # errors whose fail survived simplify
    for ins in instructions:
        if ins.op == "fail":
            ins.imm = used.index(ins.imm)
    hole_list = [Hole(i, fn_name, line, text, n, reg(HOLE0 - i)) for i, (fn_name, line, text, n) in enumerate(holes)]
    reserved = [0, 0] + [0] * shared.n_ret + shared.data if shared.used else []
    return Program(instructions, functions, n_regs, [n_regs - window + k for k in range(window)], V, source,
                   [shared.errors[k] for k in used], hole_list, reserved)


__all__ = ["CHAR", "CHARS", "INT", "LIST", "OPCODES", "PRIMITIVES", "SEQS", "STR", "CompileError", "ExecutionError",
           "Function", "Hole", "Instr", "Param", "Program", "compile_functions", "compile_source", "execute", "hole"]

# -----------------------------------------------------------------------------
# The compiler: Python source -> Program, as a short sequence of passes, each with one job.
#
#   parse     source text -> ast.Module, docstrings dropped               (SyntaxError passes through)
#   validate  every node is in the supported subset, else CompileError
#   resolve   the function table: parameters (types, defaults), locals, holes; comprehension
#             variables renamed apart (they do not leak, as in Python 3)
#   infer     the type of every variable and return value: int, char, str, list, list[str], tuples
#   allocate  registers for parameters and locals (a list takes two); temporaries are stacked above
#   lower     statements and expressions -> instructions with symbolic labels and argument-window slots
#   simplify  thread jumps, drop jumps to the next line and unreachable code
#   link      lay the functions out, labels -> lines, window and hole slots -> registers: the Program
#
# Decisions a reader may want to know. A negative literal `-c` is the value V - c; `a[-c]` with a
# constant c indexes from the end as in Python; a computed index must be in [0, len). A parameter is a
# list iff it is annotated so or used as one (indexed, len()'d, iterated, passed where a list is
# expected); it is a string iff annotated `str`. `range` takes a constant step; a descending range must
# stop at -1 or above. Reading a variable before assigning it is not checked (CPython would raise).
# Functions without a `return` return 0. `append`/`pop`/`insert`/`extend`/`+=` change a list's length and
# are allowed only on lists the function made itself, never aliased (`b = a`), so that every name of a
# list knows its length. `abs(x - y)` is max(x, y) - min(x, y): exact on values that stay in range.


@dataclass
class _Origin:
    """Where a piece of the compiled source came from (compile_functions joins several)."""
    first: int  # its first line in the compiled source
    filename: str | None
    lineno: int  # that line's number in its file


def _compile(src, origins, n_values, max_regs, check_bounds):
    def file_line(line):
        o = [o for o in origins if o.first <= line][-1]
        return o.filename, o.lineno + line - o.first

    def locate(line):
        filename, n = file_line(line)
        return f"{os.path.basename(filename)} line {n}" if filename else f"line {n}"

    module = None
    try:
        module = parse(src)
        validate(module, n_values)
        table = resolve(module, n_values)
        infer(table)
        for fn in table.values():
            allocate(fn)
        n_ret = max([_width(fn.returns) for fn in table.values()], default=1) - 1
        shared = _Shared(n_values, n_ret, locate, check_bounds)
        lowered = {name: simplify(_Lowerer(fn, table, shared).lower()) for name, fn in table.items()}
        holes = [(fn.node.name, file_line(n.lineno)[1], ast.unparse(n), len(n.args)) for fn in table.values()
                 for n in sorted((n for n in fn.nodes if hasattr(n, "hole")), key=lambda n: n.hole)]
        program = link(table, lowered, src.splitlines(), n_values, max_regs, shared, holes)
        program.line_numbers = [file_line(i + 1)[1] for i in range(len(program.source_lines))]
        return program
    except RecursionError:
        raise CompileError("the program is nested too deeply for the compiler") from None
    except CompileError as e:
        if e.lineno is None:
            raise
        filename, line = file_line(e.lineno)
        defs = [f for f in getattr(module, "body", []) if isinstance(f, ast.FunctionDef) and
                f.lineno <= e.lineno <= (f.end_lineno or f.lineno)]
        raise CompileError(e.message, line, e.col_offset, filename, defs[0].name if defs else None) from None


def compile_source(src: str, n_values: int = 128, max_regs: int = 32, filename: str | None = None,
                   check_bounds: bool = True) -> Program:
    """Compile the top-level functions in `src` into one Program (they may call each other).

    `filename` names the source in error messages. `check_bounds=False` leaves out the checks that an
    index is below its list's length (an index past the end then reads or writes the next cells)."""
    if not isinstance(src, str):
        raise TypeError(f"compile_source takes the program's source text as a str, got {type(src).__name__}; "
                        "to compile function objects, use compile_functions(f, g, ...)")
    return _compile(src, [_Origin(1, filename, 1)], n_values, max_regs, check_bounds)


def compile_functions(*fns, n_values=128, max_regs=32, check_bounds=True):
    """Compile Python function objects (their source, via inspect) into one Program. Errors name each
    function's own file and line, e.g. "tasks.py, line 185, column 8, in parse_list: ..."."""
    pieces, origins, first = [], [], 1
    for f in fns:
        try:
            lines, start = inspect.getsourcelines(f)
            filename = inspect.getsourcefile(f)
        except (OSError, TypeError) as e:
            raise CompileError(f"cannot read the source of {f!r}: {e}") from None
        text = textwrap.dedent("".join(lines))
        origins.append(_Origin(first, filename, start))
        pieces.append(text)
        first += text.count("\n") + 1
    return _compile("\n".join(pieces), origins, n_values, max_regs, check_bounds)
