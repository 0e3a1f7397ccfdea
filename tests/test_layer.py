"""The reasoning layer and the augmented LLaMA (reasoning.ReasoningLayer, reasoning.AugmentedLlama).

References: the library run in plain Python (tasks.solve_with_library, Program.run), the plain LLaMA's
logits, greedy decoding by recomputing every step, and Meta's LLaMA 3 tokenizer.
"""

import os

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_augmented():
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    import tasks

    torch.manual_seed(0)
    tokenizer = Tokenizer()
    llama = Llama(ModelArgs.preset("tiny"))
    model = AugmentedLlama(llama, tokenizer, tasks.compile_library(), ["fib_task", "sort_task", "add_task"],
                           n_cells=tasks.N_CELLS)
    return model, tokenizer, tasks


def encode(tokenizer, prompts):
    ids = [tokenizer.encode(p, bos=True) for p in prompts]
    T = max(len(i) for i in ids)
    tokens = torch.tensor([i + [tokenizer.eos_id] * (T - len(i)) for i in ids])
    return tokens, torch.tensor([len(i) - 1 for i in ids])


def test_layer_starts_as_the_plain_llama(tiny_augmented):
    """Zero-initialised read-back: the augmented model's logits equal the LLaMA's at the start."""
    model, tokenizer, _ = tiny_augmented
    tokens, calls = encode(tokenizer, ["fib(7)=", "sort 3 1 2="])
    logits, run = model(tokens, calls)
    assert torch.equal(logits, model.llama(tokens))
    assert run["choice"].shape == (2, 3)


def test_tape_holds_the_prompt_text_and_the_machine_answers_from_it(tiny_augmented):
    """The open gates lay the prompt's characters out from cell 0 (bos writes nothing); each program
    runs on it, and reading from the returned address gives the library's answer text."""
    model, tokenizer, tasks = tiny_augmented
    prompts = ["fib(9)=", "sort 5 3 9 1=", "12+345="]
    tokens, calls = encode(tokenizer, prompts)
    h = model.llama.tok_embeddings(tokens)
    cells, gate, _ = model.layer.write_tape(h, tokens, calls)
    for b, p in enumerate(prompts):
        assert cells[b].tolist() == tasks.prompt_tape(p)
    run = model.layer.run(h, tokens, calls, max_steps=20_000)
    for e, entry in enumerate(model.layer.entries):
        for b, p in enumerate(prompts):
            if run["choice"][b, e] > 1e-3:  # pairs below MIN_CHOICE are not run
                text = tasks.read_text(run["cells"][e, b].tolist(), int(run["start"][e, b]))
                assert text == tasks.solve_with_library(entry, p, model.layer.machine.program)
    want = {"fib(9)=": "34", "sort 5 3 9 1=": "1 3 5 9", "12+345=": "357"}
    for b, p in enumerate(prompts):
        e = ["fib_task", "sort_task", "add_task"][b]
        i = model.layer.entries.index(e)
        assert tasks.read_text(run["cells"][i, b].tolist(), int(run["start"][i, b])) == want[p]


def test_read_back_positions_read_successive_answer_characters(tiny_augmented):
    """Position call + o reads cell start + o, for an answer longer than any in training: with the
    choice on sort, it reads exactly the output vector of the answer's next character (then NUL: eos)."""
    model, tokenizer, _ = tiny_augmented
    prompt, answer = "sort 9 8 7 6 5 4 3 2 1 0 11 12 10 13 14 15 16 17 18 19 20=", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"
    tokens, _ = encode(tokenizer, [prompt + answer])
    calls = torch.tensor([len(tokenizer.encode(prompt, bos=True)) - 1])
    h = model.llama.tok_embeddings(tokens)
    bias = model.layer.choose.bias.detach().clone()
    with torch.no_grad():
        model.layer.choose.bias.copy_(torch.tensor([-30.0, 30.0, -30.0]))  # choose sort_task
        run = model.layer.run(h, tokens, calls, max_steps=20_000)
        model.layer.choose.bias.copy_(bias)
    E = model.llama.output.weight
    read = model.layer.read_back(run, tokens, calls, E)[0, :, 0]  # [T, D]
    c = int(calls[0])
    for o, ch in enumerate(answer):
        assert torch.allclose(read[c + o], E[model.layer.char_token_ids[ord(ch)]], atol=1e-5), o
    assert model.layer.char_token_ids[0] == tokenizer.eos_id


