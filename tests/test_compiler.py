"""Tests for compiler.py: every program of the corpus agrees with CPython (the textbook programs on
`Program.run`, `Machine.run_hard` and the distribution machine too); every unsupported construct is a
CompileError at the right place; garbage never crashes the compiler; the disassembly and the
interpreter's limits say what they should."""

import ast
import copy
import random
import re

import pytest

from compiler import CompileError, ExecutionError, _result, compile_functions, compile_source, hole
from corpus import CORPUS, TEXTBOOK, V


def cpython(source, entry, args):
    namespace = {}
    exec(source, namespace)
    result = namespace[entry](*args)
    return 0 if result is None else int(result)  # a function without `return` returns 0 on the machine


# -- the corpus: compiled programs return what CPython returns, and mutate lists the same way -----------

@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus_program_matches_cpython(case):
    program = compile_source(case.source)
    rng = random.Random(case.name)
    for gen, limit in [(case.gen, 5000)] * 200 + [(case.small_gen, 300)] * 50:
        args = gen(rng)
        mine, theirs = copy.deepcopy(args), copy.deepcopy(args)
        want = cpython(case.source, case.entry, theirs)
        got, steps = program.run(case.entry, *mine, return_steps=True)
        assert got == want, f"{case.name}{args}: machine {got}, CPython {want}"
        assert mine == theirs, f"{case.name}{args}: lists differ from CPython's"
        assert steps <= limit, f"{case.name}{args}: {steps} steps"


def normalise(x):
    """CPython's value as the machine holds it: bools are 0/1, a negative int -c is V - c."""
    if isinstance(x, bool) or isinstance(x, int):
        return int(x) % V
    return type(x)(map(normalise, x)) if isinstance(x, (list, tuple)) else x


def cpython_or_error(source, entry, args):
    """(CPython's result, None), or (None, the exception's type name) where CPython raises."""
    namespace = {}
    exec(source, namespace)
    try:
        result = namespace[entry](*args)
    except Exception as e:  # noqa: BLE001 - any error CPython raises must be an ExecutionError on the machine
        return None, type(e).__name__
    return normalise(0 if result is None else result), None


@pytest.mark.parametrize("case", TEXTBOOK, ids=lambda c: c.name)
def test_textbook_program_matches_cpython(case):
    program = compile_source(case.source)
    rng, raised = random.Random(case.name), 0
    for gen, limit in [(case.gen, 5000)] * 150 + [(case.small_gen, 300)] * 50:
        args = gen(rng)
        mine, theirs = copy.deepcopy(args), copy.deepcopy(args)
        want, error = cpython_or_error(case.source, case.entry, theirs)
        if error:  # where CPython raises, the machine stops with an ExecutionError naming the error
            with pytest.raises(ExecutionError, match=error):
                program.run(case.entry, *mine)
            raised += 1
            continue
        got, steps = program.run(case.entry, *mine, return_steps=True)
        assert normalise(got) == want, f"{case.name}{args}: machine {got}, CPython {want}"
        assert mine == theirs, f"{case.name}{args}: lists differ from CPython's"
        assert steps <= limit, f"{case.name}{args}: {steps} steps"


def joined(cases):
    """Every case's program in one source, each function renamed `<case>__<name>`."""
    sources = []
    for case in cases:
        tree = ast.parse(case.source)
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in names:
                node.name = f"{case.name}__{node.name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
                node.func.id = f"{case.name}__{node.func.id}"
        sources.append(ast.unparse(tree))
    return "\n\n".join(sources)


def test_textbook_programs_run_on_the_hard_path_as_on_the_interpreter():
    """Machine.run_hard (every program in one batch) returns what Program.run and CPython return, leaves
    list arguments as they do, and stops with the same error where CPython raises."""
    torch = pytest.importorskip("torch")
    from reasoning import Machine
    program = compile_source(joined(TEXTBOOK))
    machine, rng = Machine(program, max_depth=64), random.Random(3)
    jobs = [(case, args) for case in TEXTBOOK for args in [case.gen(rng) for _ in range(2)] +
            [case.small_gen(rng) for _ in range(8)]]
    state = [machine.init_state([f"{case.name}__{case.entry}"], [copy.deepcopy(args)]) for case, args in jobs]
    run = machine.run_hard(*(torch.cat([s[i] for s in state]).argmax(-1) for i in range(3)), 20_000)
    errors = 0
    for b, (case, args) in enumerate(jobs):
        theirs = copy.deepcopy(args)
        want, error = cpython_or_error(case.source, case.entry, theirs)
        if error:
            assert not run.halted[b] and run.error[b] >= 0, (case.name, args)
            assert error in program.errors[int(run.error[b])], (case.name, args)
            errors += 1
            continue
        memory = run.memory[b].tolist()
        assert run.halted[b] and run.error[b] == -1, (case.name, args)
        fn = program.functions[f"{case.name}__{case.entry}"]
        assert normalise(_result(fn, int(run.value[b]), memory)) == want, (case.name, args)
        lists = [(x, base) for x, base, *_ in state[b][3][0]]
        assert [memory[base:base + len(x)] for x, base in lists] == \
            [[ord(v) if isinstance(v, str) else v for v in y] for y in theirs if isinstance(y, list)], (case.name, args)
    assert errors > 0


