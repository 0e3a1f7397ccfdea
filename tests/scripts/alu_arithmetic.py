"""The paper's comparison of its two ALUs, on a small standalone model: modular addition learned end to end
through one machine step, with lookup tables or with circuits (reasoning.py sections 1 and 1b).

    python tests/scripts/alu_arithmetic.py           # the README table: both ALUs, 2 encodings, 3 seeds (minutes)
    python tests/scripts/alu_arithmetic.py --soft    # how far each circuit is from its table on random soft inputs

The model. Each operand a, b in [0, 128) is written as digit tokens: its 7 binary digits, or its 3
decimal digits. A head per operand (a digit embedding shared by the positions, plus a position embedding,
an MLP, a softmax) gives a distribution over the V = 128 values. The two distributions fill the argument
registers of the compiled `def add(a, b): return a + b`, a `Machine` runs it (mean field: the op applied to
the distributions, by the ALU the machine was built with), and the loss is the cross-entropy of the
returned value's distribution against (a + b) mod 128. Nothing tells a head which value its operand is:
it learns that from sums alone, as the paper's argument heads do (issue 10's `--interface args`).

The splits. Operand values in HELD_OUT = [96, 128) never appear in training (their tokens do: a digit
embedding is shared by the positions, and every position holds each digit in training). Of the pairs of the
other values a random half trains; "test" is the other half (values seen, pairs not); "held-out" is every
pair with an operand in HELD_OUT. Both ALUs get the same seeds: the same data and the same initial weights.
The score is exact match of the argmax of the returned distribution, on up to 4,000 pairs per split.
"""

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch
import torch.nn as nn

from compiler import PRIMITIVES, compile_source
from reasoning import CIRCUITS, Machine, apply_op, apply_table

