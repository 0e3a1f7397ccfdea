"""How much of a corpus of textbook Python compiles, and whether what compiles runs like CPython.

    python tests/scripts/textbook_check.py FILE_OR_DIR ... [--trials 30] [--seed 0] [-v]

Every top-level function of every .py file is a candidate; the top-level functions of the same file that
it calls are compiled with it. A CompileError is a refusal; any other exception from the compiler is a
crash. A function that compiles is run on random arguments of its parameters' compiled types (ints
mostly below 20, lists and strings of up to 7 elements) on CPython and on `Program.run`.

A trial counts ("in range") when CPython finishes (returns or raises) within 50,000 traced lines and every
int it makes stays in [0, V): each result of a binary or unary operator (the source is instrumented),
each local variable and list element at every line, each return value. A counted trial must agree:
the same value (a bool as 0/1, None as 0), the same list arguments afterwards, or CPython raises and the
machine stops with ExecutionError. Anything else is wrong. An exception other than ExecutionError from
the interpreter is a crash. The machine's own limits (call depth, steps, heap) end a trial uncounted.
Trials whose values leave [0, V) are run too, and their disagreements are reported apart: values
outside [0, V) wrap modulo V on the machine, by design.

Prints the functions, the share that compiles, the counted trials, wrong and crashes, and the refusals
grouped by their first error.
"""

import argparse
import ast
import collections
import copy
import os
import random
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the repo root

from compiler import CHAR, CHARS, INT, LIST, STR, CompileError, ExecutionError, compile_source  # noqa: E402

V = 128
MAX_LINES = 50_000
LIMITS = ("call depth limit", "step limit", "MemoryError", "does not fit", "fill all")


class OutOfRange(Exception):
    pass


class TooLong(Exception):
    pass


# -- CPython, instrumented: every int it makes is checked against [0, V) -------------------------------

