"""
Compile restricted Python functions into register-machine programs.

This package is the "neurally compiled library" half of the project: plain Python algorithms become
programs that the differentiable machine in reasoning/ runs inside the network. Read it in this order:

1. ir.py: the value model and the primitive operations (the machine's lookup tables are built from
   these), the program format (`Instr`, `Function`, `Program` and its printed disassembly), and the
   reference interpreter, `execute` behind `Program.run`, which *defines* what the IR means;
2. this file, below: the compiler as a short sequence of passes over Python's `ast`;
   `compile_source(src)` and `compile_functions(*fns)` run them. Each pass lives in the file named with it:
   subset.py (parse, validate, resolve), analyze.py (infer, allocate), lower/ (lower), link.py (simplify,
   link).

Value model. Every value is an integer in [0, V), V = `n_values` (default 128, as in the paper).
Arithmetic wraps modulo V (a negative number -c is the value V - c); comparisons give 0 or 1. A constant
outside [0, V) is a CompileError. A character is its code (`ord`), so a string is a list of codes.

Register file and calling convention. A program has `n_regs` registers r0..r{R-1}. The last few, the
*argument window* `a0, a1, ...` (= `Program.arg_regs`), carry arguments into a call and the return value
out of it. A function's prologue copies its parameters out of the window into its own registers; a
caller evaluates every argument first, then moves them into the window, then `call`s. `call` pushes the
whole register file and the return address onto the call stack and jumps; `ret x` pops them, puts the
value of `x` into `a0` of the restored file and jumps back; the caller then moves `a0` where it needs it.
A `ret` with an empty stack halts the machine with that value: that is how a top-level call ends. Just
below the window sit the *hole registers* h0, h1, ... (see `hole`): no instruction writes them.

Lists and strings live in memory, a flat array of `n_cells` cells, each holding a value. A list (or
string) value is two registers, its base address and its length; `len(a)` reads the second one, `a[i]`
checks `i < len(a)` and loads cell `base + i`. Memory, from address 0:

    [ reserved cells | list arguments, one after another | heap ... | spare cell ]

- The reserved cells exist only in programs that need them (`Program.reserved` holds their initial
  contents; a program of int and list-argument functions has none, so its first list starts at 0):
  cell 0 is the *heap pointer* (the next free cell), cell 1 the *heap end* (n_cells - 1), then the
  *return cells*, then constant data (string constants, laid out once).
- The heap is a bump allocator: a list literal, `[x] * n`, a slice, a comprehension, `a + b`... take
  cells from the heap pointer up; taking more than there is stops the run with an error (MemoryError).
  A function whose return value holds no list frees what it took when it returns (it restores the heap
  pointer it found), so the heap grows and shrinks like a stack; a function returning a list leaves
  the list (and whatever else it took) to its caller. `append` grows a list in place when the list ends
  at the heap pointer, and otherwise copies it to the top first.
- A function returns several values (a tuple, or a list's base and length) in a0 and the return cells:
  the first value in a0, the k-th in return cell k - 1; the caller reads them right after the call.
The pointer and the results live in memory, not in registers, because `ret` restores the caller's
registers: a callee's allocation must survive its return.

Errors. `assert`, `raise`, an index past a list's end, a division by zero, `pop` from an empty list
and a full heap compile to `fail #k`: the run stops and `Program.run` raises `ExecutionError` with
`Program.errors[k]`, which names the file, line and function ("tasks.py line 85 in parse_number:
AssertionError: number too large").
"""

import ast
import inspect
import os
import textwrap
from dataclasses import dataclass

# The passes, and every name that other modules and the tests import from `compiler`.
from .analyze import allocate, infer
from .ir import (CHAR, CHARS, HEAP_END, HEAP_POINTER, INT, LIST, OPCODES, PRIMITIVES, RETURN_CELLS, SEQS, STR,
                 CompileError, ExecutionError, Function, Hole, Instr, Param, Program, _copy_back,
                 _lay_out_arguments, _result, _width, execute, hole)
from .link import link, simplify
from .lower import _Lowerer
from .lower.core import _Shared
from .subset import parse, resolve, validate

__all__ = ["CHAR", "CHARS", "INT", "LIST", "OPCODES", "PRIMITIVES", "SEQS", "STR", "CompileError", "ExecutionError",
           "Function", "Hole", "Instr", "Param", "Program", "compile_functions", "compile_source", "execute", "hole"]

