"""Section 5: the tokenizers."""

import base64
import json
import os
import re
from typing import Optional

from .checkpoints import _gguf_metadata, _read_json, resolve_checkpoint

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