class Instrument(ast.NodeTransformer):
    """Wrap every binary and unary operation in `__value__(...)`, which records values outside [0, V)."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return ast.copy_location(ast.Call(ast.Name("__value__", ast.Load()), [node], []), node)

    visit_UnaryOp = visit_BinOp


def bad_value(x, depth=0):
    if isinstance(x, bool) or x is None:
        return False
    if isinstance(x, int):
        return not 0 <= x < V
    if isinstance(x, str):
        return any(ord(c) >= V for c in x)
    if isinstance(x, (list, tuple)) and depth < 2:
        return any(bad_value(e, depth + 1) for e in x)
    return False


class Run:
    """One CPython call, traced: counts lines and notes values outside [0, V)."""

    def __init__(self, filename):
        self.filename, self.lines, self.out_of_range = filename, 0, False

    def value(self, x):
        if bad_value(x):
            self.out_of_range = True
        return x

    def trace(self, frame, event, arg):
        if frame.f_code.co_filename != self.filename:
            return None
        return self.local

    def local(self, frame, event, arg):
        if event == "line":
            self.lines += 1
            if self.lines > MAX_LINES:
                raise TooLong()
            if any(bad_value(v) for v in frame.f_locals.values()):
                self.out_of_range = True
        elif event == "return" and bad_value(arg):
            self.out_of_range = True
        return self.local


def load_module(path, source):
    """The file's module, executed from its instrumented source (its `if __name__ == "__main__"` part
    does not run). None if it cannot be executed (e.g. a missing import)."""
    filename = f"<textbook {path}>"
    tree = ast.fix_missing_locations(Instrument().visit(ast.parse(source)))
    namespace = {"__name__": "textbook", "__value__": lambda x: x}
    try:
        exec(compile(tree, filename, "exec"), namespace)
    except Exception:  # noqa: BLE001 - a file we cannot import: its functions are not run
        return None, None
    return namespace, filename


def cpython(namespace, filename, entry, args):
    """(outcome, out of range?, too long?) where outcome is ("value", v) or ("raise", type name)."""
    run = Run(filename)
    namespace["__value__"] = run.value
    old = sys.gettrace()
    sys.settrace(run.trace)
    try:
        outcome = ("value", namespace[entry](*args))
    except TooLong:
        return None, True, True
    except RecursionError:
        return None, True, False
    except Exception as e:  # noqa: BLE001 - the machine must stop with ExecutionError where CPython raises
        outcome = ("raise", type(e).__name__)
    finally:
        sys.settrace(old)
    return outcome, run.out_of_range, False


# -- the compile unit of a function: it and the top-level functions it calls, transitively -------------

def units(tree, source):
    defs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    lines = source.splitlines()
    for name, f in defs.items():
        unit, todo = [], [name]
        while todo:
            g = todo.pop()
            if g in unit:
                continue
            unit.append(g)
            todo += [n.func.id for n in ast.walk(defs[g]) if isinstance(n, ast.Call) and
                     isinstance(n.func, ast.Name) and n.func.id in defs]
        first = lambda d: min([d.lineno] + [x.lineno for x in d.decorator_list])
        text = "\n\n".join("\n".join(lines[first(defs[g]) - 1:defs[g].end_lineno]) for g in sorted(
            unit, key=lambda g: defs[g].lineno))
        yield name, text


# -- random arguments by compiled type ---------------------------------------------------------------

def small_int(rng):
    return rng.randrange(0, 10) if rng.random() < 0.7 else rng.randrange(0, 40)


def argument(rng, t):
    n = rng.randrange(0, 8)
    if t == INT:
        return small_int(rng)
    if t == LIST:
        return [rng.randrange(0, 20) for _ in range(n)]
    if t == STR:
        return "".join(rng.choice("abcab ba01") for _ in range(n))
    if t == CHARS:
        return [rng.choice("abc01 ") for _ in range(n)]
    if t == CHAR:
        return rng.choice("abz0 ")
    raise ValueError(t)


def same(machine, python):
    if isinstance(python, bool) or python is None:
        python = int(bool(python))
    if isinstance(python, (list, tuple)) and isinstance(machine, (list, tuple)):
        return len(machine) == len(python) and all(same(m, p) for m, p in zip(machine, python))
    if isinstance(python, int) and isinstance(machine, int):
        return machine == python % V
    return machine == python


# -- the check ------------------------------------------------------------------------------------------

def check_function(namespace, filename, name, text, program, rng, trials, report):
    fn, counted = program.functions[name], 0
    for _ in range(trials if fn.params else 1):
        args = [argument(rng, p.type) for p in fn.params]
        py_args = copy.deepcopy(args)
        outcome, out_of_range, too_long = cpython(namespace, filename, name, py_args)
        if too_long or outcome is None:
            report["uncounted"] += 1
            continue
        try:
            got = ("value", program.run(name, *args, max_steps=200_000))
        except ExecutionError as e:
            if any(k in str(e) for k in LIMITS):
                report["machine limit"] += 1
                continue
            got = ("raise", str(e))
        except Exception:  # noqa: BLE001
            report["crashes"] += 1
            report["crash list"].append((name, args, traceback.format_exc(limit=3)))
            continue
        if outcome[0] == "raise" or got[0] == "raise":
            ok = outcome[0] == got[0]
        else:
            ok = same(got[1], outcome[1]) and same(args, py_args)
        key = "signed" if out_of_range else "counted"
        report[key + " trials"] += 1
        counted += key == "counted"
        if not ok:
            report[key + " wrong"] += 1
            report[key + " wrong list"].append((name, args, got, outcome))
    report["untested"] += counted == 0


def check_file(path, rng, trials, report, verbose):
    source = open(path, encoding="utf-8").read()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    namespace, filename = load_module(path, source)
    for name, text in units(tree, source):
        report["functions"] += 1
        try:
            program = compile_source(text, n_values=V)
        except CompileError as e:
            report["refused"].append((path, name, e.message))
            if verbose:
                print(f"refused {path}:{name}: {e}")
            continue
        except Exception:  # noqa: BLE001
            report["crashes"] += 1
            report["crash list"].append((name, "compile", traceback.format_exc(limit=3)))
            continue
        report["compiled"] += 1
        if verbose:
            print(f"compiled {path}:{name}")
        if namespace is not None:
            check_function(namespace, filename, name, text, program, rng, trials, report)


def reason(message):
    """A refusal's message without the names and values in it, to group alike refusals."""
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'.'", message)
    return re.sub(r"\d+", "N", message)[:90]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    files = []
    for p in args.paths:
        files += [os.path.join(d, f) for d, _, fs in os.walk(p) for f in sorted(fs) if f.endswith(".py")] \
            if os.path.isdir(p) else [p]
    report = collections.defaultdict(int)
    for key in ("refused", "crash list", "counted wrong list", "signed wrong list"):
        report[key] = []
    rng = random.Random(args.seed)
    for path in sorted(files):
        check_file(path, rng, args.trials, report, args.verbose)
    n, c = report["functions"], report["compiled"]
    print(f"{len(files)} files, {n} functions: {c} compile ({100 * c / max(n, 1):.1f}%)")
    print(f"counted trials (values in [0, {V})): {report['counted trials']}, wrong {report['counted wrong']}, "
          f"crashes {report['crashes']}; {report['untested']} compiled functions had no counted trial")
    print(f"trials whose values leave [0, {V}): {report['signed trials']}, of which differ {report['signed wrong']}; "
          f"uncounted: {report['uncounted']} too long or RecursionError, {report['machine limit']} machine limits")
    for name, a, got, want in report["counted wrong list"][:10]:
        print(f"  WRONG {name}{tuple(a)}: machine {got}, CPython {want}")
    for name, a, tb in report["crash list"][:5]:
        print(f"  CRASH {name} {a}:\n{tb}")
    if args.verbose:
        for name, a, got, want in report["signed wrong list"][:40]:
            print(f"  differs (out of range) {name}{tuple(a)}: machine {got}, CPython {want}")
    print("refusals by first error:")
    for msg, k in collections.Counter(reason(m) for _, _, m in report["refused"]).most_common(25):
        print(f"  {k:4d}  {msg}")


if __name__ == "__main__":
    main()
