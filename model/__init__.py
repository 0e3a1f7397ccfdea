"""
LLaMA 3.2: the model, Hugging Face checkpoints in and out, and the tokenizer.

Read it in this order (llama.py holds sections 1-3, checkpoints.py 4, tokenizer.py 5, __main__.py 6):
  1. ModelArgs: the configuration, named presets, reading and writing a HF config.json.
  2. The pieces of a block: RMSNorm, RoPE with llama3 frequency scaling, grouped-query Attention,
     the SwiGLU FeedForward.
  3. Llama: embedding -> n_layers blocks -> norm -> output. forward() takes a block_hook, the one place
     where the rest of the project (the reasoning layer) reaches into the network; generate() uses a KV cache.
  4. Loading and saving checkpoints in Hugging Face layout (config.json + safetensors), and loading llama.cpp's
     GGUF files (the `gguf` package, an optional dependency: requirements-pretrained.txt).
  5. Tokenizer: byte-level BPE on tiktoken (Meta's LLaMA 3 file, HF's tokenizer.json, a GGUF's own), a
     byte-level tokenizer that needs no file, or a SentencePiece model; the checkpoint's chat template.
  6. A demo: `python -m model`.

Parameter names are Meta's (tok_embeddings, layers.0.attention.wq, feed_forward.w1, ...), as in the paper's
code and llama2.c; section 4 holds the table that maps them to Hugging Face's names.
"""

from .llama import (PRESETS, Attention, FeedForward, Llama, ModelArgs, RMSNorm, RopeScaling,  # noqa: F401
                    TransformerBlock, apply_rope, rope_inv_freq, sample)
from .checkpoints import (PRETRAINED, CheckpointError, args_from_hf_config, hf_config, hf_name,  # noqa: F401
                          load_gguf, load_pretrained, resolve_checkpoint, save_pretrained, set_default_mode)
from .tokenizer import SPECIAL_TOKENS, Tokenizer  # noqa: F401
