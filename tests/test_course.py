"""The course path (issue 12): ask a trained model, never meet a silent wrong answer, add an algorithm,
compile errors that point at the student's own line, checkpoints that keep their library.

One tiny fib model is trained once for the module (~100 steps, seconds on a 2-core CPU) and exported; the
command-line tests run `python train.py` exactly as the README gives it.
"""

import importlib
import json
import os
import random
import re
import shutil
import subprocess
import sys

import pytest
import torch

import tasks
import train
from compiler import CompileError
from model import Llama, ModelArgs, Tokenizer
from reasoning import AugmentedLlama, run_warnings
from tasks import N_CELLS, TASKS, compile_library

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(REPO, "README.md")).read()
QUIET = ["--log_interval", "1000", "--eval_interval", "1000"]


@pytest.fixture(scope="module")
def fib(tmp_path_factory):
    """A trained tiny fib model: (its run directory, its --export directory, the results)."""
    tmp = tmp_path_factory.mktemp("course")
    out, export = str(tmp / "fib"), str(tmp / "fib-hf")
    results = train.main(["--task", "fib", "--iters", "100", "--out_dir", out, "--export", export, *QUIET])
    assert results["deeper"]["exact_match"] >= 0.9, results  # the model the answers below rely on
    return out, export, results


def ask_cli(*argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "train.py", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def readme_blocks(section):
    """The fenced code blocks of README section `section` (a line starting with '#'), in order."""
    start = README.index(section)
    end = README.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", README[start:end if end > 0 else None], re.S)


# ---- 1. asking ----------------------------------------------------------------------------------------------


def test_ask_prints_the_answer_alone_on_stdout(fib):
    out, export, _ = fib
    for path in (out, export):  # a run's directory (its latest checkpoint) and an --export directory
        p = ask_cli("--task", "fib", "--ask", "What is fib(9)?", "--out_dir", path)
        assert p.returncode == 0 and p.stdout == "34\n", (path, p.stdout, p.stderr)
        assert "warning" not in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_ask_reads_out_task_by_default_and_answers_each_prompt_on_its_line(fib, tmp_path):
    out, _, _ = fib
    shutil.copytree(out, tmp_path / "out" / "fib")
    p = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), "--task", "fib", "--ask", "fib(9)=",
                        "--ask", "fib(12)=", "--ask", "F(10)="], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO})
    assert p.returncode == 0 and p.stdout.splitlines()[0::2] == ["34", "55"], (p.stdout, p.stderr)
    assert len(p.stdout.splitlines()) == 3  # 'fib(12)=' gets its (wrong) answer and a warning naming it
    assert re.search(r"^warning: .*wrapped.*\(prompt 'fib\(12\)='\)$", p.stderr, re.M), p.stderr


def test_ask_without_a_trained_model_is_a_clear_error(tmp_path):
    p = ask_cli("--task", "fib", "--ask", "fib(9)=", "--out_dir", str(tmp_path / "nothing"))
    assert p.returncode != 0 and p.stderr.startswith("error: no trained model in") and "Traceback" not in p.stderr


def test_the_readme_asks_in_python_from_a_run_and_from_an_export(fib, capsys):
    out, export, _ = fib
    blocks = [b for b in readme_blocks("## Ask a trained model") if "import" in b]
    assert len(blocks) == 2, blocks
    for block in blocks:
        exec(block.replace('"out/fib-hf"', repr(export)).replace('"out/fib"', repr(out)), {})
        printed = capsys.readouterr().out
        assert printed.splitlines()[0].startswith("34 []"), printed


# ---- 2. no silent wrong answers ------------------------------------------------------------------------------


def warnings_of(model, prompts):
    return [a.warnings for a in train.ask(model, Tokenizer(), prompts)]


