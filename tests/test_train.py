"""train.py and the augmented model end to end: learning, resuming, checkpoints, --init, bad input.

Runs train.main in-process on tiny settings; each run takes seconds on a 2-core CPU. The cheapest run is gcd
with --eval_n 1 (fib evaluates every one of its prompts).
"""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

import train
from model import Tokenizer
from tasks import TASKS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--task", "gcd", "--batch_size", "2", "--eval_n", "1"]  # a run of a few seconds


def run(tmp_path, *argv, name="run"):
    out = str(tmp_path / name)
    results = train.main(["--out_dir", out, "--log_interval", "1000", "--eval_interval", "1000", *argv])
    return results, out


def test_augmented_model_beats_the_baseline_on_deeper_recursion(tmp_path):
    """A fresh tiny LLaMA learns to call the library in ~100 steps: exact on fib(8..11), which needs
    deeper recursion and answer digits that training never showed. The same LLaMA without the layer,
    trained the same way, cannot: if the machine stopped passing information, the two would be equal."""
    augmented, _ = run(tmp_path, "--task", "fib", "--iters", "100", name="aug")
    baseline, _ = run(tmp_path, "--task", "fib", "--iters", "100", "--baseline", name="base")
    assert augmented["deeper"]["exact_match"] >= 0.9, augmented
    assert augmented["test"]["exact_match"] >= 0.9, augmented
    assert baseline["deeper"]["exact_match"] <= 0.25, baseline
    assert augmented["deeper"]["n"] == baseline["deeper"]["n"] == len(TASKS["fib"].examples("deeper")) >= 16


def test_resume_continues_exactly(tmp_path):
    args = ["--task", "sort", "--eval_n", "2", "--warmup", "2", "--batch_size", "4", "--lr_decay_iters", "8"]
    straight, _ = run(tmp_path, *args, "--iters", "8", name="straight")
    first, out = run(tmp_path, *args, "--iters", "4", name="split")
    resumed, _ = run(tmp_path, *args, "--iters", "8", "--resume", name="split")
    want = straight["_run"]["losses"]
    got = {**first["_run"]["losses"], **resumed["_run"]["losses"]}
    assert sorted(got) == sorted(want) == list(range(8))
    for it in want:
        assert got[it] == pytest.approx(want[it], rel=1e-5, abs=1e-6), it


def test_one_command_twice_gives_the_same_losses_on_the_cpu(tmp_path):
    """Bit for bit, every step: the run trains with torch's deterministic algorithms on the CPU (train.main).
    Without them this very command drew apart at step 36 on 2 threads (the backward of indexing adds in the
    order its threads finish), and a CI machine's run of the ordinal reader missed half its held-out
    prompts where this machine's got all. main puts the global setting back when it returns."""
    torch.use_deterministic_algorithms(False)
    args = ["--task", "fib", "--interface", "args", "--reader", "ordinal", "--late_copy", "off", "--batch_size",
            "16", "--iters", "45", "--eval_n", "2"]
    a, _ = run(tmp_path, *args, name="a")
    b, _ = run(tmp_path, *args, name="b")
    assert not torch.are_deterministic_algorithms_enabled()
    assert sorted(a["_run"]["losses"]) == list(range(45))
    assert a["_run"]["losses"] == b["_run"]["losses"]  # exactly equal floats


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    args = ["--task", "gcd", "--iters", "3", "--batch_size", "2", "--eval_n", "1"]
    run(tmp_path, *args, name="ckpt")
    out = str(tmp_path / "ckpt")
    assert open(os.path.join(out, "latest")).read() == "ckpt-3"

    def crash(*a, **k):  # the process dies while writing the weights of the next checkpoint
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train, "save_model", crash)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, *args[:2], "--iters", "6", "--resume", *args[4:], name="ckpt")
    monkeypatch.undo()
    assert open(os.path.join(out, "latest")).read() == "ckpt-3"
    assert os.path.isdir(os.path.join(out, "ckpt-6.tmp"))  # the half-written one
    resumed, _ = run(tmp_path, *args[:2], "--iters", "4", "--resume", *args[4:], name="ckpt")
    assert sorted(resumed["_run"]["losses"]) == [0, 1, 2, 3]  # the history goes on from the checkpoint's
    assert sorted(d for d in os.listdir(out) if d.startswith("ckpt-")) == ["ckpt-3", "ckpt-4"]  # the newest two


