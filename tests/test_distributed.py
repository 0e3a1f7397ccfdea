"""train.py beyond one process: torchrun with two CPU processes (gloo), gradient accumulation, and --export.

The two-process run goes through `python -m torch.distributed.run` exactly as a user would start it; the
one-process reference runs in-process. Both see the same global batch at every iteration, so their losses
agree to float rounding. The export is checked against an independent reader, HF transformers.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, load_model

import train
from model import Llama, Tokenizer
from reasoning import AugmentedLlama
from tasks import N_CELLS, compile_library

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 4 examples per step: under 2 processes and --grad_accum 2, one example per micro-step.
ARGS = ["--task", "fib", "--iters", "4", "--batch_size", "4", "--warmup", "2", "--eval_n", "2",
        "--log_interval", "1", "--eval_interval", "1000"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "train.py", *ARGS, "--device", "cpu", "--grad_accum", "2", "--out_dir", str(tmp / "two"),
                          "--export", str(tmp / "two-export")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    one = train.main([*ARGS, "--device", "cpu", "--out_dir", str(tmp / "one"), "--export", str(tmp / "export")])
    return tmp, two, one


def test_two_processes_finish_and_only_rank_0_writes(runs):
    tmp, two, _ = runs
    assert two.returncode == 0, two.stdout + two.stderr
    assert sorted(os.listdir(tmp / "two")) == ["ckpt-4", "latest", "results.json"]
    for it in range(4):  # one log line per iteration, not one per rank
        assert two.stdout.count(f"iter {it}: loss") == 1, two.stdout
    assert two.stdout.count("trainable parameters") == 1 and two.stdout.count("exported to") == 1
    results = json.load(open(tmp / "two" / "results.json"))
    assert results["_run"]["world_size"] == 2 and results["_run"]["grad_accum"] == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in results["_run"]["losses"].values())


def test_two_processes_with_accumulation_match_one_process(runs):
    """Same global batch, loss normalised by the global number of answer tokens: the same losses, to rounding,
    although each rank holds a different number of answer tokens; and the same evaluation (split and summed)."""
    tmp, _, one = runs
    two = json.load(open(tmp / "two" / "results.json"))
    want = one["_run"]["losses"]
    got = {int(k): v for k, v in two["_run"]["losses"].items()}
    assert sorted(got) == sorted(want) == list(range(4))
    assert want[3] < want[0]  # it trains
    for it in want:
        assert got[it] == pytest.approx(want[it], rel=1e-4, abs=1e-5), (it, got, want)
    for split in ("test", "deeper"):
        assert two[split]["n"] == one[split]["n"]
        assert two[split]["exact_match"] == pytest.approx(one[split]["exact_match"])


def test_grad_accum_in_one_process_matches_one_step(tmp_path):
    args = ["--task", "sort", "--iters", "2", "--batch_size", "4", "--warmup", "1", "--eval_n", "1",
            "--log_interval", "1000", "--eval_interval", "1000"]
    whole = train.main([*args, "--out_dir", str(tmp_path / "a")])["_run"]["losses"]
    split = train.main([*args, "--grad_accum", "4", "--out_dir", str(tmp_path / "b")])["_run"]["losses"]
    for it in whole:
        assert split[it] == pytest.approx(whole[it], rel=1e-5), it


def trained_model(out_dir):
    """The model as training left it: rebuilt from the settings and loaded from the last checkpoint."""
    model = train.build(train.get_args(ARGS), "cpu")[2]
    load_model(model, os.path.join(out_dir, "ckpt-4", "model.safetensors"), strict=False)
    return model.eval()


def probe():
    return torch.tensor(Tokenizer().encode("fib(9) = 34; fib(10) =", bos=True))[None]  # [1, T]


def test_export_loads_in_hugging_face_transformers_with_the_same_logits(runs):
    transformers = pytest.importorskip("transformers")
    tmp, _, _ = runs
    model = trained_model(tmp / "one")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp / "export", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        want = model.llama(probe())
        got = hf(probe()).logits
    assert (got - want).abs().max() <= 1e-4
    assert hf.config.bos_token_id == Tokenizer().bos_id and hf.config.eos_token_id == Tokenizer().eos_id


def test_export_loads_with_llama_from_pretrained_and_rebuilds_the_augmented_model(runs):
    """config.json + model.safetensors give the transformer back; reasoning_layer.* the rest of the model."""
    tmp, _, _ = runs
    model = trained_model(tmp / "one")
    llama = Llama.from_pretrained(str(tmp / "export"))
    meta = json.load(open(tmp / "export" / "reasoning_layer.json"))
    config = meta["config"]  # the layer's ReasoningConfig, every setting by name
    assert config["entries"] == ["fib_task"] and config["n_cells"] == N_CELLS
    rebuilt = AugmentedLlama(llama, Tokenizer(), compile_library(), config["entries"],
                             layer_after=config["layer_after"], grad=config["grad"], n_cells=config["n_cells"]).eval()
    layer = load_file(tmp / "export" / "reasoning_layer.safetensors")
    assert sorted(layer) == meta["tensors"]
    rebuilt.layer.load_state_dict(layer)
    tokens, call_pos = probe(), torch.tensor([probe().shape[1] - 1])
    with torch.no_grad():
        assert torch.equal(llama(tokens), model.llama(tokens))
        got, want = rebuilt(tokens, call_pos)[0], model(tokens, call_pos)[0]
    assert (got - want).abs().max() <= 1e-5
    assert rebuilt.layer.gain.item() == model.layer.gain.item() != 0  # the trained value, not the initial 0


def test_the_two_process_export_is_the_same_model(runs):
    tmp, _, _ = runs
    one, two = load_file(tmp / "export" / "model.safetensors"), load_file(tmp / "two-export" / "model.safetensors")
    assert sorted(one) == sorted(two)
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