def test_out_of_range_prompts_warn_and_valid_ones_do_not(fib):
    model, _ = train.load_trained(fib[0])
    long = "Please answer the following question about the Fibonacci numbers; take your time, and show no working at all: " \
           "only the number. fib(5)="
    assert len(long) > N_CELLS
    fine, wraps, deep, huge, cut = warnings_of(model, ["What is fib(9)?", "fib(12)=", "fib(20)=", "fib(200)=", long])
    assert fine == []
    assert any("wrapped around" in w for w in wraps), wraps  # fib(12) = 144 > 127
    assert any("did not finish" in w for w in deep), deep  # recursion deeper than the call stack
    assert any("did not finish" in w for w in huge), huge
    assert any("does not fit the library's tape" in w for w in cut), cut
    with pytest.raises(ValueError, match="tokens long; the model reads at most 511"):
        train.ask(model, Tokenizer(), ["x" * 600 + "fib(5)="])


def test_the_command_line_warns_on_stderr_and_refuses_a_prompt_longer_than_the_context(fib):
    p = ask_cli("--ask", "fib(12)=", "--out_dir", fib[0])
    assert p.returncode == 0 and p.stdout.strip() != "" and p.stderr.startswith("warning: a value passed 127")
    p = ask_cli("--ask", "x" * 600, "--out_dir", fib[0])
    assert p.returncode != 0 and p.stderr.startswith("error: the prompt") and "max_seq_len" in p.stderr


@pytest.fixture(scope="module")
def untrained():
    """Untrained models with one entry point each: the flags come from the library, not from training."""
    torch.manual_seed(0)
    llama = Llama(ModelArgs.preset("tiny"))
    return lambda entry: AugmentedLlama(llama, Tokenizer(), compile_library(), [entry], n_cells=N_CELLS).eval()


def generate_warnings(model, prompts):
    tok = Tokenizer()
    _, run = model.generate([tok.encode(p, bos=True) for p in prompts], 4, tok.eos_id)
    return run["warnings"]


def test_generate_returns_the_warnings_of_each_example(untrained):
    sort = generate_warnings(untrained("sort_task"), ["sort 5 3 1=", "sort 150 3 200 7", "sort 3.5 1.25 2"])
    assert sort[0] == [] and any("wrapped" in w for w in sort[1]), sort  # 150 and 200 are not values below 128
    # "3.5" is the numbers 3 and 5 to the library, which reads digits only: nothing it can know (README)
    assert sort[2] == [] and tasks.solve_with_library("sort_task", "sort 3.5 1.25 2") == "1 2 3 5 25"
    gcd = generate_warnings(untrained("gcd_task"), ["gcd(12,18)=", "x" * 114 + "gcd(12,18)="])
    assert gcd[0] == []  # the answer of the second does not fit behind its 125 characters: an IndexError
    assert any(re.search(r"stopped with an error .*tasks\.py line \d+ in gcd_task: IndexError", w) for w in gcd[1])


@pytest.mark.parametrize("name", ["fib", "sort", "add", "gcd", "sort4"])
def test_valid_prompts_never_warn(untrained, name):
    """No false alarms: every split's prompts, in range, run with no flag (a wrap inside the library's own
    arithmetic, e.g. parsing 85 as 8 * 10 + ord('5') - 48, would flag half the sort prompts). Not add_mod: its
    sum wraps modulo 128 on purpose, and is flagged (README)."""
    task = tasks.get_task(name)
    model, tok = untrained(task.entry), Tokenizer()
    for split in task.splits:
        rng = random.Random(0)
        pairs = task.examples(split, n=40) if split != "train" else [task.example(rng, split) for _ in range(40)]
        prompts = [p for p, _ in pairs]
        ids = [tok.encode(p, bos=True) for p in prompts]
        T = max(map(len, ids))
        tokens = torch.tensor([i + [tok.eos_id] * (T - len(i)) for i in ids])
        with torch.no_grad():
            _, run = model(tokens, torch.tensor([len(i) - 1 for i in ids]))
        flagged = [(p, w) for p, w in zip(prompts, run_warnings(run, model.layer)) if w]
        assert not flagged, (split, flagged[:3])
        assert float(run["wrapped"].max()) == 0 and float(run["failed"].max()) == 0 and not run["overflow"].any()


