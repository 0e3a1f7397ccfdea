"""
Tests for model.py, each against an independent reference:
  - Hugging Face transformers' LlamaForCausalLM for logits and hidden states (random weights, saved to
    safetensors by HF itself, loaded by our Llama.from_pretrained), and for reading back what we save;
  - a plain-Python formula and HF's rope init function for the llama3 RoPE frequencies;
  - Meta's llama-models tokenizer (and its published ids) for the LLaMA 3 tokenizer, sentencepiece itself
    for a SentencePiece model;
  - recomputing the whole sequence at every step for the KV cache.
The model is tiny (hidden 64, 3 layers, 4 heads, 2 kv heads, vocab 300) but LLaMA 3.2-shaped: llama3 RoPE
scaling with factor 32, theta 500000, GQA, tied or untied embeddings.
"""

import importlib.resources
import json
import math
import os
import subprocess
import sys

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from model import (PRESETS, CheckpointError, Llama, ModelArgs, RopeScaling, Tokenizer, rope_inv_freq)

transformers.logging.set_verbosity_error()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA3_TOKENIZER = str(importlib.resources.files("llama_models") / "llama3" / "tokenizer.model")
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
T = 256  # long enough that the scaled (slow) RoPE frequencies move logits by far more than the tolerance


# -----------------------------------------------------------------------------
# helpers


def hf_model(tie=True, seed=0, **overrides):
    """A random HF LLaMA with weights of order 1/sqrt(fan_in) and non-trivial norm weights, so that logits are
    O(1) and a 1e-4 tolerance means something (HF's own init, std 0.02, gives logits near 0)."""
    config = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=300, max_position_embeddings=131072, rms_norm_eps=1e-5,
                  rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE), tie_word_embeddings=tie)
    config.update(overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**config)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[1]))
            else:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


def random_tokens(batch=2, length=T, vocab=300, seed=1):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def hf_logits(model, tokens):
    return model(tokens).logits.float()


@torch.no_grad()
def our_logits(model, tokens):
    return model(tokens).float()


def tiny_model(seed=0, **overrides):
    args = dict(dim=64, n_layers=3, n_heads=4, n_kv_heads=2, vocab_size=300, ffn_hidden_dim=160,
                rope_theta=500000.0, rope_scaling=RopeScaling(), max_seq_len=512)
    args.update(overrides)
    torch.manual_seed(seed)
    model = Llama(ModelArgs(**args)).eval()
    with torch.no_grad():  # as in hf_model: O(1) logits, so greedy decoding is not a string of ties
        for p in model.parameters():
            p.normal_(0.0, 1.0 / math.sqrt(p.shape[1])) if p.dim() == 2 else p.copy_(1 + 0.2 * torch.randn_like(p))
    return model


# -----------------------------------------------------------------------------
# logits equal Hugging Face's


def test_logits_match_hf_tied_embeddings(tmp_path):
    hf = hf_model(tie=True)
    hf.save_pretrained(tmp_path)
    assert not any("lm_head" in k for k in load_file(tmp_path / "model.safetensors"))  # really stored tied
    ours = Llama.from_pretrained(str(tmp_path))
    assert ours.output.weight is ours.tok_embeddings.weight
    tokens = random_tokens()
    expected = hf_logits(hf, tokens)
    assert expected.abs().max() > 1.0  # the tolerance below is small next to the logits
    assert (our_logits(ours, tokens) - expected).abs().max() <= 1e-4


def test_logits_depend_on_the_llama3_rope_scaling(tmp_path):
    # The parity tests can fail: the same weights with unscaled RoPE frequencies miss HF by far more than 1e-4.
    hf = hf_model(tie=True)
    hf.save_pretrained(tmp_path)
    ours = Llama.from_pretrained(str(tmp_path))
    ours.inv_freq = rope_inv_freq(16, 500000.0, None)
    tokens = random_tokens()
    assert (our_logits(ours, tokens) - hf_logits(hf, tokens)).abs().max() > 1e-2


def test_logits_match_hf_untied_embeddings(tmp_path):
    hf = hf_model(tie=False)
    hf.save_pretrained(tmp_path)
    assert "lm_head.weight" in load_file(tmp_path / "model.safetensors")
    ours = Llama.from_pretrained(str(tmp_path))
    assert ours.output.weight is not ours.tok_embeddings.weight
    tokens = random_tokens()
    assert (our_logits(ours, tokens) - hf_logits(hf, tokens)).abs().max() <= 1e-4


