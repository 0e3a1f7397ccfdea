"""How alike a trained model's vectors of the ten digits are: their cosine similarities.

    python tests/scripts/token_vectors.py out/sort-det-seed2                    # one line: mean, closest pair
    python tests/scripts/token_vectors.py out/sort-det-seed2 out/sort-vg-seed2  # one line a run
    python tests/scripts/token_vectors.py out/sort-det-seed2 --matrix           # and the 10 x 10 table

A diagnostic for README "The paper's interface" (`--vector_grad`): the reasoning layer reads a character
back, copies it to the output and reads the prompt's tokens through the token vectors (the embedding
table, tied to the output head), so two digits whose vectors are close are confused by all of them at
once. Loads each run (`train.load_trained`) and prints the mean cosine over the 45 pairs of digits and
the closest pair; with --matrix the whole table.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import torch  # noqa: E402

from train import load_trained  # noqa: E402


def digit_cosines(model, tokenizer):
    """[10, 10]: the cosine similarity of the digits' token vectors (each digit is one token)."""
    ids = []
    for d in range(10):
        token = tokenizer.encode(str(d))
        if len(token) != 1:
            raise ValueError(f"the digit {d} is {len(token)} tokens with this tokenizer, not one")
        ids.append(token[0])
    vectors = torch.nn.functional.normalize(model.llama.tok_embeddings.weight.detach().float()[ids], dim=-1)
    return vectors @ vectors.T


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="runs' out_dirs (each one's latest checkpoint is loaded)")
    p.add_argument("--matrix", action="store_true", help="also print every pair")
    a = p.parse_args()
    for run in a.runs:
        model, tokenizer = load_trained(run)
        cos = digit_cosines(model, tokenizer)
        pairs = cos.masked_fill(torch.eye(10, dtype=torch.bool), float("-inf"))
        i, j = divmod(int(pairs.argmax()), 10)
        off = cos[~torch.eye(10, dtype=torch.bool)]
        print(f"{run}: digits' cosine mean {float(off.mean()):.2f}, closest {i} and {j} at {float(cos[i, j]):.2f}")
        if a.matrix:
            print("     " + " ".join(f"{d:>5}" for d in range(10)))
            for d in range(10):
                print(f"{d:>4} " + " ".join(f"{float(x):5.2f}" for x in cos[d]))


if __name__ == "__main__":
    main()
