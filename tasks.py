"""
Algorithmic tasks: prompts, answers, splits, and the library programs that solve them.

Read it in three parts:

1. The library: plain Python functions that `compiler` turns into one register-machine program. They
   work on the machine's memory as a *text tape*: the reasoning layer copies the prompt's characters (as
   ASCII values) into memory cells 0, 1, 2, ... followed by a 0 (NUL). Each task's entry point parses its
   numbers from that text, computes, prints its answer as ASCII digits into memory, ends it with a NUL and
   returns the address where the answer text starts. The reasoning layer reads the answer back from there.
   So the network only has to choose the right entry point and pass the text through; the algorithm and
   the number formatting run exactly, for any length that fits the memory.
2. The tasks: a seeded prompt/answer generator per task, several phrasings (some held out for testing), a
   training range and harder splits that need more computation than anything seen in training.
3. `solve_with_library`, which runs an entry point on a prompt in plain Python: the tests use it to check
   that every split's prompts and answers fit the tape and that the library really solves them.

Splits: `train` (training phrasings and range), `test` (same range, held-out phrasings), and harder ones
with the *training* phrasings, so that they measure depth/length generalisation alone.
"""

import ast
import functools
import hashlib
import inspect
import os
import random
import re
import sys
import textwrap
from dataclasses import dataclass, field

from compiler import ExecutionError, compile_functions, compile_source, hole

N_VALUES = 128  # values are ASCII characters or small integers
N_CELLS = N_VALUES - 1  # memory cells; one fewer than V so that len(tape) is itself a value

# -----------------------------------------------------------------------------
# 1. The library. Character codes: NUL 0, space 32, '0'..'9' 48..57.


def text_end(m, i):
    """Index of the NUL that ends the text at or after i."""
    while i < len(m) and m[i] != 0:
        i += 1
    return i


def next_number(m, i):
    """Index of the next digit at or after i, or of the NUL that ends the text."""
    while i < len(m) and m[i] != 0 and not 48 <= m[i] <= 57:
        i += 1
    return i


def number_end(m, i):
    """Index just past the run of digits that starts at i."""
    while i < len(m) and 48 <= m[i] <= 57:
        i += 1
    return i


def parse_number(m, i):
    """The value of the decimal number whose first digit is at i. A number past 127 wraps modulo V, which
    the machine reports (`wrapped`); nothing else here wraps, so a valid prompt is never flagged."""
    x = 0
    while i < len(m) and 48 <= m[i] <= 57:
        x = x * 10 + (m[i] - 48)  # the digit first: x * 10 + m[i] would pass 127 for 80 and up
        i += 1
    return x


def print_number(m, p, x):
    """Write x in decimal at m[p], m[p+1], ...; return the index after the last digit."""
    if x >= 100:
        m[p] = 48 + x // 100
        p += 1
    if x >= 10:
        m[p] = 48 + x // 10 % 10
        p += 1
    m[p] = 48 + x % 10
    return p + 1


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def fib_task(m):
    """Entry point of task fib. Tape in: "fib(9)=" (the prompt's characters, then NUL); answer out: "34",
    printed after the prompt's NUL; returns where it starts. Only the first number counts."""
    n = parse_number(m, next_number(m, 0))
    start = text_end(m, 0) + 1
    end = print_number(m, start, fib(n))
    m[end] = 0
    return start


def insertion_sort(a, lo, hi):
    """Sort a[lo:hi] in place."""
    for i in range(lo + 1, hi):
        x = a[i]
        j = i
        while j > lo and a[j - 1] > x:
            a[j] = a[j - 1]
            j -= 1
        a[j] = x


def parse_list(m):
    """Replace the text by the numbers in it, m[0], m[1], ...; return how many there are.

    In place is safe: the k-th number is written at k, never past the text still to be read.
    """
    n = 0
    i = next_number(m, 0)
    while i < len(m) and m[i] != 0:
        x = parse_number(m, i)
        i = next_number(m, number_end(m, i))
        m[n] = x
        n += 1
    return n


