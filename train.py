"""
Train a LLaMA 3.2 with the neurally compiled library on an algorithmic task, end to end.

    python train.py --task fib                 # the augmented model, tiny preset, on this CPU
    python train.py --task fib --baseline      # the same LLaMA without the reasoning layer
    python train.py --task sort --init /path/to/Llama-3.2-1B --device cuda

Read top to bottom, like nanoGPT's train.py: settings, model, data, one plain loop (AdamW, warmup and
cosine decay, gradient clipping, periodic evaluation, checkpoints), then the results. The loss is the
next-token cross-entropy on the answer tokens only; gradients flow from it through the read-back, the
machine and the tape back into the transformer.

A checkpoint is a directory `out_dir/ckpt-<iter>/` with `model.safetensors` (every trainable tensor) and
`state.pt` (settings, iteration, optimizer state). It is written under a temporary name and renamed, and
`out_dir/latest` (replaced atomically) names the newest one, so a run killed while writing leaves the
previous checkpoint loadable. `--resume` continues from it: the data of iteration i depends only on
(seed, i), so N steps, stop, resume to 2N gives the same losses as 2N steps straight.
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model

from model import Llama, ModelArgs, PRESETS, Tokenizer
from reasoning import AugmentedLlama
from tasks import N_CELLS, compile_library, get_task


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="fib", help="fib, sort, add, gcd or all")
    p.add_argument("--preset", default="tiny", help=f"model shape when training from scratch: {', '.join(PRESETS)}")
    p.add_argument("--init", default=None, help="a LLaMA 3.2 checkpoint directory in Hugging Face layout")
    p.add_argument("--baseline", action="store_true", help="train the same LLaMA without the reasoning layer")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when present)")
    p.add_argument("--dtype", default="auto", help="float32 or bfloat16 autocast (auto: bfloat16 on cuda)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 1e-2 with --train "
                   "interface, which trains few parameters; 2e-3 with --train all)")
    p.add_argument("--min_lr", type=float, default=None, help="final learning rate (default: lr / 10)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--weight_decay", type=float, default=0.1)
    p.add_argument("--grad_clip", type=float, default=1.0)
    p.add_argument("--eval_interval", type=int, default=100)
    p.add_argument("--eval_n", type=int, default=None, help="examples per split (default: the task's own)")
    p.add_argument("--log_interval", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out_dir", default=None, help="default: out/<task>[-baseline]")
    p.add_argument("--resume", action="store_true", help="continue from out_dir's latest checkpoint")
    p.add_argument("--train", default="interface", choices=["interface", "all"],
                   help="only the interface (the reasoning layer and the final norm's weight, the logit scale) "
                        "or every parameter; --baseline always trains every parameter")
    p.add_argument("--library", default="frozen", choices=["frozen", "trainable"],
                   help="keep the compiled programs fixed, or train their logits too")
    p.add_argument("--layer_after", type=int, default=None, help="block the reasoning layer follows (default: middle)")
    p.add_argument("--grad", default="enumerate", choices=["enumerate", "mean_field"],
                   help="how gradients cross the machine: exact expectation over the program choice on the "
                        "hard machine, or one soft differentiable run (see reasoning.ReasoningLayer)")
    p.add_argument("--max_steps", type=int, default=20_000, help="machine steps before a run counts as not halted")
    p.add_argument("--max_steps_train", type=int, default=3_000, help="the same while training")
    return p.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    if args.baseline:
        args.train = "all"
    args.lr = args.lr or (1e-2 if args.train == "interface" else 2e-3)
    args.min_lr = args.min_lr or args.lr / 10
    torch.manual_seed(args.seed)
    out_dir = args.out_dir or os.path.join("out", args.task + ("-baseline" if args.baseline else ""))
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    dtype = ("bfloat16" if device.startswith("cuda") else "float32") if args.dtype == "auto" else args.dtype
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    try:
        task, tokenizer, model = build(args, device)
    except (ValueError, FileNotFoundError) as e:  # unknown task or preset, not a LLaMA checkpoint, ...
        sys.exit(f"error: {e}")
    params = select_parameters(model, args)
    print(f"{sum(p.numel() for p in params):,} trainable parameters; "
          f"{'baseline' if args.baseline else 'augmented'} on {device} ({dtype})")

    optimizer = torch.optim.AdamW([
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": args.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ], lr=args.lr, betas=(0.9, 0.95))

    start_iter = 0
    if args.resume:
        start_iter = load_checkpoint(out_dir, model, optimizer, args)
        print(f"resumed from {out_dir} at iter {start_iter}")

    # ---- the loop ----------------------------------------------------------
    losses = {}
    t0 = time.time()
    for it in range(start_iter, args.iters):
        lr = learning_rate(it, args)
        for g in optimizer.param_groups:
            g["lr"] = lr
        rng = random.Random(f"{args.seed}/{it}")  # the data of iteration `it` depends on nothing else
        batch = [task.example(rng, "train") for _ in range(args.batch_size)]
        tokens, targets, call_pos = encode_batch(tokenizer, batch, device)
        with autocast:
            logits, _ = model(tokens, call_pos)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)
        if not torch.isfinite(loss):
            sys.exit(f"error: the loss is {loss.item()} at iter {it}; try a lower --lr (now {args.lr})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        optimizer.step()
        losses[it] = loss.item()
        if it % args.log_interval == 0 or it == args.iters - 1:
            dt = (time.time() - t0) * 1000 / (it - start_iter + 1)
            print(f"iter {it}: loss {loss.item():.4f}, lr {lr:.2e}, time {dt:.0f}ms", flush=True)
        if (it + 1) % args.eval_interval == 0 and it + 1 < args.iters:
            save_checkpoint(out_dir, model, optimizer, args, it + 1)
            print_results(evaluate(model, tokenizer, task, args, device, autocast, quick=True))
    if args.iters > start_iter:
        save_checkpoint(out_dir, model, optimizer, args, args.iters)
    train_time = time.time() - t0

    # ---- results -----------------------------------------------------------
    results = evaluate(model, tokenizer, task, args, device, autocast)
    results["_run"] = {"task": args.task, "baseline": args.baseline, "iters": args.iters,
                       "train_seconds": round(train_time, 1), "device": device, "losses": losses}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print_results(results)
    return results


def build(args, device):
    """The task, the tokenizer and the model: a LLaMA (a preset from scratch, or --init's checkpoint with
    its tokenizer if the directory has Meta's original/tokenizer.model, else the byte tokenizer), with the
    reasoning layer unless --baseline."""
    task = get_task(args.task)
    if args.init:
        llama = Llama.from_pretrained(args.init, device=device, dtype=torch.float32)
        tok_path = os.path.join(args.init, "original", "tokenizer.model")
        tokenizer = Tokenizer(tok_path if os.path.exists(tok_path) else None)
    else:
        llama = Llama(ModelArgs.preset(args.preset)).to(device)
        tokenizer = Tokenizer()
    if tokenizer.vocab_size > llama.args.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, the model only {llama.args.vocab_size}")
    entries = None if args.baseline else task_entries(task)
    model = AugmentedLlama(llama, tokenizer, compile_library(), entries, layer_after=args.layer_after,
                           grad=args.grad, max_steps=args.max_steps, max_steps_train=args.max_steps_train,
                           n_cells=N_CELLS, trainable_library=args.library == "trainable")
    return task, tokenizer, model.to(device)


def task_entries(task):
    """The library entry points the choice head chooses among: every task's, for `all`."""
    tasks = getattr(task, "tasks", [task])
    return [t.entry for t in tasks]


def select_parameters(model, args):
    """Which parameters train (`--train`, `--library`); the rest get requires_grad=False."""
    for name, p in model.named_parameters():
        if name.startswith("layer.machine."):
            p.requires_grad_(args.library == "trainable")
        elif args.train == "interface":
            p.requires_grad_(name.startswith(("layer.", "llama.norm.")))
    return [p for p in model.parameters() if p.requires_grad]


def learning_rate(it, args):
    """Linear warmup, then cosine decay to min_lr."""
    if it < args.warmup:
        return args.lr * (it + 1) / args.warmup
    progress = (it - args.warmup) / max(1, args.iters - args.warmup)
    return args.min_lr + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (args.lr - args.min_lr)


# ---- data --------------------------------------------------------------------


def encode_batch(tokenizer, batch, device):
    """Prompt/answer pairs -> tokens [B, T], targets [B, T] (-100 off the answer), call positions [B].

    A sequence is <bos> prompt answer <eos>; the call position is the prompt's last token, and the
    targets are the answer and <eos>, predicted from the call position on.
    """
    seqs, calls = [], []
    for prompt, answer in batch:
        p = tokenizer.encode(prompt, bos=True)
        seqs.append(p + tokenizer.encode(answer, eos=True))
        calls.append(len(p) - 1)
    T = max(len(s) for s in seqs) - 1
    tokens = torch.full((len(seqs), T), tokenizer.eos_id, dtype=torch.long)
    targets = torch.full((len(seqs), T), -100, dtype=torch.long)
    for i, (s, c) in enumerate(zip(seqs, calls)):
        tokens[i, :len(s) - 1] = torch.tensor(s[:-1])
        targets[i, c:len(s) - 1] = torch.tensor(s[c + 1:])
    return tokens.to(device), targets.to(device), torch.tensor(calls, device=device)


# ---- evaluation --------------------------------------------------------------


@torch.no_grad()
def greedy_answers(model, tokenizer, prompts, device, autocast, max_new_tokens):
    """Greedy decoding of a batch; the machine runs once per prompt and its result is reused."""
    model.eval()
    encoded = [tokenizer.encode(p, bos=True) for p in prompts]
    calls = torch.tensor([len(e) - 1 for e in encoded], device=device)
    lengths = [len(e) for e in encoded]
    T = max(lengths) + max_new_tokens
    tokens = torch.full((len(prompts), T), tokenizer.eos_id, dtype=torch.long, device=device)
    for i, e in enumerate(encoded):
        tokens[i, :len(e)] = torch.tensor(e)
    out, done, cache = [[] for _ in prompts], [False] * len(prompts), None
    for _ in range(max_new_tokens):
        n = max(lengths)
        with autocast:
            logits, cache = model(tokens[:, :n], calls, cache=cache)
        for i in range(len(prompts)):
            if done[i]:
                continue
            nxt = int(logits[i, lengths[i] - 1].argmax())
            if nxt == tokenizer.eos_id:
                done[i] = True
                continue
            out[i].append(nxt)
            tokens[i, lengths[i]] = nxt
            lengths[i] += 1
        if all(done):
            break
    model.train()
    return [tokenizer.decode(o) for o in out], cache


def evaluate(model, tokenizer, task, args, device, autocast, quick=False, batch_size=50):
    """Exact match of greedy answers on every split but train: {split: {"exact_match", "n"}}.

    For `--task all`, also the choice head's accuracy: its argmax against the task's program.
    """
    results = {}
    for split in [s for s in task.splits if s != "train"]:
        examples = task.examples(split, n=args.eval_n)
        if quick:
            examples = examples[:50]
        correct, chosen, n = 0, 0, 0
        for i in range(0, len(examples), batch_size):
            chunk = examples[i:i + batch_size]
            longest = max(len(a) for _, a in chunk)
            answers, cache = greedy_answers(model, tokenizer, [p for p, _ in chunk], device, autocast, longest + 8)
            correct += sum(got == want for got, (_, want) in zip(answers, chunk))
            if cache is not None and hasattr(task, "task_of"):
                entry = model.layer.entries.index(task.task_of(split).entry)
                chosen += int((cache["choice"].argmax(-1) == entry).sum())
            n += len(chunk)
        results[split] = {"exact_match": correct / n, "n": n}
        if hasattr(task, "task_of") and not args.baseline:
            results[split]["choice_accuracy"] = chosen / n
    return results


def print_results(results):
    print(f"{'split':<14} {'exact match':>11} {'n':>5}")
    for split, r in results.items():
        if not split.startswith("_"):
            extra = f"  choice {r['choice_accuracy']:.3f}" if "choice_accuracy" in r else ""
            print(f"{split:<14} {r['exact_match']:>11.3f} {r['n']:>5}{extra}")


# ---- checkpoints -------------------------------------------------------------

CHECKPOINT_KEYS = ("task", "preset", "init", "baseline", "library", "layer_after", "grad", "train", "seed")


def save_checkpoint(out_dir, model, optimizer, args, it):
    """Write out_dir/ckpt-<it>/ under a temporary name, rename it, then point out_dir/latest at it."""
    os.makedirs(out_dir, exist_ok=True)
    name = f"ckpt-{it}"
    tmp = os.path.join(out_dir, name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_model(model, os.path.join(tmp, "model.safetensors"))  # stores tied weights once
    torch.save({"iter": it, "args": vars(args), "optimizer": optimizer.state_dict()}, os.path.join(tmp, "state.pt"))
    final = os.path.join(out_dir, name)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    with open(os.path.join(out_dir, "latest.tmp"), "w") as f:
        f.write(name)
    os.replace(os.path.join(out_dir, "latest.tmp"), os.path.join(out_dir, "latest"))
    for old in os.listdir(out_dir):  # keep only the newest checkpoint
        if old.startswith("ckpt-") and old != name and not old.endswith(".tmp"):
            shutil.rmtree(os.path.join(out_dir, old), ignore_errors=True)


def load_checkpoint(out_dir, model, optimizer, args):
    """Load out_dir's latest checkpoint into model and optimizer; return the iteration to continue from."""
    latest = os.path.join(out_dir, "latest")
    if not os.path.exists(latest):
        sys.exit(f"error: --resume: no checkpoint in {out_dir} (no 'latest' file)")
    path = os.path.join(out_dir, open(latest).read().strip())
    state = torch.load(os.path.join(path, "state.pt"), map_location="cpu", weights_only=False)
    saved = state["args"]
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {getattr(args, k)!r}" for k in CHECKPOINT_KEYS
            if saved.get(k) != getattr(args, k)]
    if diff:
        sys.exit(f"error: the checkpoint in {path} is from another configuration ({'; '.join(diff)})")
    missing, unexpected = load_model(model, os.path.join(path, "model.safetensors"), strict=False)
    if missing or unexpected:
        sys.exit(f"error: checkpoint {path} does not fit this model: missing {missing}, unexpected {unexpected}")
    optimizer.load_state_dict(state["optimizer"])
    return state["iter"]


if __name__ == "__main__":
    main()
