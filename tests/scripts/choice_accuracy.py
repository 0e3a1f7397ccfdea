"""
Print the choice head's accuracy per split, and per held-out phrasing, for a `train.py --task all` run's last
checkpoint: the program it picks (argmax) against the task's program. No decoding, no machine: only the
transformer up to the reasoning layer and the choice head, so it takes about a minute here where train.py's evaluation
(greedy decoding of every answer) takes long with a pretrained model on a CPU.

    python tests/scripts/choice_accuracy.py out/all-smollm2 --eval_n 20
"""

import argparse
import collections
import os
import sys

import torch
from safetensors.torch import load_model

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import train  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("run", help="a train.py --task all out_dir")
    p.add_argument("--eval_n", type=int, default=None, help="examples per split (default: the task's own)")
    a = p.parse_args()
    ckpt = os.path.join(a.run, open(os.path.join(a.run, "latest")).read().strip())
    saved = torch.load(os.path.join(ckpt, "state.pt"), map_location="cpu", weights_only=False)["args"]
    args = train.get_args(["--task", saved["task"]] + (["--init", saved["init"]] if saved["init"] else []))
    for key in ("layer_after", "grad", "interface", "max_threads", "library", "preset"):
        setattr(args, key, saved[key])
    task, tokenizer, model = train.build(args, "cpu")
    load_model(model, os.path.join(ckpt, "model.safetensors"), strict=False)
    model.eval()
    print(f"{ckpt} (iter {torch.load(os.path.join(ckpt, 'state.pt'), weights_only=False)['iter']}, "
          f"layer after block {model.layer_after})")
    print(f"{'split':<14} {'choice':>7} {'n':>5}   by phrasing (right/n)")
    for split in [s for s in task.splits if s != "train"]:
        examples = task.examples(split, n=a.eval_n)
        want = model.layer.entries.index(task.task_of(split).entry)
        sub = task.task_of(split)
        by_phrase = collections.defaultdict(lambda: [0, 0])
        right, wrong = 0, collections.Counter()
        for prompt, _ in examples:
            tokens = torch.tensor([tokenizer.encode(prompt, bos=True)])
            call = torch.tensor([tokens.shape[1] - 1])
            seen = {}

            def hook(i, h):
                if i == model.layer_after:
                    seen["h"] = h
                    raise StopIteration  # the blocks after the layer are not needed
                return h

            with torch.no_grad():
                try:
                    model.llama.blocks(model.llama.tok_embeddings(tokens), 0, hook)
                except StopIteration:
                    pass
                h = seen["h"]
                h = h * torch.rsqrt(h.float().pow(2).sum(-1, keepdim=True) + 1e-6)  # as ReasoningLayer.forward
                chosen = int(model.layer.choose_program(h, call).argmax(-1))
            ok = chosen == want
            right += ok
            wrong.update([] if ok else [model.layer.entries[chosen]])
            phrase = next((ph for ph in sub.phrasings(split.partition("/")[2]) if matches(ph, prompt)), "?")
            by_phrase[phrase][0] += ok
            by_phrase[phrase][1] += 1
        detail = "; ".join(f"{ph!r} {r}/{n}" for ph, (r, n) in by_phrase.items())
        instead = "; wrong: " + ", ".join(f"{e} {k}" for e, k in wrong.most_common()) if wrong else ""
        print(f"{split:<14} {right / len(examples):>7.3f} {len(examples):>5}   {detail}{instead}")


def matches(phrasing, prompt):
    """Whether `prompt` was made from `phrasing` (its literal text around the {fields}, in order)."""
    import re

    pattern = "".join(".*?" if part.startswith("{") else re.escape(part)
                      for part in re.split(r"(\{\w+\})", phrasing))
    return re.fullmatch(pattern, prompt, re.S) is not None


if __name__ == "__main__":
    main()
