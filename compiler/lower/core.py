"""The lowerer's conventions and its basic tools: labels, the shared program state, operands, and the
helpers that emit instructions, take temporaries and fold constants. The other files of this package
add the methods for each kind of construct.
"""

import ast
from dataclasses import dataclass, field
from typing import NamedTuple

from ..analyze import _show
from ..ir import INT, PRIMITIVES, RETURN_CELLS, Instr, _error
from ..subset import _BINOPS, _CMPOPS, _EXACT, _NEGATE, _SWAP, _call_name, _names, _walk


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
