"""Tests for reasoning.py: the differentiable register machine against independent references.

The references are the Python functions in compiler.PRIMITIVES (for the ops), CPython (for whole
programs) and `Program.run` (the reference interpreter). Programs are hand-assembled here so that this
file does not depend on the compiler passes; the compiled corpus (tests/corpus.py) is used too when present.
"""

import ast
import random

import numpy as np
import pytest
import torch

from compiler import PRIMITIVES, ExecutionError, Function, Instr, Param, Program
from reasoning import CIRCUITS, FAST_FORMS, HALTED, Machine, apply_op, apply_table, op_table

# -----------------------------------------------------------------------------
# A tiny assembler, so the test programs read like the disassembly: `label: op operands`.
# Operands: rN (register), aN (argument window), #k (immediate), @label (line), k (const's value).


def assemble(text, params, n_regs, n_args, V=128):
    """Returns a Program; `params` maps each function label to its parameter list ('xs[]' for a list)."""
    arg_regs = list(range(n_regs - n_args, n_regs))
    lines, labels = [], {}
    for raw in text.strip().splitlines():
        raw = raw.split(";")[0].strip()
        if raw.endswith(":"):
            labels[raw[:-1]] = len(lines)
        elif raw:
            lines.append(raw)
    reg = lambda s: arg_regs[int(s[1:])] if s[0] == "a" else int(s[1:])
    instructions = []
    for i, line in enumerate(lines):
        op, _, rest = line.partition(" ")
        args = [s.strip() for s in rest.split(",") if s.strip()]
        ins = Instr(op, lineno=i + 1)
        regs = [reg(s) for s in args if s[0] in "ra"]
        for s in args:
            if s[0] == "#" or s.isdigit():
                ins.imm = int(s.lstrip("#"))
            elif s[0] == "@":
                ins.target = labels[s[1:]]
        if op in ("const", "load", "mov") or op in PRIMITIVES:
            ins.dst, *rest_regs = regs
            ins.a = rest_regs[0] if rest_regs else None
            ins.b = rest_regs[1] if len(rest_regs) > 1 else None
        elif op == "store":
            ins.a, ins.b = regs
        elif op in ("branch", "ret"):
            ins.a = regs[0]
        instructions.append(ins)
    functions = {name: Function(name, labels[name], [Param(p.rstrip("[]"), p.endswith("[]")) for p in ps])
                 for name, ps in params.items()}
    return Program(instructions, functions, n_regs, arg_regs, V)


FIB = """
fib:                    ; fib(n): recursive
    mov r0, a0
    lt r1, r0, #2
    branch r1, @fib_rec
    ret r0
fib_rec:
    sub r1, r0, #1
    mov a0, r1
    call @fib
    mov r2, a0
    sub r1, r0, #2
    mov a0, r1
    call @fib
    add r1, r2, a0
    ret r1
"""  # recursive fib in assembly, shared by both hand-assembled libraries

LIBRARY = FIB + """
isort:                  ; isort(xs): insertion sort in place, returns the number of swaps
    mov r0, a0
    mov r1, a1
    const r2, 1
    const r9, 0
isort_outer:
    lt r3, r2, r1
    branch r3, @isort_done
    mov r4, r2
isort_inner:
    gt r3, r4, #0
    branch r3, @isort_next
    add r5, r0, r4
    sub r6, r5, #1
    load r7, r6
    load r8, r5
    gt r3, r7, r8
    branch r3, @isort_next
    store r6, r8
    store r5, r7
    add r9, r9, #1
    sub r4, r4, #1
    jump @isort_inner
isort_next:
    add r2, r2, #1
    jump @isort_outer
isort_done:
    ret r9
gcd:                    ; gcd(a, b): Euclid with mod
    mov r0, a0
    mov r1, a1
gcd_loop:
    branch r1, @gcd_end
    mod r2, r0, r1
    mov r0, r1
    mov r1, r2
    jump @gcd_loop
gcd_end:
    ret r0
fibmap:                 ; fibmap(xs): xs[i] = fib(xs[i]) for each i; returns the sum of the results
    mov r0, a0
    mov r1, a1
    const r2, 0
    const r4, 0
fibmap_loop:
    lt r3, r2, r1
    branch r3, @fibmap_end
    add r5, r0, r2
    load r6, r5
    mov a0, r6
    call @fib
    store r5, a0
    add r4, r4, a0
    add r2, r2, #1
    jump @fibmap_loop
fibmap_end:
    ret r4
second:                 ; second(a, b): b, by `halt` (which returns a0)
    mov r0, a0
    mov a0, a1
    mov a1, r0
    halt
alu:                    ; alu(a, b): every primitive, with register and immediate operands
    mov r0, a0
    mov r1, a1
    mul r2, r0, r1
    floordiv r3, r0, r1
    add r2, r2, r3
    mod r3, r0, r1
    add r2, r2, r3
    min r3, r0, r1
    add r2, r2, r3
    max r3, r0, r1
    add r2, r2, r3
    lt r3, r0, r1
    add r2, r2, r3
    le r3, r0, r1
    mul r3, r3, #2
    add r2, r2, r3
    gt r3, r0, r1
    mul r3, r3, #4
    add r2, r2, r3
    ge r3, r0, r1
    mul r3, r3, #8
    add r2, r2, r3
    eq r3, r0, r1
    mul r3, r3, #16
    add r2, r2, r3
    ne r3, r0, r1
    mul r3, r3, #32
    add r2, r2, r3
    and r3, r0, r1
    mul r3, r3, #64
    add r2, r2, r3
    or r3, r0, r1
    mul r3, r3, #3
    add r2, r2, r3
    sub r2, r2, r0
    floordiv r3, r0, #3
    add r2, r2, r3
    mod r3, r0, #5
    add r2, r2, r3
    mul r3, r1, #7
    add r2, r2, r3
    lt r3, r0, #64
    add r2, r2, r3
    const r3, 130
    add r2, r2, r3
    ret r2
peek:                   ; peek(i): memory[i]
    load r0, a0
    ret r0
"""
PARAMS = {"fib": ["n"], "isort": ["xs[]"], "gcd": ["a", "b"], "fibmap": ["xs[]"], "second": ["a", "b"],
          "alu": ["a", "b"], "peek": ["i"]}


