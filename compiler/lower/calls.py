"""Builtins with one-register results (`builtin_len`, `builtin_min`, ...), methods (`method_pop`,
`listmethod_append`, ...), and calls of the program's own functions through the argument window.
"""

import ast

from ..analyze import _is_seq, _show
from ..ir import (CHAR, CHARS, HEAP_END, HEAP_POINTER, INT, LIST, _REQUIRED, RETURN_CELLS, SEQS, STR, Param, _error,
                  _width)
from ..subset import _GROWS, _call_name, _method
from .core import A0, HEAP_FULL, HOLE0, _Label, Operand


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