def test_textbook_programs_run_on_the_distribution_machine():
    """Machine.run_batch (the mean-field machine on one-hot states, every program mixed in one batch)
    returns what CPython returns; where CPython raises, Machine.run raises the program's error."""
    pytest.importorskip("torch")
    from reasoning import Machine
    program = compile_source(joined(TEXTBOOK))
    machine = Machine(program, max_depth=16)
    rng, jobs, raises = random.Random(2), [], []
    for case in TEXTBOOK:
        for _ in range(12):
            args = case.small_gen(rng)
            want, error = cpython_or_error(case.source, case.entry, copy.deepcopy(args))
            (raises if error else jobs).append((case, args, want, error))
    jobs = list({case.name: (case, args, want, error) for case, args, want, error in jobs}.values())  # one each
    names = [f"{case.name}__{case.entry}" for case, *_ in jobs]
    machine_args = [copy.deepcopy(args) for _, args, _, _ in jobs]
    got = machine.run_batch(names, machine_args, max_steps=2_000)
    for (case, args, want, _), result, mine in zip(jobs, got, machine_args):
        theirs = copy.deepcopy(args)
        cpython_or_error(case.source, case.entry, theirs)
        assert normalise(result) == want and mine == theirs, (case.name, args, result, want)
    assert len(raises) >= 3
    for case, args, _, error in raises[:3]:
        with pytest.raises(ExecutionError, match=error):
            machine.run(f"{case.name}__{case.entry}", *copy.deepcopy(args), max_steps=2_000)


def test_corpus_is_large_and_stays_in_the_value_model():
    assert len(CORPUS) >= 20 and len(TEXTBOOK) >= 30
    for case in CORPUS + TEXTBOOK:
        rng = random.Random(0)
        for _ in range(20):
            args = case.gen(rng)
            values = [v for a in args for v in (a if isinstance(a, (list, str)) else [a])]
            assert all(0 <= (ord(v) if isinstance(v, str) else v) < V for v in values), case.name


def test_compile_functions_compiles_function_objects_together():
    def double(x):
        return x + x

    def quadruple(x):
        return double(double(x))

    program = compile_functions(double, quadruple)
    assert [program.run("quadruple", x) for x in range(5)] == [0, 4, 8, 12, 16]


# -- semantics pinned one by one -------------------------------------------------------------------

def run(src, *args, entry="f", **kw):
    return compile_source(src, **kw).run(entry, *args)


def test_values_wrap_modulo_V_and_negative_literals_are_V_minus_c():
    assert run("def f(x):\n    return x - 1", 0) == V - 1
    assert run("def f():\n    return -1") == V - 1
    assert run("def f(x):\n    return x * 3", 100) == 300 % V
    assert run("def f(x):\n    return x", 5, n_values=16) == 5


def test_and_or_return_operands_like_python():
    src = "def f(x, y):\n    a = x or y\n    b = x and y\n    x = y or x\n    return a * 16 + b * 4 + x"
    for x in range(3):
        for y in range(3):
            assert run(src, x, y) == cpython(src, "f", (x, y))


def test_chained_comparison_evaluates_the_middle_once():
    src = """
def g(a):
    a[0] += 1
    return a[0]

def f(a, x):
    if 0 < g(a) <= x:
        return a[0]
    return 50 + a[0]
"""
    for x in range(4):
        mine, theirs = [0], [0]
        assert run(src, mine, x) == cpython(src, "f", (theirs, x)) and mine == theirs == [1]


def test_calls_in_arguments_are_evaluated_left_to_right_before_the_window_is_filled():
    src = """
def bump(a, i):
    a[i] += 1
    return a[0] + a[1]

def pair(x, y):
    return x * 10 + y

def f(a):
    return pair(bump(a, 0), bump(a, 1)) + pair(a[0], bump(a, 0))
"""
    mine, theirs = [1, 2], [1, 2]
    assert run(src, mine) == cpython(src, "f", (theirs,)) and mine == theirs


