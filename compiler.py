"""
Compile restricted Python functions into register-machine programs.

This file is the "neurally compiled library" half of the project: plain Python algorithms become
programs that the differentiable machine in reasoning.py runs inside the network. Read it top to bottom:

1. the value model and the primitive operations (the machine's lookup tables are built from these),
2. the program format (the IR): `Instr`, `Function`, `Program`, and its printed disassembly,
3. the compiler passes over Python's `ast`: parse, validate, resolve, allocate, lower, simplify, emit;
   `compile_source(src)` and `compile_functions(*fns)` run them,
4. the reference interpreter, `execute` behind `Program.run`, which *defines* what the IR means.

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

import ast
import inspect
import textwrap
import warnings
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

OPCODES = ("const", "mov", *PRIMITIVES, "load", "store", "jump", "branch", "call", "ret", "halt", "fail")


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
    wrap_ok: bool = False


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
    source_lines: list[str] = field(default_factory=list)  # the compiled source, for the disassembly

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
        elif ins.op == "store":
            ops.append(reg(ins.b))
        if ins.target is not None:
            ops.append(f"@{ins.target}")
        return f"{ins.op:<8} {', '.join(ops)}"

    def __str__(self):
        """A disassembly: function labels, line numbers, instructions, notes, and the source line each
        run of instructions came from (`; 3| return n`)."""
        starts = {f.entry: f for f in self.functions.values()}
        lines, last = [], None
        for i, ins in enumerate(self.instructions):
            if i in starts:
                f, last = starts[i], None
                args = ", ".join(p.name + ("[]" if p.is_list else "") for p in f.params)
                lines.append(f"{f.name}({args}):")
            src = ""
            if ins.lineno is not None and ins.lineno != last:
                text = self.source_lines[ins.lineno - 1].strip() if 0 < ins.lineno <= len(self.source_lines) else ""
                src, last = f"{ins.lineno:>3}| {text}", ins.lineno
            note = f"  ({ins.note})" if ins.note else ""
            lines.append(f"  {i:4d}  {self.format_instr(ins):<24} ; {src}{note}".rstrip(" ;"))
        return "\n".join(lines)

    def run(self, name, *args, n_cells=None, max_depth=64, max_steps=1_000_000, return_steps=False):
        """Run function `name` on ints and Python lists; lists are mutated in place like CPython would.

        Returns the function's return value (and the number of steps taken, if `return_steps`).
        The interpreter itself is section 4 of this file.
        """
        return execute(self, name, *args, n_cells=n_cells, max_depth=max_depth, max_steps=max_steps,
                       return_steps=return_steps)


# -----------------------------------------------------------------------------
# 3. The compiler: Python source -> Program, as a short sequence of passes, each with one job.
#
#   parse     source text -> ast.Module, docstrings dropped               (SyntaxError passes through)
#   validate  every node is in the supported subset, else CompileError
#   resolve   the function table: parameters (which are lists?), locals, leaf functions, loop counters
#   allocate  a register for every parameter and local; temporaries are stacked above them
#   lower     statements and expressions -> instructions with symbolic labels and argument-window slots
#   simplify  thread jumps, drop jumps to the next line and unreachable code
#   emit      lay the functions out, labels -> lines, window slots -> the top registers: the Program
#
# Decisions a reader may want to know. A negative literal `-c` is the value V - c (0 - c wraps mod V);
# `a[-c]` with a constant c indexes from the end as in Python. A parameter is a list iff the function
# indexes it, takes its len(), or passes it where a list is expected; local variables are always ints.
# `range` takes a constant step, positive or negative; a descending range must stop at -1 or above, as
# values never go below 0. Reading a variable before assigning it, or indexing past a list's end, is not
# checked (CPython would raise). Functions without a `return` return 0. `min`/`max` of two or more ints
# map to the ALU primitives; `x if c else y` works too.

_UNSUPPORTED = {name: message for names, message in [  # ast node classes -> what a student should write instead
    ("Import ImportFrom", "imports are not supported: a program can call only the functions compiled with it"),
    ("ClassDef", "classes are not supported: write top-level functions over ints and lists"),
    ("FunctionDef AsyncFunctionDef", "nested functions are not supported: define every function at the top level"),
    ("Lambda", "lambdas are not supported: define a top-level function with def"),
    ("Global Nonlocal", "global/nonlocal variables are not supported: pass values as arguments, return results"),
    ("Try TryStar Raise Assert", "try/raise/assert are not supported: the machine has no exceptions; return a flag"),
    ("With AsyncWith Await AsyncFor", "with/async are not supported: use plain statements and for i in range(...)"),
    ("Delete", "del is not supported: lists keep their length; overwrite elements with a[i] = x"),
    ("Yield YieldFrom", "generators (yield) are not supported: return a value"),
    ("Match", "match statements are not supported: use if/elif/else"),
    ("List Dict Set", "list literals, dicts and sets are not supported: lists come in as arguments"),
    ("ListComp DictComp SetComp GeneratorExp", "comprehensions are not supported: fill a list argument in a for loop"),
    ("Attribute", "attributes and methods (x.y) are not supported: lists support a[i], a[i] = x and len(a)"),
    ("Starred", "star-arguments (*x) are not supported: pass arguments by position"),
    ("keyword", "keyword arguments are not supported: pass arguments by position"),
    ("Slice", "slices (a[i:j]) are not supported: index one element at a time"),
    ("NamedExpr", "the walrus operator (:=) is not supported: assign in a statement of its own"),
    ("JoinedStr", "f-strings are not supported: values are ints in [0, V)"),
    ("Div", "true division (/) is not supported: use // (values are ints)"),
    ("Pow MatMult", "** and @ are not supported: multiply in a loop"),
    ("BitAnd BitOr BitXor Invert LShift RShift", "bitwise operators are not supported: use + - * // %"),
    ("Is IsNot", "is / is not are not supported: compare values with == and !="),
    ("In NotIn", "in / not in are not supported: write a loop that searches"),
] for name in names.split()}
_ALLOWED = set("""Return Assign AugAssign AnnAssign For While If Expr Pass Break Continue BoolOp BinOp UnaryOp
    IfExp Compare Call Constant Name Subscript Tuple Load Store And Or Add Sub Mult FloorDiv Mod Not USub UAdd
    Lt LtE Gt GtE Eq NotEq""".split())
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.FloorDiv: "floordiv", ast.Mod: "mod"}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}
_NEGATE = {"lt": "ge", "le": "gt", "gt": "le", "ge": "lt", "eq": "ne", "ne": "eq"}
_SWAP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne", "add": "add", "mul": "mul",
         "min": "min", "max": "max"}  # op(x, y) == SWAP[op](y, x): lets a constant go second, as #imm
_BUILTINS = ("len", "min", "max", "range")


def _error(message, node):
    return CompileError(message, getattr(node, "lineno", None), getattr(node, "col_offset", None))


def _drop_docstring(body):
    doc = body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    return body[1:] if doc and isinstance(body[0].value.value, str) else body


def parse(src):
    """Pass 1: source text -> ast.Module, with the docstrings of the module and its functions dropped."""
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in strings, which validate rejects anyway
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
    """Pass 2: reject, with its position, every construct outside the supported subset."""
    for fdef in module.body:
        if not isinstance(fdef, ast.FunctionDef):
            name = type(fdef).__name__
            raise _error(_UNSUPPORTED.get(name, f"only function definitions (def) may appear at the top level, "
                                                f"not {name}"), fdef)
        args = fdef.args
        if fdef.decorator_list:
            raise _error(f"decorators are not supported (on {fdef.name})", fdef.decorator_list[0])
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
            raise _error(f"{fdef.name}: only plain positional parameters are supported (no defaults, *args, "
                         "**kwargs or keyword-only parameters)", fdef)
        stack = [(s, s) for s in reversed(fdef.body)]  # (node, the nearest node with a position)
        while stack:
            node, at = stack.pop()
            at = node if hasattr(node, "lineno") else at
            name = type(node).__name__
            if name not in _ALLOWED:
                raise _error(_UNSUPPORTED.get(name, f"{name} is not supported in a compiled function"), at)
            if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
                kind = type(node.value).__name__
                if not isinstance(node.value, int):
                    raise _error(f"{kind} constants like {node.value!r:.20} are not supported: values are ints in "
                                 f"[0, {V})", node)
                if node.value >= V:
                    raise _error(f"the constant {node.value} is too large: values are ints in [0, {V})", node)
            if isinstance(node, (ast.For, ast.While)) and node.orelse:
                raise _error(f"{name.lower()} ... else is not supported: use a flag variable", node)
            if isinstance(node, ast.Expr) and type(node.value).__name__ in _ALLOWED - {"Call"}:
                raise _error("only calls may stand alone as statements; this expression has no effect", node)
            children = [node.target, node.value] if isinstance(node, ast.AnnAssign) else ast.iter_child_nodes(node)
            stack.extend((c, at) for c in reversed(list(children)) if c is not None)


@dataclass
class _Fn:
    """What the compiler knows about one function while it compiles it."""
    node: ast.FunctionDef
    params: list[Param]
    locals: list[str] = field(default_factory=list)  # assigned names that are not parameters
    is_leaf: bool = True  # calls no compiled function: its parameters can stay in the argument window
    counters: set = field(default_factory=set)  # for-loop variables that can be the loop counter itself
    regs: dict = field(default_factory=dict)  # int variable -> register (window slot k is -1 - k)
    lists: dict = field(default_factory=dict)  # list parameter -> (base register, length register)
    n_fixed: int = 0  # registers r0.. taken by parameters and locals; temporaries go above
    n_temps: int = 0  # the most temporaries live at once


def _names(nodes, ctx=ast.Load):
    return {n.id for root in nodes for n in ast.walk(root) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _direct_counters(fdef):
    """Loop variables that may serve as their own loop counter: only ever assigned by `for`, never read
    outside the body of a loop over them, and no loop over them nested in another. Others get a hidden
    counter copied into them each iteration, so that changing `i` in the body or reading it after the
    loop behaves as in Python."""
    bad = set()

    def visit(node, inside):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            bad.update({node.target.id} & inside)
            visit(node.iter, inside)
            for s in node.body:
                visit(s, inside | {node.target.id})
            return
        if isinstance(node, ast.Name) and (isinstance(node.ctx, ast.Store) or node.id not in inside):
            bad.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    for s in fdef.body:
        visit(s, frozenset())
    return {n.target.id for n in ast.walk(fdef) if isinstance(n, ast.For) and isinstance(n.target, ast.Name)} - bad


def resolve(module):
    """Pass 3: the function table. A parameter is a list iff it is indexed, len()'d, or passed where a
    list is expected (found by iterating to a fixed point, since calls propagate list-ness)."""
    table = {}
    for fdef in module.body:
        if fdef.name in table or fdef.name in _BUILTINS:
            raise _error(f"function {fdef.name} is defined twice or shadows a builtin", fdef)
        table[fdef.name] = _Fn(fdef, [Param(a.arg) for a in fdef.args.args])
    changed = True
    while changed:
        changed = False
        for fn in table.values():
            listy = set()
            for node in (n for s in fn.node.body for n in ast.walk(s)):
                if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                    listy.add(node.value.id)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    if node.func.id == "len" and node.args and isinstance(node.args[0], ast.Name):
                        listy.add(node.args[0].id)
                    callee = table.get(node.func.id)
                    for p, arg in zip(callee.params if callee else [], node.args):
                        if p.is_list and isinstance(arg, ast.Name):
                            listy.add(arg.id)
            for p in fn.params:
                if p.name in listy and not p.is_list:
                    p.is_list = changed = True
    for fn in table.values():
        body, params = fn.node.body, {p.name for p in fn.params}
        stores = [n for s in body for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        for n in sorted(stores, key=lambda n: (n.lineno, n.col_offset)):
            if n.id not in params and n.id not in fn.locals:
                fn.locals.append(n.id)
        fn.is_leaf = not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in table
                             for s in body for n in ast.walk(s))
        fn.counters = _direct_counters(fn.node)
    return table


def allocate(fn):
    """Pass 4: registers for parameters and locals. A leaf function keeps its parameters where they
    arrive, in the argument window (no call can overwrite them); other functions copy them out in a
    prologue. Parameters that are never read get no register. Temporaries are stacked above r{n_fixed}."""
    used, slot, nxt = _names(fn.node.body, (ast.Load, ast.Store)), 0, 0
    for p in fn.params:
        width = 2 if p.is_list else 1
        if fn.is_leaf:
            regs = [-1 - (slot + j) for j in range(width)]
        else:
            regs = list(range(nxt, nxt + width)) if p.name in used else []
            nxt += len(regs)
        slot += width
        if regs:
            if p.is_list:
                fn.lists[p.name] = tuple(regs)
            else:
                fn.regs[p.name] = regs[0]
    for name in fn.locals:
        fn.regs[name], nxt = nxt, nxt + 1
    fn.n_fixed = nxt


class _Label:
    """A jump target whose line is known only when the program is laid out (pass 7)."""


A0 = -1  # window slot 0: arguments in, results out


class _Lowerer:
    """Pass 5: one function's statements -> a list of `Instr` and `_Label` items.

    Registers here are ints >= 0 (parameters, locals, temporaries) or window slots -1 - k (= a{k}).
    Operands are pairs (register, None) or (None, constant): a constant becomes an #immediate."""

    def __init__(self, fn, table, V):
        self.fn, self.table, self.V = fn, table, V
        self.items, self.loops, self.depth, self.line = [], [], 0, fn.node.lineno

    # -- helpers: emitting, temporaries, constants, names --------------------------------------------
    def emit(self, op, note="", **fields):
        self.items.append(Instr(op, lineno=self.line, note=note, **fields))

    def temp(self):
        self.depth += 1
        self.fn.n_temps = max(self.fn.n_temps, self.depth)
        return self.fn.n_fixed + self.depth - 1

    def fold(self, node):
        """The value of a constant expression, computed exactly as the machine would, or None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return int(node.value)
        if isinstance(node, ast.UnaryOp):
            x = self.fold(node.operand)
            return None if x is None else (-x) % self.V if isinstance(node.op, ast.USub) else \
                int(not x) if isinstance(node.op, ast.Not) else x
        if isinstance(node, ast.BinOp) or isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = node.left, node.right if isinstance(node, ast.BinOp) else node.comparators[0]
            x, y = self.fold(left), self.fold(right)
            op = (_BINOPS if isinstance(node, ast.BinOp) else _CMPOPS)[type(node.op if isinstance(node, ast.BinOp)
                                                                          else node.ops[0])]
            return None if x is None or y is None else PRIMITIVES[op](x, y, self.V)
        return None

    def int_reg(self, node):
        if not isinstance(node, ast.Name):
            raise _error("expected a variable name here", node)
        if node.id in self.fn.regs:
            return self.fn.regs[node.id]
        if node.id in self.fn.lists:
            raise _error(f"'{node.id}' is a list and cannot be used as an int: lists support a[i], a[i] = x, "
                         "len(a) and being passed to a function", node)
        if node.id in self.table:
            raise _error(f"function '{node.id}' used as a value: call it, as {node.id}(...)", node)
        raise _error(f"name '{node.id}' is not defined: use a parameter or assign the variable first", node)

    def list_regs(self, node):
        if isinstance(node, ast.Name) and node.id in self.fn.lists:
            return self.fn.lists[node.id]
        name = getattr(node, "id", None)
        raise _error(f"'{name or ast.unparse(node)}' is not a list: only list parameters can be indexed, len()'d "
                     "or passed as lists (a parameter is a list iff it is used as one)", node)

    def has_call(self, node):
        return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in self.table for n in ast.walk(node))

    def reads(self, node):
        regs = set()
        for name in _names([node]):
            regs.update(self.fn.lists.get(name, ()), [self.fn.regs.get(name)])
        return regs

    # -- expressions ---------------------------------------------------------------------------------
    def operand(self, node, volatile=False):
        """An operand for one instruction. With `volatile`, a call's result may be left in a0, to be
        used before anything else can overwrite it."""
        c = self.fold(node)
        if c is not None:
            return None, c
        if isinstance(node, ast.Name):
            return self.int_reg(node), None
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "len" and len(node.args) == 1:
            return self.list_regs(node.args[0])[1], None
        if volatile and isinstance(node, ast.Call) and getattr(node.func, "id", None) in self.table:
            self.call(node)
            return A0, None
        t = self.temp()
        self.value(node, t)
        return t, None

    def operands(self, nodes):
        """Operands of `nodes`, evaluated left to right; a call result stays in a0 if no later call follows."""
        return [self.operand(n, volatile=not any(map(self.has_call, nodes[i + 1:]))) for i, n in enumerate(nodes)]

    def alu(self, op, dst, x, y):
        """dst = op(x, y) for operands x, y: constants fold, and a constant goes second as an #immediate."""
        if x[0] is None and y[0] is None:
            return self.emit("const", dst=dst, imm=PRIMITIVES[op](x[1], y[1], self.V))
        if x[0] is None and op in _SWAP:
            op, x, y = _SWAP[op], y, x
        elif x[0] is None:
            t = self.temp()
            self.emit("const", dst=t, imm=x[1])
            x = t, None
            self.depth -= 1
        self.emit(op, dst=dst, a=x[0], b=y[0], imm=y[1])

    def value(self, node, dst):
        """Emit code that leaves the value of expression `node` in register `dst`."""
        mark, c = self.depth, self.fold(node)
        early = isinstance(node, ast.BoolOp) or isinstance(node, ast.Compare) and len(node.ops) > 1 or \
            isinstance(node, ast.Subscript) and self.fold(node.slice) is None and \
            not isinstance(node.slice, ast.Name) and not self.negative_index(node.slice)
        if c is None and early and dst in self.reads(node):  # dst is written before node is fully read
            t = self.temp()
            self.value(node, t)
            self.emit("mov", dst=dst, a=t)
        elif c is not None:
            self.emit("const", dst=dst, imm=c)
        elif isinstance(node, ast.Name):
            if self.int_reg(node) != dst:
                self.emit("mov", dst=dst, a=self.int_reg(node))
        elif isinstance(node, ast.BinOp):
            self.binary(_BINOPS[type(node.op)], dst, node.left, node.right)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                self.value(node.operand, dst)
            else:
                zero = (None, 0)
                x = self.operand(node.operand, volatile=True)
                self.alu("eq", dst, x, zero) if isinstance(node.op, ast.Not) else self.alu("sub", dst, zero, x)
        elif isinstance(node, ast.Compare):
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
        elif isinstance(node, ast.BoolOp):
            end = _Label()
            for v in node.values[:-1]:
                self.value(v, dst)
                if isinstance(node.op, ast.And):
                    self.emit("branch", a=dst, target=end)  # a falsy x: `x and y` is x
                else:
                    nxt = _Label()
                    self.emit("branch", a=dst, target=nxt)
                    self.emit("jump", target=end)  # a truthy x: `x or y` is x
                    self.items.append(nxt)
            self.value(node.values[-1], dst)
            self.items.append(end)
        elif isinstance(node, ast.IfExp):
            orelse, end = _Label(), _Label()
            self.branch_if(node.test, orelse, False)
            self.value(node.body, dst)
            self.emit("jump", target=end)
            self.items.append(orelse)
            self.value(node.orelse, dst)
            self.items.append(end)
        elif isinstance(node, ast.Subscript):
            self.address(node, dst)
            self.emit("load", dst=dst, a=dst)
        elif isinstance(node, ast.Call):
            self.call_value(node, dst)
        else:
            raise _error(f"{type(node).__name__} is not supported here: a tuple only in a tuple assignment "
                         "(a, b = b, a)", node)
        self.depth = mark

    def binary(self, op, dst, left, right):
        """dst = op(left, right), using dst itself for one side where that is safe, so that a long chain
        like a + b + c + d needs one temporary, not one per operator."""
        simple = lambda n: isinstance(n, ast.Name) or self.fold(n) is not None
        if not simple(left) and dst not in self.reads(right) and (dst >= 0 or not self.has_call(right)):
            self.value(left, dst)
            self.alu(op, dst, (dst, None), self.operand(right, volatile=True))
        elif simple(left) and not simple(right) and self.operand(left)[0] != dst:
            self.value(right, dst)
            self.alu(op, dst, self.operand(left), (dst, None))
        else:
            self.alu(op, dst, *self.operands([left, right]))

    def address(self, node, dst):
        """dst = the memory address of a[i]: base + i, or base + len - c for a constant negative index -c."""
        base, length = self.list_regs(node.value)
        index = node.slice
        if self.negative_index(index):
            self.emit("add", dst=dst, a=base, b=length)
            return self.emit("sub", dst=dst, a=dst, imm=self.negative_index(index))
        c = self.fold(index)
        if c is not None:
            return self.emit("add", dst=dst, a=base, imm=c) if c else self.emit("mov", dst=dst, a=base)
        if isinstance(index, ast.Name) or getattr(getattr(index, "func", None), "id", None) == "len":
            return self.emit("add", dst=dst, a=base, b=self.operand(index)[0])
        self.value(index, dst)
        self.emit("add", dst=dst, a=base, b=dst)

    def negative_index(self, index):
        """c for an index written -c with a nonzero constant c (Python's from-the-end indexing), else 0."""
        neg = isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub)
        return neg and self.fold(index.operand) or 0

    def call_value(self, node, dst):
        name = getattr(node.func, "id", None)
        if name in self.table:
            self.call(node)
            return None if dst == A0 else self.emit("mov", dst=dst, a=A0)
        if name == "len" and len(node.args) == 1:
            return self.emit("mov", dst=dst, a=self.list_regs(node.args[0])[1])
        if name in ("min", "max") and len(node.args) >= 2:
            ops = self.operands(node.args)
            acc = dst if len(ops) == 2 else self.temp()  # only the last instruction may write dst
            self.alu(name, acc, ops[0], ops[1])
            for i, y in enumerate(ops[2:]):
                self.alu(name, dst if i == len(ops) - 3 else acc, (acc, None), y)
            return None
        if name in ("len", "min", "max"):
            raise _error(f"{name}() takes {'one list' if name == 'len' else 'two or more ints'}", node)
        if name == "range":
            raise _error("range(...) is only supported as the iterable of a for loop", node)
        hint = " (a compiled function returns its result instead)" if name == "print" else ""
        raise _error(f"unknown function '{name or ast.unparse(node.func)}'{hint}: only functions compiled "
                     f"together and len, min, max, range can be called", node)

    def call(self, node):
        """Call a compiled function; its result is left in a0. Every argument is evaluated first (into
        temporaries while a later argument still makes a call), then moved into the window a0, a1, ..."""
        callee = self.table[node.func.id]
        if len(node.args) != len(callee.params):
            raise _error(f"{callee.node.name} takes {len(callee.params)} arguments "
                         f"({', '.join(p.name for p in callee.params)}), got {len(node.args)}", node)
        last_call = max([i for i, a in enumerate(node.args) if self.has_call(a)], default=-1)
        moves, slot, mark = [], 0, self.depth
        for i, (p, arg) in enumerate(zip(callee.params, node.args)):
            window = -1 - slot
            slot += 2 if p.is_list else 1
            if p.is_list:
                base, length = self.list_regs(arg)
                moves += [(window, (base, None)), (window - 1, (length, None))]
            elif isinstance(arg, ast.Name) or self.fold(arg) is not None:
                moves.append((window, self.operand(arg)))
            elif i >= last_call:
                self.value(arg, window)  # no call comes after it: straight into the window
            else:
                t = self.temp()
                self.value(arg, t)
                moves.append((window, (t, None)))
        for window, (r, c) in moves:
            self.emit("const", dst=window, imm=c) if r is None else self.emit("mov", dst=window, a=r)
        self.emit("call", target=callee.node.name, note=callee.node.name)
        self.depth = mark

    # -- conditions: jump on the truth of an expression, without materialising a bool -----------------
    def branch_if(self, node, label, when):
        """Jump to `label` if bool(node) == when, else fall through. Short-circuits like Python."""
        c, mark = self.fold(node), self.depth
        if c is not None:
            return self.emit("jump", target=label) if bool(c) == when else None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.branch_if(node.operand, label, not when)
        if isinstance(node, ast.BoolOp) or isinstance(node, ast.Compare) and len(node.ops) > 1:
            is_and = isinstance(node, ast.Compare) or isinstance(node.op, ast.And)
            parts = node.values if isinstance(node, ast.BoolOp) else list(zip(node.ops, node.comparators))
            skip, left = _Label(), getattr(node, "left", None)
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                target, on = (label, when) if last or is_and != when else (skip, not when)
                if isinstance(part, tuple):  # one link a < b of a chain; b is evaluated once
                    op, right = part
                    x = left if isinstance(left, tuple) else self.operand(left, not self.has_call(right))
                    left = self.operand(right, volatile=last)
                    self.branch_cmp(_CMPOPS[type(op)], x, left, target, on)
                else:
                    self.branch_if(part, target, on)
            self.items.append(skip)
        elif isinstance(node, ast.Compare):
            x, y = self.operands([node.left, node.comparators[0]])
            self.depth = mark  # the operands are read by the comparison itself: its result may reuse them
            self.branch_cmp(_CMPOPS[type(node.ops[0])], x, y, label, when)
        else:
            r, _ = self.operand(node, volatile=True)
            self.depth = mark
            if when:
                t = self.temp()
                self.emit("eq", dst=t, a=r, imm=0)
                r = t
            self.emit("branch", a=r, target=label)
        self.depth = mark

    def branch_cmp(self, op, x, y, label, when):
        """Jump to `label` if op(x, y) == when: `branch` jumps on zero, so compute the comparison that
        is false exactly when we want to jump."""
        t = self.temp()
        self.alu(_NEGATE[op] if when else op, t, x, y)
        if self.items[-1].op == "const":  # both constant: decide now
            self.items.pop()
            self.branch_if(ast.Constant(PRIMITIVES[op](x[1], y[1], self.V)), label, when)
        else:
            self.emit("branch", a=t, target=label)
        self.depth -= 1

    # -- statements ----------------------------------------------------------------------------------
    def stmts(self, body):
        for s in body:
            self.line = s.lineno
            self.stmt(s)

    def stmt(self, s):
        mark = self.depth
        if isinstance(s, (ast.Assign, ast.AnnAssign)):
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            if s.value is None:
                pass  # a bare annotation `x: int` declares nothing
            elif isinstance(targets[0], ast.Tuple) and len(targets) == 1:
                self.assign_tuple(targets[0], s.value)
            elif len(targets) == 1 and isinstance(targets[0], ast.Name):
                self.value(s.value, self.store_reg(targets[0]))
            else:
                r, c = self.operand(s.value, volatile=not any(map(self.has_call, targets)))
                for t in targets:
                    self.assign(t, (r, c))
        elif isinstance(s, ast.AugAssign):
            op = _BINOPS[type(s.op)]
            if isinstance(s.target, ast.Subscript):  # a[i] op= x: load, evaluate x, store (Python's order)
                addr, old = self.temp(), self.temp()
                self.address(s.target, addr)
                self.emit("load", dst=old, a=addr)
                self.alu(op, old, (old, None), self.operand(s.value, volatile=True))
                self.emit("store", a=addr, b=old)
            else:
                r = self.store_reg(s.target)
                self.alu(op, r, (r, None), self.operand(s.value, volatile=True))
        elif isinstance(s, ast.Return):
            if s.value is not None and isinstance(s.value, ast.Name):
                return self.emit("ret", a=self.int_reg(s.value))
            self.value(s.value if s.value is not None else ast.Constant(0), A0)  # a0 is free: ret overwrites it
            self.emit("ret", a=A0)
        elif isinstance(s, ast.Expr):
            self.call(s.value) if getattr(s.value.func, "id", None) in self.table else self.value(s.value, self.temp())
        elif isinstance(s, ast.If) and not s.orelse and isinstance(s.body[0], (ast.Break, ast.Continue)):
            if not self.loops:
                raise _error(f"'{type(s.body[0]).__name__.lower()}' outside a loop", s.body[0])
            self.branch_if(s.test, self.loops[-1][isinstance(s.body[0], ast.Break)], True)  # if c: break
        elif isinstance(s, ast.If):
            orelse, end = _Label(), _Label()
            self.branch_if(s.test, orelse, False)
            self.stmts(s.body)
            if s.orelse:
                self.emit("jump", target=end)
            self.items.append(orelse)
            self.stmts(s.orelse)
            self.items.append(end)
        elif isinstance(s, ast.While):
            body, test, end = _Label(), _Label(), _Label()
            self.emit("jump", target=test)  # the test sits at the bottom: one jump per loop, not per pass
            self.loop(body, s.body, test, end)
            self.line = s.lineno
            self.branch_if(s.test, body, True)
            self.items.append(end)
        elif isinstance(s, ast.For):
            self.for_range(s)
        elif isinstance(s, (ast.Break, ast.Continue)):
            if not self.loops:
                raise _error(f"'{type(s).__name__.lower()}' outside a loop", s)
            self.emit("jump", target=self.loops[-1][isinstance(s, ast.Break)])
        elif not isinstance(s, ast.Pass):
            raise _error(f"{type(s).__name__} is not supported", s)
        self.depth = mark

    def loop(self, label, body, cont, end, first=()):
        self.items.append(label)
        self.items.extend(first)
        self.loops.append((cont, end))
        self.stmts(body)
        self.loops.pop()
        self.items.append(cont)

    def store_reg(self, target):
        if isinstance(target, ast.Name) and target.id in self.fn.lists:
            raise _error(f"cannot assign to list parameter '{target.id}': change its elements with "
                         f"{target.id}[i] = x", target)
        return self.int_reg(target)

    def assign(self, target, opd):
        """target = operand, for a variable or a list element."""
        r, c = opd
        mark = self.depth
        if isinstance(target, ast.Subscript):
            if r is None:
                r = self.temp()
                self.emit("const", dst=r, imm=c)
            addr = self.temp()
            self.address(target, addr)
            self.emit("store", a=addr, b=r)
        elif isinstance(target, ast.Name):
            dst = self.store_reg(target)
            self.emit("const", dst=dst, imm=c) if r is None else dst != r and self.emit("mov", dst=dst, a=r)
        else:
            raise _error(f"cannot assign to {type(target).__name__}: assign to a variable or a[i]", target)
        self.depth = mark

    def assign_tuple(self, target, value):
        """a, b = x, y: every value is evaluated before anything is assigned, as in Python. A constant, or
        a variable that no earlier target overwrites, is read directly instead of through a temporary."""
        if not isinstance(value, ast.Tuple) or len(value.elts) != len(target.elts):
            raise _error(f"tuple assignment needs a tuple of {len(target.elts)} values on the right", value)
        opds = []
        for i, v in enumerate(value.elts):
            earlier = {t.id for t in target.elts[:i] if isinstance(t, ast.Name)}
            if self.fold(v) is not None or isinstance(v, ast.Name) and v.id not in earlier:
                opds.append(self.operand(v))
            else:
                opds.append((self.temp(), None))
                self.value(v, opds[-1][0])
        for t, opd in zip(target.elts, opds):
            self.assign(t, opd)

    def for_range(self, s):
        """for i in range(start, stop, step): start, stop evaluated once; a constant step of either sign.

        Layout: entry test; body; step-and-test at the bottom (one branch per pass). The bottom test is
        arranged so the counter never wraps past V: `k + step < stop` is tested as `stop - k > step`."""
        it = s.iter
        if not (isinstance(it, ast.Call) and getattr(it.func, "id", None) == "range" and 1 <= len(it.args) <= 3):
            raise _error("for loops only run over range(stop), range(start, stop) or range(start, stop, step)", it)
        if not isinstance(s.target, ast.Name):
            raise _error("the loop variable of a for loop must be a plain name", s.target)
        start, stop = it.args[:2] if len(it.args) > 1 else (ast.Constant(0), it.args[0])
        step = self.signed(it.args[2]) if len(it.args) == 3 else 1
        if not step:
            raise _error("the step of range must be a nonzero constant like 2 or -1", it)
        i = self.store_reg(s.target)
        k = i if s.target.id in self.fn.counters else self.temp()
        self.value(start, k)
        first = (None, self.fold(start)) if self.fold(start) is not None else (k, None)
        signed_stop = self.signed(stop)
        if signed_stop is not None:
            if step < 0 and signed_stop < -1:
                raise _error("a descending range must stop at -1 or above: values are never negative", stop)
            limit = (None, signed_stop % self.V)
        elif isinstance(stop, ast.Name) and stop.id != s.target.id and stop.id not in _names(s.body, ast.Store):
            limit = self.operand(stop)
        elif isinstance(stop, ast.Call) and getattr(stop.func, "id", None) == "len":
            limit = self.operand(stop)
        else:
            limit = (self.temp(), None)
            self.value(stop, limit[0])
        body, cont, end = _Label(), _Label(), _Label()
        if signed_stop is not None and signed_stop < 0:
            if step > 0:
                return  # range(start, -c) is empty
        else:
            self.branch_cmp("lt" if step > 0 else "gt", first, limit, end, False)
        self.loop(body, s.body, cont, end, [Instr("mov", dst=i, a=k, lineno=s.lineno)] if k != i else [])
        self.line, t, s_ = s.lineno, self.temp(), abs(step)
        if limit[0] is None:  # constant stop: continue while k + step < stop (k - step > stop, going down)
            h = limit[1] - s_ if step > 0 else signed_stop + s_
            if (h <= 0 if step > 0 else h >= self.V - 1):
                return self.items.append(end)
            self.emit("ge" if step > 0 else "le", dst=t, a=k, imm=h)
        elif step == 1:  # k + 1 <= stop < V: no wrap
            self.emit("add", dst=k, a=k, imm=1)
            self.emit("ge", dst=t, a=k, b=limit[0])
            self.emit("branch", a=t, target=body)
            return self.items.append(end)
        else:
            self.emit("sub", dst=t, a=limit[0], b=k) if step > 0 else self.emit("sub", dst=t, a=k, b=limit[0])
            self.emit("le", dst=t, a=t, imm=s_)
        self.emit("add" if step > 0 else "sub", dst=k, a=k, imm=s_)
        self.emit("branch", a=t, target=body)
        self.items.append(end)

    def signed(self, node):
        """A constant as a Python int, sign included (`-1` is -1 here, not V - 1), or None."""
        neg = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
        c = self.fold(node.operand if neg else node)
        return None if c is None else -c if neg else c

    def lower(self):
        fn = self.fn
        if not fn.is_leaf:  # prologue: copy the parameters out of the window, where calls overwrite them
            slot = 0
            for p in fn.params:
                for j, r in enumerate(fn.lists.get(p.name, ()) or [fn.regs.get(p.name)]):
                    if r is not None:
                        self.emit("mov", dst=r, a=-1 - slot - j, note=p.name + ("", ".base", ".len")[
                            j + p.is_list])
                slot += 2 if p.is_list else 1
        self.stmts(fn.node.body)
        self.line = fn.node.lineno
        self.emit("const", dst=A0, imm=0, note="no return: return 0")
        self.emit("ret", a=A0)
        return self.items