def sort_task(m):
    """Entry point of task sort. Tape in: "sort 5 3 12=" ; answer out: "3 5 12", from address 0.
    Parse the list, move it to the top of memory, sort it there, print it from address 0."""
    n = parse_list(m)
    top = len(m) - n
    k = n
    while k > 0:  # copy downwards: the target is never below the source
        k -= 1
        m[top + k] = m[k]
    insertion_sort(m, top, len(m))
    p = 0
    for k in range(top, len(m)):
        if k > top:
            m[p] = 32
            p += 1
        p = print_number(m, p, m[k])
    m[p] = 0
    return 0


def add_task(m):
    """Entry point of task add. Tape in: "19+205="; answer out: "224".
    Schoolbook addition of two decimal numbers of any length, digit by digit with a carry.

    The sum is written right to left, ending just before a NUL at `last`; it starts where it stops.
    """
    i = next_number(m, 0)
    a_end = number_end(m, i)
    j = next_number(m, a_end)
    b_end = number_end(m, j)
    p = a_end - i
    if b_end - j > p:
        p = b_end - j
    p = text_end(m, b_end) + 2 + p  # room for the longer number and a final carry
    m[p] = 0
    carry = 0
    while a_end > i or b_end > j or carry > 0:
        s = carry
        if a_end > i:
            a_end -= 1
            s += m[a_end] - 48
        if b_end > j:
            b_end -= 1
            s += m[b_end] - 48
        p -= 1
        m[p] = 48 + s % 10
        carry = s // 10
    return p


def gcd(a, b):
    while b != 0:
        t = a % b
        a = b
        b = t
    return a


def gcd_task(m):
    """Entry point of task gcd. Tape in: "gcd(12,18)="; answer out: "6", after the prompt's NUL."""
    i = next_number(m, 0)
    a = parse_number(m, i)
    j = next_number(m, number_end(m, i))
    b = parse_number(m, j)
    start = text_end(m, j) + 1
    end = print_number(m, start, gcd(a, b))
    m[end] = 0
    return start


# The paper's interface (`--interface args`): the network's argument heads give the numbers; the library
# only computes and prints. An args entry's last parameter `m` is the answer tape (the memory after the
# arguments); it returns where in m the answer text starts.


def fib_args(n, m):
    """Args entry of fib: n = 9 in; answer out: "34" at m[0]."""
    end = print_number(m, 0, fib(n))
    m[end] = 0
    return 0


def add_mod_args(a, b, m):
    """The paper's modular arithmetic: (a + b) mod V, V = 128, computed without any value passing 127.
    Args entry of add_mod: a = 100, b = 30 in; answer out: "2" at m[0]."""
    if a > 127 - b:  # a + b would pass 127: subtract 128 without ever holding a + b
        s = a - (127 - b) - 1
    else:
        s = a + b
    end = print_number(m, 0, s)
    m[end] = 0
    return 0


def sort_args(a, m):
    """Sort the fixed-length list a (filled by the argument heads) and print it.
    Args entry of sort4/sort8: a = [5, 3, 12, 0] in; answer out: "0 3 5 12" at m[0]."""
    insertion_sort(a, 0, len(a))
    p = 0
    for k in range(len(a)):
        if k > 0:
            m[p] = 32
            p += 1
        p = print_number(m, p, a[k])
    m[p] = 0
    return 0


def add_mod_task(m):
    """The same modular addition on the text tape: the first two numbers of the prompt.
    Entry point of task add_mod. Tape in: "100+30 mod 128 ="; answer out: "2", after the prompt's NUL."""
    i = next_number(m, 0)
    a = parse_number(m, i)
    j = next_number(m, number_end(m, i))
    b = parse_number(m, j)
    start = text_end(m, j) + 1
    s = a + b
    if s > 127:
        s = s - 127 - 1
    end = print_number(m, start, s)
    m[end] = 0
    return start


# Nothing registers these functions here: the library is every entry point named in the task tables
# (section 2) and the functions they call, found by `library_functions`. A new algorithm needs one entry
# in TASKS (README: "Add your own algorithm").


