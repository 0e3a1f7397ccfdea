"""Expressions with an int or character value (`value_BinOp`, `value_Compare`, ...), and conditions:
jumps on the truth of an expression without materialising a bool (`branch_if`).
"""

import ast

from ..analyze import _elem, _is_seq, _show
from ..ir import CHAR, CHARS, INT, LIST, PRIMITIVES, STR, _error, _width
from ..subset import _BINOPS, _CMPOPS, _NEGATE, _call_name, _method
from .core import A0, _Label, Operand


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