def test_tuple_assignment_evaluates_every_value_first():
    src = "def f(x, y, z):\n    x, y, z = z, x, y + x\n    return x * 100 + y * 10 + z"
    assert run(src, 1, 2, 3) == 3 * 100 + 1 * 10 + 3 - 128 * ((313) // 128)
    src = "def f(a, i):\n    i, a[i] = 1, 5\n    return a[0] * 10 + a[1]"
    assert run(src, [0, 0], 0) == 5


def test_for_loop_variable_keeps_python_semantics():
    src = "def f(n):\n    i = 9\n    for i in range(n):\n        pass\n    return i"
    assert [run(src, n) for n in range(4)] == [9, 0, 1, 2]
    src = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n        i = 0\n    return s"
    assert run(src, 5) == 10


def test_range_counters_never_wrap_past_V():
    src = "def f(n):\n    c = 0\n    for i in range(0, n, 5):\n        c += 1\n    return c"
    assert [run(src, n) for n in (0, 1, 5, 6, 127)] == [0, 1, 1, 2, 26]
    src = "def f(n):\n    c = 0\n    for i in range(n, -1, -7):\n        c += 1\n    return c"
    assert [run(src, n) for n in (0, 6, 7, 127)] == [1, 1, 2, 19]
    src = "def f(n):\n    c = 0\n    for i in range(127, n, -3):\n        c += 1\n    return c"
    assert [run(src, n) for n in (0, 126, 127)] == [len(range(127, n, -3)) for n in (0, 126, 127)]


def test_break_and_continue_in_while_and_for():
    src = """
def f(n):
    s = 0
    for i in range(n):
        if i == 2:
            continue
        if i == 6:
            break
        j = 0
        while True:
            j += 1
            if j < 2:
                continue
            break
        s += i + j
    return s
"""
    assert [run(src, n) for n in range(10)] == [cpython(src, "f", (n,)) for n in range(10)]


def test_list_helpers_len_negative_index_and_min_max():
    src = "def f(a):\n    a[-1] += len(a)\n    return min(a[0], a[-2], 9) + max(a[1], 3)"
    mine, theirs = [4, 1, 7], [4, 1, 7]
    assert run(src, mine) == cpython(src, "f", (theirs,)) and mine == theirs


def test_abs_of_a_negated_value_or_a_difference_is_as_in_python():
    src = "def f(x, y):\n    return abs(-3) + abs(-x) * 2 + abs(x - y) * 3 + abs(-(x + 1)) * 5"
    for x, y in [(0, 0), (2, 5), (5, 2), (4, 4)]:
        assert run(src, x, y) == cpython(src, "f", (x, y)), (x, y)


def test_function_without_return_returns_zero_and_docstrings_are_ignored():
    assert run('"""module doc"""\ndef f(a):\n    """doc"""\n    a[0] = 3', [1]) == 0
    assert run("def f(x):\n    if x:\n        return\n    return 4", 1) == 0


def test_leaf_functions_use_few_registers_and_immediates():
    program = compile_source("def f(x):\n    return x + 1")
    assert program.n_regs == 1 and [program.format_instr(i) for i in program.instructions] == [
        "add      a0, a0, #1", "ret      a0"]


def test_too_many_registers_names_the_function():
    body = "\n".join(f"    v{i} = x + {i}" for i in range(20))
    with pytest.raises(CompileError, match=r"function big needs \d+ registers.*max_regs=16"):
        compile_source(f"def big(x):\n{body}\n    return v0", max_regs=16)


# -- unsupported constructs: CompileError at the right line and column ------------------------------

UNSUPPORTED = [  # (source, line, column, words the message contains)
    ("import math\ndef f(x):\n    return x", 1, 0, "imports"),
    ("def f(x):\n    class A:\n        pass", 2, 4, "classes"),
    ("def f(x):\n    g = lambda y: y\n    return x", 2, 8, "lambdas"),
    ("def f(x):\n    return x + 'a'", 2, 11, "Add of an int and a character"),
    ("def f(x):\n    return x + 1.5", 2, 15, "float"),
    ("def f(x):\n    print(x)", 2, 4, "print"),
    ("def f(x):\n    yield x", 2, 4, "generators"),
    ("def f(x):\n    try:\n        pass\n    except:\n        pass", 2, 4, "try"),
    ("def f(x):\n    with x:\n        pass", 2, 4, "with"),
    ("def f(x):\n    global y\n    return x", 2, 4, "global"),
    ("def f(x):\n    def g(y):\n        return y\n    return x", 2, 4, "nested functions"),
    ("def f(x):\n    return g(x)", 2, 11, "unknown function 'g'"),
    ("def g(x, y):\n    return x\ndef f(x):\n    return g(x, z=1)", 4, 16, "no parameter z"),
    ("def f(a):\n    return sorted(a, key=len)", 2, 11, "reverse=True"),
    ("def g(x):\n    return x\ndef f(a):\n    return g(*a)", 4, 13, "unpacking with *"),
    ("def f(a):\n    return [*a, 1]", 2, 12, "join lists with +"),
    ("def f(a):\n    a[:] = [1]\n    return a", 2, 4, "assigning to a slice"),
    ("def f(x):\n    s = 'ab'\n    s += x\n    return s", 3, 4, "Add of a string and an int"),
    ("def f(x):\n    a = [[1], [2]]\n    return x", 2, 8, "lists of lists"),
    ("def f(x):\n    return {i: 1 for i in range(x)}", 2, 11, "dicts"),
    ("def f(x):\n    s = {1, x}\n    return x", 2, 8, "sets"),
    ("def f(a):\n    a[0] = 1\n    a = 3", 3, 4, "a value keeps one type"),
    ("def f(x):\n    return x[0]\ndef g(y):\n    return f(y) + y", 4, 11, "Add of an int and a list"),
    ("def f(x):\n    y = 3\n    return y[0]", 3, 11, "an int cannot be indexed"),
    ("def f(a):\n    a.append(1)\n    return 0", 2, 4, "'a' is a parameter"),
    ("def f(x):\n    a = []\n    b = a\n    b.append(x)\n    return a", 4, 4, "second name"),
    ("def f(x):\n    a = [x]\n    b = a\n    a.append(x)\n    return b", 3, 4, "b = a[:]"),
    ("def f(x):\n    t = (x for x in range(3))\n    return 0", 2, 8, "generator expression"),
    ("def f(x):\n    return 'ab' < 'cd'", 2, 11, "Lt of a string and a string"),
    ("def f(x):\n    return x is 1", 2, 11, "only supported against None"),
    ("def f(a, len):\n    return len(a)", 1, 0, "'len' names a variable"),
    ("def f(x):\n    return hole(x)", 2, 11, "two or more alternatives"),
    ("def f(x):\n    return x + 100 + 100 * 2", 2, 21, "or more"),
    ("def f(x):\n    return x % (10 ** 9 + 7)", 2, 16, "or more"),
    ("def f(x):\n    return x // 0", 2, 11, "division by zero"),
    ("def f(x):\n    return pow(x, 2, 5)", 2, 11, "pow(a, b, m) is not supported"),
    ("def f(x):\n    return f'{x}'", 2, 11, "f-strings"),
    ("def f(x):\n    del x\n    return 0", 2, 4, "del is not supported"),
    ("def f(x: float):\n    return 0", 1, 9, "float"),
    ("def g(a):\n    return len(a)\ndef f(x):\n    return g(x + 1)", 4, 13, "expects a list for a, got an int"),
    ("def g(x, y):\n    return x\ndef f(x):\n    return g(x)", 4, 11, "takes 2 arguments"),
    ("def f(x):\n    return x + 128", 2, 15, "too large"),
    ("def f(x):\n    return x / 2", 2, 11, "use //"),
    ("def f(x):\n    return x @ 2", 2, 11, "@ is not supported"),
    ("def f(x):\n    return y", 2, 11, "'y' is not defined"),
    ("def f(x):\n    s = 0\n    for i in range(0, x, 0):\n        s += 1", 3, 13, "must not be 0"),
    ("def f(x):\n    for i in range(x, -3, -1):\n        pass", 2, 22, "descending range"),
    ("def f(x):\n    return x.bit_length()", 2, 11, "method .bit_length()"),
    ("def f(x):\n    return math.gcd(x, 4)", 2, 11, "modules cannot be imported"),
    ("def f(a):\n    for x in a:\n        pass\n    else:\n        pass", 2, 4, "use a flag variable"),
    ("def f(x):\n    b = None\n    b = x\n    return b", 3, 4, "None in one place and an int in another"),
    ("def f(x):\n    break", 2, 4, "outside a loop"),
    ("def f(x):\n    x\n", 2, 4, "only calls may stand alone"),
    ("def f(a):\n    return a[1:5:2]", 2, 17, "slices take step 1"),
    ("x = 3\ndef f():\n    return 1", 1, 0, "top level"),
    ("def f(x, *rest):\n    return x", 1, 0, "positional"),
    ("def f(x):\n    try:\n        x = 1\n    finally:\n        x = 2\n    return x", 2, 4, "cannot be caught"),
    ("def f(x):\n    return f", 2, 11, "used as a value"),
    ("def f(x):\n    return range(x)", 2, 11, "for loop"),
    ("def f(x):\n    return (x, x)[0]", 2, 11, "cannot be indexed"),
]


@pytest.mark.parametrize("src, line, col, words", UNSUPPORTED, ids=[u[3] for u in UNSUPPORTED])
def test_unsupported_construct_is_a_compile_error_at_its_position(src, line, col, words):
    with pytest.raises(CompileError) as info:
        compile_source(src)
    err = info.value
    assert words in str(err), str(err)
    assert (err.lineno, err.col_offset) == (line, col), str(err)
    assert str(err).startswith(f"line {line}, column {col}: ")


def test_unparsable_text_is_a_syntax_error():
    with pytest.raises(SyntaxError):
        compile_source("def f(x) return x")


# -- fuzz: garbage and mutated programs raise CompileError or SyntaxError, nothing else ---------------

TOKENS = re.compile(r"\w+|[^\w\s]+|\n[ ]*")
ALPHABET = "abcdefxyz_0123456789 ()[]:,=+-*/%<>!.\n\"'#@\\"
REPLACEMENTS = ["+", "-", "*", "//", "%", "<", "<=", "==", "!=", "and", "or", "not", "if", "while", "for", "in",
                "range", "len", "min", "max", "return", "break", "continue", "pass", "(", ")", "[", "]", ",", ":",
                "=", "+=", "0", "1", "-1", "200", "x", "a", "i", "f", "fib", "lambda", "True", "None", "'s'"]


def mutate(src, rng):
    if rng.random() < 0.3:  # whole lines
        lines = src.split("\n")
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        rng.choice([lambda: lines.pop(i), lambda: lines.insert(i, lines[j]),
                    lambda: lines.__setitem__(slice(i, i + 1), [lines[j]])])()
        return "\n".join(lines)
    tokens = TOKENS.findall(src)
    for _ in range(rng.randrange(1, 4)):
        i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
        kind = rng.randrange(4)
        if kind == 0:
            tokens.pop(i)
        elif kind == 1:
            tokens.insert(i, tokens[j])
        elif kind == 2:
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens[i] = rng.choice(REPLACEMENTS)
    return "".join(t if t.startswith("\n") or t in "()[]:," else f" {t} " if not t.isidentifier() else f" {t} "
                   for t in tokens)


def test_fuzz_only_compile_or_syntax_errors_escape():
    rng = random.Random(1234)
    compiled = 0
    for n in range(4000):
        if n % 4 == 0:
            src = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 80)))
        else:
            src = mutate(rng.choice(CORPUS).source, rng)
        try:
            program = compile_source(src, max_regs=rng.choice([4, 16, 64]))
            compiled += 1
            str(program)
        except (CompileError, SyntaxError):
            pass
    assert compiled > 100  # many mutants are still valid programs, and those must compile