def library_functions():
    """The library: the entry points of every task in TASKS and VARIANTS (`entry`, `args_entry`) and every
    function they call, directly or not, in the order they are defined (tasks.py's first). An entry point
    that is not defined is a ValueError that names it and its task."""
    found, todo = {}, [entry_function(t, e) for t in [*TASKS.values(), *VARIANTS.values()]
                       for e in (t.entry, t.args_entry) if e is not None]
    while todo:
        f = todo.pop()
        if f.__name__ in found:
            if found[f.__name__] is not f:
                raise ValueError(f"two library functions are named {f.__name__!r} ({inspect.getsourcefile(f)} "
                                 f"and {inspect.getsourcefile(found[f.__name__])}); rename one")
            continue
        found[f.__name__] = f
        todo += [g for name in _called_names(f) if inspect.isfunction(g := f.__globals__.get(name))
                 and g.__module__.split(".")[0] != "compiler"]  # not `hole`: the compiler's own
    here = os.path.abspath(__file__)
    key = lambda f: (os.path.abspath(inspect.getsourcefile(f)) != here, inspect.getsourcefile(f),
                     f.__code__.co_firstlineno)
    return sorted(found.values(), key=key)


@functools.lru_cache(maxsize=None)
def _called_names(f):
    """The names that function f calls by name (`parse_list(m)`, not `m.append(x)`), sorted."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
    return sorted({n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)})


def entry_function(task, name):
    """The function `name`, an entry point of `task`: one of tasks.py, or one the task was given as a function."""
    f = task.functions.get(name) or globals().get(name)
    if not inspect.isfunction(f):
        raise ValueError(f"task {task.name!r} names the entry point {name!r}, but tasks.py defines no function "
                         f"{name!r}: write `def {name}(m):` in tasks.py's library (section 1), or give the "
                         f"function itself as the entry (README: \"Add your own algorithm\")")
    return f


def library_source(functions=None):
    """The library's source text, as `compile_functions` joins it: each function dedented, one after another.
    A checkpoint stores it, so that a run made with another library is rebuilt with its own."""
    return "\n".join(textwrap.dedent(inspect.getsource(f)) for f in functions or library_functions())


def library_fingerprint(source):
    """A short hash of the library's source and value range: equal fingerprints, the same library."""
    return hashlib.sha256(f"V={N_VALUES}\n{source}".encode()).hexdigest()[:16]


def library_difference(old, new):
    """What changed between two library sources, in words: 'added max_task; changed parse_list'."""
    def functions(src):
        return {f.name: ast.dump(f) for f in ast.parse(src).body if isinstance(f, ast.FunctionDef)}
    a, b = functions(old), functions(new)
    parts = [("added", [n for n in b if n not in a]), ("removed", [n for n in a if n not in b]),
             ("changed", [n for n in a if n in b and a[n] != b[n]])]
    return "; ".join(f"{what} {', '.join(names)}" for what, names in parts if names) or "the same functions"


def compile_library(source=None):
    """All library functions compiled into one program; each task's `entry` is a function in it. With
    `source` (a checkpoint's stored `library_source()`), that text is compiled instead."""
    if source is not None:
        return compile_source(source, n_values=N_VALUES, filename="the stored library")
    return compile_functions(*library_functions(), n_values=N_VALUES)


def __getattr__(name):  # tasks.LIBRARY_FUNCTIONS, computed when asked for: the task tables may have grown
    if name == "LIBRARY_FUNCTIONS":
        return tuple(library_functions())
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")


# -----------------------------------------------------------------------------
# 2. Tasks.


def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def digits(rng, n_digits):
    first = str(rng.randint(1, 9)) if n_digits > 1 else str(rng.randint(0, 9))
    return int(first + "".join(str(rng.randint(0, 9)) for _ in range(n_digits - 1)))