# CPython references, with values wrapped into [0, V) like the machine's.
def py_fib(n):
    return n if n < 2 else (py_fib(n - 1) + py_fib(n - 2)) % 128


def py_isort(xs):
    swaps = 0
    for i in range(1, len(xs)):
        j = i
        while j > 0 and xs[j - 1] > xs[j]:
            xs[j - 1], xs[j] = xs[j], xs[j - 1]
            swaps, j = swaps + 1, j - 1
    return swaps % 128


def py_gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def py_fibmap(xs):
    xs[:] = [py_fib(x) for x in xs]
    return sum(xs) % 128


def py_alu(a, b):
    f = lambda op, x, y: PRIMITIVES[op](x, y, 128)
    t = a * b + f("floordiv", a, b) + f("mod", a, b) + min(a, b) + max(a, b) + (a < b) + 2 * (a <= b)
    t += 4 * (a > b) + 8 * (a >= b) + 16 * (a == b) + 32 * (a != b) + 64 * (bool(a) and bool(b))
    t += 3 * (bool(a) or bool(b)) - a + a // 3 + a % 5 + 7 * b + (a < 64) + 130
    return t % 128


CASES = {  # name: (CPython reference, small random arguments)
    "fib": (py_fib, lambda rng: [rng.randint(0, 7)]),
    "isort": (py_isort, lambda rng: [[rng.randrange(128) for _ in range(rng.randint(0, 6))]]),
    "gcd": (py_gcd, lambda rng: [rng.randrange(128), rng.randrange(128)]),
    "fibmap": (py_fibmap, lambda rng: [[rng.randint(0, 5) for _ in range(rng.randint(0, 3))]]),
    "second": (lambda a, b: b, lambda rng: [rng.randrange(128), rng.randrange(128)]),
    "alu": (py_alu, lambda rng: [rng.randrange(128), rng.randrange(128)]),
    "peek": (lambda i: 0, lambda rng: [rng.randrange(128)]),
}


@pytest.fixture(scope="module")
def library():
    return assemble(LIBRARY, PARAMS, n_regs=12, n_args=2)


@pytest.fixture(scope="module")
def machine(library):
    return Machine(library)


def copy_args(args):
    return [list(x) if isinstance(x, list) else x for x in args]


# -----------------------------------------------------------------------------
# 1. The operation library.


def random_dist(*shape, dtype=torch.float64, gen=None):
    x = torch.rand(*shape, dtype=dtype, generator=gen) ** 4  # peaky, with some near-zero entries
    return x / x.sum(-1, keepdim=True)