def test_logits_match_hf_sharded_checkpoint(tmp_path):
    hf = hf_model(tie=False)
    hf.save_pretrained(tmp_path, max_shard_size="60KB")
    with open(tmp_path / "model.safetensors.index.json") as f:
        assert len(set(json.load(f)["weight_map"].values())) > 2
    assert not (tmp_path / "model.safetensors").exists()
    ours = Llama.from_pretrained(str(tmp_path))
    tokens = random_tokens()
    assert (our_logits(ours, tokens) - hf_logits(hf, tokens)).abs().max() <= 1e-4


def test_bf16_checkpoint(tmp_path):
    hf_model(tie=True).to(torch.bfloat16).save_pretrained(tmp_path)
    tokens = random_tokens()
    # Upcast on load, both sides hold the same float32 numbers: the float32 tolerance applies.
    hf32 = LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ours32 = Llama.from_pretrained(str(tmp_path), dtype=torch.float32)
    assert ours32.tok_embeddings.weight.dtype == torch.float32
    reference = hf_logits(hf32, tokens)
    assert (our_logits(ours32, tokens) - reference).abs().max() <= 1e-4
    # Kept in bf16 (dtype=None keeps the file's), every op rounds to 8 mantissa bits, and HF and we round in
    # different places. The fair bar: our bf16 error against the float32 result is no worse than HF's own
    # bf16 error (plus a margin, rounding noise varies), and both stay far below the logits' spread.
    ours16 = Llama.from_pretrained(str(tmp_path))
    assert ours16.tok_embeddings.weight.dtype == torch.bfloat16
    hf16 = LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    our_error = (our_logits(ours16, tokens) - reference).abs().max()
    hf_error = (hf_logits(hf16, tokens) - reference).abs().max()
    assert our_error <= 1.5 * hf_error + 1e-2
    assert our_error < 0.1 * reference.abs().max()


@torch.no_grad()
def test_casting_the_model_keeps_rope_in_float32(tmp_path):
    # model.to(bfloat16) (as a training script might do) must not round the RoPE frequencies to 8 bits:
    # it then equals loading the checkpoint in bf16.
    hf_model(tie=True).save_pretrained(tmp_path)
    cast = Llama.from_pretrained(str(tmp_path)).to(torch.bfloat16)
    assert cast.inv_freq.dtype == torch.float32
    tokens = random_tokens()
    assert torch.equal(cast(tokens), Llama.from_pretrained(str(tmp_path), dtype=torch.bfloat16)(tokens))


@torch.no_grad()
def test_hidden_states_match_hf(tmp_path):
    hf = hf_model(tie=True)
    hf.save_pretrained(tmp_path)
    ours = Llama.from_pretrained(str(tmp_path))
    tokens = random_tokens(length=32)
    theirs = hf(tokens, output_hidden_states=True).hidden_states  # HF's last entry is after the final norm
    mine = ours.hidden_states(tokens)
    assert len(mine) == len(theirs) == 4
    for i in range(3):
        assert (mine[i] - theirs[i]).abs().max() <= 1e-4, f"hidden state {i}"
    assert (ours.norm(mine[3]) - theirs[3]).abs().max() <= 1e-4


def test_blocks_sharing_a_prefix_equal_the_blocks_on_the_whole_sequences():
    """Llama.blocks_sharing runs each distinct prefix once and the sequences' own positions after it: the
    stream equals that of `blocks` on the whole sequences (each prefix copied in front of its suffix) at
    those positions, from the first block or from a later one, and the gradients reach the prefix."""
    torch.manual_seed(0)
    args = ModelArgs(dim=32, n_layers=3, n_heads=4, n_kv_heads=2, ffn_hidden_dim=64, vocab_size=64, max_seq_len=64,
                     rope_scaling=None)
    model = Llama(args)
    prefix = torch.randn(2, 5, 32, requires_grad=True)
    suffixes, owner = torch.randn(3, 4, 32), torch.tensor([1, 0, 1])
    for first in (0, 1):
        whole = model.blocks(torch.cat([prefix[owner], suffixes], 1), first=first)[:, 5:]
        shared = model.blocks_sharing(prefix, suffixes, owner, first=first)
        assert torch.allclose(shared, whole, atol=1e-5), first
        g_whole, = torch.autograd.grad(whole.square().sum(), prefix)
        g_shared, = torch.autograd.grad(shared.square().sum(), prefix)
        assert g_shared.abs().sum() > 0 and torch.allclose(g_shared, g_whole, atol=1e-5), first
    assert not torch.allclose(shared[0], model.blocks_sharing(prefix, suffixes, torch.tensor([0, 0, 1]), first=1)[0])  # owner matters