@dataclass
class Task:
    """A task: its library entry point, phrasings, and a sampler per split (a subclass's `sample`).

    `sample(rng, split)` returns the task's numbers (a dict that fills the phrasings, which are templates
    for `str.format`) and the answer text, computed in plain Python, independently of the library.
    `ranges` maps each split to what `sample` draws from (e.g. list lengths); `eval_n` how many examples
    evaluation takes (default 200). `entry` is the library function that solves it (its name, or the
    function itself when it is defined outside tasks.py); its entry in TASKS is all that registers a task.
    """

    name: str
    entry: str
    train_phrasings: list
    test_phrasings: list
    ranges: dict  # split -> parameters for `sample`
    eval_n: dict = field(default_factory=dict)  # split -> number of test examples (default 200)
    args_entry: str = None  # the entry point of `--interface args` (numbers in, answer text out), if any
    args_len: int = 0  # for an args entry with a list parameter: its fixed length (the heads fill it)

    def __post_init__(self):
        self.functions = {}  # entry points given as functions: name -> function (see `library_functions`)
        for key in ("entry", "args_entry"):
            f = getattr(self, key)
            if callable(f):
                self.functions[f.__name__] = f
                setattr(self, key, f.__name__)

    def sample(self, rng, split):
        raise NotImplementedError

    def phrasings(self, split):
        return self.test_phrasings if split == "test" else self.train_phrasings

    def check_split(self, split):
        if split not in self.ranges:
            raise ValueError(f"task {self.name!r} has no split {split!r}; its splits are {list(self.ranges)}")

    def example(self, rng, split):
        """One (prompt, answer) pair of `split`."""
        return self.example_with_args(rng, split)[:2]

    def example_with_args(self, rng, split):
        """(prompt, answer, the args entry's arguments before its tape m): the tests check the args entry."""
        self.check_split(split)
        values, answer = self.sample(rng, split)
        return rng.choice(self.phrasings(split)).format(**values), answer, values.get("args")

    def examples(self, split, n=None, seed=0):
        """A fixed, seeded list of (prompt, answer) pairs for evaluation."""
        self.check_split(split)
        rng = random.Random(f"{self.name}/{split}/{seed}")
        return [self.example(rng, split) for _ in range(n or self.eval_n.get(split, 200))]

    @property
    def splits(self):
        return list(self.ranges)

    size_name = "characters in the prompt"  # what `size` measures: the x axis of tests/scripts/plots.py

    def size(self, prompt):
        """How large a prompt's problem is, in the units of `ranges` (its length or depth), for the plots."""
        return len(prompt)


def _numbers(prompt):
    return [int(x) for x in re.findall(r"\d+", prompt)]


class FibTask(Task):
    size_name = "n (recursion depth)"

    def size(self, prompt):
        return (_numbers(prompt) or [None])[-1]

    def sample(self, rng, split):
        lo, hi = self.ranges[split]
        n = rng.randint(lo, hi)
        return {"n": n, "w": number_word(n), "args": (n,)}, str(fibonacci(n))

    def examples(self, split, n=None, seed=0):
        """Every distinct prompt of the split: there are only a few."""
        self.check_split(split)
        lo, hi = self.ranges[split]
        return [(p.format(n=k, w=number_word(k)), str(fibonacci(k))) for k in range(lo, hi + 1)
                for p in self.phrasings(split)]


class DistractedFibTask(FibTask):
    """fib with a distractor number before the question ("Ignore 42. fib(7)="): fib_task's parser takes the
    first number on the tape, so the gate must learn to keep the distractor off the tape. Training mixes
    these prompts with plain ones (`plain_phrasings`), from which the read-back first learns to trust the
    machine; every evaluation split has a distractor: `test` in held-out phrasings, `distract` in the
    training ones, `deeper` with n = 8-11."""

    plain_phrasings = ["fib({n})=", "fibonacci({n}) =", "What is fib of {n}?", "F({n})="]

    def sample(self, rng, split):
        values, answer = super().sample(rng, split)
        return {**values, "d": rng.randint(0, 99)}, answer

    def phrasings(self, split):
        if split == "train":
            return self.train_phrasings + self.plain_phrasings
        return self.test_phrasings if split == "test" else self.train_phrasings

    examples = Task.examples  # too many distinct prompts to list them all: a seeded sample per split


@dataclass
class ListTask(Task):
    """A list of 0-99 in the prompt ({xs}: "5 3 12", {cs}: "5,3,12"), `answer(xs)` out; `ranges` gives each
    split's (shortest, longest) list. E.g. the maximum: answer=lambda xs: str(max(xs))."""

    answer: object = None  # the list -> the answer text, in plain Python
    size_name = "numbers in the list"

    def size(self, prompt):
        return len(_numbers(prompt))

    def sample(self, rng, split):
        lo, hi = self.ranges[split]
        xs = [rng.randint(0, 99) for _ in range(rng.randint(lo, hi))]
        return {"xs": " ".join(map(str, xs)), "cs": ",".join(map(str, xs)), "args": (xs,)}, self.answer_text(xs)

    def answer_text(self, xs):
        return self.answer(xs)


class SortTask(ListTask):
    """A list in, the list sorted out."""

    def answer_text(self, xs):
        return " ".join(map(str, sorted(xs)))


