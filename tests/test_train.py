"""train.py and the augmented model end to end: learning, resuming, checkpoints, --init, bad input.

Runs train.main in-process on tiny settings; each run takes seconds on a 2-core CPU.
"""

import json
import os

import pytest
import torch

import train
from model import Tokenizer
from tasks import TASKS


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


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    args = ["--task", "fib", "--iters", "3", "--batch_size", "2"]
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
    assert sorted(resumed["_run"]["losses"]) == [3]
    assert sorted(d for d in os.listdir(out) if d.startswith("ckpt-")) == ["ckpt-4"]


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
    run(tmp_path, "--task", "fib", "--iters", "1", "--batch_size", "2", name="x")
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--task", "gcd", "--iters", "2", "--resume", name="x")
    assert "another configuration" in str(e.value) and "task" in str(e.value)


def test_nan_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(train.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--task", "fib", "--iters", "2", "--batch_size", "2")
    assert "loss is nan" in str(e.value)