def test_init_loads_a_hugging_face_checkpoint(tmp_path):
    """--init takes the same path as a real Llama-3.2-1B directory: HF layout, safetensors."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                      rope_theta=500000.0, tie_word_embeddings=True,
                                      rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "hf")
    Tokenizer().save_pretrained(str(tmp_path / "hf"))  # its tokenizer: the byte tokenizer, as tokenizer.json
    results, out = run(tmp_path, "--task", "gcd", "--init", str(tmp_path / "hf"), "--iters", "2", "--eval_n", "2")
    assert results["test"]["n"] == 2
    assert os.path.exists(os.path.join(out, "ckpt-2", "model.safetensors"))
    assert json.load(open(os.path.join(out, "results.json")))["_run"]["iters"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--task", "fibb"], "unknown task 'fibb'"),
    (["--preset", "huge"], "huge"),
    (["--init", "/nonexistent/llama"], "/nonexistent/llama"),
    (["--library", "trainable"], "--grad mean_field"),
])
def test_bad_settings_stop_with_a_clear_message(tmp_path, argv, message):
    with pytest.raises(SystemExit) as e:
        run(tmp_path, *argv, "--iters", "1")
    assert message in str(e.value)


def test_init_directory_that_is_not_a_llama_checkpoint(tmp_path):
    (tmp_path / "notllama").mkdir()
    (tmp_path / "notllama" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--init", str(tmp_path / "notllama"), "--iters", "1")
    assert "error:" in str(e.value) and "config.json" in str(e.value)


def test_resuming_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    run(tmp_path, *TINY, "--iters", "1", name="x")
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--task", "fib", "--iters", "2", "--resume", name="x")
    assert "another configuration" in str(e.value) and "task" in str(e.value)


def test_nan_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--task", "fib", "--iters", "2", "--batch_size", "2")
    assert "loss is nan" in str(e.value)


# ---- nothing finished is lost ---------------------------------------------------------------------------


def test_a_finished_run_is_neither_replaced_nor_emptied(tmp_path, capsys):
    """A fresh run into a finished run's out_dir is refused unless --overwrite; the README's export recipe
    (--resume --iters <the same> --export DIR) keeps the loss history and exports readable files."""
    first, out = run(tmp_path, *TINY, "--iters", "2", name="done")
    assert "gcd: 2 iterations, " in capsys.readouterr().out  # the summary line
    files = {f: os.path.getmtime(os.path.join(out, f)) for f in ("ckpt-2", "latest", "results.json")}
    with pytest.raises(SystemExit) as e:
        run(tmp_path, *TINY, "--iters", "2", name="done")
    assert "already holds a run" in str(e.value) and "--resume" in str(e.value) and "--overwrite" in str(e.value)
    assert {f: os.path.getmtime(os.path.join(out, f)) for f in files} == files

    export = tmp_path / "export"
    again, _ = run(tmp_path, *TINY, "--iters", "2", "--resume", "--export", str(export), name="done")
    assert again["_run"]["losses"] == first["_run"]["losses"] and len(first["_run"]["losses"]) == 2
    saved = json.load(open(os.path.join(out, "results.json")))["_run"]
    assert saved["losses"] == {str(k): v for k, v in first["_run"]["losses"].items()}
    assert saved["train_seconds"] == first["_run"]["train_seconds"]  # training time goes on from the checkpoint
    umask = os.umask(0)
    os.umask(umask)
    for f in ("model.safetensors", "reasoning_layer.safetensors", "config.json"):
        assert os.stat(export / f).st_mode & 0o777 == 0o666 & ~umask, f  # not safetensors' own 0600

    with pytest.raises(SystemExit) as e:  # fewer iterations than the checkpoint has is no way to go back
        run(tmp_path, *TINY, "--iters", "1", "--resume", name="done")
    assert "past --iters 1" in str(e.value)
    replaced, _ = run(tmp_path, *TINY, "--iters", "1", "--overwrite", name="done")
    assert sorted(replaced["_run"]["losses"]) == [0]
    assert sorted(d for d in os.listdir(out) if d.startswith("ckpt-")) == ["ckpt-1"]


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    straight, out = run(tmp_path, *TINY, "--iters", "2", "--eval_interval", "1", name="two")
    assert sorted(d for d in os.listdir(out) if d.startswith("ckpt-")) == ["ckpt-1", "ckpt-2"]
    state = os.path.join(out, "ckpt-2", "state.pt")
    data = open(state, "rb").read()
    open(state, "wb").write(data[: len(data) // 2])  # the newest is truncated
    capsys.readouterr()
    resumed, _ = run(tmp_path, *TINY, "--iters", "2", "--eval_interval", "1", "--resume", name="two")
    err = capsys.readouterr().err
    assert "warning: cannot read checkpoint" in err and "ckpt-2" in err and "ckpt-1" in err
    assert resumed["_run"]["losses"] == pytest.approx(straight["_run"]["losses"], rel=1e-5)  # iter 1 trained again


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    real = train.learning_rate

    def press_ctrl_c_at_iter_1(it, args):
        if it == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(it, args)

    monkeypatch.setattr(train, "learning_rate", press_ctrl_c_at_iter_1)
    with pytest.raises(SystemExit) as e:
        run(tmp_path, *TINY, "--iters", "4", name="stopped")
    assert e.value.code == 130
    assert "interrupted: saved a checkpoint at iter 2" in capsys.readouterr().out
    out = str(tmp_path / "stopped")
    assert open(os.path.join(out, "latest")).read() == "ckpt-2"
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    resumed, _ = run(tmp_path, *TINY, "--iters", "3", "--lr_decay_iters", "4", "--resume", name="stopped")
    assert sorted(resumed["_run"]["losses"]) == [0, 1, 2]


def test_a_second_run_on_the_same_out_dir_is_refused_but_a_stale_lock_is_not(tmp_path, monkeypatch, capsys):
    class Built(Exception):
        pass

    def stop(args, device):
        raise Built  # past every check, at the point where the model would be built

    monkeypatch.setattr(train, "build", stop)
    out = tmp_path / "locked"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "lock").write_text(f"{other.pid}\n")
        with pytest.raises(SystemExit) as e:
            run(tmp_path, *TINY, name="locked")
        assert f"another run (process {other.pid}) is writing to" in str(e.value)
    finally:
        other.kill()
        other.wait()
    with pytest.raises(Built):  # the process that held the lock is gone: the lock is stale
        run(tmp_path, *TINY, name="locked")
    assert "stale lock" in capsys.readouterr().err
    assert (out / "lock").read_text().split()[0] == str(os.getpid())


@pytest.mark.parametrize("layout, argv, message", [
    ("out_dir", [], "is a file, where the run writes a directory"),
    ("out_dir/x", [], "cannot write in --out_dir"),
    ("results.json", [], "results.json is a directory, where the run writes a file"),
    ("export", ["--export", "EXPORT"], "is a file, where the run writes a directory"),
    ("export", ["--init", "INIT", "--export", "INIT/"], "is the --init directory"),
])
def test_paths_the_run_cannot_write_stop_it_before_the_first_step(tmp_path, monkeypatch, layout, argv, message):
    monkeypatch.setattr(train, "build", lambda *a: pytest.fail("built the model"))
    (tmp_path / "file").write_text("a file")
    out = {"out_dir": tmp_path / "file", "out_dir/x": tmp_path / "file" / "x"}.get(layout, tmp_path / "run")
    if layout == "results.json":
        (tmp_path / "run" / "results.json").mkdir(parents=True)
    (tmp_path / "llama").mkdir()
    argv = [a.replace("EXPORT", str(tmp_path / "file")).replace("INIT", str(tmp_path / "llama")) for a in argv]
    with pytest.raises(SystemExit) as e:
        train.main([*TINY, "--out_dir", str(out), *argv])
    assert str(e.value).startswith("error: ") and message in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any directory")
def test_an_unwritable_out_dir_stops_the_run_before_the_first_step(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "build", lambda *a: pytest.fail("built the model"))
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(SystemExit) as e:
        train.main([*TINY, "--out_dir", str(tmp_path / "ro" / "run")])
    assert "cannot write in --out_dir" in str(e.value)


# ---- settings are checked, not replaced ------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--iters", "-1"], "--iters must be 0 or more"),
    (["--eval_interval", "0"], "--eval_interval must be at least 1"),
    (["--log_interval", "0"], "--log_interval must be at least 1"),
    (["--eval_n", "-1"], "--eval_n must be at least 1"),
    (["--eval_n", "0"], "--eval_n must be at least 1"),
    (["--batch_size", "0"], "--batch_size must be at least 1"),
    (["--grad_accum", "0"], "--grad_accum must be at least 1"),
    (["--lr", "nan"], "--lr nan"),
    (["--lr", "-0.1"], "--lr -0.1"),
    (["--min_lr", "inf"], "--min_lr inf"),
    (["--lr", "1e-3", "--min_lr", "1e-2"], "above --lr"),
    (["--warmup", "-1"], "--warmup"),
    (["--lr_decay_iters", "0"], "--lr_decay_iters"),
    (["--weight_decay", "nan"], "--weight_decay"),
    (["--grad_clip", "-1"], "--grad_clip -1.0: must be a number >= 0 (0 turns clipping off)"),
    (["--heads_lr_scale", "0"], "--heads_lr_scale 0.0: must be a number > 0"),
    (["--heads_lr_scale", "nan"], "--heads_lr_scale nan"),
    (["--ema", "1"], "--ema 1.0: the decay must be at least 0 and below 1"),
    (["--ema", "-0.5"], "--ema -0.5"),
    (["--task", "isort_holes", "--ema", "0.9"], "--ema: isort_holes trains only its holes' logits"),
    (["--max_steps", "0"], "--max_steps"),
    (["--seed", str(2**64)], "--seed"),
    (["--max_steps_train", "0"], "--max_steps"),
    (["--dtype", "float16"], "float16 training needs loss scaling"),
    (["--dtype", "int8"], "choose auto, float32 or bfloat16"),
    (["--device", "tpu"], "'tpu' is not a device"),
    (["--device", "cuda:99"], "cuda:99"),
    (["--device", "meta"], "trains on cpu or cuda"),
    (["--resume", "--overwrite"], "give one of them"),
])
def test_bad_values_stop_before_anything_is_made(tmp_path, argv, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as e:
        train.main([*argv, "--out_dir", str(out)])
    assert str(e.value).startswith("error: ") and message in str(e.value)
    assert not out.exists()


def test_lr_0_is_0_not_the_default(tmp_path, monkeypatch):
    seen = []

    def stop(args, device):
        seen.append(args)
        raise SystemExit

    monkeypatch.setattr(train, "build", stop)
    with pytest.raises(SystemExit):
        train.main(["--lr", "0", "--out_dir", str(tmp_path / "a")])
    assert seen[-1].lr == 0 and seen[-1].min_lr == 0
    assert all(train.learning_rate(it, seen[-1]) == 0 for it in range(300))
    with pytest.raises(SystemExit):
        train.main(["--lr", "0.5", "--min_lr", "0", "--iters", "100", "--warmup", "0", "--out_dir", str(tmp_path / "b")])
    assert seen[-1].min_lr == 0 and train.learning_rate(99, seen[-1]) < 1e-3  # decays to 0, not to lr / 10


def test_warm_start_takes_the_transformer_and_the_heads_of_another_run(tmp_path):
    """--warm_start copies a trained run's weights into a fresh run of another task: the whole transformer
    and the argument heads (the ordinal reader's decoder, marks and end state do not depend on the number
    of slots); with --lr 0 the new run's checkpoint then holds exactly the old run's tensors."""
    from safetensors.torch import load_file

    args = ["--interface", "args", "--reader", "ordinal", "--batch_size", "2", "--eval_n", "1"]
    _, before = run(tmp_path, "--task", "fib", *args, "--iters", "2", name="fib")
    results, after = run(tmp_path, "--task", "add", *args, "--iters", "1", "--lr", "0", "--seed", "7",
                         "--warm_start", before, name="add")
    assert results["_run"]["warm_start"] == before
    old, new = load_file(os.path.join(before, "ckpt-2", "model.safetensors")), \
        load_file(os.path.join(after, "ckpt-1", "model.safetensors"))
    shared = [k for k in new if k.startswith("llama.") or k.startswith("layer.arg_heads.")]
    assert any(k.startswith("layer.arg_heads.mark") for k in shared) and len(shared) > 10
    assert all(torch.equal(old[k], new[k]) for k in shared)
    _, fresh = run(tmp_path, "--task", "add", *args, "--iters", "1", "--lr", "0", "--seed", "7", "--curriculum", "none",
                   name="fresh")
    seeds_own = load_file(os.path.join(fresh, "ckpt-1", "model.safetensors"))  # without --warm_start
    assert not torch.equal(seeds_own["layer.arg_heads.decode.weight"], new["layer.arg_heads.decode.weight"])


def test_warm_start_refuses_what_it_cannot_take(tmp_path, monkeypatch):
    """Another transformer shape, a directory without a trained model, a task without a LLaMA: clear errors."""
    import model as model_module

    _, source = run(tmp_path, *TINY, "--iters", "1", name="source")
    settings = train.get_args([*TINY])
    train.resolve_defaults(settings)
    monkeypatch.setitem(model_module.PRESETS, "tiny", model_module.ModelArgs(
        dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden_dim=192, vocab_size=512, max_seq_len=512))
    _, tokenizer, smaller = train.build(settings, "cpu")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="transformer has another shape"):
        train.warm_start(smaller, tokenizer, source)
    with pytest.raises(SystemExit, match="no trained model"):
        run(tmp_path, *TINY, "--iters", "1", "--warm_start", str(tmp_path / "nothing"), name="refused")
    with pytest.raises(SystemExit, match="no LLaMA"):
        train.main(["--task", "isort_holes", "--warm_start", source])


def test_curriculum_sort4_trains_sort4_first_and_starts_from_it(tmp_path, monkeypatch, capsys):
    """--curriculum sort4 (the default for add with --interface args --grad exact): a sort4 run into
    <out_dir>-sort4, then this run warm-started from it; a finished one is reused, not trained again.
    (Here the sort4 run is 2 iterations long: SORT4_FIRST is README's, 100 of batch 64.)"""
    from safetensors.torch import load_file

    short = list(train.SORT4_FIRST)
    for flag, value in (("--iters", "2"), ("--batch_size", "2"), ("--max_threads", "9"), ("--eval_n", "1")):
        short[short.index(flag) + 1] = value
    monkeypatch.setattr(train, "SORT4_FIRST", short)
    argv = ["--task", "add", "--interface", "args", "--iters", "1", "--lr", "0", "--batch_size", "2", "--eval_n", "1"]
    results, out = run(tmp_path, *argv, name="add")
    sort4 = out + "-sort4"
    assert json.load(open(os.path.join(sort4, "results.json")))["_run"]["task"] == "sort4"
    assert results["_run"]["curriculum"] == "sort4" and results["_run"]["warm_start"] == sort4
    assert results["_run"]["warm_up_seconds"] > 0
    first, then = load_file(os.path.join(sort4, "ckpt-2", "model.safetensors")), \
        load_file(os.path.join(out, "ckpt-1", "model.safetensors"))
    assert all(torch.equal(first[k], then[k]) for k in then if k.startswith(("llama.", "layer.arg_heads.")))
    assert "training sort4 first" in capsys.readouterr().out
    run(tmp_path, *argv, "--overwrite", name="add")
    assert "starting from the finished sort4 run" in capsys.readouterr().out
    run(tmp_path, *argv, "--overwrite", "--seed", "3", name="add")  # other settings: not that run
    assert "training sort4 first" in capsys.readouterr().out
    stage = lambda: torch.load(os.path.join(sort4, "ckpt-2", "state.pt"), weights_only=False)  # noqa: E731
    assert stage()["reasoning_config"]["reader"] == "runs"  # the default reader, named
    assert not stage()["reasoning_config"]["token_values"]  # off, as this add run's
    run(tmp_path, *argv, "--overwrite", "--seed", "3", "--token_values", "on", name="add")
    assert "training sort4 first" in capsys.readouterr().out and stage()["reasoning_config"]["token_values"]
    run(tmp_path, *argv, "--overwrite", "--seed", "3", "--reader", "ordinal", name="add")  # heads read alike
    assert "training sort4 first" in capsys.readouterr().out and stage()["reasoning_config"]["reader"] == "ordinal"
    assert not stage()["reasoning_config"]["token_values"]  # off with the ordinal reader too
    assert stage()["reasoning_config"]["late_copy"]  # on, as this run's
    run(tmp_path, *argv, "--overwrite", "--seed", "3", "--reader", "ordinal", "--late_copy", "off", name="add")
    assert not stage()["reasoning_config"]["late_copy"]
    assert stage()["reasoning_config"]["vector_grad"]  # on, as this run's
    run(tmp_path, *argv, "--overwrite", "--seed", "3", "--reader", "ordinal", "--late_copy", "off", "--vector_grad",
        "off", name="add")
    assert "training sort4 first" in capsys.readouterr().out and not stage()["reasoning_config"]["vector_grad"]
    capsys.readouterr()
    with pytest.raises(SystemExit, match="already holds a run"):  # refused before its sort4 stage, not after
        run(tmp_path, *argv, "--seed", "5", name="add")
    assert "sort4" not in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not both"):
        run(tmp_path, *argv, "--curriculum", "sort4", "--warm_start", sort4, name="both")
    with pytest.raises(SystemExit, match="needs --interface args"):
        run(tmp_path, "--task", "sort", "--curriculum", "sort4", name="tape")


def test_the_defaults_that_depend_on_the_interface():
    """The README's figures for `--interface args` were measured with these defaults (and the tape's with
    the others); a flag given on the command line always wins."""
    def resolved(*argv):
        args = train.get_args(list(argv))
        train.resolve_defaults(args)
        return args.max_threads, args.batch_size, args.iters, args.train

    assert resolved("--task", "sort") == (8, 16, 200, "interface")
    # sort-8 starts from sort4 (--curriculum sort4) and needs fewer iterations than from scratch
    assert resolved("--task", "sort", "--interface", "args") == (257, 64, 150, "all")
    assert resolved("--task", "sort", "--interface", "args", "--curriculum", "none") == (257, 64, 300, "all")
    assert resolved("--task", "add", "--interface", "args")[2] == 450  # add's heads, from sort4, are still moving at 300
    assert resolved("--task", "add_mod", "--interface", "args")[2] == 450
    assert resolved("--task", "sort", "--interface", "args", "--max_threads", "1024", "--iters", "100",
                    "--batch_size", "16", "--train", "interface") == (1024, 16, 100, "interface")

    def chosen(*argv):
        args = train.get_args(list(argv))
        train.resolve_defaults(args)
        return args.curriculum, args.reader

    # several numbers to fill: the runs reader, and sort-8 and add start from sort4; one: the query reader
    assert chosen("--task", "add", "--interface", "args") == ("sort4", "runs")
    assert chosen("--task", "add_mod", "--interface", "args") == ("sort4", "runs")
    assert chosen("--task", "sort", "--interface", "args") == ("sort4", "runs")
    assert chosen("--task", "sort", "--interface", "args", "--reader", "ordinal") == ("sort4", "ordinal")
    assert chosen("--task", "sort4", "--interface", "args") == ("none", "runs")
    assert chosen("--task", "add_words", "--interface", "args") == ("none", "runs")
    assert chosen("--task", "fib", "--interface", "args") == ("none", "query")
    assert chosen("--task", "fib_words", "--interface", "args") == ("none", "query")
    assert chosen("--task", "sort") == ("none", None)  # the tape has no heads
    late = lambda *argv: train.resolve_defaults(a := train.get_args(list(argv))) or a.late_copy  # noqa: E731
    assert late("--task", "sort", "--interface", "args") == late("--task", "fib", "--interface", "args") == "on"
    assert late("--task", "sort") == "off"  # the tape's rows were measured without it
    assert late("--task", "sort", "--interface", "args", "--late_copy", "off") == "off"
    tokens = lambda *argv: train.resolve_defaults(a := train.get_args(list(argv))) or a.token_values  # noqa: E731
    assert tokens("--task", "sort", "--interface", "args") == tokens("--task", "sort4", "--interface", "args") == "on"
    assert tokens("--task", "add", "--interface", "args") == "off"  # add did worse with it (README)
    assert tokens("--task", "fib", "--interface", "args") == "off"  # the query reader reads no token vectors
    assert tokens("--task", "sort", "--interface", "args", "--reader", "ordinal") == tokens("--task", "sort") == "off"
    assert tokens("--task", "sort", "--interface", "args", "--token_values", "off") == "off"
    vectors = lambda *argv: train.resolve_defaults(a := train.get_args(list(argv))) or a.vector_grad  # noqa: E731
    assert vectors("--task", "sort", "--interface", "args") == vectors("--task", "sort") == "on"
    assert vectors("--task", "sort", "--interface", "args", "--vector_grad", "off") == "off"
    assert {chosen("--task", "sort", "--interface", "args", "--reader", "query")[0],
            chosen("--task", "add", "--interface", "args", "--grad", "mean_field")[0],
            chosen("--task", "add", "--interface", "args", "--baseline")[0],
            chosen("--task", "add", "--interface", "args", "--warm_start", "out/x")[0],
            chosen("--task", "sort", "--interface", "args", "--curriculum", "none")[0]} == {"none"}


def test_iters_0_evaluates_the_model_as_built(tmp_path):
    results, out = run(tmp_path, *TINY, "--iters", "0")
    assert results["test"]["n"] == 1 and results["_run"]["losses"] == {}
    assert not os.path.exists(os.path.join(out, "latest"))  # nothing trained, nothing to resume
    assert json.load(open(os.path.join(out, "results.json")))["_run"]["iters"] == 0


def test_resuming_with_other_settings_says_so():
    saved = vars(train.get_args(["--lr", "0.01", "--iters", "200"]))
    same = train.get_args(["--lr", "0.01", "--iters", "200"])
    assert train.resume_notes(saved, same) == []
    other = train.get_args(["--lr", "0.005", "--iters", "400", "--batch_size", "8", "--grad_accum", "2"])
    notes = "\n".join(train.resume_notes(saved, other))
    for what in ("--lr 0.005", "--batch_size 8", "--grad_accum 2", "cosine decay now spans 400 iterations, not 200"):
        assert what in notes, what
    pinned = train.get_args(["--lr", "0.01", "--iters", "400", "--lr_decay_iters", "400"])
    assert train.resume_notes({**saved, "lr_decay_iters": 400}, pinned) == []  # the README's exact resume
    # a checkpoint made before --vector_grad ran with it on: resumed with it off, the run says so
    old = {k: v for k, v in saved.items() if k != "vector_grad"}
    assert "--vector_grad off differs from the checkpoint's on" in "\n".join(
        train.resume_notes(old, train.get_args(["--lr", "0.01", "--iters", "200", "--vector_grad", "off"])))


def test_help_lists_the_tasks_of_the_task_table(monkeypatch, capsys):
    monkeypatch.setitem(TASKS, "maximum", TASKS["fib"])  # a task added to the table shows up in --help
    with pytest.raises(SystemExit):
        train.get_args(["--help"])
    assert "fib, sort, add, gcd, maximum or all" in capsys.readouterr().out


def test_the_command_line_says_error_not_a_traceback(tmp_path):
    """The same checks through `python train.py`: a line `error: ...` on stderr, a nonzero exit status."""
    (tmp_path / "a_file").write_text("not a checkpoint")
    (tmp_path / "listconfig").mkdir()
    (tmp_path / "listconfig" / "config.json").write_text("[1, 2]")
    for argv, message in [(["--log_interval", "0"], "--log_interval"),
                          (["--init", str(tmp_path / "a_file")], "is a file"),
                          (["--init", str(tmp_path / "listconfig")], "config.json holds a list")]:
        p = subprocess.run([sys.executable, "train.py", *argv, "--out_dir", str(tmp_path / "out")], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode != 0 and p.stderr.startswith("error: ") and message in p.stderr, (argv, p.stderr)
        assert "Traceback" not in p.stderr


@pytest.mark.parametrize("config, message", [
    ({"hidden_size": "64"}, 'hidden_size to "64"; it must be a positive integer'),
    ({"num_attention_heads": 0}, "num_attention_heads to 0"),
    ({"tie_word_embeddings": "false"}, "tie_word_embeddings"),
])
def test_init_with_a_broken_config_stops_with_the_key_and_file(tmp_path, config, message):
    transformers = pytest.importorskip("transformers")
    small = transformers.LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2)
    transformers.LlamaForCausalLM(small).save_pretrained(tmp_path / "hf")
    broken = {**json.load(open(tmp_path / "hf" / "config.json")), **config}
    (tmp_path / "hf" / "config.json").write_text(json.dumps(broken))
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--init", str(tmp_path / "hf"), "--iters", "1")
    assert message in str(e.value) and str(tmp_path / "hf" / "config.json") in str(e.value)


def test_resuming_a_run_of_another_reader_says_which_flag_to_give(tmp_path):
    """A run made with the ordinal reader (the default with several slots before the runs reader) resumed
    without --reader builds the runs reader, whose parameters differ: a clear error naming the flag."""
    common = ["--task", "sort4", "--interface", "args", "--batch_size", "2", "--max_threads", "9", "--eval_n", "1",
              "--out_dir", str(tmp_path / "run")]
    train.main([*common, "--reader", "ordinal", "--iters", "1"])
    with pytest.raises(SystemExit, match="give its --reader"):
        train.main([*common, "--iters", "2", "--resume"])
    train.main([*common, "--reader", "ordinal", "--iters", "2", "--resume"])  # with it, the run goes on


def test_resuming_a_run_of_another_late_copy_says_which_flag_to_give(tmp_path):
    """A run made without the late copy (as every run before it) resumed with the args default (on) has one
    parameter fewer than the model now built: the error names --late_copy."""
    common = ["--task", "fib", "--interface", "args", "--batch_size", "2", "--eval_n", "1",
              "--out_dir", str(tmp_path / "run")]
    train.main([*common, "--late_copy", "off", "--iters", "1"])
    with pytest.raises(SystemExit, match="another --late_copy"):
        train.main([*common, "--iters", "2", "--resume"])
    train.main([*common, "--late_copy", "off", "--iters", "2", "--resume"])


def test_resuming_a_run_of_another_token_values_says_which_flag_to_give(tmp_path):
    """A runs-reader run made without the tokens' values decoder (as every run before it) resumed with the
    default (on) lacks that decoder: the error names --token_values; and only the runs reader takes it."""
    common = ["--task", "sort4", "--interface", "args", "--batch_size", "2", "--max_threads", "9", "--eval_n", "1",
              "--out_dir", str(tmp_path / "run")]
    train.main([*common, "--token_values", "off", "--iters", "1"])
    with pytest.raises(SystemExit, match="another --token_values"):
        train.main([*common, "--iters", "2", "--resume"])
    train.main([*common, "--token_values", "off", "--iters", "2", "--resume"])
    with pytest.raises(SystemExit, match="only the runs reader"):
        train.main([*common, "--reader", "query", "--token_values", "on", "--overwrite"])


def test_the_heads_learn_at_heads_lr_scale_times_the_rate_and_runs_before_it_resume(tmp_path, monkeypatch):
    """--heads_lr_scale (default 5 for sort4 and sort-8 with --interface args, 1 elsewhere): the argument
    heads' parameters, and only they, step at that many times the schedule's learning rate. With 1 the
    optimizer has the two groups of every run made before the flag, so such a run resumes; resumed with
    another scale, the error names the flag."""
    scale = lambda *argv: train.resolve_defaults(a := train.get_args(list(argv))) or a.heads_lr_scale  # noqa: E731
    assert scale("--task", "sort", "--interface", "args") == 5.0 and scale("--task", "sort") == 1.0
    assert scale("--task", "fib", "--interface", "args") == 1.0  # the query reader
    assert scale("--task", "add", "--interface", "args") == 1.0 and scale("--task", "sort4", "--interface", "args") == 5.0
    assert scale("--task", "fib", "--interface", "args", "--heads_lr_scale", "2") == 2.0
    common = ["--task", "fib", "--interface", "args", "--batch_size", "2", "--eval_n", "1", "--warmup", "0",
              "--out_dir", str(tmp_path / "run")]
    seen = []
    step = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: seen.append(
        [(g["lr"], {id(p) for p in g["params"]}) for g in self.param_groups]) or step(self, *a, **k))
    train.main([*common, "--iters", "1", "--lr", "1e-3", "--min_lr", "1e-3", "--heads_lr_scale", "3"])
    model, _ = train.load_trained(str(tmp_path / "run"))
    heads = [n for n, _ in model.named_parameters() if n.startswith("layer.arg_heads.")]
    lrs = sorted({round(lr, 9) for lr, _ in seen[0]})
    assert lrs == [1e-3, 3e-3] and len(seen[0]) == 4
    assert sum(len(ids) for lr, ids in seen[0] if round(lr, 9) == 3e-3) == len(heads) > 0
    with pytest.raises(SystemExit, match="--heads_lr_scale 3.0"):
        train.main([*common, "--iters", "2", "--resume", "--heads_lr_scale", "1"])
    train.main([*common, "--iters", "2", "--resume", "--heads_lr_scale", "3"])
    seen.clear()
    train.main([*common, "--iters", "1", "--overwrite", "--heads_lr_scale", "1", "--lr", "1e-3", "--min_lr", "1e-3"])
    assert [round(lr, 9) for lr, _ in seen[0]] == [1e-3, 1e-3]  # the two groups of the runs before the flag