class AddTask(Task):
    size_name = "digits of the longer number"

    def size(self, prompt):
        return max(len(str(x)) for x in _numbers(prompt)[:2])

    def sample(self, rng, split):
        lo, hi = self.ranges[split]
        a, b = digits(rng, rng.randint(lo, hi)), digits(rng, rng.randint(lo, hi))
        return {"a": a, "b": b}, str(a + b)


class AddModTask(Task):
    """a + b modulo 128 with a, b in [0, 128): the paper's arithmetic. The `unseen` split uses values that
    no training prompt contains (those ending in the digit 7), to see whether a learned head can name them."""

    def sample(self, rng, split):
        pool = UNSEEN if split == "unseen" else [v for v in range(128) if v not in UNSEEN]
        a, b = rng.choice(pool), rng.choice(pool)
        if split == "unseen" and rng.random() < 0.5:  # at least one unseen value
            a = rng.randrange(128) if a in UNSEEN else a
        return {"a": a, "b": b, "wa": number_word(a), "wb": number_word(b), "args": (a, b)}, str((a + b) % 128)


UNSEEN = [v for v in range(128) if v % 10 == 7]


def number_word(n):
    """0..999 in English words: 7 -> 'seven', 42 -> 'forty-two', 115 -> 'one hundred fifteen'."""
    ones = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
           "sixteen seventeen eighteen nineteen".split()
    tens = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return ones[n]
    if n < 100:
        return tens[n // 10] + ("-" + ones[n % 10] if n % 10 else "")
    return ones[n // 100] + " hundred" + (" " + number_word(n % 100) if n % 100 else "")


class GcdTask(Task):
    size_name = "the larger number"

    def size(self, prompt):
        return max(_numbers(prompt)[:2])

    def sample(self, rng, split):
        lo, hi = self.ranges[split]
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return {"a": a, "b": b}, str(_gcd(a, b))


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


SORT_TRAIN = ["sort {xs}=", "sorted([{cs}]) =", "Sort: {xs}?", "order {xs}:", "sort the list {cs}:",
              "{xs} sorted is", "Sort ascending: {xs}"]
SORT_TEST = ["Sort these: {xs} ->", "ascending order [{cs}]:"]

TASKS = {
    # fib(11) = 89 is the largest Fibonacci number below V = 128: the deeper split goes that far.
    "fib": FibTask(name="fib", entry="fib_task", args_entry="fib_args",
                   train_phrasings=["fib({n})=", "fibonacci({n}) =", "What is fib of {n}?", "F({n})=", "Fibonacci({n}):",
                                    "the fibonacci number at {n} is", "compute fib {n}:"],
                   test_phrasings=["Fibonacci number {n}:", "fib {n} ->"],
                   ranges={"train": (0, 7), "test": (0, 7), "deeper": (8, 11)}),  # every prompt: no eval_n
    "sort": SortTask(name="sort", entry="sort_task", train_phrasings=SORT_TRAIN, test_phrasings=SORT_TEST,
                     ranges={"train": (1, 8), "test": (1, 8), "2x": (9, 16), "4x": (17, 32)},
                     eval_n={"test": 200, "2x": 200, "4x": 100}),
    "add": AddTask(name="add", entry="add_task",
                   train_phrasings=["{a}+{b}=", "add {a} {b}=", "What is {a} plus {b}?", "sum of {a} and {b}:",
                                    "{a} plus {b} is", "Add: {a} + {b}", "the sum {a}+{b} ="],
                   test_phrasings=["{a} + {b} =", "Add {a} to {b}:"],
                   ranges={"train": (1, 8), "test": (1, 8), "16d": (16, 16), "32d": (32, 32)},
                   eval_n={"test": 200, "16d": 100, "32d": 100}),
    "gcd": GcdTask(name="gcd", entry="gcd_task",
                   train_phrasings=["gcd({a},{b})=", "gcd of {a} and {b}?", "GCD {a} {b}:", "the gcd of {a}, {b} is",
                                    "greatest common divisor({a},{b}) =", "gcd: {a} {b}"],
                   test_phrasings=["greatest common divisor of {a} and {b}:", "gcd[{a} {b}] ="],
                   ranges={"train": (1, 63), "test": (1, 63), "larger": (64, 127)},
                   eval_n={"test": 200, "larger": 200}),
}


class AllTask:
    """Every task mixed: the model must choose the program from the prompt. Splits are `task/split`."""

    name = "all"

    def __init__(self, tasks):
        self.tasks = tasks

    @property
    def splits(self):
        return ["train"] + [f"{t.name}/{s}" for t in self.tasks for s in t.splits if s != "train"]

    def example(self, rng, split):
        if split == "train":
            return rng.choice(self.tasks).example(rng, "train")
        task, sub = self._split(split)
        return task.example(rng, sub)

    def examples(self, split, n=None, seed=0):
        task, sub = self._split(split)
        return task.examples(sub, n, seed)

    def task_of(self, split):
        return self._split(split)[0]

    def _split(self, split):
        name, _, sub = split.partition("/")
        for t in self.tasks:
            if t.name == name and sub in t.ranges:
                return t, sub
        raise ValueError(f"task 'all' has no split {split!r}; its splits are {self.splits}")


# Variants of a task that `all` does not mix in (they share its entry point).
VARIANTS = {
    "fib_distract": DistractedFibTask(
        "fib_distract", "fib_task",
        ["Ignore {d}. fib({n})=", "not {d} but fib({n}) =", "skip {d}: F({n})=", "forget {d}, what is fib of {n}?",
         "ignore {d} and compute fibonacci({n}):"],
        ["Ignore the {d}; Fibonacci number {n}:", "not {d}: fib {n} ->"],
        {"train": (0, 7), "test": (0, 7), "distract": (0, 7), "deeper": (8, 11)},
        {"test": 200, "distract": 200, "deeper": 200}),
    # The paper's interface next to the tape (README "The paper's interface"): fixed-length lists, modular
    # addition, and number words that only a learned head can read.
    "sort4": SortTask("sort4", "sort_task", SORT_TRAIN, SORT_TEST, {"train": (4, 4), "test": (4, 4), "2x": (8, 8)},
                      {"test": 200, "2x": 200}, args_entry="sort_args", args_len=4),
    "sort8": SortTask("sort8", "sort_task", SORT_TRAIN, SORT_TEST, {"train": (8, 8), "test": (8, 8), "2x": (16, 16)},
                      {"test": 200, "2x": 200}, args_entry="sort_args", args_len=8),
    "add_mod": AddModTask("add_mod", "add_mod_task",
                          ["{a}+{b} mod 128 =", "add {a} and {b} modulo 128:", "What is {a} plus {b} mod 128?",
                           "({a} + {b}) % 128 =", "sum of {a}, {b} mod 128:"],
                          ["{a} plus {b}, modulo 128:", "{a} + {b} (mod 128) ->"],
                          {"train": None, "test": None, "unseen": None}, {"test": 200, "unseen": 200},
                          args_entry="add_mod_args"),
    "fib_words": FibTask("fib_words", "fib_task",
                         ["fib of {w} =", "what is fibonacci of {w}?", "fibonacci({w}) =", "F of {w}:",
                          "compute fib {w}:"],
                         ["Fibonacci number {w}:", "fib {w} ->"],
                         {"train": (0, 7), "test": (0, 7), "deeper": (8, 11)}, {}, args_entry="fib_args"),
    "add_words": AddModTask("add_words", "add_mod_task",
                            ["{wa} plus {wb} mod 128 =", "add {wa} and {wb} modulo 128:", "what is {wa} plus {wb}?"],
                            ["{wa} + {wb} (mod 128) ->"],
                            {"train": None, "test": None, "unseen": None}, {"test": 200, "unseen": 200},
                            args_entry="add_mod_args"),
}


# With `--interface args` a task whose entry point reads text runs as its paper form (the paper's
# fixed-length lists of 8; its addition modulo V): the argument heads fill a fixed number of arguments.
ARGS_FORMS = {"sort": "sort8", "add": "add_mod"}


# -----------------------------------------------------------------------------
# Library learning: a library function with choices left open (`hole`), learned from input/output pairs
# alone, through the machine, with no language model (`python train.py --task isort_holes`).


def insertion_sort_holes(a):
    """Insertion sort with two holes: a constant (where the inner loop stops) and the comparison.
    The right alternatives come first, so CPython (where `hole` returns its first alternative) sorts."""
    for i in range(1, len(a)):
        x = a[i]
        j = i
        while j > hole(0, 1, 2) and hole(a[j - 1] > x, a[j - 1] < x, a[j - 1] == x, a[j - 1] != x):
            a[j] = a[j - 1]
            j -= 1
        a[j] = x


@dataclass
class HoleTask:
    """Learn a function's holes from (input list, output list) pairs: `train` has `n_train` random pairs of
    the training lengths; the other splits are longer lists. `right` names the alternatives that make the
    function correct (what training should recover); the answers come from Python's `sorted`."""

    name: str
    function: object
    ranges: dict  # split -> (shortest, longest) list
    eval_n: dict  # split -> number of test lists
    right: list  # the right alternative of each hole
    n_train: int = 64

    @property
    def splits(self):
        return list(self.ranges)

    def examples(self, split, n=None, seed=0):
        """Seeded (list, sorted list) pairs."""
        if split not in self.ranges:
            raise ValueError(f"task {self.name!r} has no split {split!r}; its splits are {self.splits}")
        rng = random.Random(f"{self.name}/{split}/{seed}")
        lo, hi = self.ranges[split]
        xs = [[rng.randint(0, 99) for _ in range(rng.randint(lo, hi))] for _ in range(n or self.eval_n[split])]
        return [(x, sorted(x)) for x in xs]


HOLE_TASKS = {
    "isort_holes": HoleTask("isort_holes", insertion_sort_holes, {"train": (1, 4), "16-32": (16, 32)},
                            {"train": 64, "16-32": 200}, right=[0, 0]),
}


def get_task(name):
    if name == "all":
        return AllTask(list(TASKS.values()))
    every = {**TASKS, **VARIANTS, **HOLE_TASKS}
    if name not in every:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS) + ['all'] + sorted(VARIANTS) + sorted(HOLE_TASKS)}")
    return every[name]