def simplify(items):
    """Pass 6: peephole clean-up on one function: thread jumps to jumps, drop unreferenced labels, code
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
                dead = it.op in ("jump", "ret", "halt")
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


def emit(table, lowered, source, V, max_regs):
    """Pass 7: lay the functions out one after another, resolve labels and call targets to lines, and
    put the argument window at the top of the register file."""
    window = max([1] + [sum(2 if p.is_list else 1 for p in fn.params) for fn in table.values()])
    for name, fn in table.items():
        need = fn.n_fixed + fn.n_temps + window
        if need > max_regs:
            raise _error(f"function {name} needs {need} registers ({fn.n_fixed} for variables, {fn.n_temps} for "
                         f"temporaries, {window} for arguments), more than max_regs={max_regs}: simplify it or "
                         "raise max_regs", fn.node)
    n_regs = max([fn.n_fixed + fn.n_temps for fn in table.values()], default=0) + window
    reg = lambda r: r if r is None or r >= 0 else n_regs - window + (-1 - r)  # window slot k -> a{k}
    lines, functions, instructions = {}, {}, []
    for name, items in lowered.items():
        functions[name] = Function(name, len(instructions), table[name].params)
        for it in items:
            if isinstance(it, _Label):
                lines[it] = len(instructions)
            else:
                instructions.append(it)
    for ins in instructions:
        ins.dst, ins.a, ins.b = reg(ins.dst), reg(ins.a), reg(ins.b)
        if ins.target is not None:
            ins.target = functions[ins.target].entry if isinstance(ins.target, str) else lines[ins.target]
    return Program(instructions, functions, n_regs, [n_regs - window + k for k in range(window)], V, source)


def compile_source(src: str, n_values: int = 128, max_regs: int = 16) -> Program:
    """Compile the top-level functions in `src` into one Program (they may call each other)."""
    try:
        module = parse(src)
        validate(module, n_values)
        table = resolve(module)
        for fn in table.values():
            allocate(fn)
        lowered = {name: simplify(_Lowerer(fn, table, n_values).lower()) for name, fn in table.items()}
        return emit(table, lowered, src.splitlines(), n_values, max_regs)
    except RecursionError:
        raise CompileError("the program is nested too deeply for the compiler") from None


def compile_functions(*fns, n_values=128, max_regs=16):
    """Compile Python function objects (their source, via inspect) into one Program."""
    try:
        src = "\n".join(textwrap.dedent(inspect.getsource(f)) for f in fns)
    except (OSError, TypeError) as e:
        raise CompileError(f"cannot read the source of {fns!r}: {e}") from None
    return compile_source(src, n_values=n_values, max_regs=max_regs)


# -----------------------------------------------------------------------------
# 4. The reference interpreter: what the IR means, one instruction at a time.


def execute(program, name, *args, n_cells=None, max_depth=64, max_steps=1_000_000, return_steps=False):
    """`Program.run`: run function `name` of `program` on ints and Python lists, mutating lists in place."""
    V, code, arg_regs = program.n_values, program.instructions, program.arg_regs
    n_cells = V if n_cells is None else n_cells
    if name not in program.functions:
        raise ExecutionError(f"unknown function {name!r}; the program defines {sorted(program.functions)}")
    fn = program.functions[name]
    memory, regs, lists = _lay_out_arguments(fn, args, program.n_regs, arg_regs, V, n_cells)
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
                return (value, steps) if return_steps else value
            regs, pc = stack.pop()
            regs[arg_regs[0]] = value
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
