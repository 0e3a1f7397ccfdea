"""Tests for exact probabilistic execution (`Machine.run_distribution`, section 4 of reasoning.py).

The reference is brute force: every combination of the soft inputs' values run in CPython, weighted by the
product of its probabilities. Gradients are checked against the closed form of that enumeration,
d P(out = k) / d p_i(v) = sum over the combinations with input i = v and output k of the product of the
other inputs' probabilities.
"""

import itertools
import random

import pytest
import torch

from compiler import ExecutionError, compile_source
from corpus import CORPUS, V
from reasoning import Machine, top_assignments


def cpython(case):
    namespace = {}
    exec(case.source, namespace)
    return namespace[case.entry]


def soft_version(case, rng, n_soft=3, width=3):
    """A corpus input with up to `n_soft` of its values made soft: each a distribution over up to `width`
    values taken from other inputs of the same generator (the same argument, or items of the same list
    argument), so that every combination stays in the generator's range.
    Returns (args with ints and lists, [((arg index, list item or None), values, probs)])."""
    draws = [case.small_gen(rng) for _ in range(width)]
    args = [list(a) if isinstance(a, list) else a for a in draws[0]]
    places = [(i, j) for i, a in enumerate(args) for j in (range(len(a)) if isinstance(a, list) else [None])]
    rng.shuffle(places)
    soft = []
    for i, j in places[:n_soft]:
        pool = [d[i] for d in draws] if j is None else [v for d in draws for v in d[i]]
        values = sorted({args[i] if j is None else args[i][j], *rng.sample(pool, min(len(pool), width - 1))})
        if len(values) > 1:
            probs = [rng.uniform(0.2, 1.0) for _ in values]
            soft.append(((i, j), values, [p / sum(probs) for p in probs]))
    return args, soft


def enumerate_cpython(fn, args, soft):
    """{(returned value, final lists): probability} by running every combination in CPython; None if some
    combination leaves the value range [0, V) or raises (then the case is not a fair comparison)."""
    out = {}
    for combo in itertools.product(*[range(len(values)) for _, values, _ in soft]):
        a = [list(x) if isinstance(x, list) else x for x in args]
        weight = 1.0
        for ((i, j), values, probs), c in zip(soft, combo):
            weight *= probs[c]
            if j is None:
                a[i] = values[c]
            else:
                a[i][j] = values[c]
        try:
            result = fn(*a)
        except Exception:
            return None
        result = 0 if result is None else int(result)
        lists = tuple(tuple(x) for x in a if isinstance(x, list))
        if not 0 <= result < V or any(not 0 <= v < V for x in lists for v in x):
            return None
        out[combo] = (weight, result, lists)
    return out


def soft_arguments(args, soft, dtype=torch.float64):
    """The arguments for run_distribution: tensors (leaves requiring grad) where soft."""
    a = [list(x) if isinstance(x, list) else x for x in args]
    leaves = []
    for (i, j), values, probs in soft:
        p = torch.zeros(V, dtype=dtype)
        p[values] = torch.tensor(probs, dtype=dtype)
        p.requires_grad_(True)
        leaves.append(p)
        if j is None:
            a[i] = p
        else:
            a[i][j] = p
    return a, leaves


@pytest.fixture(scope="module")
def cases():
    """Every corpus case with a soft input that CPython runs in range, compiled once."""
    rng = random.Random(0)
    chosen = []
    for case in CORPUS:
        fn = cpython(case)
        for _ in range(20):
            args, soft = soft_version(case, rng)
            table = enumerate_cpython(fn, args, soft)
            if soft and table is not None and len(table) > 1:
                chosen.append((case, args, soft, table))
                break
    return [(case, Machine(compile_source(case.source), max_depth=64), args, soft, table)
            for case, args, soft, table in chosen]


def test_most_of_the_corpus_takes_soft_inputs(cases):
    assert len(cases) >= 0.8 * len(CORPUS), [c.name for c, *_ in cases]


def test_distribution_equals_brute_force_enumeration_in_cpython(cases):
    for case, machine, args, soft, table in cases:
        a, _ = soft_arguments(args, soft)
        out = machine.run_distribution(case.entry, *a)
        want = torch.zeros(V, dtype=torch.float64)
        for weight, result, _ in table.values():
            want[result] += weight
        assert torch.allclose(out.value, want, atol=1e-6, rtol=0), case.name
        assert out.dropped.item() == 0 and out.not_halted.item() < 1e-12, case.name
        assert out.threads == len(table), case.name
        # the final lists: P(cell i of list l holds k)
        lists = [k for k, x in enumerate(args) if isinstance(x, list)]
        for slot, k in enumerate(lists):
            want_cells = torch.zeros(len(args[k]), V, dtype=torch.float64)
            for weight, _, final in table.values():
                for i, v in enumerate(final[slot]):
                    want_cells[i, v] += weight
            assert torch.allclose(out.memory[slot], want_cells, atol=1e-6, rtol=0), case.name


