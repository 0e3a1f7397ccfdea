"""Section 6: `python -m model`, a demo."""

import torch

from model import Llama, ModelArgs, Tokenizer

# -----------------------------------------------------------------------------
# 6. Demo: an untrained tiny model continues a prompt (gibberish: the point is that everything runs).

def main():
    torch.manual_seed(0)
    tokenizer = Tokenizer()
    model = Llama(ModelArgs.preset("tiny")).eval()
    n_params = sum(p.numel() for p in model.parameters())
    prompt = "The Fibonacci numbers are"
    ids = tokenizer.encode(prompt, bos=True)
    new = model.generate([ids], max_new_tokens=20, temperature=0.8, top_k=50, eos_id=tokenizer.eos_id)[0]
    print(f"tiny LLaMA, {n_params / 1e6:.2f}M parameters, byte tokenizer (vocab {tokenizer.vocab_size})")
    print(f"prompt: {prompt!r} -> {ids}")
    print(f"new tokens: {new}")
    print(f"decoded: {tokenizer.decode(new)!r}")


if __name__ == "__main__":
    main()
