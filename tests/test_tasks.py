"""tasks.py: the generators, their splits, and the library programs that solve them.

The reference for every answer is Python itself (the generators compute answers with Python's ints,
independently of the library); the library must reproduce them both in CPython and compiled.
"""

import os
import random
import re
import subprocess
import sys

import pytest

import tasks
from tasks import TASKS, get_task, prompt_tape, solve_with_library

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def program():
    return tasks.compile_library()


def split_examples(task, split, n=60):
    if split == "train":
        rng = random.Random(1)
        return [task.example(rng, "train") for _ in range(n)]
    return task.examples(split)[:n]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_library_solves_every_split_in_cpython_and_compiled(name, program):
    task = TASKS[name]
    for split in task.splits:
        for prompt, answer in split_examples(task, split):
            assert solve_with_library(task.entry, prompt) == answer, (split, prompt)
            assert solve_with_library(task.entry, prompt, program) == answer, (split, prompt)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_prompts_are_ascii_and_fit_the_tape_with_the_answer(name):
    task = TASKS[name]
    for split in task.splits:
        for prompt, answer in split_examples(task, split, n=300):
            prompt_tape(prompt)  # raises if it does not fit
            assert len(prompt) + len(answer) + 2 < tasks.N_CELLS or name == "sort"


def numbers(prompt):
    return [int(x) for x in re.findall(r"\d+", prompt)]


def test_harder_splits_need_more_than_training():
    train = {name: [numbers(p) for p, _ in split_examples(TASKS[name], "train", 500)] for name in TASKS}
    # fib: a larger n is a deeper recursion
    assert max(n for (n,) in train["fib"]) < min(n for (n,) in (numbers(p) for p, _ in TASKS["fib"].examples("deeper")))
    # sort: longer lists; add: more digits
    longest = max(len(xs) for xs in train["sort"])
    assert longest == 8
    for split, lo in (("2x", 9), ("4x", 17)):
        assert min(len(numbers(p)) for p, _ in TASKS["sort"].examples(split)) >= lo > longest
    most = max(len(str(x)) for xs in train["add"] for x in xs)
    assert most == 8
    for split, size in (("16d", 16), ("32d", 32)):
        assert all(len(str(x)) == size for p, _ in TASKS["add"].examples(split) for x in numbers(p))
    assert max(x for xs in train["gcd"] for x in xs) < min(x for p, _ in TASKS["gcd"].examples("larger") for x in numbers(p))


def template_regex(template):
    """A phrasing template as a regex that matches exactly its prompts."""
    fields = {"{xs}": r"\d+(?: \d+)*", "{cs}": r"\d+(?:,\d+)*", "{n}": r"\d+", "{a}": r"\d+", "{b}": r"\d+"}
    pattern = re.escape(template)
    for field, rx in fields.items():
        pattern = pattern.replace(re.escape(field), rx)
    return re.compile(pattern + "$")


def phrasing_of(prompt):
    """(task name, template) of every template that matches the prompt."""
    return [(t.name, p) for t in TASKS.values() for p in t.train_phrasings + t.test_phrasings
            if template_regex(p).match(prompt)]


def test_test_split_uses_only_held_out_phrasings():
    for task in TASKS.values():
        assert not set(task.train_phrasings) & set(task.test_phrasings)
        for prompt, _ in task.examples("test")[:100]:
            assert [p for _, p in phrasing_of(prompt)] and all(p in task.test_phrasings for _, p in phrasing_of(prompt)), prompt
        for prompt, _ in split_examples(task, "train", 100):
            assert all(p in task.train_phrasings for _, p in phrasing_of(prompt)), prompt


def test_examples_are_seeded():
    sort = TASKS["sort"]
    assert sort.examples("2x", n=20, seed=3) == sort.examples("2x", n=20, seed=3)
    assert sort.examples("2x", n=20, seed=3) != sort.examples("2x", n=20, seed=4)
    a, b = random.Random(7), random.Random(7)
    assert [sort.example(a, "train") for _ in range(5)] == [sort.example(b, "train") for _ in range(5)]


