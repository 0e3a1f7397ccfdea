"""Lists and strings: a sequence value is a pair of operands (base, length). Literals, slices,
comprehensions, `a + b`, `[x] * n`, `sorted`, `str(n)` and the methods that make a new sequence.
"""

import ast

from ..analyze import _is_seq, _show
from ..ir import CHAR, CHARS, HEAP_END, HEAP_POINTER, INT, STR, _error
from ..subset import _call_name, _method
from .core import HEAP_FULL, _Label, Operand


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
