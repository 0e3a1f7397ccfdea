"""Where the training loss sends credit for one value: per slot, the gradient on P(that value).

    python tests/scripts/heads_credit.py out/sort-args-default 3           # 16 training prompts holding a 3
    python tests/scripts/heads_credit.py out/sort-args-default 3 --n 32

A diagnostic for README "The paper's interface" (the loss): loads a trained `--interface args` run
(`train.load_trained`), draws training prompts of its task whose numbers include the value, computes the
loss that training computes on them (the read-back's and the machine's, `AugmentedLlama.forward` with
targets, in training mode: the same drawn threads), and prints, for each slot of the first prompts, the
number it holds, the heads' likeliest value there, P(value) and dL/dP(value) (negative: the loss pushes
P(value) up). Then two means over every prompt: dL/dP(value) at the slots that hold the value and at the
slots that do not. A value that the heads read wrong everywhere, with no push at its own slot and a
push at the others, is one that the credit per word gives to the wrong slots.
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import torch  # noqa: E402

from by_phrasing import model_task, slot_values  # noqa: E402
from tasks import get_task  # noqa: E402
from train import encode_batch, load_trained  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a run's out_dir (--interface args)")
    p.add_argument("value", type=int, help="the value whose credit to follow")
    p.add_argument("--n", type=int, default=16, help="prompts holding the value")
    p.add_argument("--show", type=int, default=4, help="prompts printed slot by slot")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    model, tokenizer = load_trained(a.run)
    heads = model.layer.arg_heads if model.layer is not None else None
    if heads is None:
        sys.exit("error: this needs a run of --interface args")
    task, rng = get_task(model_task(a.run)), random.Random(a.seed)
    batch, truth = [], []
    for _ in range(100_000):
        values, answer = task.sample(rng, "train")
        slots = slot_values(values["args"])
        if a.value in slots:
            batch.append((rng.choice(task.train_phrasings).format(**values), answer))
            truth.append(slots)
        if len(batch) == a.n:
            break
    else:
        sys.exit(f"error: no training prompt of {task.name} holds {a.value}")
    tokens, targets, call_pos = encode_batch(tokenizer, batch, "cpu")[:3]
    seen = {}
    read = heads.read

    def keep(*args):
        slots, unread = read(*args)
        slots.retain_grad()
        seen["slots"] = slots
        return slots, unread

    heads.read = keep
    model.train()
    loss, _ = model(tokens, call_pos, targets=targets)
    loss.backward()
    P, grad = seen["slots"].detach(), seen["slots"].grad
    for i in range(min(a.show, len(batch))):
        print(batch[i][0])
        for s, held in enumerate(truth[i]):
            print(f"  slot {s}: holds {held:3d}, likeliest {int(P[i, s].argmax()):3d}, P({a.value}) {P[i, s, a.value]:.4f}, "
                  f"dL/dP({a.value}) {float(grad[i, s, a.value]):9.3g}")
    held = torch.tensor(truth) == a.value
    print(f"mean dL/dP({a.value}): {float(grad[..., a.value][held].mean()):.3g} at the slots holding it, "
          f"{float(grad[..., a.value][~held].mean()):.3g} at the others ({len(batch)} prompts)")


if __name__ == "__main__":
    main()