def test_each_flag_warns_from_its_threshold_on(untrained):
    """run_warnings on a run's masses: 10% not finished, failed or wrapped is a warning, 9% is not; the mass
    exact execution did not run warns from 50% on; an overflowing tape always."""
    layer = untrained("fib_task").layer
    zero = torch.zeros(6)
    run = {"not_halted": torch.tensor([0.09, 0.1, 0, 0, 0, 0]), "failed": torch.tensor([0, 0, 0.1, 0, 0, 0]),
           "wrapped": torch.tensor([0, 0, 0, 0.1, 0, 0]), "dropped": torch.tensor([0.49, 0, 0, 0, 0.5, 0]),
           "overflow": torch.tensor([False, False, False, False, False, True]), "error": zero.long() - 1}
    got = run_warnings(run, layer)
    assert got[0] == [] and all(len(w) == 1 for w in got[1:]), got
    for w, what in zip(got[1:], ("did not finish", "stopped with an error", "wrapped around", "not run or not read",
                                 "does not fit the library's tape")):
        assert what in w[0], (what, w)


def test_evaluation_counts_and_reports_answers_with_warnings(fib, tmp_path, monkeypatch, capsys):
    out, _, results = fib
    assert all(results[s]["warnings"] == 0 for s in ("test", "deeper"))
    shutil.copytree(out, tmp_path / "fib")
    monkeypatch.setitem(TASKS["fib"].ranges, "deeper", (12, 13))  # 144 and 233: past V = 128
    again = train.main(["--task", "fib", "--iters", "100", "--resume", "--out_dir", str(tmp_path / "fib"), *QUIET])
    assert again["deeper"]["warnings"] == again["deeper"]["n"] > 0
    assert re.search(r"^warning: split deeper: \d+ of \d+ answers came from runs that may be wrong",
                     capsys.readouterr().err, re.M)


# ---- 6. the small mean-field run ---------------------------------------------------------------------------


def test_a_mean_field_run_finishes_and_flags_its_answers(tmp_path):
    """The README's mean-field command, smaller still: it trains, evaluates within its step bound, and every
    answer carries a warning instead of passing as the library's."""
    results = train.main(["--task", "fib", "--grad", "mean_field", "--iters", "1", "--batch_size", "1",
                          "--max_steps_train", "60", "--max_steps", "60", "--out_dir", str(tmp_path / "mf"), *QUIET])
    for split in ("test", "deeper"):
        assert results[split]["warnings"] == results[split]["n"] > 0
    assert train.ask(*train.load_trained(str(tmp_path / "mf")), ["fib(3)="])[0].warnings


def test_the_mean_field_is_exact_on_a_hard_tape_and_lost_on_a_barely_soft_one():
    """tests/scripts/mean_field_tape.py's table: why the mean-field run learns nothing on the tape."""
    sys.path.insert(0, os.path.join(REPO, "tests", "scripts"))
    from mean_field_tape import soft_answers
    torch.manual_seed(0)
    model = AugmentedLlama(Llama(ModelArgs.preset("tiny")), Tokenizer(), compile_library(), ["fib_task"],
                           n_cells=N_CELLS, grad="mean_field", max_steps=600).eval()
    halted, p = soft_answers(model, Tokenizer(), ["fib(1)=", "fib(3)="], bias=40.0)  # gate 1: a hard tape
    assert torch.allclose(halted, torch.ones(2)) and torch.allclose(p, torch.ones(2), atol=1e-4)
    halted, p = soft_answers(model, Tokenizer(), ["fib(1)=", "fib(3)="], bias=6.0)  # a fresh layer's gate, 0.9975
    assert float(p.max()) < 0.01 and float(halted.max()) < 0.95


# ---- 3. adding an algorithm, 4. compile errors ------------------------------------------------------------


