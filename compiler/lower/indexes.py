"""Indexing `a[i]` with its bounds check, and the facts about indexes (from conditions and loop
ranges) that let the check be left out where the index is known to be in range.
"""

import ast

from ..analyze import _key, _show
from ..ir import INT, STR, _error
from ..subset import _CMPOPS, _NEGATE, _NONZERO, _SWAP, _call_name, _kids, _names
from .core import Operand


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