# -----------------------------------------------------------------------------
# The compiler: Python source -> Program, as a short sequence of passes, each with one job.
#
#   parse     source text -> ast.Module, docstrings dropped               (SyntaxError passes through)
#   validate  every node is in the supported subset, else CompileError
#   resolve   the function table: parameters (types, defaults), locals, holes; comprehension
#             variables renamed apart (they do not leak, as in Python 3)
#   infer     the type of every variable and return value: int, char, str, list, list[str], tuples
#   allocate  registers for parameters and locals (a list takes two); temporaries are stacked above
#   lower     statements and expressions -> instructions with symbolic labels and argument-window slots
#   simplify  thread jumps, drop jumps to the next line and unreachable code
#   link      lay the functions out, labels -> lines, window and hole slots -> registers: the Program
#
# Decisions a reader may want to know. A negative literal `-c` is the value V - c; `a[-c]` with a
# constant c indexes from the end as in Python; a computed index must be in [0, len). A parameter is a
# list iff it is annotated so or used as one (indexed, len()'d, iterated, passed where a list is
# expected); it is a string iff annotated `str`. `range` takes a constant step; a descending range must
# stop at -1 or above. Reading a variable before assigning it is not checked (CPython would raise).
# Functions without a `return` return 0. `append`/`pop`/`insert`/`extend`/`+=` change a list's length and
# are allowed only on lists the function made itself, never aliased (`b = a`), so that every name of a
# list knows its length. `abs(x - y)` is max(x, y) - min(x, y): exact on values that stay in range.


@dataclass
class _Origin:
    """Where a piece of the compiled source came from (compile_functions joins several)."""
    first: int  # its first line in the compiled source
    filename: str | None
    lineno: int  # that line's number in its file


def _compile(src, origins, n_values, max_regs, check_bounds):
    def file_line(line):
        o = [o for o in origins if o.first <= line][-1]
        return o.filename, o.lineno + line - o.first

    def locate(line):
        filename, n = file_line(line)
        return f"{os.path.basename(filename)} line {n}" if filename else f"line {n}"

    module = None
    try:
        module = parse(src)
        validate(module, n_values)
        table = resolve(module, n_values)
        infer(table)
        for fn in table.values():
            allocate(fn)
        n_ret = max([_width(fn.returns) for fn in table.values()], default=1) - 1
        shared = _Shared(n_values, n_ret, locate, check_bounds)
        lowered = {name: simplify(_Lowerer(fn, table, shared).lower()) for name, fn in table.items()}
        holes = [(fn.node.name, file_line(n.lineno)[1], ast.unparse(n), len(n.args)) for fn in table.values()
                 for n in sorted((n for n in fn.nodes if hasattr(n, "hole")), key=lambda n: n.hole)]
        program = link(table, lowered, src.splitlines(), n_values, max_regs, shared, holes)
        program.line_numbers = [file_line(i + 1)[1] for i in range(len(program.source_lines))]
        return program
    except RecursionError:
        raise CompileError("the program is nested too deeply for the compiler") from None
    except CompileError as e:
        if e.lineno is None:
            raise
        filename, line = file_line(e.lineno)
        defs = [f for f in getattr(module, "body", []) if isinstance(f, ast.FunctionDef) and
                f.lineno <= e.lineno <= (f.end_lineno or f.lineno)]
        raise CompileError(e.message, line, e.col_offset, filename, defs[0].name if defs else None) from None


def compile_source(src: str, n_values: int = 128, max_regs: int = 32, filename: str | None = None,
                   check_bounds: bool = True) -> Program:
    """Compile the top-level functions in `src` into one Program (they may call each other).

    `filename` names the source in error messages. `check_bounds=False` leaves out the checks that an
    index is below its list's length (an index past the end then reads or writes the next cells)."""
    if not isinstance(src, str):
        raise TypeError(f"compile_source takes the program's source text as a str, got {type(src).__name__}; "
                        "to compile function objects, use compile_functions(f, g, ...)")
    return _compile(src, [_Origin(1, filename, 1)], n_values, max_regs, check_bounds)


def compile_functions(*fns, n_values=128, max_regs=32, check_bounds=True):
    """Compile Python function objects (their source, via inspect) into one Program. Errors name each
    function's own file and line, e.g. "tasks.py, line 185, column 8, in parse_list: ..."."""
    pieces, origins, first = [], [], 1
    for f in fns:
        try:
            lines, start = inspect.getsourcelines(f)
            filename = inspect.getsourcefile(f)
        except (OSError, TypeError) as e:
            raise CompileError(f"cannot read the source of {f!r}: {e}") from None
        text = textwrap.dedent("".join(lines))
        origins.append(_Origin(first, filename, start))
        pieces.append(text)
        first += text.count("\n") + 1
    return _compile("\n".join(pieces), origins, n_values, max_regs, check_bounds)
