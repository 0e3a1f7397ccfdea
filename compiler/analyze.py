"""Passes 4-5: infer the type of every variable and return value, check that a list that changes
length has one owner, and allocate registers (with biases for variables that count down past 0).
"""

import ast

from .ir import CHAR, CHARS, INT, LIST, SEQS, STR, _error, _width
from .subset import _BUILTINS, _GROWS, _SEQ_METHODS, _STR_ONLY, _call_name, _flat, _kids, _method, _names, _walk

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
