"""Can the argument heads read the numbers at all? They are told them here (no machine in between).

    python tests/scripts/heads_direct.py --task add_mod --reader query           # the LLaMA trains too (--train all)
    python tests/scripts/heads_direct.py --task add_mod --reader query --frozen  # only the heads train
    python tests/scripts/heads_direct.py --task sort4 --reader query

A diagnostic for README "The paper's interface": the heads of `--interface args` are trained with the
true argument values as labels (cross-entropy per slot; list cells in the prompt's order), on the same
model, prompts and batch as train.py. Prints the loss and the share of slots whose likeliest value is
right every 25 iterations. What the heads cannot learn when told the answer, they cannot learn through
the machine either.
"""
import argparse
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from reasoning import unit  # noqa: E402
from train import build, encode_batch, get_args, resolve_defaults  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="add_mod", help="a task with an args entry point (fib, add_mod, sort4, ...)")
    p.add_argument("--iters", type=int, default=400)
    p.add_argument("--frozen", action="store_true", help="train only the heads (the LLaMA stays as initialised)")
    p.add_argument("--reader", default=None, choices=["ordinal", "runs", "query"],
                   help="train.py's --reader (its default)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--lr", type=float, default=None, help="default 1e-2 frozen, else 2e-3 (train.py's)")
    a = p.parse_args()
    reader = ["--reader", a.reader] if a.reader else []
    args = get_args(["--task", a.task, "--interface", "args", "--max_threads", "8", *reader])
    resolve_defaults(args)  # train.py's reader for the task
    torch.manual_seed(0)
    task, tokenizer, model = build(args, "cpu")
    heads = model.layer.arg_heads
    params = list(heads.parameters()) if a.frozen else list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=a.lr or (1e-2 if a.frozen else 2e-3))
    t0 = time.time()
    for it in range(a.iters):
        rng = random.Random(it)
        batch = [task.example_with_args(rng, "train") for _ in range(a.batch_size)]
        tokens, _, call_pos = encode_batch(tokenizer, [(q, ans) for q, ans, _ in batch], "cpu")
        values = torch.tensor([[v for x in xs for v in (x if isinstance(x, list) else [x])] for _, _, xs in batch])
        state = {}

        def hook(i, h):
            if i == model.layer_after:
                state["h"] = h
            return h

        model.llama(tokens, 0, block_hook=hook)
        e = unit(model.llama.output.weight[tokens])  # the tokens' own vectors (the runs reader reads them)
        probs = heads(unit(state["h"]), call_pos, e)  # [B, S, V], read as the layer passes them
        loss = F.nll_loss(probs.clamp_min(1e-9).log().flatten(0, 1), values.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if it % 25 == 0 or it == a.iters - 1:
            right = (probs.argmax(-1) == values).float().mean()
            print(f"iter {it}: loss {loss.item():.3f}, slots right {right.item():.3f}, {time.time() - t0:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