@pytest.mark.parametrize("name", sorted(FAST_FORMS))
def test_fast_form_equals_table_on_random_distributions(name):
    gen = torch.Generator().manual_seed(0)
    for V in (8, 128):
        p, q = random_dist(16, V, gen=gen), random_dist(16, V, gen=gen)
        torch.testing.assert_close(FAST_FORMS[name](p, q), apply_table(op_table(name, V), p, q), atol=1e-12, rtol=0)
        # the table is bilinear, and so must the fast form be: unnormalised inputs too
        torch.testing.assert_close(FAST_FORMS[name](3 * p, q / 2), apply_table(op_table(name, V), 3 * p, q / 2),
                                   atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_op_on_one_hot_inputs_is_the_python_function(name):
    V = 16
    a, b = torch.meshgrid(torch.arange(V), torch.arange(V), indexing="ij")
    a, b = a.flatten(), b.flatten()
    p, q = (torch.nn.functional.one_hot(x, V).double() for x in (a, b))
    expected = torch.tensor([PRIMITIVES[name](int(x), int(y), V) for x, y in zip(a, b)])
    for out in (apply_op(name, p, q), apply_table(op_table(name, V), p, q)):
        assert (out.argmax(-1) == expected).all()
        torch.testing.assert_close(out, torch.nn.functional.one_hot(expected, V).double(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_immediate_operand_gather_equals_table(name):
    # a one-hot second operand (an immediate) needs only its column of the table: a gather of p
    V, gen = 32, torch.Generator().manual_seed(1)
    p = random_dist(4, V, gen=gen)
    for k in (0, 1, 5, V - 1):
        q = torch.zeros(4, V, dtype=torch.float64)
        q[:, k] = 1
        support = torch.tensor([k])
        torch.testing.assert_close(apply_op(name, p, q, support), apply_table(op_table(name, V), p, q), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_op_gradcheck(name):
    gen = torch.Generator().manual_seed(2)
    p, q = random_dist(2, 8, gen=gen).requires_grad_(), random_dist(2, 8, gen=gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: apply_op(name, p, q), (p, q))


# -----------------------------------------------------------------------------
# 1b. The circuit ALU (reasoning.py section 1b) against the same Python functions.

# The compiler branch's bitwise primitives (coord CONTRACTS.md section 2), the reference until they land in
# PRIMITIVES (which then takes precedence).
REFERENCE = {"bitand": lambda a, b, V: (a & b) % V, "bitor": lambda a, b, V: (a | b) % V,
             "bitxor": lambda a, b, V: (a ^ b) % V, "lshift": lambda a, b, V: a * pow(2, b, V) % V,
             "rshift": lambda a, b, V: a >> b, **PRIMITIVES}


def reference_table(name, V):
    f = REFERENCE[name]
    return torch.tensor([[f(a, b, V) for b in range(V)] for a in range(V)])  # [V, V]


def product_of_bits(bits):
    """[B, n] P(bit i = 1) -> [B, 2^n] the distribution with independent bits, written out directly."""
    n = bits.shape[-1]
    set_ = ((torch.arange(2 ** n)[:, None] >> torch.arange(n)) & 1).bool()  # [V, n]
    return torch.where(set_, bits[:, None, :], 1 - bits[:, None, :]).prod(-1)


def bit_marginals(p):
    n = p.shape[-1].bit_length() - 1
    return p @ ((torch.arange(p.shape[-1])[:, None] >> torch.arange(n)) & 1).to(p.dtype)


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_circuit_equals_its_table_on_all_one_hot_pairs_at_V_128(name):
    V = 128
    a, b = torch.meshgrid(torch.arange(V), torch.arange(V), indexing="ij")  # all 16,384 pairs, one batch
    p, q = (torch.nn.functional.one_hot(x.flatten(), V).float() for x in (a, b))
    expected = torch.nn.functional.one_hot(reference_table(name, V).flatten(), V).float()
    assert torch.equal(apply_op(name, p, q, alu="circuits"), expected)


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_circuit_on_inputs_with_independent_bits(name):
    # where section 1b says a circuit is exact on such inputs, it equals the table; add, sub and the
    # shifts get the result's bit marginals right; min/max are not exact (the MUX's selector)
    V, gen = 16, torch.Generator().manual_seed(3)
    p, q = (product_of_bits(torch.rand(8, 4, dtype=torch.float64, generator=gen)) for _ in range(2))
    circuit, table = apply_op(name, p, q, alu="circuits"), apply_table(reference_table(name, V), p, q)
    if name in ("add", "sub", "lshift", "rshift"):
        torch.testing.assert_close(bit_marginals(circuit), bit_marginals(table), atol=1e-12, rtol=0)
        assert (circuit - table).abs().max() > 1e-3  # the result's bits are correlated; the circuit drops it
    elif name in ("min", "max"):
        assert (circuit - table).abs().max() > 1e-3
    else:
        torch.testing.assert_close(circuit, table, atol=1e-12, rtol=0)


def test_circuit_drops_the_correlations_that_section_1b_names():
    V = 4
    half_1_half_2 = torch.tensor([[0, 0.5, 0.5, 0]], dtype=torch.float64)
    zero = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    # the bits of "1 or 2" are (1, 0) or (0, 1): as independent bits, uniform over 0..3
    torch.testing.assert_close(apply_op("add", half_1_half_2, zero, alu="circuits"), torch.full((1, 4), 0.25, dtype=torch.float64))
    zero_or_one = torch.tensor([[0.5, 0.5, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(apply_op("add", zero_or_one, zero_or_one, alu="circuits"),
                               torch.tensor([[3 / 8, 3 / 8, 1 / 8, 1 / 8]], dtype=torch.float64))
    torch.testing.assert_close(apply_op("add", zero_or_one, zero_or_one),
                               torch.tensor([[1 / 4, 1 / 2, 1 / 4, 0]], dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_circuit_is_bilinear_and_passes_gradcheck(name):
    gen = torch.Generator().manual_seed(4)
    p, q = random_dist(2, 8, gen=gen).requires_grad_(), random_dist(2, 8, gen=gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: apply_op(name, p, q, alu="circuits"), (p, q))
    torch.testing.assert_close(apply_op(name, 3 * p, q / 2, alu="circuits"), 1.5 * apply_op(name, p, q, alu="circuits"))
    assert apply_op(name, 0 * p, q, alu="circuits").abs().max() == 0


def test_machine_uses_its_alu_for_soft_operands():
    program = assemble("f:\n add r0, a0, a1\n ret r0", {"f": ["a", "b"]}, n_regs=3, n_args=2)
    gen = torch.Generator().manual_seed(5)
    p, q = random_dist(4, 128, dtype=torch.float32, gen=gen), random_dist(4, 128, dtype=torch.float32, gen=gen)
    for alu in ("tables", "circuits"):
        machine = Machine(program, n_cells=1, alu=alu)
        pc, regs, mem, _ = machine.init_state(["f"] * 4, [[0, 0]] * 4)
        regs[:, 1], regs[:, 2] = p, q
        expected = apply_table(op_table("add", 128), p, q) if alu == "tables" else apply_op("add", p, q, alu="circuits")
        for grad in (True, False):  # the no-grad path has its own shortcuts; they must not change the ALU
            with torch.set_grad_enabled(grad):
                torch.testing.assert_close(machine(pc, regs, mem).value, expected)
    assert (apply_op("add", p, q, alu="circuits") - apply_op("add", p, q)).abs().max() > 1e-4  # the ALUs differ here


def test_machine_with_circuits_runs_programs_exactly_on_one_hot_inputs(library):
    # with gradients on, every op goes through apply_op, so through the circuits (mul, //, %: tables)
    machine = Machine(library, n_cells=1, max_depth=1, alu="circuits")  # small: `alu` uses no memory or calls
    for args in ([100, 7], [5, 77]):  # one at a time: on this CPU a batch of 2 or 3 runs its matmuls slowly
        pc, regs, mem, _ = machine.init_state(["alu"], [args])
        out = machine(pc, regs.requires_grad_(), mem)
        torch.testing.assert_close(out.value, machine.one_hot([py_alu(*args)]), atol=1e-6, rtol=0)


def test_circuit_alu_errors_name_the_problem(library):
    with pytest.raises(ValueError, match="alu='abacus' is not an ALU; use 'tables'"):
        Machine(library, alu="abacus")
    with pytest.raises(ValueError, match="alu='abacus' is not an ALU"):
        apply_op("add", torch.ones(1, 8), torch.ones(1, 8), alu="abacus")
    odd = assemble("f:\n add r0, a0, a1\n ret r0", {"f": ["a", "b"]}, n_regs=3, n_args=2, V=100)
    with pytest.raises(ValueError, match="needs V to be a power of two .* got V=100"):
        Machine(odd, n_cells=1, alu="circuits")
    Machine(odd, n_cells=1)  # tables take any V


# -----------------------------------------------------------------------------
# 2. Exact execution on one-hot states.


def test_recursive_fib_to_depth_12(machine, library):
    for n in (10, 12):
        assert machine.run("fib", n) == library.run("fib", n) == py_fib(n)


EXECUTORS = ["python", "torch", "distribution"]  # every exact path of run_batch


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_program_matches_cpython_and_the_interpreter_in_mixed_batches(machine, library, executor):
    rng = random.Random(0)
    names = [name for name in CASES for _ in range(50)]
    rng.shuffle(names)
    args_list = [CASES[name][1](rng) for name in names]
    for start in range(0, len(names), 175):  # mixed batches: different programs and inputs per row
        names_b, args_b = names[start:start + 175], args_list[start:start + 175]
        machine_args = [copy_args(a) for a in args_b]
        got = machine.run_batch(names_b, machine_args, executor=executor)
        for name, args, machine_a, result in zip(names_b, args_b, machine_args, got):
            interp_args, python_args = copy_args(args), copy_args(args)
            assert result == library.run(name, *interp_args) == CASES[name][0](*python_args), (name, args)
            assert machine_a == interp_args == python_args, (name, args)  # lists mutated as CPython does


def test_run_mutates_lists_in_place(machine):
    xs = [5, 3, 9, 1, 3]
    assert machine.run("isort", xs) == py_isort([5, 3, 9, 1, 3])
    assert xs == [1, 3, 3, 5, 9]


def corpus_library():
    """Every corpus program in one compiled source, each function renamed `<case>__<name>`."""
    corpus = pytest.importorskip("corpus", reason="tests/corpus.py has not landed yet")
    compiler = pytest.importorskip("compiler")
    if not hasattr(compiler, "compile_source"):
        pytest.skip("compiler.compile_source has not landed yet")
    sources = []
    for case in corpus.CORPUS:
        tree = ast.parse(case.source)
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in names:
                node.name = f"{case.name}__{node.name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
                node.func.id = f"{case.name}__{node.func.id}"
        sources.append(ast.unparse(tree))
    return corpus.CORPUS, sources, compiler.compile_source("\n\n".join(sources))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_compiled_corpus_matches_cpython_in_mixed_batches(executor):
    cases, sources, program = corpus_library()
    machine = Machine(program)
    rng = random.Random(1)
    jobs = [(case, src, list(case.small_gen(rng))) for case, src in zip(cases, sources) for _ in range(50)]
    rng.shuffle(jobs)  # each batch mixes programs (chosen by the initial pc) and inputs
    for start in range(0, len(jobs), 250):
        batch = jobs[start:start + 250]
        names = [f"{case.name}__{case.entry}" for case, _, _ in batch]
        machine_args = [copy_args(args) for _, _, args in batch]
        got = machine.run_batch(names, machine_args, executor=executor)
        for (case, src, args), name, machine_a, result in zip(batch, names, machine_args, got):
            namespace, python_args = {}, copy_args(args)
            exec(src, namespace)
            expected = namespace[name](*python_args)
            expected = 0 if expected is None else int(expected)  # no `return`: the machine returns 0
            assert result == program.run(name, *copy_args(args)) == expected, (case.name, args)
            assert machine_a == python_args, (case.name, args)


def test_soft_path_with_gradients_is_exact_on_one_hot_inputs(machine, library):
    # the forward used for training (table/circulant/cumsum op forms, dense blends) on hard inputs
    names, args = ["fib", "isort", "gcd", "alu"], [[6], [[9, 4, 7, 1]], [84, 36], [100, 7]]
    pc, regs, mem, _ = machine.init_state(names, [copy_args(a) for a in args])
    out = machine(pc, regs.requires_grad_(), mem)
    expected = [library.run(n, *copy_args(a)) for n, a in zip(names, args)]
    torch.testing.assert_close(out.value, machine.one_hot(expected), atol=1e-6, rtol=0)
    assert out.memory[1, :4].argmax(-1).tolist() == [1, 4, 7, 9]


def test_adaptive_halting_runs_each_example_to_its_own_end(machine, library):
    names, args = ["fib", "fib", "gcd", "second"], [[2], [7], [84, 36], [1, 2]]
    steps = [library.run(n, *a, return_steps=True)[1] for n, a in zip(names, args)]
    assert len(set(steps)) == 4
    pc, regs, mem, _ = machine.init_state(names, args)
    with torch.no_grad():
        out = machine(pc, regs, mem)
    assert out.value.argmax(-1).tolist() == [1, 13, 12, 2]
    assert out.steps == max(steps)
    assert torch.allclose(out.halted, torch.ones(4))


def test_trainable_program_at_high_sharpness_still_runs_exactly(library):
    machine = Machine(library, trainable=True, sharpness=60.0)
    assert {n for n, _ in machine.named_parameters()} == {"op", "dst", "a", "b", "use_imm", "imm", "target"}
    assert machine.run("fib", 5) == 5 and machine.run("gcd", 12, 18) == 6


# -----------------------------------------------------------------------------
# 3. Gradients.


SMALL = """
gcd:
    mov r0, a0
    mov r1, a1
gcd_loop:
    branch r1, @gcd_end
    mod r2, r0, r1
    mov r0, r1
    mov r1, r2
    jump @gcd_loop
gcd_end:
    ret r0
sumfib:                 ; fib(memory[0]) + fib(memory[1]) with a recursive call
    const r3, 0
    load r0, r3
    mov a0, r0
    call @fib
    mov r1, a0
    const r3, 1
    load r0, r3
    mov a0, r0
    call @fib
    add r1, r1, a0
    store r3, r1
    ret r1
""" + FIB


def small_machine(**kw):
    program = assemble(SMALL, {"gcd": ["a", "b"], "sumfib": [], "fib": ["n"]}, n_regs=6, n_args=2, V=8)
    return Machine(program, n_cells=4, max_depth=4, **kw).double()


def soft_inputs(machine, names, args, gen, noise=0.2):
    pc, regs, mem, _ = machine.init_state(names, args)
    smooth = lambda x: (x + noise * random_dist(*x.shape, gen=gen)) / (1 + noise)
    return pc.double(), smooth(regs.double()), smooth(mem.double())


def test_whole_program_gradcheck_wrt_inputs():
    gen = torch.Generator().manual_seed(3)
    machine = small_machine()
    pc, regs, mem = soft_inputs(machine, ["gcd", "sumfib"], [[6, 4], []], gen)
    mem[1] = machine.one_hot([2, 3, 0, 0]).double() * 0.9 + 0.1 / 8
    regs.requires_grad_(), mem.requires_grad_()
    # every line gets some pc mass: gradcheck's finite differences then stay inside the domain
    pc = (0.8 * pc + 0.2 * random_dist(*pc.shape, gen=gen)).requires_grad_()

    def run(pc, regs, mem):
        out = machine(pc, regs, mem, max_steps=30, eps=-1, checkpoint_every=16)  # eps < 0: all 30 steps
        return out.value, out.memory
    with torch.no_grad():
        assert (1 - run(pc, regs, mem)[0].sum(-1) > 1e-3).all()  # still running: no mass near zero
    assert torch.autograd.gradcheck(run, (pc, regs, mem))


def test_whole_program_gradcheck_wrt_program_logits():
    gen = torch.Generator().manual_seed(4)
    machine = small_machine(trainable=True, sharpness=4.0)
    pc, regs, mem = soft_inputs(machine, ["gcd"], [[6, 4]], gen)
    names = [n for n, _ in machine.named_parameters()]

    def run(*params):
        out = torch.func.functional_call(machine, dict(zip(names, params)), (pc, regs, mem),
                                         dict(max_steps=25, eps=-1))
        return out.value
    params = tuple(p.detach().clone().requires_grad_() for p in machine.parameters())
    assert torch.autograd.gradcheck(run, params, fast_mode=True)
    run(*params)[0, 2].backward()  # gcd(6, 4) = 2
    for name, p in zip(names, params):
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_gradients_reach_inputs_after_hundreds_of_steps(library):
    machine = Machine(library)
    names, args = ["fib", "fib"], [[8], [7]]
    pc, regs, mem, _ = machine.init_state(names, args)
    regs = (0.95 * regs + 0.05 / 128).requires_grad_()  # soft arguments
    out = machine(pc, regs, mem, max_steps=600, checkpoint_every=64)
    assert out.steps >= 300
    loss = -(out.value[0, 21] + out.value[1, 13]).clamp_min(1e-30).log()
    loss.backward()
    norm = regs.grad.norm().item()
    print(f"steps {out.steps}, p(correct) {out.value[0, 21].item():.3f} {out.value[1, 13].item():.3f}, "
          f"|d loss / d registers| = {norm:.3g}")
    assert torch.isfinite(regs.grad).all() and norm > 0


# -----------------------------------------------------------------------------
# 4. Errors a student will meet.


def test_errors_name_the_problem(library, machine):
    with pytest.raises(ValueError, match="n_regs=4 is too small"):
        Machine(library, n_regs=4)
    with pytest.raises(ValueError, match="n_cells=200 must be in"):
        Machine(library, n_cells=200)
    with pytest.raises(ExecutionError, match="unknown function 'fibonacci'"):
        machine.run("fibonacci", 3)
    with pytest.raises(ExecutionError, match=r"200 is not an int in \[0, 128\)"):
        machine.run("fib", 200)
    with pytest.raises(ValueError, match=r"values must be ints in \[0, V=128\)"):
        machine.one_hot([3, 128])
    with pytest.raises(ExecutionError, match="memory address 20 is past the last of n_cells=16 cells"):
        Machine(library, n_cells=16).run("peek", 20)
    with pytest.raises(ExecutionError, match="call depth limit: more than max_depth=3"):
        Machine(library, max_depth=3).run("fib", 6)
    with pytest.raises(ExecutionError, match="step limit: fib did not halt within max_steps=100"):
        machine.run("fib", 10, max_steps=100)
    with pytest.raises(ValueError, match="expected pc"):
        machine(torch.zeros(1, 3), torch.zeros(1, 12, 128), torch.zeros(1, 128, 128))


# -----------------------------------------------------------------------------
# 5. The hard path, and one soft step against brute force. (The reasoning layer: tests/test_layer.py.)


@pytest.mark.parametrize("executor", ["python", "torch"])
def test_hard_path_equals_the_interpreter_on_the_whole_corpus(executor):
    """run_hard keeps one-hot states as ints; each executor must agree with Program.run (and so with
    CPython and the distribution machine) on every corpus program, 40 inputs of each in one batch:
    value, memory and the slowest example's step count."""
    from compiler import compile_source
    from corpus import CORPUS

    for case in CORPUS:
        program = compile_source(case.source)
        machine = Machine(program, max_depth=64)  # Program.run's default depth
        rng = random.Random(case.name)
        inputs = [case.gen(rng) for _ in range(40)]
        pcs, regs, mems, want, steps = [], [], [], [], 0
        for args in inputs:
            expected = [list(a) if isinstance(a, list) else a for a in args]
            result, n = program.run(case.entry, *expected, return_steps=True)
            steps = max(steps, n)
            pc, r, m, _ = machine.init_state([case.entry], [[list(a) if isinstance(a, list) else a for a in args]])
            pcs.append(pc.argmax(-1)), regs.append(r.argmax(-1)), mems.append(m.argmax(-1))
            want.append((result, expected))
        value, memory, halted, hard_steps, _, error = machine.run_hard(torch.cat(pcs), torch.cat(regs), torch.cat(mems),
                                                                       20_000, executor=executor)
        assert halted.all() and (error == -1).all() and hard_steps == steps, case.name
        for b, (result, expected) in enumerate(want):
            assert int(value[b]) == result, (case.name, inputs[b])
            lists = [x for x in expected if isinstance(x, list)]
            flat = [v for x in lists for v in x]
            assert memory[b, :len(flat)].tolist() == flat, (case.name, inputs[b])


@pytest.mark.parametrize("executor", ["python", "torch"])
def test_hard_path_equals_the_distribution_machine_step_for_step(machine, library, executor):
    """Same halting steps, values and memory as the one-hot tensor machine, on the hand-assembled library."""
    names, args = zip(*[("fib", (n,)) for n in range(8)])
    pc, regs, mem, _ = machine.init_state(list(names), [list(a) for a in args])
    with torch.no_grad():
        soft = machine(pc, regs, mem, max_steps=5_000)
    value, memory, halted, steps, _, _ = machine.run_hard(pc.argmax(-1), regs.argmax(-1), mem.argmax(-1), 5_000,
                                                          executor=executor)
    assert steps == soft.steps and halted.all()
    assert value.tolist() == soft.value.argmax(-1).tolist()
    assert memory.tolist() == soft.memory.argmax(-1).tolist()


def hard_inputs(machine, names, args_list):
    """Integer pc [B], registers [B, R], memory [B, N] for run_hard, laid out as Program.run does."""
    pc, regs, mem, _ = machine.init_state(names, [copy_args(a) for a in args_list])
    return pc.argmax(-1), regs.argmax(-1), mem.argmax(-1)


def test_executors_agree_at_every_step_limit(machine, library):
    """Cut off after k steps for every k: the Python translation (whole blocks, then single lines near the
    limit) and the tensor executor stop at the same line with the same registers, memory and step count,
    and an example halts exactly when k reaches `Program.run`'s step count."""
    names, args = ["fib", "isort", "gcd", "fibmap", "second"], [[4], [[5, 1, 4]], [30, 12], [[3, 1]], [1, 2]]
    needed = [library.run(n, *copy_args(a), return_steps=True)[1] for n, a in zip(names, args)]
    pc, regs, mem = hard_inputs(machine, names, args)
    for k in range(max(needed) + 2):
        py, tt = (machine._execute(pc, regs, mem, k, executor) for executor in ("python", "torch"))
        for field, x, y in zip(py._fields, py, tt):
            assert torch.equal(x, y), (k, field)
        assert (py.status == HALTED).tolist() == [k >= n for n in needed], k


def test_a_run_may_start_in_the_middle_of_a_block(machine, library):
    """run_hard starts at any line (the Python translation steps line by line to the next block)."""
    mid = library.functions["gcd"].entry + 2  # gcd_loop, after the two movs
    pc, regs = torch.tensor([mid, mid + 1]), torch.zeros(2, machine.R, dtype=torch.long)
    regs[:, 0], regs[:, 1] = 84, 36
    mem = torch.zeros(2, machine.N, dtype=torch.long)
    for executor in ("python", "torch"):
        out = machine.run_hard(pc, regs, mem, executor=executor)
        assert out.value.tolist() == [12, 84 % 36] and out.halted.all(), executor


ONE_OP = """
f:
    {op} r0, a0, a1
    ret r0
g:
    {op} r0, a0, #{imm}
    ret r0
"""


@pytest.mark.parametrize("forms", ["computed", "tables"])
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_on_every_executor_is_the_python_function(name, forms, monkeypatch):
    """Each executor's form of each primitive (and, with the forms removed, the table or function it
    falls back on) equals compiler.PRIMITIVES on every pair of values (V = 12), with a register and with an
    immediate operand; `wrapped` is set exactly when add/sub/mul leave [0, V), unless the line is wrap_ok."""
    import reasoning
    if forms == "tables":
        monkeypatch.setattr(reasoning, "PYTHON_FORMS", {})
        monkeypatch.setattr(reasoning, "TORCH_FORMS", {k: f for k, f in reasoning.TORCH_FORMS.items() if k in reasoning.ARITHMETIC})
    V, imm = 12, 7
    program = assemble(ONE_OP.format(op=name, imm=imm), {"f": ["a", "b"], "g": ["a", "b"]}, 3, 2, V=V)
    ok = assemble(ONE_OP.format(op=name, imm=imm), {"f": ["a", "b"], "g": ["a", "b"]}, 3, 2, V=V)
    for ins in ok.instructions:
        ins.wrap_ok = True
    pairs = [(a, b) for a in range(V) for b in range(V)]
    raw = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}.get(name)
    for entry, operand in (("f", lambda a, b: b), ("g", lambda a, b: imm)):
        want = [PRIMITIVES[name](a, operand(a, b), V) for a, b in pairs]
        wraps = [raw is not None and not 0 <= raw(a, operand(a, b)) < V for a, b in pairs]
        for prog, wrapped in ((program, wraps), (ok, [False] * len(pairs))):
            machine = Machine(prog)
            regs = torch.tensor([[0, a, b] for a, b in pairs])
            pc = torch.full((len(pairs),), prog.functions[entry].entry)
            for executor in ("python", "torch"):
                out = machine.run_hard(pc, regs, torch.zeros(len(pairs), V, dtype=torch.long), executor=executor)
                assert out.value.tolist() == want, (entry, executor)
                assert out.wrapped.tolist() == wrapped, (entry, executor)


CHECKED = """
check:                  ; check(x): fail #1 if x > 5, else x + 100
    gt r0, a0, #5
    branch r0, @ok
    fail #1
ok:
    add r1, a0, #100
    ret r1
outer:                  ; outer(x): check(x) from inside a call, then x * 30 - 1
    mov r0, a0
    call @check
    mul r1, r0, #30
    sub r1, r1, #1
    ret r1
"""


def test_fail_stops_the_example_with_its_error_and_wrapped_flags_user_arithmetic():
    """`fail #k` (CONTRACTS.md 1) stops an example with halted False and error k, even from a callee;
    the others of the batch run on. `wrapped` (CONTRACTS.md 3) flags an add/sub/mul that wrapped mod V."""
    program = assemble(CHECKED, {"check": ["x"], "outer": ["x"]}, n_regs=3, n_args=1)
    machine = Machine(program)
    names, args = ["check", "check", "outer", "outer", "outer", "outer"], [[3], [9], [2], [5], [0], [9]]
    for executor in ("python", "torch"):
        out = machine.run_hard(*hard_inputs(machine, names, args), executor=executor)
        assert out.halted.tolist() == [True, False, True, True, True, False], executor
        assert out.error.tolist() == [-1, 1, -1, -1, -1, 1], executor
        assert out.value.tolist() == [103, 0, 59, 149 % 128, 127, 0], executor
        assert out.wrapped.tolist() == [False, False, False, True, True, False], executor  # 150 >= 128; 0 - 1 < 0
        with pytest.raises(ExecutionError, match="line 2: fail #1"):
            machine.run_batch(["check", "outer"], [[1], [8]], executor=executor)
    program.errors = ["(message 0)", "test line 2 in check: AssertionError: x is at most 5"]  # message k of fail #k
    with pytest.raises(ExecutionError, match="AssertionError: x is at most 5"):
        Machine(program).run("check", 6)


def test_bad_inputs_to_run_hard_and_run_batch_are_clear_errors(machine, library):
    """Issue 15: a register value or pc out of range, a wrong shape or dtype, a register index that is not
    one, mismatched or empty batches: a ValueError naming the problem, not a silent 0 or an IndexError."""
    pc, regs, mem = hard_inputs(machine, ["fib"], [[5]])
    bad = regs.clone()
    bad[0, 2] = -3
    with pytest.raises(ValueError, match=r"registers\[0, 2\] = -3 is not a value"):
        machine.run_hard(pc, bad, mem)
    with pytest.raises(ValueError, match=r"pc\[0\] = 999 is not a line of the program"):
        machine.run_hard(torch.tensor([999]), regs, mem)
    with pytest.raises(ValueError, match="must hold ints"):
        machine.run_hard(pc, regs.float(), mem)
    with pytest.raises(ValueError, match="run_hard expects pc"):
        machine.run_hard(pc, regs[:, :3], mem)
    with pytest.raises(ValueError, match="max_steps must be an int"):
        machine.run_hard(pc, regs, mem, max_steps=-1)
    with pytest.raises(ValueError, match="executor must be one of"):
        machine.run_hard(pc, regs, mem, executor="fast")
    with pytest.raises(ValueError, match="a = -3 is not a register"):
        Machine(Program([Instr("mov", dst=0, a=-3), Instr("ret", a=0)], {"f": Function("f", 0)}, 2, [1]))
    with pytest.raises(ValueError, match="2 function names and 1 argument tuples"):
        machine.run_batch(["fib", "fib"], [[3]])
    with pytest.raises(ValueError, match="empty batch"):
        machine.run_batch([], [])
    with pytest.raises(ExecutionError, match=r"arguments of example 0 \(fib\) must be a list or tuple"):
        machine.run_batch(["fib"], [3])


def test_cache_runs_each_distinct_state_once(machine, library, monkeypatch):
    """run_hard(cache=dict) is exact: the same HardRun as without it; equal rows and rows seen before
    do not run again."""
    names, args = ["fib", "gcd", "fib", "fib", "gcd"], [[6], [84, 36], [6], [5], [84, 36]]
    pc, regs, mem = hard_inputs(machine, names, args)
    plain, cache, ran = machine.run_hard(pc, regs, mem), {}, []
    execute = machine._execute
    monkeypatch.setattr(machine, "_execute", lambda pc, *a: ran.append(len(pc)) or execute(pc, *a))
    for _ in range(2):
        cached = machine.run_hard(pc, regs, mem, cache=cache)
        for field, x, y in zip(plain._fields, plain, cached):
            assert x == y if field == "steps" else torch.equal(x, y), field
    assert ran == [3] and len(cache) == 3
    ran.clear()
    distinct = machine.run_hard(pc, regs, mem, distinct=True)  # the rows run once each, nothing kept
    for field, x, y in zip(plain._fields, plain, distinct):
        assert x == y if field == "steps" else torch.equal(x, y), field
    assert ran == [3]


def test_distinct_rows_groups_equal_rows_in_order_of_first_appearance():
    from reasoning import distinct_rows
    g = np.random.default_rng(1)
    state = g.integers(0, 3, size=(500, 4))  # 81 possible rows: many repeats
    first, inverse = distinct_rows(state)
    assert (state[first[inverse]] == state).all()
    assert (np.diff(first) > 0).all() and len(first) == len(np.unique(state, axis=0))
    seen = {}
    for b, row in enumerate(map(tuple, state)):
        seen.setdefault(row, b)
    assert sorted(seen.values()) == first.tolist()


def test_hard_path_at_V_1024_computes_its_ops():
    """V = 1,024 and memory of 1,000 cells: both executors sort 300 values exactly, and no V x V table is
    built (the tables of the distribution machine would hold a million entries per primitive)."""
    from compiler import compile_source
    from corpus import CORPUS
    source = next(case.source for case in CORPUS if case.name == "insertion_sort")
    machine = Machine(compile_source(source, n_values=1024), n_cells=1000)
    xs = [random.Random(0).randrange(1024) for _ in range(300)]
    for executor in ("python", "torch"):
        got = list(xs)
        machine.run_batch(["insertion_sort"], [[got]], max_steps=10**6, executor=executor)
        assert got == sorted(xs), executor
    assert machine._tables is None
    assert "# 0: " in machine.python_source()  # the translation shows each line it came from


def test_auto_executor_is_python_on_cpu_and_torch_for_large_cuda_batches(machine):
    from reasoning import CUDA_MIN_BATCH
    assert machine._executor("auto", torch.device("cpu"), 10**6) == "python"
    assert machine._executor("auto", torch.device("cuda"), 100) == "python"
    assert machine._executor("auto", torch.device("cuda"), CUDA_MIN_BATCH) == "torch"


# A product state (every field its own marginal) with a soft stack, for one step of the machine.
STEP = """
f:
    branch r0, @g       ; 0
    add r1, r0, r1      ; 1
    call @g             ; 2
    ret r1              ; 3
g:
    sub r0, r1, #1      ; 4
    ret r0              ; 5
"""


def enumerate_one_step(program, pc, regs, sp, saved, ret_to):
    """The exact one-step update of a product distribution, by running every joint configuration as
    `Program.run` would (a call with the stack full jumps and saves nothing, as the module docstring says).
    Returns the new joint pc, the marginals of the running mass (regs, sp, saved, ret_to), the mass
    that halts and the value it returns (joint)."""
    import itertools
    code, (R, V), (D, L) = program.instructions, regs.shape, ret_to.shape
    a0 = program.arg_regs[0]
    new = {"pc": torch.zeros(L), "regs": torch.zeros(R, V), "sp": torch.zeros(D + 1), "saved": torch.zeros(D, R, V),
           "ret_to": torch.zeros(D, L), "halted": torch.zeros(()), "value": torch.zeros(V)}
    new = {k: x.double() for k, x in new.items()}
    ranges = [range(L), *[range(V)] * R, range(D + 1), *[range(V)] * (D * R), *[range(L)] * D]
    for c in itertools.product(*ranges):
        line, r, s = c[0], list(c[1:1 + R]), c[1 + R]
        sv, rt = [list(c[2 + R + d * R:2 + R + (d + 1) * R]) for d in range(D)], list(c[2 + R + D * R:])
        w = pc[line] * sp[s] * torch.stack([regs[i, v] for i, v in enumerate(r)]).prod()
        w = w * torch.stack([saved[d, i, v] for d in range(D) for i, v in enumerate(sv[d])]).prod()
        w = w * torch.stack([ret_to[d, l] for d, l in enumerate(rt)]).prod()
        if w == 0:
            continue
        ins, nxt = code[line], line + 1
        if ins.op == "branch" and r[ins.a] == 0:
            nxt = ins.target
        elif ins.op in PRIMITIVES:
            r[ins.dst] = PRIMITIVES[ins.op](r[ins.a], r[ins.b] if ins.b is not None else ins.imm, V)
        elif ins.op == "call":
            if s < D:
                sv[s], rt[s], s = list(r), line + 1, s + 1
            nxt = ins.target
        elif ins.op == "ret" and s == 0:
            new["halted"] += w
            new["value"][r[ins.a]] += w
            continue
        elif ins.op == "ret":
            value, r, nxt, s = r[ins.a], list(sv[s - 1]), rt[s - 1], s - 1
            r[a0] = value
        new["pc"][nxt] += w
        new["sp"][s] += w
        for i, v in enumerate(r):
            new["regs"][i, v] += w
        for d in range(D):
            new["ret_to"][d, rt[d]] += w
            for i, v in enumerate(sv[d]):
                new["saved"][d, i, v] += w
    running = new["pc"].sum()
    for k in ("regs", "sp", "saved", "ret_to"):
        new[k] = new[k] / running
    return new


@pytest.mark.parametrize("lines", [[0], [1], [2], [3], [4], [5], [0, 2, 5]])
def test_one_soft_step_is_the_exact_update_of_its_product_state(lines):
    """Mean field drops correlations between fields, so a soft run drifts (tests/scripts/soft_vs_hard.py). It
    must be the only error: from a state that *is* a product of marginals, soft registers and a soft
    stack (sp, saved registers, return lines), one step equals the exact update by enumeration on every
    field, for each line with running mass 0.7 and for a pc spread over lines that read the same operand
    register (a soft pc over lines whose operands differ mixes them: the documented approximation)."""
    program = assemble(STEP, {"f": ["x"], "g": ["x"]}, n_regs=2, n_args=1, V=3)
    machine = Machine(program, max_depth=1).double()
    gen = torch.Generator().manual_seed(sum(lines))
    pc = torch.zeros(len(program.instructions), dtype=torch.float64)
    pc[lines] = 0.7 * random_dist(len(lines), gen=gen)
    regs, sp, saved, ret_to = random_dist(2, 3, gen=gen), random_dist(2, gen=gen), random_dist(1, 2, 3, gen=gen), \
        random_dist(1, 6, gen=gen)
    expected = enumerate_one_step(program, pc, regs, sp, saved, ret_to)
    for fast in (False, True):
        state = [x[None].clone() for x in (pc, regs, torch.eye(3, dtype=torch.float64), saved, ret_to, sp)]
        state += [torch.zeros(1, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64),
                  torch.zeros(1, 3, 3, dtype=torch.float64), torch.zeros_like(pc)[None]]  # ..., failed_at
        with torch.set_grad_enabled(not fast):
            new_pc, regs1, _, saved1, ret_to1, sp1, halted, value, *_ = machine._step(machine.fields(), state, fast, False)
        got = {"pc": new_pc, "regs": regs1, "sp": sp1, "saved": saved1, "ret_to": ret_to1, "halted": halted, "value": value}
        for k, x in got.items():
            torch.testing.assert_close(x[0], expected[k], atol=1e-12, rtol=0, msg=lambda m: f"{k}, fast={fast}: {m}")