def test_gradients_equal_the_closed_form_of_the_enumeration(cases):
    gen = torch.Generator().manual_seed(0)
    for case, machine, args, soft, table in cases:
        a, leaves = soft_arguments(args, soft)
        out = machine.run_distribution(case.entry, *a)
        c = torch.randn(V, generator=gen, dtype=torch.float64)
        (out.value @ c).backward()
        for i, ((_, values, probs), leaf) in enumerate(zip(soft, leaves)):
            want = torch.zeros(V, dtype=torch.float64)
            for combo, (_, result, _) in table.items():
                others = 1.0
                for j, ((_, _, pj), cj) in enumerate(zip(soft, combo)):
                    if j != i:
                        others *= pj[cj]
                want[values[combo[i]]] += c[result] * others
            assert torch.allclose(leaf.grad, want, atol=1e-6, rtol=0), (case.name, i)


def test_one_hot_inputs_give_the_hard_run():
    case = next(c for c in CORPUS if c.name == "insertion_sort")
    machine = Machine(compile_source(case.source))
    xs = [5, 3, 9, 1]
    out = machine.run_distribution(case.entry, [torch.nn.functional.one_hot(torch.tensor(x), V).double() for x in xs])
    assert out.threads == 1
    assert [int(row.argmax()) for row in out.memory[0]] == sorted(xs)
    assert float(out.value.sum()) == 1.0


FIB = compile_source('''
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)
''')


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def test_top_assignments_are_the_heaviest_joint_assignments():
    gen = torch.Generator().manual_seed(1)
    for k in (1, 3, 7, 30):
        factors = [torch.rand(2, s, generator=gen, dtype=torch.float64) for s in (3, 2, 4)]
        factors = [f / f.sum(1, keepdim=True) for f in factors]
        weight, choice, dropped = top_assignments(factors, k)
        for b in range(2):
            joint = sorted(((factors[0][b, i] * factors[1][b, j] * factors[2][b, l]).item(), (i, j, l))
                           for i in range(3) for j in range(2) for l in range(4))[::-1]
            kk = min(k, 24)
            assert torch.allclose(weight[b], torch.tensor([w for w, _ in joint[:kk]], dtype=torch.float64))
            assert [tuple(c) for c in choice[b].tolist()] == [c for _, c in joint[:kk]]
            assert abs(float(dropped[b]) - sum(w for w, _ in joint[kk:])) < 1e-12


def test_max_threads_keeps_the_heaviest_and_reports_the_dropped_mass():
    machine = Machine(FIB)
    p = torch.zeros(V, dtype=torch.float64)
    p[[3, 4, 5, 6]] = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    out = machine.run_distribution("fib", p, max_threads=2)
    assert out.threads == 2
    assert abs(float(out.dropped) - 0.3) < 1e-12
    assert abs(float(out.value[fib(6)]) - 0.4) < 1e-12 and abs(float(out.value[fib(5)]) - 0.3) < 1e-12
    assert float(out.value[fib(3)]) == 0


def test_runs_that_do_not_halt_are_reported_not_hidden():
    machine = Machine(FIB)
    p = torch.zeros(V)
    p[3], p[25] = 0.75, 0.25  # fib(25) needs far more than 2,000 steps
    out = machine.run_distribution("fib", p, max_steps=2_000)
    assert abs(float(out.not_halted) - 0.25) < 1e-6 and abs(float(out.value[fib(3)]) - 0.75) < 1e-6
    assert abs(float(out.value.sum() + out.not_halted + out.failed + out.dropped) - 1) < 1e-6


def test_gradients_are_exact_and_finite_through_thousands_of_steps_of_recursive_fib():
    """fib(11) takes over 1,000 machine steps; the gradient of P(fib(n) = 89) is 1 at n = 11, 0 elsewhere."""
    machine = Machine(FIB)
    logits = torch.zeros(V, dtype=torch.float64, requires_grad=True)
    support = torch.tensor([9, 10, 11])
    p = torch.zeros(V, dtype=torch.float64).index_put((support,), logits[support].softmax(0))
    out = machine.run_distribution("fib", p)
    assert out.steps > 1_000
    out.value[89].backward()
    assert torch.isfinite(logits.grad).all()
    s = torch.full((3,), 1 / 3, dtype=torch.float64)
    want = s[2] * (torch.tensor([0, 0, 1.0], dtype=torch.float64) - s[2])  # d softmax_2 / d logits
    assert torch.allclose(logits.grad[support], want, atol=1e-12)


@pytest.mark.parametrize("bad, message", [
    (torch.full((V,), 2.0 / V), "sum to 1"),
    (torch.ones(5) / 5, "V=128"),
    (torch.ones(2, V) / V, "1-D"),
    (torch.cat([torch.tensor([1.5, -0.5]), torch.zeros(V - 2)]), "non-negative"),
    (torch.full((V,), float("nan")), "finite"),
])
def test_bad_distributions_are_refused_with_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        Machine(FIB).run_distribution("fib", bad)