def test_deeply_nested_expression_is_a_compile_error_not_a_recursion_error():
    with pytest.raises((CompileError, SyntaxError)):
        compile_source("def f(x):\n    return " + "(x + " * 5000 + "1" + ")" * 5000)
    with pytest.raises((CompileError, SyntaxError)):
        compile_source("def f(x):\n    return x" + " + x" * 20000)


# -- the disassembly ------------------------------------------------------------------------------

def test_disassembly_shows_functions_instructions_and_source_lines():
    src = "def inc(n):\n    return n + 1\n\ndef f(x):\n    return inc(x) * 2\n"
    program = compile_source(src)
    text = str(program)
    assert text.splitlines() == [
        "inc(n):",
        "     0  add      a0, a0, #1      ;   2| return n + 1",
        "     1  ret      a0",
        "f(x):",
        "     2  mov      r0, a0          ;   4| def f(x):  (x)",
        "     3  call     @0              ;   5| return inc(x) * 2  (inc)",
        "     4  mul      a0, a0, #2",
        "     5  ret      a0",
    ]
    assert program.functions["f"].entry == 2 and program.instructions[3].target == 0
    # every instruction appears, formatted as format_instr says, in order
    for i, ins in enumerate(program.instructions):
        assert f"{i:6d}  {program.format_instr(ins)}" in text


def test_disassembly_of_a_list_function_names_list_parameters():
    text = str(compile_source("def f(a, i):\n    a[i] = 0"))
    assert text.startswith("f(a[], i):") and "store" in text and "  2| a[i] = 0" in text


# -- limits of the interpreter --------------------------------------------------------------------

LOOP = "def f(n):\n    while True:\n        n += 1"
FIB = CORPUS[0].source


@pytest.mark.parametrize("call, words", [
    (lambda: compile_source(LOOP).run("f", 0, max_steps=1000), "step limit"),
    (lambda: compile_source(FIB).run("fib", 10, max_depth=5), "call depth limit"),
    (lambda: compile_source("def f(a):\n    return a[5]", check_bounds=False).run("f", [1, 2], n_cells=4), "memory address"),
    (lambda: compile_source("def f(a):\n    return a[5]").run("f", [1, 2]), "line 2 in f: IndexError: list index out of range"),
    (lambda: compile_source("def f(n):\n    return [0] * n").run("f", 126), "MemoryError: the heap is full"),
    (lambda: compile_source("def f(x, y):\n    return x // y").run("f", 3, 0), "ZeroDivisionError"),
    (lambda: compile_source("def f(x):\n    return x").run("f", 1, holes=[0]), "holes must be a list of 0"),
    (lambda: compile_source(FIB).run("fib", 200), "not an int in [0, 128)"),
    (lambda: compile_source(FIB).run("fib", [1]), "must be an int"),
    (lambda: compile_source(FIB).run("fib", 1, 2), "takes 1 arguments"),
    (lambda: compile_source(FIB).run("fob", 1), "unknown function"),
    (lambda: compile_source("def f(a):\n    return len(a)").run("f", [0] * 200), "length must be a value"),
])
def test_interpreter_limits_raise_execution_error_naming_the_limit(call, words):
    with pytest.raises(ExecutionError, match=re.escape(words)):
        call()