@pytest.fixture
def student(tmp_path, monkeypatch):
    """Registers the README's worked example as a student would: its functions in the library (here a module
    file standing in for tasks.py's section 1) and its one entry in TASKS."""
    code, entry, test = readme_blocks("## Add your own algorithm")

    def register(library_code=code):
        (tmp_path / "student_library.py").write_text("from tasks import *\n\n" + library_code)
        monkeypatch.syspath_prepend(str(tmp_path))
        sys.modules.pop("student_library", None)
        module = importlib.import_module("student_library")
        for name, f in vars(module).items():  # as if written in tasks.py: found by name
            if callable(f) and getattr(f, "__module__", None) == "student_library":
                monkeypatch.setattr(tasks, name, f, raising=False)
        table = eval("{" + entry + "}", {**vars(tasks), **vars(module)})
        for name, task in table.items():
            monkeypatch.setitem(TASKS, name, task)
        return module, test

    return register


def test_the_library_is_found_from_the_task_tables_in_file_order():
    """The entry points of TASKS and VARIANTS and what they call, nothing else (not `hole`, not the generators),
    in tasks.py's order: the same program as the explicit list it replaced, so older checkpoints still load."""
    assert [f.__name__ for f in tasks.library_functions()] == [
        "text_end", "next_number", "number_end", "parse_number", "print_number", "fib", "fib_task",
        "insertion_sort", "parse_list", "sort_task", "add_task", "gcd", "gcd_task", "fib_args", "add_mod_args",
        "sort_args", "add_mod_task"]
    assert tasks.LIBRARY_FUNCTIONS == tuple(tasks.library_functions())