V, HELD_OUT = 128, range(96, 128)
ENCODINGS = {"binary": lambda x: [(x >> i) & 1 for i in range(6, -1, -1)],  # high digit first, as written
             "decimal": lambda x: [x // 100, x // 10 % 10, x % 10]}


class OperandHead(nn.Module):
    """Digit tokens [B, n_digits] -> a distribution over the V values [B, V]."""

    def __init__(self, n_digits, dim=32, hidden=128):
        super().__init__()
        self.digit = nn.Embedding(10, dim)
        self.position = nn.Parameter(0.1 * torch.randn(n_digits, dim))
        self.mlp = nn.Sequential(nn.Linear(n_digits * dim, hidden), nn.ReLU(), nn.Linear(hidden, V))

    def forward(self, digits):
        return self.mlp((self.digit(digits) + self.position).flatten(1)).softmax(-1)


def splits(seed):
    """(train, test, held-out): lists of operand pairs (a, b)."""
    seen = [v for v in range(V) if v not in HELD_OUT]
    pairs = [(a, b) for a in seen for b in seen]
    random.Random(seed).shuffle(pairs)
    held = [(a, b) for a in range(V) for b in range(V) if a in HELD_OUT or b in HELD_OUT]
    random.Random(seed).shuffle(held)
    return pairs[:len(pairs) // 2], pairs[len(pairs) // 2:], held


def train_and_score(alu, encoding, seed, iters, batch=128, lr=3e-3):
    """Trains the two heads through the machine; returns ({split: exact match}, {split: the fraction of
    the sum's bits right [7], low bit first}, seconds of training)."""
    torch.manual_seed(seed)
    code = ENCODINGS[encoding]
    heads = nn.ModuleList([OperandHead(len(code(0))), OperandHead(len(code(0)))])
    machine = Machine(compile_source("def add(a, b):\n    return a + b\n"), n_cells=1, max_depth=1, alu=alu)
    tensors = lambda pairs: (torch.tensor([[code(a), code(b)] for a, b in pairs]),  # [P, 2, n_digits]
                             torch.tensor([(a + b) % V for a, b in pairs]))  # [P]

    def run(digits):  # [B, 2, n_digits] -> the returned value's distribution [B, V]
        B = digits.shape[0]
        registers = torch.stack([heads[0](digits[:, 0]), heads[1](digits[:, 1])], 1)  # [B, R = 2, V]: a0, a1
        memory = machine.one_hot(torch.zeros(B, 1, dtype=torch.long))  # [B, 1, V], unused
        return machine(machine.entry_pc(["add"] * B), registers, memory).value

    train, test, held = splits(seed)
    digits, sums = tensors(train)
    opt = torch.optim.Adam(heads.parameters(), lr=lr)
    gen, t = torch.Generator().manual_seed(seed), time.perf_counter()
    for _ in range(iters):
        i = torch.randint(len(train), (batch,), generator=gen)
        loss = -run(digits[i]).gather(1, sums[i, None]).clamp_min(1e-30).log().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds, exact, bits = time.perf_counter() - t, {}, {}
    with torch.no_grad():
        for name, pairs in (("train", train), ("test", test), ("held-out", held)):
            d, s = tensors(pairs[:4000])
            guess = run(d).argmax(-1)
            exact[name] = (guess == s).float().mean().item()
            bits[name] = 1 - (((guess ^ s)[:, None] >> torch.arange(7)) & 1).float().mean(0)  # [7]
    return exact, bits, seconds


def compare(encodings, seeds, iters):
    print(f"modular addition mod {V} learned through one machine step; held-out operands {HELD_OUT.start}-"
          f"{HELD_OUT.stop - 1}; {iters} iterations of batch 128; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'encoding':<8} {'alu':<8} {'train':>13} {'test':>13} {'held-out':>13}   {'test/held-out per seed':<24} s/run")
    results = {}
    for encoding in encodings:
        for alu in ("tables", "circuits"):
            runs = results[encoding, alu] = [train_and_score(alu, encoding, seed, iters) for seed in seeds]
            mean = lambda split: 100 * sum(r[0][split] for r in runs) / len(runs)
            spread = lambda split: 100 * (max(r[0][split] for r in runs) - min(r[0][split] for r in runs)) / 2
            cells = " ".join(f"{mean(s):>6.1f} ±{spread(s):>4.1f}%" for s in ("train", "test", "held-out"))
            per_seed = " ".join(f"{100 * r[0]['test']:.0f}/{100 * r[0]['held-out']:.0f}" for r in runs)
            print(f"{encoding:<8} {alu:<8} {cells}   {per_seed:<24} {sum(r[2] for r in runs) / len(runs):>5.0f}", flush=True)
    print("(exact match of the sum, mean over seeds ± half their range)")
    print("bits of the sum right (%), bit 0 (low) to bit 6, mean over seeds:")
    print(f"{'encoding':<8} {'alu':<8} {'test':<28} held-out")
    for (encoding, alu), runs in results.items():
        row = lambda split: " ".join(f"{100 * x:>3.0f}" for x in sum(r[1][split] for r in runs) / len(runs))
        print(f"{encoding:<8} {alu:<8} {row('test'):<28} {row('held-out')}")


# The compiler branch's bitwise primitives (coord CONTRACTS.md section 2), until they land in PRIMITIVES.
REFERENCE = {"bitand": lambda a, b, V: a & b, "bitor": lambda a, b, V: a | b, "bitxor": lambda a, b, V: a ^ b,
             "lshift": lambda a, b, V: a * pow(2, b, V) % V, "rshift": lambda a, b, V: a >> b, **PRIMITIVES}


def one_hot_plus_noise(eps):
    """A one-hot with a fraction eps of its mass spread at random."""
    def make(B, gen):
        noise = torch.rand(B, V, generator=gen, dtype=torch.float64)
        top = nn.functional.one_hot(torch.randint(V, (B,), generator=gen), V)
        return (1 - eps) * top + eps * noise / noise.sum(-1, keepdim=True)
    return make


def random_weights_on(k):
    """Random weights on k random values."""
    def make(B, gen):
        p = torch.zeros(B, V, dtype=torch.float64)
        p.scatter_(1, torch.rand(B, V, generator=gen).argsort(-1)[:, :k], torch.rand(B, k, generator=gen, dtype=torch.float64))
        return p / p.sum(-1, keepdim=True)
    return make


SOFT_INPUTS = {"eps=0.01": one_hot_plus_noise(0.01), "eps=0.1": one_hot_plus_noise(0.1),
               "2 values": random_weights_on(2), "8 values": random_weights_on(8),
               "softmax(2N)": lambda B, gen: (2 * torch.randn(B, V, generator=gen, dtype=torch.float64)).softmax(-1)}


def soft_distance(B=2000):
    """Mean total-variation distance, sum |circuit - table| / 2, between each circuit and its table on
    random soft operands of the kinds of SOFT_INPUTS, from nearly one-hot to spread out (softmax(2N): of
    2 x standard normal logits); H is their mean entropy."""
    gen, kinds = torch.Generator().manual_seed(0), list(SOFT_INPUTS)
    inputs = {k: (make(B, gen), make(B, gen)) for k, make in SOFT_INPUTS.items()}
    entropy = lambda p: (-(p * p.clamp_min(1e-300).log2()).sum(-1)).mean().item()
    print(f"mean total-variation distance between circuit and table, V = {V}, {B} random operand pairs per column")
    print(f"{'op':<7}" + "".join(f"{k:>14}" for k in kinds))
    print(f"{'':<7}" + "".join(f"{'H = %.1f bits' % entropy(inputs[k][0]):>14}" for k in kinds))
    for name in CIRCUITS:
        f = REFERENCE[name]
        table = torch.tensor([[f(a, b, V) for b in range(V)] for a in range(V)])
        tv = [(apply_op(name, p, q, alu="circuits") - apply_table(table, p, q)).abs().sum(-1).mean().item() / 2
              for p, q in inputs.values()]
        print(f"{name:<7}" + "".join(f"{x:>14.4f}" for x in tv))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soft", action="store_true", help="circuit against table on random soft inputs")
    parser.add_argument("--encodings", nargs="+", default=["binary", "decimal"], choices=sorted(ENCODINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=1500)
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # confident heads underflow to denormal floats, which slow a CPU ~10x
    if args.soft:
        soft_distance()
    else:
        compare(args.encodings, args.seeds, args.iters)