# -- differential: random programs against CPython running the same source with wrap-around ints ------

def _div(a, b, f):
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return f(a, b)


class Mod(int):
    """An int with the machine's arithmetic: every result wraps mod V; // and % by zero raise, as in Python."""
    def __new__(cls, v):
        return super().__new__(cls, int(v) % V)

    def _op(f):
        return lambda s, o: Mod(f(int(s), int(o)))

    __add__ = __radd__ = _op(lambda a, b: a + b)
    __mul__ = __rmul__ = _op(lambda a, b: a * b)
    __sub__, __rsub__ = _op(lambda a, b: a - b), _op(lambda a, b: b - a)
    __floordiv__ = _op(lambda a, b: _div(a, b, int.__floordiv__))
    __rfloordiv__ = _op(lambda a, b: _div(b, a, int.__floordiv__))
    __mod__, __rmod__ = _op(lambda a, b: _div(a, b, int.__mod__)), _op(lambda a, b: _div(b, a, int.__mod__))
    __neg__, __pos__ = lambda s: Mod(-int(s)), lambda s: s


class WrapInts(ast.NodeTransformer):
    """Rewrite a program so CPython computes with `Mod`: constants, comparisons, `not`, loop variables.
    Arithmetic wraps; a comparison with a negative number (-x, -1) compares as Python does.
    A negative constant range stop (range(n, -1, -1)) keeps Python's meaning, as the compiler does."""
    def wrap(self, node):
        return ast.Call(ast.Name("Mod", ast.Load()), [node], [])

    def visit_Constant(self, node):
        return self.wrap(node) if type(node.value) is int else node

    def visit_Compare(self, node):
        """A comparison with a negated operand (-x, -1) compares signed numbers, as Python does."""
        node = self.generic_visit(node)
        for i, x in enumerate([node.left, *node.comparators]):
            if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
                x = ast.UnaryOp(ast.USub(), ast.Call(ast.Name("int", ast.Load()), [x.operand], []))
                node.left, node.comparators[i - 1:i] = (x, node.comparators[i - 1:i]) if i == 0 else (node.left, [x])
        return self.wrap(node)

    def visit_UnaryOp(self, node):
        node = self.generic_visit(node)
        return self.wrap(node) if isinstance(node.op, ast.Not) else node

    def visit_For(self, node):
        args, signed = node.iter.args, lambda n: isinstance(n, ast.UnaryOp) and isinstance(n.operand, ast.Constant)
        keep = {i: copy.deepcopy(n) for i, n in enumerate(args) if i and signed(n)}  # signed stop and step
        node = self.generic_visit(node)
        args[:] = [keep.get(i, n) for i, n in enumerate(args)]
        node.iter = ast.Call(ast.Name("map", ast.Load()), [ast.Name("Mod", ast.Load()), node.iter], [])
        return node


def random_expr(rng, depth=0):
    e = lambda: random_expr(rng, depth + 1)
    forms = [lambda: rng.choice("xyzw"), lambda: str(rng.choice([0, 1, 2, 3, 7, 100, 127])),
             lambda: f"a[{rng.choice('xyzw')} % 4]", lambda: f"-{rng.choice(['1', '3', 'x', '(y + 1)'])}",
             lambda: f"({e()} {rng.choice(['+', '-', '*', '//', '%'])} {e()})",
             lambda: f"({e()} {rng.choice(['<', '<=', '>', '>=', '==', '!='])} {e()})",
             lambda: f"({e()} < {e()} <= {e()})", lambda: f"({e()} {rng.choice(['and', 'or'])} {e()})",
             lambda: f"(not {e()})", lambda: f"({e()} if {e()} else {e()})",
             lambda: f"{rng.choice(['min', 'max'])}({e()}, {e()})", lambda: f"g({e()}, {e()})",
             lambda: f"h(a, {e()})", lambda: f"a[{e()} % 4]"]
    return rng.choice(forms[:4] if depth >= 3 else forms)()


def random_block(rng, indent, depth=0, in_loop=False):
    e, p, lines = lambda: random_expr(rng), "    " * indent, []
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(10 if depth < 2 else 5)
        v, s = rng.choice("xyzw"), rng.randrange(1, 4)
        if kind == 0:
            lines.append(f"{p}{v} = {e()}")
        elif kind == 1:
            lines.append(f"{p}{v} {rng.choice(['+=', '-=', '*=', '//=', '%='])} {e()}")
        elif kind == 2:
            lines.append(f"{p}a[{e()} % 4] {rng.choice(['=', '+='])} {e()}")
        elif kind == 3:
            lines.append(f"{p}{v}, {rng.choice('xyzw')} = {e()}, {e()}")
        elif kind == 4:
            lines.append(f"{p}h(a, {e()})")
        elif kind == 5:
            lines += [f"{p}if {e()}:", *random_block(rng, indent + 1, depth + 1, in_loop)]
            lines += [f"{p}else:", *random_block(rng, indent + 1, depth + 1, in_loop)] if rng.random() < .5 else []
        elif kind == 6:
            bounds = rng.choice([f"{e()} % 6", f"{e()} % 3, {e()} % 9", f"{e()}, {e()}, {s}", f"{e()}, {e()}, -{s}",
                                 f"{e()} % 9, -1, -{s}", f"{e()} % 4, 9, {s}"])
            lines += [f"{p}for {v} in range({bounds}):", *random_block(rng, indent + 1, depth + 1, True)]
        elif kind == 7:
            lines += [f"{p}c{indent} = 0", f"{p}while c{indent} < {s} and {e()}:", f"{p}    c{indent} += 1",
                      *random_block(rng, indent + 1, depth + 1, True)]
        elif kind == 8 and in_loop:
            lines.append(f"{p}{rng.choice(['break', 'continue'])}")
        else:
            lines.append(f"{p}return {e()}")
    return lines