# -----------------------------------------------------------------------------
# RoPE frequencies


def test_rope_scaling_pins_llama32_frequencies():
    # LLaMA 3.2: head_dim 64, theta 500000, factor 32, low 1, high 4, original context 8192.
    scaled = rope_inv_freq(64, 500000.0, RopeScaling(32.0, 1.0, 4.0, 8192)).tolist()
    base = [1.0 / 500000.0 ** (2 * i / 64) for i in range(32)]
    expected, kinds = [], []
    for f in base:  # the rule from Meta's apply_scaling, written out per frequency
        wavelen = 2 * math.pi / f
        if wavelen < 8192 / 4:
            expected.append(f), kinds.append("kept")
        elif wavelen > 8192 / 1:
            expected.append(f / 32), kinds.append("divided")
        else:
            smooth = (8192 / wavelen - 1) / (4 - 1)
            expected.append((1 - smooth) * f / 32 + smooth * f), kinds.append("blended")
    assert (kinds.count("kept"), kinds.count("blended"), kinds.count("divided")) == (15, 3, 14)
    assert kinds == ["kept"] * 15 + ["blended"] * 3 + ["divided"] * 14
    for got, want in zip(scaled, expected):
        assert got == pytest.approx(want, rel=1e-5)
    # ... and against transformers' own llama3 rope init
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = LlamaConfig(hidden_size=2048, num_attention_heads=32, rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE),
                         max_position_embeddings=131072)
    hf_inv_freq, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    assert torch.allclose(torch.tensor(scaled), hf_inv_freq, rtol=1e-6, atol=0)
    # Meta's reference model.py hard-codes factor 8 (LLaMA 3.1): that would differ from 3.2's numbers.
    assert not torch.allclose(rope_inv_freq(64, 500000.0, RopeScaling(8.0, 1.0, 4.0, 8192)), hf_inv_freq)


# -----------------------------------------------------------------------------
# ModelArgs

LLAMA_32_1B_CONFIG = {  # config.json of meta-llama/Llama-3.2-1B as published on the Hugging Face hub
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
    "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256,
}


def test_presets_and_hf_config():
    assert ModelArgs.from_hf_config(LLAMA_32_1B_CONFIG) == PRESETS["llama-3.2-1b"] == ModelArgs.preset("llama-3.2-1b")
    three = ModelArgs.preset("llama-3.2-3b")
    assert (three.dim, three.n_layers, three.n_heads, three.n_kv_heads, three.ffn_hidden_dim) == (3072, 28, 24, 8, 8192)
    tiny = ModelArgs.preset("tiny")
    assert (tiny.dim, tiny.n_layers, tiny.n_heads, tiny.n_kv_heads, tiny.ffn_hidden_dim, tiny.vocab_size) == \
        (128, 4, 4, 2, 384, Tokenizer().vocab_size)
    assert tiny.rope_scaling is None and tiny.tie_embeddings and tiny.max_seq_len == 512
    ModelArgs.preset("tiny").dim = 1  # a copy: the preset itself is unchanged
    assert PRESETS["tiny"].dim == 128
    with pytest.raises(ValueError, match="unknown preset 'llama-9b'.*tiny"):
        ModelArgs.preset("llama-9b")
    # transformers >= 5 writes rope_theta and the scaling into rope_parameters: the same model
    hf5 = {k: v for k, v in LLAMA_32_1B_CONFIG.items() if k not in ("rope_scaling", "rope_theta")}
    hf5["rope_parameters"] = {**LLAMA3_ROPE, "rope_theta": 500000.0}
    assert ModelArgs.from_hf_config(hf5) == PRESETS["llama-3.2-1b"]
    assert ModelArgs.from_hf_config({**LLAMA_32_1B_CONFIG, "rope_scaling": None}).rope_scaling is None


