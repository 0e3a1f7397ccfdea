"""Pass 6, lower: one function's statements -> a list of `Instr` and `_Label` items.

`_Lowerer` is put together from one class per kind of construct, each in its own file, read in this
order: core.py (conventions, operands, helpers), expressions.py, indexes.py, lists.py, calls.py,
statements.py. Each kind of statement and expression has its own method, reached by name from the
node's class (the `ast.NodeVisitor` idiom): `stmt_If`, `value_BinOp`, `seq_ListComp`, `builtin_len`,
`method_pop`, `listmethod_append`, ...
"""

from ..analyze import _Typer, _show, _unique_lists
from ..ir import HEAP_POINTER, _width
from .calls import _Calls
from .core import A0, _Core
from .expressions import _Expressions
from .indexes import _Indexes
from .lists import _Lists
from .statements import _Statements


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