def test_mean_field_mode_sends_gradients_through_the_machine_to_the_heads():
    """grad='mean_field': one soft run; the loss reaches the choice and gate heads through every step."""
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    from compiler import compile_source

    program = compile_source('''
def echo(m):
    return 0

def first_plus_one(m):
    m[0] = m[0] + 1
    return 0
''')
    torch.manual_seed(0)
    tokenizer = Tokenizer()
    args = ModelArgs.preset("tiny")
    args.n_layers, args.dim, args.n_heads, args.n_kv_heads, args.ffn_hidden_dim = 2, 32, 2, 1, 64
    model = AugmentedLlama(Llama(args), tokenizer, program, ["echo", "first_plus_one"], grad="mean_field",
                           n_cells=8, max_steps=50)
    model.layer.gain.data.fill_(1.0)
    tokens, calls = encode(tokenizer, ["ab", "cd"])
    tokens = torch.cat([tokens, tokens[:, -1:]], 1)
    logits, run = model(tokens, calls)
    logits[:, -1].logsumexp(-1).sum().backward()
    assert run["value"].shape == (2, 128)
    assert model.layer.choose.weight.grad.abs().sum() > 0
    assert model.layer.gate.bias.grad.abs() > 0


def test_tape_and_read_back_with_the_real_llama3_tokenizer():
    """With LLaMA 3's BPE (tokens of several characters, e.g. '123'), a token writes all its characters
    and a position's read offset counts characters, not tokens: the --init path of a real checkpoint."""
    import importlib.util
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    import tasks

    spec = importlib.util.find_spec("llama_models")
    path = os.path.join(os.path.dirname(spec.origin), "llama3", "tokenizer.model")
    tokenizer = Tokenizer(path)
    args = ModelArgs.preset("tiny")
    args.vocab_size, args.dim, args.n_layers, args.n_heads, args.n_kv_heads = 128256, 32, 2, 2, 1
    torch.manual_seed(0)
    model = AugmentedLlama(Llama(args), tokenizer, tasks.compile_library(), ["add_task"], n_cells=tasks.N_CELLS)
    prompt, answer = "What is 12345 plus 678?", "13023"
    ids = tokenizer.encode(prompt, bos=True)
    full = ids + tokenizer.encode(answer)
    assert len(full) - len(ids) < len(answer)  # the answer has multi-character tokens
    tokens, calls = torch.tensor([full]), torch.tensor([len(ids) - 1])
    h = model.llama.tok_embeddings(tokens)
    cells, _, _ = model.layer.write_tape(h, tokens, calls)
    assert cells[0].tolist() == tasks.prompt_tape(prompt)
    run = model.layer.run(h, tokens, calls, max_steps=20_000)
    text = tasks.read_text(run["cells"][0, 0].tolist(), int(run["start"][0, 0]))
    assert text == answer
    off = model.layer.offsets(tokens, calls)[0, :, 0].tolist()
    c = len(ids) - 1
    emitted = 0
    for t in range(c, len(full)):
        assert off[t] == emitted
        if t + 1 < len(full):
            emitted += len(tokenizer.decode([full[t + 1]]))


def test_cached_generation_equals_recomputing_every_step(tiny_augmented):
    """AugmentedLlama.generate (machine once, KV cache per group of equal prompt lengths) gives the same
    greedy tokens as recomputing the whole sequence, read-back included, at every step."""
    model, tokenizer, _ = tiny_augmented
    prompts = [tokenizer.encode(p, bos=True) for p in ["fib(5)=", "sort 5 3 9 1=", "2+3=", "fib(3)="]]
    with torch.no_grad():
        model.layer.gain.fill_(1.0)
        model.layer.out_proj.weight.normal_(0, 0.05)
        got, _ = model.generate(prompts, 8, eos_id=tokenizer.eos_id)
        for p, g in zip(prompts, got):
            seq = list(p)
            for _ in range(8):
                tokens = torch.tensor([seq])
                logits, _ = model(tokens, torch.tensor([len(p) - 1]))
                nxt = int(logits[0, -1].argmax())
                if nxt == tokenizer.eos_id:
                    break
                seq.append(nxt)
            assert g == seq[len(p):]
        assert sum(len(g) for g in got) >= 4
        model.layer.gain.zero_()
        model.layer.out_proj.weight.zero_()