def test_all_mixes_every_task_and_routes_splits():
    task = get_task("all")
    rng = random.Random(0)
    names = [phrasing_of(task.example(rng, "train")[0])[0][0] for _ in range(200)]
    assert {n: names.count(n) > 20 for n in TASKS} == {n: True for n in TASKS}
    assert "sort/4x" in task.splits and "fib/deeper" in task.splits
    assert task.task_of("add/32d") is TASKS["add"]
    assert task.examples("gcd/larger", n=5) == TASKS["gcd"].examples("larger", n=5)


def test_unknown_task_or_split_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown task 'fibb'"):
        get_task("fibb")
    with pytest.raises(ValueError, match="no split '8x'"):
        TASKS["sort"].examples("8x")
    with pytest.raises(ValueError, match="no split 'fib/huge'"):
        get_task("all").examples("fib/huge")
    with pytest.raises(ValueError, match="does not fit"):
        prompt_tape("x" * 200)


def test_a_run_that_does_not_finish_stops_with_a_clear_error():
    """fib(200) is about 10^42 calls in CPython: with no step bound solve_with_library would never return. It
    runs in a child process, so that a missing bound fails the test on its timeout instead of hanging the suite."""
    code = ("import tasks\n"
            "for program in (None, tasks.compile_library()):\n"
            "    try:\n"
            "        tasks.solve_with_library('fib_task', 'fib(200)=', program)\n"
            "    except tasks.ExecutionError as e:\n"
            "        print('stopped:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    lines = out.splitlines()
    assert len(lines) == 2 and all(l.startswith("stopped: fib_task on 'fib(200)='") for l in lines), out
    assert "max_steps=1000000" in lines[0] and "values below V = 128" in lines[0]
    assert solve_with_library("fib_task", "fib(11)=", max_steps=10_000) == "89"  # a bound that is enough
    with pytest.raises(tasks.ExecutionError, match="max_steps=100"):
        solve_with_library("fib_task", "fib(11)=", max_steps=100)


@pytest.mark.parametrize("name", sorted(tasks.VARIANTS))
def test_variants_answers_come_from_python_and_the_args_entry_computes_them(name, program):
    """The variants' answers are Python's; the tape library solves the tasks whose prompts use digits
    (not the distractor or number-word ones: those need the learned gate or heads), and the args entry
    point, given the true numbers, prints exactly the answer on the reference interpreter."""
    task = tasks.VARIANTS[name]
    rng = random.Random(3)
    for split in task.splits:
        for _ in range(30):
            prompt, answer, args = task.example_with_args(rng, split)
            prompt_tape(prompt)
            if name in ("sort4", "sort8", "add_mod"):
                assert solve_with_library(task.entry, prompt, program) == answer, (split, prompt)
            if task.args_entry:
                m = [0] * (tasks.N_CELLS - sum(len(a) for a in args if isinstance(a, list)))
                start = program.run(task.args_entry, *[list(a) if isinstance(a, list) else a for a in args], m)
                assert tasks.read_text(m, start) == answer, (split, prompt, args)


def test_number_words_are_english():
    assert [tasks.number_word(n) for n in (0, 7, 13, 20, 42, 100, 115, 127)] == [
        "zero", "seven", "thirteen", "twenty", "forty-two", "one hundred", "one hundred fifteen",
        "one hundred twenty-seven"]


def test_distractor_and_unseen_splits_hold_what_they_say():
    fd = tasks.VARIANTS["fib_distract"]
    for split in ("test", "distract", "deeper"):
        for prompt, _ in fd.examples(split)[:50]:
            assert len(numbers(prompt)) == 2 and prompt.lower().startswith(("ignore", "not", "skip", "forget"))
    add = tasks.VARIANTS["add_mod"]
    train_values = {v for p, _ in split_examples(add, "train", 500) for v in numbers(p)[:2]}
    assert not train_values & set(tasks.UNSEEN)
    assert all(set(numbers(p)[:2]) & set(tasks.UNSEEN) for p, _ in add.examples("unseen"))