def random_program(rng):
    return "\n".join(["def g(u, v):", "    return u * 3 + v", "def h(b, i):", "    b[i % 4] += 1",
                      "    return b[(i + 1) % 4]", "def f(x, y, a):", "    z, w = a[0] * 0, 5",
                      *random_block(rng, 1), f"    return {random_expr(rng)}"]) + "\n"


def test_random_programs_match_cpython_with_wrapping_ints():
    rng, checked, raised = random.Random(7), 0, 0
    for _ in range(300):
        src = random_program(rng)
        try:
            program = compile_source(src, max_regs=64)
        except CompileError as e:  # range(..., -3, -1) could count below 0; a constant may not reach V
            assert any(words in str(e) for words in ("descending range", "or more", "division by zero")), str(e)
            continue
        if any(fn.bias for fn in program.functions.values()):
            continue  # counting-down variables compare as Python does, not modulo V: tested below
        namespace = {"Mod": Mod}
        exec(compile(ast.fix_missing_locations(WrapInts().visit(ast.parse(src))), "<wrapped>", "exec"), namespace)
        for _ in range(3):
            x, y, a = rng.randrange(V), rng.randrange(V), [rng.randrange(V) for _ in range(4)]
            theirs = [Mod(v) for v in a]
            try:
                want = int(namespace["f"](Mod(x), Mod(y), theirs))
            except ZeroDivisionError:
                with pytest.raises(ExecutionError, match="ZeroDivisionError"):
                    program.run("f", x, y, a, max_steps=100_000)
                raised += 1
                continue
            assert program.run("f", x, y, a, max_steps=100_000) == want, src
            assert a == theirs, src
            checked += 1
    assert checked > 500 and raised > 10


# -- holes: a choice left open in the source, made once per run -------------------------------------

HOLES = '''
def insertion_sort(a):
    for i in range(1, len(a)):
        key = a[i]
        j = i
        while j > hole(0, 1) and hole(a[j - 1] > key, a[j - 1] < key, a[j - 1] >= key, key > 100):
            a[j] = a[j - 1]
            j -= 1
        a[j] = key
    return a

def shifted(x):
    return x * hole(1, 2, 3) + hole(0, insertion_sort([x, 1])[0])
'''


class Choose(ast.NodeTransformer):
    """Replace every hole(...) call by its chosen alternative: the program CPython runs for that choice."""
    def __init__(self, choice):
        self.choice, self.i = choice, 0

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id == "hole":
            i = self.i
            self.i += 1
            return self.visit(node.args[self.choice[i]])
        return self.generic_visit(node)


def test_holes_run_the_chosen_alternative_like_cpython_with_it_substituted():
    import itertools
    program = compile_source(HOLES)
    assert [(h.index, h.function, h.lineno, h.n_alternatives) for h in program.holes] == [
        (0, "insertion_sort", 6, 2), (1, "insertion_sort", 6, 4), (2, "shifted", 13, 3), (3, "shifted", 13, 2)]
    assert len(set(program.hole_regs)) == 4 and not set(program.hole_regs) & set(program.arg_regs)
    written = {ins.dst for ins in program.instructions}
    assert not written & set(program.hole_regs)  # no instruction writes a hole's register
    rng = random.Random(0)
    for choice in itertools.product(*(range(h.n_alternatives) for h in program.holes)):
        tree = ast.fix_missing_locations(Choose(choice).visit(ast.parse(HOLES)))
        namespace = {}
        exec(compile(tree, "<choice>", "exec"), namespace)
        for _ in range(5):
            a = [rng.randrange(V) for _ in range(rng.randrange(0, 6))]
            x = rng.randrange(40)
            want_a = namespace["insertion_sort"](list(a))
            assert program.run("insertion_sort", list(a), holes=list(choice)) == want_a, choice
            assert program.run("shifted", x, holes=list(choice)) == namespace["shifted"](x) % V, choice
    assert hole(3, 4) == 3  # in plain CPython a hole is its first alternative


def test_holes_are_checked_and_shown_in_the_disassembly():
    program = compile_source(HOLES)
    for bad in ([0, 0, 0], [0, 4, 0, 0], [0, 0, 0, -1], "0000", [0, 0, True, 0]):
        with pytest.raises(ExecutionError, match="hole|holes"):
            program.run("shifted", 1, holes=bad)
    text = str(program)
    assert "hole 1 in insertion_sort, line 6: h1 chooses one of 4: hole(a[j - 1] > key" in text
    assert "eq" in text and "h1, #0" in text and "(hole 1: alternative 0: a[j - 1] > key)" in text


def test_hole_registers_survive_calls_and_returns():
    src = "def g(x):\n    return x + hole(10, 20)\n\ndef f(x):\n    return g(x) + g(x) * hole(1, 2)\n"
    program = compile_source(src)
    for c0, c1 in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        g = lambda x: x + (10, 20)[c0]
        assert program.run("f", 3, holes=[c0, c1]) == (g(3) + g(3) * (1, 2)[c1]) % V


# -- errors that name their file, function and line (issue 12) and bad arguments (issue 15) -----------