def test_bad_calls_are_refused_with_a_clear_error():
    machine = Machine(FIB)
    with pytest.raises(ValueError, match="max_threads"):
        machine.run_distribution("fib", 3, max_threads=0)
    with pytest.raises(ExecutionError, match="unknown function"):
        machine.run_distribution("fibo", 3)
    with pytest.raises(ExecutionError, match="takes 1 argument"):
        machine.run_distribution("fib", 3, 4)
    with pytest.raises(ExecutionError, match="not an int"):
        machine.run_distribution("fib", 300)


# -----------------------------------------------------------------------------
# Holes: choices left open in a program, each a soft input fixed for the whole run.

HOLES = compile_source('''
def pick(x, y):
    z = x * hole(1, 2, 3) + hole(0, 5)
    if hole(z > y, z < y):
        return z
    return y
''')


def test_holes_split_threads_like_inputs_and_match_the_interpreter_for_every_choice():
    machine = Machine(HOLES)
    probs = [torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64, requires_grad=True),
             torch.tensor([0.6, 0.4], dtype=torch.float64, requires_grad=True),
             torch.tensor([0.9, 0.1], dtype=torch.float64, requires_grad=True)]
    x = torch.zeros(V, dtype=torch.float64)
    x[[4, 9]] = torch.tensor([0.25, 0.75], dtype=torch.float64)
    out = machine.run_distribution("pick", x, 20, holes=probs)
    assert out.threads == 2 * 3 * 2 * 2
    want = torch.zeros(V, dtype=torch.float64)
    grads = [torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    probe = torch.arange(V, dtype=torch.float64)  # d E[value] / d p
    for xv, px in ((4, 0.25), (9, 0.75)):
        for combo in itertools.product(range(3), range(2), range(2)):
            w = px * probs[0][combo[0]].item() * probs[1][combo[1]].item() * probs[2][combo[2]].item()
            v = HOLES.run("pick", xv, 20, holes=list(combo))  # the reference interpreter
            want[v] += w
            for h, c in enumerate(combo):
                grads[h][c] += w / probs[h][c].item() * probe[v]
    assert torch.allclose(out.value, want, atol=1e-12)
    (out.value @ probe).backward()
    for p, g in zip(probs, grads):
        assert torch.allclose(p.grad, g, atol=1e-9)


def test_learned_hole_distributions_are_the_default_and_one_choice_gives_one_thread():
    machine = Machine(HOLES)
    assert machine.hole_probs().shape == (3, 3)
    assert torch.allclose(machine.hole_probs()[0], torch.full((3,), 1 / 3))
    assert torch.allclose(machine.hole_probs()[1], torch.tensor([0.5, 0.5, 0.0]))
    assert machine.run_distribution("pick", 4, 20).threads == 12
    out = machine.run_distribution("pick", 4, 20, holes=[2, 1, 0])
    assert out.threads == 1 and float(out.value[HOLES.run("pick", 4, 20, holes=[2, 1, 0])]) == 1.0


def test_mean_field_holes_start_from_the_hole_distributions():
    machine = Machine(HOLES)
    pc, regs, mem, _ = machine.init_state(["pick"], [[4, 20]])
    soft = machine.soft_holes(regs)
    for h, p in zip(HOLES.holes, machine.hole_probs()):
        assert torch.allclose(soft[0, h.register, :h.n_alternatives], p[:h.n_alternatives])


def test_bad_holes_are_refused_with_a_clear_error():
    from compiler import CompileError
    with pytest.raises(CompileError, match="two or more alternatives"):
        compile_source("def f(x):\n    return hole(x)\n")
    machine = Machine(HOLES)
    with pytest.raises(ExecutionError, match="3 holes"):
        machine.run_distribution("pick", 4, 20, holes=[0, 1])
    with pytest.raises(ExecutionError, match="choose 0..1"):
        machine.run_distribution("pick", 4, 20, holes=[0, 2, 0])
    with pytest.raises(ValueError, match="past them"):
        machine.run_distribution("pick", 4, 20, holes=[0, torch.tensor([0.5, 0.25, 0.25]), 0])
    with pytest.raises(ValueError, match="sum to 1"):
        machine.run_distribution("pick", 4, 20, holes=[torch.tensor([0.5, 0.25, 0.2]), 0, 0])


def test_insertion_sort_holes_are_learned_from_short_lists_and_sort_long_ones(tmp_path):
    """isort_holes (a 3-way constant and a 4-way comparison, 12 assignments), learned from 64 pairs of
    lists of length <= 4 under exact execution: the right alternatives win and sort lists of 16-32."""
    import train
    results = train.main(["--task", "isort_holes", "--iters", "12", "--max_steps", "1000", "--eval_n", "20",
                          "--out_dir", str(tmp_path)])
    assert [h["chosen"] for h in results["_run"]["holes"]] == [h["right"] for h in results["_run"]["holes"]]
    assert results["16-32"]["exact_match"] == 1.0 and results["16-32"]["n"] == 20