# -----------------------------------------------------------------------------
# 3. Running the library in plain Python on a prompt, the way the reasoning layer lays out its tape.


def prompt_tape(prompt, n_cells=N_CELLS):
    """The prompt's characters as memory cells, NUL-padded. Raises if they do not fit or are not ASCII."""
    codes = list(prompt.encode("utf-8"))
    if len(codes) >= n_cells or max(codes, default=0) >= N_VALUES:
        raise ValueError(f"prompt {prompt!r} does not fit a tape of {n_cells} ASCII cells")
    return codes + [0] * (n_cells - len(codes))


def read_text(m, start):
    """The NUL-terminated text at m[start:]."""
    end = start
    while end < len(m) and m[end] != 0:
        end += 1
    return bytes(m[start:end]).decode("ascii")


def solve_with_library(entry, prompt, program=None, max_steps=1_000_000):
    """The answer text that library entry point `entry` prints for `prompt`.

    With `program` (a compiled library), it runs on the reference interpreter; without, in CPython. Either
    way a run that takes more than `max_steps` steps (instructions, or lines of Python) raises ExecutionError:
    `fib(200)=` would otherwise run for ever (fib(200) is about 10^42 calls in CPython).
    """
    m = prompt_tape(prompt)
    functions = {f.__name__: f for f in library_functions()}
    if entry not in (functions if program is None else program.functions):
        raise ValueError(f"{entry!r} is not an entry point of the library; it has {sorted(functions)}")
    try:
        if program is None:
            start = run_bounded(functions[entry], m, max_steps)
        else:
            start = program.run(entry, m, n_cells=N_CELLS, max_steps=max_steps)
    except ExecutionError as e:
        raise ExecutionError(f"{entry} on {prompt!r}: {e} (the library computes on values below V = {N_VALUES}: "
                             "a larger input is out of its range)") from None
    return read_text(m, start)


def run_bounded(function, m, max_steps):
    """function(m) in CPython, stopped after max_steps lines: sys.settrace calls `count` on every line run."""
    steps = 0

    def count(frame, event, arg):
        nonlocal steps
        steps += event == "line"
        if steps > max_steps:  # raised inside the traced function, it unwinds it like any exception
            raise ExecutionError(f"step limit: {function.__name__} did not return within max_steps={max_steps}")
        return count

    previous = sys.gettrace()
    sys.settrace(count)
    try:
        return function(m)
    finally:
        sys.settrace(previous)
