"""Exact match per phrasing: which prompts a trained model gets right, one template at a time.

    python tests/scripts/by_phrasing.py out/sort4-args-ordinal-400              # 30 prompts per phrasing
    python tests/scripts/by_phrasing.py out/sort4-args-ordinal-400 --n 100
    python tests/scripts/by_phrasing.py out/sort4-args-ordinal-400 --show "ascending order [62,88,30,9]:"
    python tests/scripts/by_phrasing.py out/add-args-scratch --truth
    python tests/scripts/by_phrasing.py out/sort-ema-seed0 --misses

A diagnostic for README "The paper's interface": a split mixes its phrasings, and a reader that
generalises to one held-out phrasing and not to the other shows only as their average. Loads the run
(`train.load_trained`), draws `--n` prompts of the test split's numbers for each training and each
held-out phrasing of its task (the same draws for every phrasing), and prints the share answered exactly
(and, for an args run, the share whose numbers the heads read right: every slot's likeliest value).
With --show (an args run with the ordinal reader): each position of that prompt with its mark and its
likeliest value, then each slot's three likeliest values. With --truth (an args run): for each phrasing
what the heads give the true arguments, V x P(the true value) averaged over slots and prompts (1 is what
uniform heads give, V a sure right one, below 1 heads that avoid the true value), the heads' entropy in
nats, and with the ordinal reader the marks' sum (the numbers the reader counts; the entry takes S).
With --misses (an args run): every prompt of the test split (the one results.json's `test` counts)
answered wrong, with what the heads read (each slot's likeliest value), and how many of the misses were
read whole (lost in the copy of the machine's answer) or misread.
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import torch  # noqa: E402

from tasks import ARGS_FORMS, Task, get_task  # noqa: E402
from reasoning import unit  # noqa: E402
from train import ask, checkpoint_candidates, load_trained  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a run's out_dir (its latest checkpoint is loaded)")
    p.add_argument("--n", type=int, default=30, help="prompts per phrasing")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--show", default=None, help="a prompt whose marks and values to print instead")
    p.add_argument("--truth", action="store_true", help="print what the heads give the true arguments instead")
    p.add_argument("--misses", action="store_true", help="list the test split's wrong answers instead")
    a = p.parse_args()
    model, tokenizer = load_trained(a.run)
    if a.show is not None:
        return show(model, tokenizer, a.show)
    task = get_task(model_task(a.run))
    if a.misses:
        return misses(model, tokenizer, task)
    rng = random.Random(a.seed)
    draws = [task.sample(rng, "test") for _ in range(a.n)]
    args_run = model.layer is not None and model.layer.arg_heads is not None
    if a.truth:
        print(f"{'':8}  {'V P(true)':>9}  {'entropy':>7}  {'marks':>5}  phrasing")
    for kind, phrasings in (("train", task.train_phrasings), ("held out", task.test_phrasings)):
        for phrasing in phrasings:
            prompts = [phrasing.format(**values) for values, _ in draws]
            if a.truth:
                print(f"{kind:8}  " + truth(model, tokenizer, prompts, [v["args"] for v, _ in draws]) + f"  {phrasing}")
                continue
            answers = ask(model, tokenizer, prompts)
            right = sum(got.text == want for got, (_, want) in zip(answers, draws))
            heads = "" if not args_run else f"  heads {read_right(model, tokenizer, prompts, draws) / a.n:6.3f}"
            print(f"{kind:8}  {right / a.n:6.3f}{heads}  {phrasing}")


@torch.no_grad()
def read_right(model, tokenizer, prompts, draws):
    """How many prompts the argument heads read whole: every slot's likeliest value is the true one. Next
    to the exact match it tells the two halves apart: a prompt read right and answered wrong was lost in
    the copy of the machine's answer, not in the reading."""
    heads = arg_heads(model, ordinal=False)
    return sum(bool((heads(*states(model, tokenizer, p))[0].argmax(-1) == torch.tensor(slot_values(v["args"]))).all())
               for p, (v, _) in zip(prompts, draws))


def arg_heads(model, ordinal):
    heads = model.layer.arg_heads if model.layer is not None else None
    if heads is None or (ordinal and heads.reader == "query"):
        sys.exit("error: this needs a run of --interface args" + (" with the ordinal reader" if ordinal else ""))
    return heads


