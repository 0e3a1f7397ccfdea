"""Statements (`stmt_Assign`, `stmt_If`, `stmt_While`, ...) and loops: `for` over a range, a list or
string, enumerate, zip and reversed.
"""

import ast

from ..analyze import _allocates, _is_fresh, _key, _show
from ..ir import CHAR, CHARS, HEAP_POINTER, INT, LIST, RETURN_CELLS, SEQS, STR, Instr, _error, _width
from ..subset import _BINOPS, _GROWS, _call_name, _method, _names, _walk
from .core import A0, _Label, Operand


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
