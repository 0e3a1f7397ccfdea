"""What `--grad mean_field` computes on the text tape: exact on a hard tape, nothing on a barely soft one.

    python tests/scripts/mean_field_tape.py

The reasoning layer's write gate gives each prompt token a probability of writing its characters; a fresh
layer's is sigmoid(6) = 0.9975 (README "How it works"). The mean field writes each cell as that mixture of
the character and NUL, and runs fib_task on it in superposition. For each gate probability, the untrained
tiny model (the gate's bias set by hand) on fib(0..7): the mass that halted and the probability the soft run
gives the right answer text (the product over its characters and the final NUL), mean over the 8 prompts.
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from model import Llama, ModelArgs, Tokenizer  # noqa: E402
from reasoning import AugmentedLlama  # noqa: E402
from tasks import N_CELLS, compile_library, solve_with_library  # noqa: E402


def soft_answers(model, tokenizer, prompts, bias):
    """(mass that halted [B], P(the right answer text) [B]) of the mean-field run with the gate's bias set."""
    ids = [tokenizer.encode(p, bos=True) for p in prompts]
    T = max(map(len, ids))
    tokens = torch.tensor([i + [tokenizer.eos_id] * (T - len(i)) for i in ids])  # [B, T]
    calls = torch.tensor([len(i) - 1 for i in ids])
    with torch.no_grad():
        model.layer.gate.bias.fill_(bias)
        _, run = model(tokens, calls)
    p_answer = []
    for b, prompt in enumerate(prompts):
        want = solve_with_library("fib_task", prompt)
        answer = run["answer"][b]  # [N + 1, V]: P(the o-th answer character is c)
        p_answer.append(torch.prod(torch.stack([answer[o, ord(c)] for o, c in enumerate(want)] + [answer[len(want), 0]])))
    return 1 - run["not_halted"], torch.stack(p_answer)


def main():
    torch.manual_seed(0)
    tokenizer = Tokenizer()
    model = AugmentedLlama(Llama(ModelArgs.preset("tiny")), tokenizer, compile_library(), ["fib_task"],
                           n_cells=N_CELLS, grad="mean_field", max_steps=600).eval()
    prompts = [f"fib({n})=" for n in range(8)]
    print(f"mean-field fib_task on the tape, fib(0..7), max_steps 600; torch {torch.__version__}")
    print(f"{'gate bias':>9} {'P(write)':>10} {'halted':>7} {'P(answer)':>10} {'s':>5}")
    for bias in (6.0, 9.0, 12.0, 40.0):
        t0 = time.time()
        halted, p_answer = soft_answers(model, tokenizer, prompts, bias)
        print(f"{bias:>9.0f} {1 / (1 + torch.exp(torch.tensor(-bias)).item()):>10.6f} {float(halted.mean()):>7.3f} "
              f"{float(p_answer.mean()):>10.4f} {time.time() - t0:>5.1f}")


if __name__ == "__main__":
    main()
