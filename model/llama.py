"""Sections 1-3: the configuration, the pieces of a block, and the model."""

import copy
import math
from dataclasses import dataclass
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
        from .checkpoints import args_from_hf_config  # section 4 builds on this section: imported when used
        return args_from_hf_config(config, cls)

    def to_hf_config(self) -> dict:
        """The config.json that HF transformers reads back: `hf_config`, section 4."""
        from .checkpoints import hf_config
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

    def forward(self, x, cos, sin, start_pos: int):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # [B, H, T, hd]
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [B, KV, T, hd]
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # [B, KV, T, hd]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.cache_k is not None:
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

    def forward(self, x, cos, sin, start_pos: int):
        h = x + self.attention(self.attention_norm(x), cos, sin, start_pos)
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

    def blocks(self, h, start_pos: int = 0, block_hook: Optional[BlockHook] = None):
        """Run every block on the residual stream h [B, T, D]; block_hook(i, h) replaces h after block i."""
        cos, sin = self.rope(start_pos, h.shape[1], h.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, start_pos)
            if block_hook is not None:
                h = block_hook(i, h)
        return h

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
        from .checkpoints import load_gguf, load_pretrained, resolve_checkpoint
        path = resolve_checkpoint(path)
        if path.endswith(".gguf"):
            return load_gguf(cls, path, device, dtype)
        return load_pretrained(cls, path, device, dtype)

    def save_pretrained(self, path: str, dtype: Optional[torch.dtype] = None) -> None:
        """Write config.json + model.safetensors in Hugging Face layout; see section 4."""
        from .checkpoints import save_pretrained
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