def test_compile_errors_of_functions_from_a_file_name_the_file_function_and_line(tmp_path):
    import importlib.util
    path = tmp_path / "mylib.py"
    path.write_text("import math\n\n\ndef good(x):\n    return x + 1\n\n\ndef bad(m):\n    total = 0\n"
                    "    for i in range(len(m)):\n        total += m[i] / 2\n    return total\n")
    spec = importlib.util.spec_from_file_location("mylib", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(CompileError) as info:
        compile_functions(module.good, module.bad)
    err = info.value
    assert (err.filename, err.function, err.lineno, err.col_offset) == (str(path), "bad", 11, 17)
    assert str(err).startswith("mylib.py, line 11, column 17, in bad: true division")
    program = compile_functions(module.good)
    assert program.run("good", 4) == 5 and "  5| return x + 1" in str(program)


def test_fail_messages_name_the_file_function_and_line():
    def checked(x):
        assert x < 100, "too large"
        return x

    program = compile_functions(checked)
    line = checked.__code__.co_firstlineno + 1
    with pytest.raises(ExecutionError, match=rf"^test_compiler.py line {line} in checked: AssertionError: too large$"):
        program.run("checked", 120)
    assert program.run("checked", 7) == 7


def test_compile_source_of_a_non_string_is_a_clear_type_error():
    for bad in (None, 3, b"def f(): pass", ["def f(): pass"]):
        with pytest.raises(TypeError, match="source text as a str.*compile_functions"):
            compile_source(bad)


@pytest.mark.parametrize("src", ["def f(a, len):\n    return len(a)", "def f(a):\n    min = 3\n    return min(a)",
                                 "def f(x):\n    range = x\n    for i in range(x):\n        pass",
                                 "def f(s):\n    for ord in s:\n        pass\n    return ord(s[0])"])
def test_a_variable_named_like_a_builtin_it_calls_is_a_compile_error(src):
    with pytest.raises(CompileError, match="names a variable .* rename the variable"):
        compile_source(src)


def test_a_variable_named_like_a_builtin_it_does_not_call_is_a_plain_variable():
    src = "def f(len, a):\n    sum = 0\n    for x in a:\n        sum += x * len\n    return sum"
    assert run(src, 3, [1, 2, 3]) == 18


# -- the new semantics, one by one ---------------------------------------------------------------

def test_counting_down_variables_compare_as_in_python():
    src = '''
def f(a, x):
    j = len(a) - 1
    while j >= 0 and a[j] != x:
        j -= 1
    best = -1
    for v in a:
        if v > best:
            best = v
    k = 0 - 2
    return j, best, k < 0, k + 3
'''
    program = compile_source(src)
    assert program.functions["f"].bias == {"j": 1, "best": 1, "k": 2}
    for a, x in [([], 3), ([3], 3), ([1, 2], 5), ([5, 0, 2], 5), ([4, 9, 4], 4)]:
        want = cpython_or_error(src, "f", (list(a), x))[0]
        assert normalise(program.run("f", list(a), x)) == want
    assert "registers hold j + 1, best + 1, k + 2" in str(program)


def test_constants_outside_the_values_are_errors_but_negative_numbers_wrap():
    assert run("def f():\n    return -1") == V - 1
    assert run("def f(x):\n    return x - 1", 0) == V - 1
    for src in ("def f():\n    return 128", "def f():\n    return 100 + 28", "def f():\n    return 2 ** 7",
                "def f():\n    return 1 << 7", "def f():\n    x = 10 ** 9 + 7\n    return x"):
        with pytest.raises(CompileError, match="too large|or more"):
            compile_source(src)


def test_index_past_the_end_and_int_list_confusion_are_errors():
    with pytest.raises(ExecutionError, match="IndexError"):
        run("def f(a):\n    xs = [1, 2, 3]\n    return xs[len(a)]", [0] * 10)
    with pytest.raises(ExecutionError, match="line 3 in f: IndexError"):
        run("def f():\n    xs = [1, 2, 3]\n    return xs[10]")
    with pytest.raises(CompileError, match="past the end"):
        compile_source("def f():\n    return 'abc'[10]")
    with pytest.raises(CompileError, match="a value keeps one type"):
        compile_source("def f(x):\n    xs = 0\n    if x:\n        return xs\n    return [x]")


def test_strings_tuples_defaults_and_keywords():
    src = '''
def shout(word: str, times=2, mark="!"):
    return word.upper() * times + mark

def split_digits(n):
    q, r = divmod(n, 10)
    return q, r, str(n), chr(48 + r)

def f(s: str):
    return shout(s), shout(s, times=1), shout(s, 3, "?"), ord(s[0]) if s else 0
'''
    program = compile_source(src)
    for s in ("ab", "x", ""):
        assert program.run("f", s) == cpython_or_error(src, "f", (s,))[0]
    assert program.run("split_digits", 47) == (4, 7, "47", "7")
    assert program.run("shout", "hi") == "HIHI!"


def test_the_heap_is_freed_when_a_function_returns_no_list():
    src = '''
def is_palindrome(s: str) -> bool:
    return s == s[::-1]

def count(n):
    c = 0
    for i in range(n):
        c += is_palindrome(str(i))
    return c
'''
    assert run(src, 120, entry="count") == sum(str(i) == str(i)[::-1] for i in range(120))
    reuse = "def f(n):\n    total = 0\n    for i in range(n):\n        xs = [i, i]\n        total += xs[0]\n    return total"
    assert run(reuse, 120) == sum(range(120)) % V  # the new xs replaces the old one at the top of the heap
    leak = "def f(n):\n    t = 0\n    for i in range(n):\n        xs = [i]\n        ys = [i, i]\n        t += xs[0] + ys[1]\n" \
        "    return t"
    with pytest.raises(ExecutionError, match="MemoryError: the heap is full"):
        run(leak, 100)  # xs is not at the top when it is replaced (ys is): its cells wait for the return
    s = "def f(n):\n    s = ''\n    for i in range(n):\n        s += str(i % 10)\n    return s"
    assert run(s, 100) == "".join(str(i % 10) for i in range(100))  # s grows in place: 100 cells, not 5,000


def test_memory_layout_reserved_cells_then_arguments_then_heap():
    program = compile_source("def f(a: list, b: list):\n    c = a + b\n    return c")
    assert program.reserved[:2] == [0, 0]  # heap pointer and heap end, set by the layout
    assert program.run("f", [1, 2], [3]) == [1, 2, 3]
    from compiler import _lay_out_arguments
    memory, regs, _ = _lay_out_arguments(program.functions["f"], ([1, 2], [3]), program.n_regs, program.arg_regs,
                                         V, V, program)
    first = len(program.reserved)
    assert memory[first:first + 3] == [1, 2, 3] and memory[0] == first + 3 and memory[1] == V - 1
    assert compile_source("def f(a):\n    return a[0]").reserved == []  # no heap: arguments from 0


def test_wrap_around_is_reported_on_the_hard_path_but_not_for_compiled_control_flow():
    torch = pytest.importorskip("torch")
    from reasoning import Machine
    src = "def f(a, x):\n    s = 0\n    for i in range(len(a) - 1, -1, -1):\n        s += a[i]\n    return s + x"
    program = compile_source(src)
    machine = Machine(program)
    cases = [([1, 2], 3), ([], 0), ([100, 100], 0), ([5], 127)]
    state = [machine.init_state(["f"], [(list(a), x)]) for a, x in cases]
    run = machine.run_hard(*(torch.cat([s[i] for s in state]).argmax(-1) for i in range(3)), 1000)
    assert run.halted.all() and run.wrapped.tolist() == [False, False, True, True]
    assert run.value.tolist() == [(sum(a) + x) % V for a, x in cases]


def test_a_fail_stops_the_distribution_machine_with_its_mass_in_failed():
    torch = pytest.importorskip("torch")
    from reasoning import Machine
    program = compile_source("def f(x):\n    assert x < 5, 'too big'\n    return x + 1")
    machine = Machine(program)
    pc, regs, mem, _ = machine.init_state(["f", "f"], [(3,), (9,)])
    regs = regs.clone()
    regs[1, program.arg_regs[0]] = 0.5 * machine.one_hot(9) + 0.5 * machine.one_hot(2)  # half fails
    out = machine(pc, regs, mem)
    torch.testing.assert_close(out.halted, torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(out.failed, torch.tensor([0.0, 0.5]))
    assert out.value[0].argmax() == 4 and abs(out.value[1].sum() - 0.5) < 1e-6  # the mean field mixes the rest
    with pytest.raises(ExecutionError, match="line 2 in f: AssertionError: too big"):
        machine.run("f", 9)


def _checks(program):
    """How many distinct IndexError / ZeroDivisionError stops the program has."""
    return sum("IndexError" in e for e in program.errors), sum("ZeroDivisionError" in e for e in program.errors)


def test_checks_are_left_out_only_where_the_index_or_divisor_is_known_safe():
    known = '''
def sort_down(a, lo):
    for i in range(lo + 1, len(a)):
        x = a[i]
        j = i
        while j > lo and a[j - 1] > x:
            a[j] = a[j - 1]
            j -= 1
        a[j] = x
    return a

def gcd(a, b):
    while b != 0:
        a, b = b, a % b
    return a

def ratio(a, b):
    if b == 0:
        return 0
    return a // b + a % b
'''
    program = compile_source(known)
    assert _checks(program) == (0, 0)  # a[i] by range, a[j - 1] by j > lo >= 0 and j <= i, b != 0
    for a, lo in [([3, 1, 2], 0), ([5, 4, 3, 2], 1), ([], 0), ([1], 0)]:
        assert program.run("sort_down", list(a), lo) == cpython_or_error(known, "sort_down", (list(a), lo))[0]
    assert [program.run("gcd", x, y) for x, y in [(12, 18), (7, 0), (0, 5)]] == [6, 7, 5]
    assert [program.run("ratio", x, y) for x, y in [(17, 5), (3, 0)]] == [5, 0]
    unknown = '''
def loop_may_not_run(a, n, i):
    for k in range(n):
        x = a[i]
    a[i] = 7
    return a[0]

def offset_below_zero(a, x):
    if x >= 1 and x - 1 < len(a):
        return a[x - 2]
    return 99

def divisor_changed(a, b):
    while b != 0:
        b -= 1
        a = a % b
    return a
'''
    program = compile_source(unknown)
    assert _checks(program) == (4, 1)  # a[i] twice and a[0]; a[x - 2]; a % b after b -= 1
    # each stops where an unchecked access would read the wrong cell (CPython: a[-1] for x = 1, a % 0)
    for entry, args in [("loop_may_not_run", ([1, 2], 0, 5)), ("offset_below_zero", ([1, 2], 1)),
                        ("divisor_changed", (7, 1))]:
        with pytest.raises(ExecutionError, match="IndexError|ZeroDivisionError"):
            program.run(entry, *args)


def test_unannotated_strings_joined_generators_and_reversed_ranges_run_as_in_python():
    src = '''
def shout(text):
    return "".join(ch.upper() for ch in text if ch != " ")

def vowels(s):
    count = 0
    for c in s:
        if c in "aeiou":
            count += 1
    return count

def is_digit(c):
    return "0" <= c <= "9"

def countdown(a, n):
    out = []
    for i in reversed(range(n)):
        out.append(i)
    for i in reversed(range(2, len(a))):
        out.append(a[i])
    return out

def dot(xs, ys):
    return sum(x * y for x, y in zip(xs, ys))
'''
    program = compile_source(src)
    assert [p.type for p in program.functions["shout"].params] == ["str"]  # ch.upper(): text is a string
    assert [p.type for p in program.functions["is_digit"].params] == ["char"]
    rng = random.Random(7)
    for _ in range(100):
        s = "".join(rng.choice("ab e1 ") for _ in range(rng.randrange(0, 7)))
        a, n = [rng.randrange(20) for _ in range(rng.randrange(0, 6))], rng.randrange(0, 6)
        xs, ys = [rng.randrange(5) for _ in range(rng.randrange(0, 4))], [rng.randrange(5) for _ in range(3)]
        for entry, args in [("shout", (s,)), ("vowels", (s,)), ("is_digit", (rng.choice("a09 "),)),
                            ("countdown", (list(a), n)), ("dot", (xs, ys))]:
            assert normalise(program.run(entry, *args)) == cpython_or_error(src, entry, args)[0], (entry, args)
