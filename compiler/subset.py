"""Passes 1-3: parse the source, validate it against the supported subset of Python, resolve the
function table (parameters and their types, defaults, locals, holes).

The tables at the top say what is supported and, for what is not, what a student should write instead.
"""

import ast
import warnings
from dataclasses import dataclass, field

from .ir import CHAR, CHARS, INT, LIST, SEQS, STR, CompileError, Param, _error

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
        body, params = fn.node.body, {p.name for p in fn.params}
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