def test_hf_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="rope_type 'yarn'.*llama3"):
        ModelArgs.from_hf_config({**LLAMA_32_1B_CONFIG, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    with pytest.raises(ValueError, match="'hidden_size'"):
        ModelArgs.from_hf_config({k: v for k, v in LLAMA_32_1B_CONFIG.items() if k != "hidden_size"})
    with pytest.raises(ValueError, match="'mistral'"):
        ModelArgs.from_hf_config({**LLAMA_32_1B_CONFIG, "model_type": "mistral"})
    with pytest.raises(ValueError, match="attention_bias"):
        ModelArgs.from_hf_config({**LLAMA_32_1B_CONFIG, "attention_bias": True})


# -----------------------------------------------------------------------------
# save_pretrained: HF reads back what we write


@pytest.mark.parametrize("tie", [True, False])
def test_save_pretrained_loads_in_hf(tmp_path, tie):
    ours = tiny_model(tie_embeddings=tie)
    ours.save_pretrained(str(tmp_path))
    hf = LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    assert hf.config.tie_word_embeddings == tie
    tokens = random_tokens()
    assert (hf_logits(hf, tokens) - our_logits(ours, tokens)).abs().max() <= 1e-4
    again = Llama.from_pretrained(str(tmp_path))
    assert again.args == ours.args
    assert torch.equal(our_logits(again, tokens), our_logits(ours, tokens))


# -----------------------------------------------------------------------------
# generation and the KV cache


@torch.no_grad()
def greedy_reference(model, prompt, n):
    """Greedy decoding the slow, obvious way: the whole sequence through forward() at every step."""
    seq = list(prompt)
    for _ in range(n):
        seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    return seq[len(prompt):]


def test_kv_cache_generation_is_exact():
    model = tiny_model()
    prompts = [[1, 2, 3], [7], [250, 4, 4, 4, 9, 11, 12], [5, 6]]  # ragged: shortest first decoding position
    with_cache = model.generate(prompts, max_new_tokens=12)
    without_cache = model.generate(prompts, max_new_tokens=12, use_cache=False)
    assert with_cache == without_cache == [greedy_reference(model, p, 12) for p in prompts]
    assert len(set(map(tuple, with_cache))) > 1  # the prompts lead to different continuations
    # a batch given as a tensor
    batch = torch.tensor([[3, 1, 4, 1], [5, 9, 2, 6]])
    assert model.generate(batch, max_new_tokens=5) == [greedy_reference(model, p, 5) for p in batch.tolist()]
    assert all(layer.attention.cache_k is None for layer in model.layers)  # generate cleans up
    assert model.generate([[1, 2], [3]], max_new_tokens=0) == [[], []]


@torch.no_grad()
def test_kv_cache_chunks_match_full_forward():
    # Feeding a sequence in chunks through the cache (a chunk after a cached prefix needs a shifted causal
    # mask) gives the logits of one full forward pass.
    model = tiny_model()
    tokens = random_tokens(batch=2, length=40)
    full = model(tokens)
    model._setup_cache(2, 40)
    try:
        chunks = [model(tokens[:, a:b], start_pos=a) for a, b in ((0, 10), (10, 11), (11, 30), (30, 40))]
    finally:
        model._setup_cache(None, None)
    assert (torch.cat(chunks, dim=1) - full).abs().max() <= 1e-5


def test_generate_stops_at_eos_and_samples():
    model = tiny_model()
    prompt = [1, 2, 3]
    greedy = model.generate([prompt], max_new_tokens=10)[0]
    eos = greedy[4]
    cut = greedy[: greedy.index(eos)]
    assert model.generate([prompt], max_new_tokens=10, eos_id=eos)[0] == cut
    # top_k=1 leaves only the argmax to sample from: greedy again, whatever the temperature
    assert model.generate([prompt], max_new_tokens=10, temperature=5.0, top_k=1)[0] == greedy
    torch.manual_seed(0)
    sampled = model.generate([prompt] * 4, max_new_tokens=10, temperature=2.0)
    assert all(len(s) == 10 and all(0 <= t < 300 for t in s) for s in sampled)
    assert len(set(map(tuple, sampled))) > 1


# -----------------------------------------------------------------------------
# block_hook and hidden_states


@torch.no_grad()
def test_block_hook():
    model = tiny_model()
    tokens = random_tokens(length=20)
    plain = model(tokens)
    seen = []

    def identity(i, h):
        seen.append((i, tuple(h.shape)))
        return h

    assert torch.equal(model(tokens, block_hook=identity), plain)
    assert seen == [(i, (2, 20, 64)) for i in range(3)]
    # a hook's return value is what the next block reads
    changed = model(tokens, block_hook=lambda i, h: h * 2 if i == 1 else h)
    assert (changed - plain).abs().max() > 1e-2
    # hidden_states: after the embedding and after each block; norm + output of the last gives the logits
    states = model.hidden_states(tokens)
    assert len(states) == 4 and torch.equal(states[0], model.tok_embeddings(tokens))
    assert torch.equal(model.output(model.norm(states[-1])), plain)


# -----------------------------------------------------------------------------
# tokenizers


def test_llama3_tokenizer_ids():
    tok = Tokenizer(LLAMA3_TOKENIZER)
    assert tok.encode("This is a test sentence.", bos=True, eos=True) == [128000, 2028, 374, 264, 1296, 11914, 13, 128001]
    assert (tok.bos_id, tok.eos_id, tok.n_words, tok.vocab_size) == (128000, 128001, 128256, 128256)
    assert tok.special_tokens["<|start_header_id|>"] == 128006
    assert tok.special_tokens["<|end_header_id|>"] == 128007
    assert tok.special_tokens["<|eot_id|>"] == 128009
    assert tok.special_tokens["<|reserved_special_token_245|>"] == 128255
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer

    assert tok.special_tokens == MetaTokenizer.get_instance().special_tokens  # all 256, names and ids


TEXTS = [
    "Hello, world! Numbers 1234567 and 3.14159.",
    "Größenwahn, naïve café; Здравствуй, мир; 你好，世界; こんにちは; مرحبا بالعالم; नमस्ते",
    "def fib(n):\n    if n < 2:\n        return n\n\treturn fib(n - 1) + fib(n - 2)  # {'a': [1, 2]}\r\n",
    "emoji 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 and trailing spaces   \n\n",
    "runs longer than tiktoken's regex can take: " + " " * 60_001 + "x" * 30_000 + " end",
]


def test_llama3_tokenizer_round_trip_and_matches_meta():
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer

    meta = MetaTokenizer.get_instance()
    tok = Tokenizer(LLAMA3_TOKENIZER)
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids == meta.encode(text, bos=False, eos=False)
        assert tok.decode(ids) == text


def test_special_token_text_needs_allowed_special():
    tok = Tokenizer(LLAMA3_TOKENIZER)
    text = "<|start_header_id|>user<|end_header_id|>"
    plain = tok.encode(text)  # default: ordinary text, several ids, none of them special
    assert len(plain) > 3 and all(i < 128000 for i in plain) and tok.decode(plain) == text
    assert tok.encode(text, allowed_special="all") == [128006, 882, 128007]
    assert tok.encode(text, allowed_special={"<|end_header_id|>"})[-1] == 128007
    assert tok.encode(text, allowed_special={"<|end_header_id|>"})[0] != 128006


def test_byte_tokenizer():
    tok = Tokenizer()
    assert (tok.bos_id, tok.eos_id, tok.vocab_size) == (256, 257, 512)
    assert tok.encode("Hi é", bos=True, eos=True) == [256, 72, 105, 32, 0xC3, 0xA9, 257]
    for text in TEXTS:
        ids = tok.encode(text)
        assert ids == list(text.encode("utf-8"))
        assert tok.decode(ids) == text
    assert tok.encode("<|eot_id|>", allowed_special="all") == [256 + 9]
    assert tok.decode([256 + 6]) == "<|start_header_id|>"
    assert tok.decode([0xC3]) == "\ufffd"  # half a character: replaced, no exception


def test_sentencepiece_tokenizer(tmp_path):
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the quick brown fox jumps over the lazy dog", "sorting a list of numbers",
                                 "fibonacci of ten is fifty five", "hello world, hello tokenizer"] * 50))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "sp"), vocab_size=60,
                                   model_type="bpe", bos_id=1, eos_id=2, unk_id=0, minloglevel=2)
    path = str(tmp_path / "sp.model")
    tok = Tokenizer(path)
    sp = spm.SentencePieceProcessor(model_file=path)
    text = "the lazy fox sorts numbers"
    assert tok.encode(text, bos=True, eos=True) == [1] + sp.encode(text) + [2]
    assert (tok.bos_id, tok.eos_id, tok.vocab_size) == (1, 2, 60)
    assert tok.decode(tok.encode(text)) == text