@torch.no_grad()
def states(model, tokenizer, prompt):
    """(h [1, T, D], call_pos [1], e [1, T, D]) for one prompt, as the layer passes them to the heads: the
    stream after its block and the tokens' own vectors, each of unit length."""
    ids = tokenizer.encode(prompt, bos=True)
    tokens, call_pos = torch.tensor([ids]), torch.tensor([len(ids) - 1])
    seen = {}
    model.llama(tokens, 0, block_hook=lambda i, h: seen.setdefault(i, h))
    return unit(seen[model.layer_after]), call_pos, unit(model.llama.output.weight[tokens])


def slot_values(args):
    """A sample's arguments as the heads' slots see them: ints, and each cell of a list, in order."""
    return [v for a in args for v in (a if isinstance(a, (list, tuple)) else [a])]


@torch.no_grad()
def truth(model, tokenizer, prompts, args):
    """One line: mean V P(true value) over slots and prompts, mean entropy, mean marks' sum (ordinal)."""
    heads = arg_heads(model, ordinal=False)
    scaled, entropy, marks = [], [], []
    for prompt, arg in zip(prompts, args):
        want = torch.tensor(slot_values(arg))
        slots, mark, _ = heads.explain(*states(model, tokenizer, prompt)) if heads.reader != "query" else (
            heads(*states(model, tokenizer, prompt)), None, None)
        scaled.append(slots.shape[-1] * slots[0].gather(1, want[:, None]).mean())
        entropy.append(-(slots[0] * slots[0].clamp_min(1e-30).log()).sum(-1).mean())
        marks.append(mark.sum() if mark is not None else float("nan"))
    mean = lambda xs: sum(float(x) for x in xs) / len(xs)  # noqa: E731
    return f"{mean(scaled):9.3f}  {mean(entropy):7.3f}  {mean(marks):5.2f}"


@torch.no_grad()
def misses(model, tokenizer, task):
    """Each wrong answer of the test split: the prompt, the answer wanted and given, the values read."""
    heads = arg_heads(model, ordinal=False)
    examples = graded_examples(task)
    answers = ask(model, tokenizer, [p for p, _, _ in examples])
    read_whole = wrong = 0
    for (prompt, want, args), got in zip(examples, answers):
        if got.text == want:
            continue
        wrong += 1
        read = heads(*states(model, tokenizer, prompt))[0].argmax(-1).tolist()
        truth = slot_values(args)
        read_whole += read == truth
        print(f"{prompt!r}: wanted {want!r}, answered {got.text!r}; read {read}"
              + ("" if read == truth else f", not {truth}"))
    print(f"{wrong} of {len(examples)} answered wrong: {read_whole} read whole (lost in the copy), "
          f"{wrong - read_whole} misread")


def graded_examples(task):
    """The test split as results.json's `test` counts it, with each prompt's arguments: (prompt, answer,
    args) drawn as `Task.examples` draws them (the same seed, the same order)."""
    if type(task).examples is not Task.examples:
        sys.exit(f"error: --misses: {task.name}'s test split is not drawn by Task.examples")
    rng = random.Random(f"{task.name}/test/0")
    return [task.example_with_args(rng, "test") for _ in range(task.eval_n.get("test", 200))]


@torch.no_grad()
def show(model, tokenizer, prompt):
    """The ordinal reader at work on one prompt: every position's mark and likeliest value, each slot."""
    heads = arg_heads(model, ordinal=True)
    ids = tokenizer.encode(prompt, bos=True)
    slots, marks, values = heads.explain(*states(model, tokenizer, prompt))
    for t, text in enumerate([tokenizer.decode([i]) for i in ids] + ["(end)", "(tail)"][:marks.shape[1] - len(ids)]):
        print(f"{text!r:>22}  mark {marks[0, t]:.2f}  value {values[0, t].argmax():3d} (p {values[0, t].max():.2f})")
    for s, dist in enumerate(slots[0]):
        top = dist.topk(3)
        print(f"slot {s}: " + ", ".join(f"{int(v)} ({p:.2f})" for p, v in zip(top.values, top.indices)))


def model_task(run):
    """The task a run trained on, from its newest checkpoint's settings (with --interface args, the
    paper's form it ran as: sort is sort8)."""
    names = checkpoint_candidates(run)
    if not names:
        sys.exit(f"error: no checkpoint in {run}")
    args = torch.load(os.path.join(run, names[0], "state.pt"), map_location="cpu", weights_only=False)["args"]
    task = args["task"]
    return ARGS_FORMS.get(task, task) if args.get("interface") == "args" else task


if __name__ == "__main__":
    main()