def test_the_readme_adds_a_max_task_and_its_test_passes(student, tmp_path):
    _, test = student()
    assert [f.__name__ for f in tasks.library_functions()][-2:] == ["list_max", "max_task"]
    namespace = {}
    exec(test, namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for f in tests:
        f(tmp_path) if f.__code__.co_argcount else f()


def test_a_missing_entry_point_is_named(student, monkeypatch, tmp_path):
    student()
    monkeypatch.delattr(tasks, "max_task")
    with pytest.raises(ValueError, match="task 'max' names the entry point 'max_task', but tasks.py defines no"):
        compile_library()
    with pytest.raises(SystemExit, match="^error: task 'max' names the entry point 'max_task'"):
        train.main(["--task", "max", "--iters", "1", "--out_dir", str(tmp_path / "x")])


def test_a_compile_error_names_the_students_file_function_and_own_line(student, tmp_path):
    code, _, _ = readme_blocks("## Add your own algorithm")
    broken = code.replace("    best = 0\n", "    best = 0.5\n")  # floats are outside the subset
    assert broken != code
    student(broken)
    line = 2 + broken.splitlines().index("    best = 0.5") + 1  # 2: the import line and a blank line
    with pytest.raises(CompileError) as e:
        compile_library()
    assert (os.path.basename(e.value.filename), e.value.function, e.value.lineno) == ("student_library.py", "list_max", line)
    with pytest.raises(SystemExit, match=rf"^error: student_library.py, line {line}, column \d+, in list_max: "):
        train.main(["--task", "fib", "--iters", "1", "--out_dir", str(tmp_path / "x")])


# ---- 5. a checkpoint keeps its library ------------------------------------------------------------------------


def test_a_run_made_with_another_library_loads_with_its_own(fib, student, tmp_path, capsys):
    out, export, _ = fib
    student()  # the library grows by two functions: tasks.py's program is not the checkpoint's any more
    assert len(compile_library()) != len(train.load_trained(out)[0].layer.machine.program)
    assert "added list_max, max_task" in capsys.readouterr().err
    for path in (out, export):
        model, tok = train.load_trained(path)
        assert train.ask(model, tok, ["fib(9)="])[0] == ("34", [])
    shutil.copytree(out, tmp_path / "fib")
    resumed = train.main(["--task", "fib", "--iters", "101", "--resume", "--out_dir", str(tmp_path / "fib"), *QUIET])
    assert resumed["deeper"]["exact_match"] >= 0.9  # it trained on, with its own library
    state = torch.load(tmp_path / "fib" / "ckpt-101" / "state.pt", weights_only=False)
    assert state["library"]["source"] != tasks.library_source() and "max_task" not in state["library"]["source"]


def test_an_old_checkpoint_of_another_library_is_refused_with_a_clear_message(fib, student, tmp_path):
    out, _, _ = fib
    shutil.copytree(out, tmp_path / "old")
    for name in os.listdir(tmp_path / "old"):  # a checkpoint from before checkpoints stored their library
        if name.startswith("ckpt-"):
            state = torch.load(tmp_path / "old" / name / "state.pt", weights_only=False)
            torch.save({k: v for k, v in state.items() if k != "library"}, tmp_path / "old" / name / "state.pt")
    assert train.load_trained(str(tmp_path / "old"))[0] is not None  # the same library: it loads
    student()
    for call in (lambda: train.load_trained(str(tmp_path / "old")),
                 lambda: train.main(["--task", "fib", "--iters", "101", "--resume", "--out_dir", str(tmp_path / "old")])):
        with pytest.raises((ValueError, SystemExit)) as e:
            call()
        assert "made with another library than tasks.py's" in str(e.value) and "size mismatch" not in str(e.value)


def test_a_stored_library_that_compiles_to_another_program_is_refused(fib, tmp_path):
    shutil.copytree(fib[0], tmp_path / "fib")
    ckpt = tmp_path / "fib" / open(tmp_path / "fib" / "latest").read()
    state = torch.load(ckpt / "state.pt", weights_only=False)
    source = state["library"]["source"].replace("if n < 2:", "if n < 3:")  # as if the compiler had changed
    state["library"] = {"source": source, "fingerprint": tasks.library_fingerprint(source)}
    torch.save(state, ckpt / "state.pt")
    with pytest.raises(ValueError, match="compiles to another program with this compiler"):
        train.load_trained(str(tmp_path / "fib"))


def test_checkpoints_and_exports_store_their_library(fib):
    out, export, _ = fib
    state = torch.load(os.path.join(out, "ckpt-100", "state.pt"), weights_only=False)
    meta = json.load(open(os.path.join(export, "reasoning_layer.json")))
    for library in (state["library"], meta["library"]):
        assert library["source"] == tasks.library_source()
        assert library["fingerprint"] == tasks.library_fingerprint(library["source"])


# ---- 8. plots -------------------------------------------------------------------------------------------------


def test_plots_are_written_next_to_results_json(fib, tmp_path):
    pytest.importorskip("matplotlib")
    out, _, _ = fib
    shutil.copytree(out, tmp_path / "fib")
    train.main(["--task", "fib", "--baseline", "--iters", "3", "--out_dir", str(tmp_path / "fib-baseline"), *QUIET])
    p = subprocess.run([sys.executable, "tests/scripts/plots.py", str(tmp_path / "fib")], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    for name in ("exact_match.png", "training.png"):
        path = tmp_path / "fib" / name
        assert f"wrote {path}" in p.stdout and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    results = json.load(open(tmp_path / "fib" / "results.json"))
    assert sorted(results["deeper"]["by_size"]) == ["10", "11", "8", "9"]  # n = 8-11, every prompt of each
    assert all(n == len(TASKS["fib"].train_phrasings) for _, n in results["deeper"]["by_size"].values())
    del results["test"]["by_size"], results["deeper"]["by_size"]  # results.json from before sizes were kept
    json.dump(results, open(tmp_path / "fib" / "results.json", "w"))
    p = subprocess.run([sys.executable, "tests/scripts/plots.py", str(tmp_path / "fib")], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode != 0 and p.stderr.startswith("error: ") and "by_size" in p.stderr