def test_a_run_ends_with_the_weight_average_and_resumes_from_the_weights_as_trained(tmp_path, monkeypatch):
    """--ema d (default 0: no average): after the n-th optimizer step (n from 0)
    average = c average + (1 - c) weights, c = min(d, (1 + n) / (10 + n)). Computed here by hand from the
    weights as trained after 1, 2 and 3 steps (runs of 1, 2 and 3 iterations on one schedule train
    alike), it must be the 3-step run's model.safetensors, what load_trained gives and what the run
    evaluated. A run stopped at 2 and resumed to 3 ends with the same average and the same losses."""
    default = lambda *argv: train.resolve_defaults(a := train.get_args(list(argv))) or a.ema  # noqa: E731
    assert default("--task", "sort", "--interface", "args") == default("--task", "sort") == 0.0
    args = [*TINY, "--lr_decay_iters", "3", "--warmup", "0", "--lr", "1e-2", "--ema", "0.5"]
    trained, evaluated = [], []
    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda model, *a, **k: evaluated.append(
        {n: p.detach().clone() for n, p in model.named_parameters()}) or evaluate(model, *a, **k))
    for n in (1, 2, 3):
        results, out = run(tmp_path, *args, "--iters", str(n), name=f"n{n}")
        state = torch.load(os.path.join(out, f"ckpt-{n}", "state.pt"), weights_only=False)
        trained.append(state["trained_weights"])
        assert state["average_count"] == n
    settings = train.get_args([*args, "--iters", "3"])
    train.resolve_defaults(settings)
    torch.manual_seed(settings.seed)  # as main does before it builds: the initial weights
    _, _, initial = train.build(settings, "cpu")
    average = {k: p.detach().clone() for k, p in initial.named_parameters() if k in trained[0]}
    for n, weights in enumerate(trained):
        c = min(0.5, (1 + n) / (10 + n))
        average = {k: c * average[k] + (1 - c) * weights[k] for k in average}
    model, _ = train.load_trained(str(tmp_path / "n3"))
    got = dict(model.named_parameters())
    assert len(average) == len(trained[0]) > 0
    for k in average:
        assert torch.allclose(got[k], average[k], atol=1e-6), k
        assert torch.equal(evaluated[-1][k], got[k]), k  # what the run evaluated
    assert any(not torch.allclose(got[k], trained[-1][k]) for k in average)  # the average is not the weights
    straight = results
    run(tmp_path, *args, "--iters", "2", name="split")
    resumed, out = run(tmp_path, *args, "--iters", "3", "--resume", name="split")
    model, _ = train.load_trained(out)
    for k, p in model.named_parameters():
        assert torch.allclose(p, got[k], atol=1e-6), k
    assert resumed["_run"]["losses"][2] == pytest.approx(straight["_run"]["losses"][2], rel=1e-5)
    assert resumed["test"] == straight["test"]