def test_tokenizer_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.model"):
        Tokenizer(str(tmp_path / "nowhere.model"))
    for name, data in (("random.model", os.urandom(2000)), ("text.model", b"just some words\nnot a tokenizer\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"{name} is not a tokenizer"):
            Tokenizer(str(tmp_path / name))


# -----------------------------------------------------------------------------
# loading errors name the problem


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small untied HF checkpoint on disk: the state dict and config to make broken copies from."""
    path = tmp_path_factory.mktemp("hf")
    hf_model(tie=False).save_pretrained(path)
    with open(path / "config.json") as f:
        return load_file(path / "model.safetensors"), json.load(f)


def write_checkpoint(path, state, config):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    return str(path)


def test_loading_errors_name_the_problem(tmp_path, checkpoint):
    state, config = checkpoint
    Llama.from_pretrained(write_checkpoint(tmp_path / "ok", state, config))  # the unbroken one loads
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Llama.from_pretrained(str(tmp_path / "missing"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        Llama.from_pretrained(str(tmp_path / "empty"))
    missing = {k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"}
    with pytest.raises(CheckpointError, match="missing tensor.*model.layers.1.mlp.up_proj.weight"):
        Llama.from_pretrained(write_checkpoint(tmp_path / "m", missing, config))
    untied_no_head = {k: v for k, v in state.items() if k != "lm_head.weight"}
    with pytest.raises(CheckpointError, match="missing tensor.*lm_head.weight"):
        Llama.from_pretrained(write_checkpoint(tmp_path / "h", untied_no_head, config))
    extra = {**state, "model.layers.0.self_attn.q_norm.weight": torch.ones(16)}
    with pytest.raises(CheckpointError, match="unexpected tensor 'model.layers.0.self_attn.q_norm.weight'"):
        Llama.from_pretrained(write_checkpoint(tmp_path / "u", extra, config))
    more_layers = {**state, "model.layers.3.input_layernorm.weight": torch.ones(64)}
    with pytest.raises(CheckpointError, match="unexpected tensor 'model.layers.3.input_layernorm.weight'"):
        Llama.from_pretrained(write_checkpoint(tmp_path / "l", more_layers, config))
    wrong = {**state, "model.layers.2.self_attn.k_proj.weight": torch.zeros(64, 64)}
    with pytest.raises(CheckpointError, match=r"'model.layers.2.self_attn.k_proj.weight' has shape \(64, 64\).*\(32, 64\)"):
        Llama.from_pretrained(write_checkpoint(tmp_path / "s", wrong, config))
    broken_json = write_checkpoint(tmp_path / "j", state, config)
    with open(os.path.join(broken_json, "config.json"), "w") as f:
        f.write('{"hidden_size": 64,')
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        Llama.from_pretrained(broken_json)
    with pytest.raises(ValueError, match="rope_type 'longrope'"):
        bad_rope = {**config, "rope_parameters": {"rope_type": "longrope", "rope_theta": 1e4}}
        Llama.from_pretrained(write_checkpoint(tmp_path / "r", state, bad_rope))


def test_truncated_or_corrupt_safetensors(tmp_path, checkpoint):
    state, config = checkpoint
    path = write_checkpoint(tmp_path / "t", state, config)
    file = os.path.join(path, "model.safetensors")
    data = open(file, "rb").read()
    open(file, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors file.*truncated"):
        Llama.from_pretrained(path)
    open(file, "wb").write(b"\x00not a safetensors file" * 20)
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable safetensors file"):
        Llama.from_pretrained(path)
    os.remove(file)
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor"):
        Llama.from_pretrained(path)


def test_missing_shard_is_named(tmp_path):
    hf_model(tie=True).save_pretrained(tmp_path, max_shard_size="60KB")
    with open(tmp_path / "model.safetensors.index.json") as f:
        shard = sorted(set(json.load(f)["weight_map"].values()))[1]
    os.remove(tmp_path / shard)
    with pytest.raises(FileNotFoundError, match=shard):
        Llama.from_pretrained(str(tmp_path))


# -----------------------------------------------------------------------------
# the demo


def test_demo_runs():
    result = subprocess.run([sys.executable, "model.py"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "new tokens:" in result.stdout


@pytest.mark.parametrize("key, value, message", [
    ("hidden_size", "64", 'hidden_size to "64"; it must be a positive integer'),
    ("hidden_size", 64.0, "hidden_size to 64.0; it must be a positive integer"),
    ("num_hidden_layers", None, "num_hidden_layers to null"),
    ("num_attention_heads", 0, "num_attention_heads to 0"),
    ("num_key_value_heads", 0, "num_key_value_heads to 0"),
    ("vocab_size", True, "vocab_size to true"),
    ("tie_word_embeddings", "false", 'tie_word_embeddings to "false"; it must be true or false'),
    ("rope_parameters", {**LLAMA3_ROPE, "rope_theta": -5e5}, "rope_theta to -500000.0; it must be a positive number"),
    ("rms_norm_eps", "1e-5", "rms_norm_eps"),
    ("rope_scaling", "llama3", 'rope_scaling to "llama3"; it must be an object or null'),
    ("rope_parameters", {**LLAMA3_ROPE, "rope_theta": 5e5, "factor": None}, "factor to null"),
    ("max_position_embeddings", 1.5, "max_position_embeddings"),
    (None, [1, 2], "holds a list, not an object"),
])
def test_config_values_of_the_wrong_type_name_the_file_and_key(tmp_path, checkpoint, key, value, message):
    """Not a TypeError or ZeroDivisionError from deep inside the model: a CheckpointError that says what to fix."""
    state, config = checkpoint
    path = write_checkpoint(tmp_path / "c", state, value if key is None else {**config, key: value})
    with pytest.raises(CheckpointError) as e:
        Llama.from_pretrained(path)
    assert message in str(e.value) and os.path.join(path, "config.json") in str(e.value)


def test_nan_weights_and_a_tensor_in_two_shards_are_refused(tmp_path, checkpoint):
    state, config = checkpoint
    bad = dict(state)
    bad["model.layers.1.mlp.down_proj.weight"] = state["model.layers.1.mlp.down_proj.weight"].clone()
    bad["model.layers.1.mlp.down_proj.weight"][3, 5] = float("nan")
    with pytest.raises(CheckpointError, match="'model.layers.1.mlp.down_proj.weight' holds NaN"):
        Llama.from_pretrained(write_checkpoint(tmp_path / "nan", bad, config))

    path = tmp_path / "two"
    os.makedirs(path)
    json.dump(config, open(path / "config.json", "w"))
    names = sorted(state)
    first, second = names[: len(names) // 2], names[len(names) // 2:] + names[:1]  # names[0] is in both
    for shard, keys in (("model-00001-of-00002.safetensors", first), ("model-00002-of-00002.safetensors", second)):
        save_file({k: state[k] for k in keys}, path / shard, metadata={"format": "pt"})
    weight_map = {**{k: "model-00002-of-00002.safetensors" for k in second},
                  **{k: "model-00001-of-00002.safetensors" for k in first}}
    json.dump({"weight_map": weight_map}, open(path / "model.safetensors.index.json", "w"))
    with pytest.raises(CheckpointError, match=f"'{names[0]}' is in two shards"):
        Llama.from_pretrained(str(path))


def test_a_path_that_is_a_file_says_so(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file; give the directory"):
        Llama.from_pretrained(str(tmp_path / "model.safetensors"))


def test_a_single_file_beside_a_stale_index_is_what_hf_loads(tmp_path):
    """An export (one model.safetensors) over an older sharded directory: HF loads the single file, and so do we.
    Our save_pretrained also removes the stale index and shards, as HF's does."""
    old, new = hf_model(tie=True, seed=0), hf_model(tie=True, seed=1)
    old.save_pretrained(tmp_path / "dir", max_shard_size="60KB")
    new.save_pretrained(tmp_path / "single")
    os.replace(tmp_path / "single" / "model.safetensors", tmp_path / "dir" / "model.safetensors")
    assert os.path.exists(tmp_path / "dir" / "model.safetensors.index.json")
    tokens = random_tokens(length=16)
    hf = LlamaForCausalLM.from_pretrained(tmp_path / "dir", dtype=torch.float32).eval()
    assert torch.allclose(hf_logits(hf, tokens), hf_logits(new, tokens), atol=1e-5)  # HF took the single file
    ours = Llama.from_pretrained(str(tmp_path / "dir"))
    torch.testing.assert_close(our_logits(ours, tokens), hf_logits(new, tokens), atol=1e-4, rtol=1e-4)

    old.save_pretrained(tmp_path / "again", max_shard_size="60KB")
    ours.save_pretrained(str(tmp_path / "again"))
    assert not [f for f in os.listdir(tmp_path / "again") if f.startswith("model-") or f.endswith("index.json")]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "again" / "model.safetensors").st_mode & 0o777 == 0o666 & ~umask  # not 0600
