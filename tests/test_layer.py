"""The reasoning layer and the augmented LLaMA (reasoning.ReasoningLayer, reasoning.AugmentedLlama).

References: the library run in plain Python (tasks.solve_with_library, Program.run), the plain LLaMA's
logits, greedy decoding by recomputing every step, and Meta's LLaMA 3 tokenizer.
"""

import math
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


def mixture(run, b):
    """[N + 1, V]: P(example b's answer has character c at offset o), from the run's rows (exact mode)."""
    rows = (run["rows_b"] == b) & run["rows_ok"]
    one_hot = torch.nn.functional.one_hot(run["rows_chars"][rows], 128).to(run["rows_weight"].dtype)
    return (run["rows_weight"][rows][:, None, None] * one_hot).sum(0)


def answer_text(run, b):
    """The likeliest answer text of example b: the most probable character at each offset, up to NUL."""
    chars = mixture(run, b).argmax(-1).tolist()
    return bytes(chars[:chars.index(0)]).decode("ascii")


def all_open(model, tokens, calls):
    """The tapes with every gate open: the prompts' characters as they are."""
    _, length = model.layer.gates(model.llama.tok_embeddings(tokens), tokens, calls)
    return model.layer.lay_out(tokens, length, length > 0)[0]


def forced(model, entry):
    """A context in which the choice head picks `entry` (a large bias), the gates are shut open and the
    layer evaluates (no sampled flips): one thread, one row per example."""
    import contextlib

    @contextlib.contextmanager
    def ctx():
        layer = model.layer
        saved = layer.choose.bias.detach().clone(), layer.gate.bias.detach().clone()
        layer.eval()
        with torch.no_grad():
            layer.choose.bias.fill_(-30.0)
            layer.choose.bias[layer.entries.index(entry)] = 30.0
            layer.gate.bias.fill_(30.0)
        try:
            yield
        finally:
            layer.train()
            with torch.no_grad():
                layer.choose.bias.copy_(saved[0])
                layer.gate.bias.copy_(saved[1])
    return ctx()


def test_layer_starts_as_the_plain_llama(tiny_augmented):
    """Zero-initialised read-back: the augmented model's logits equal the LLaMA's at the start."""
    model, tokenizer, _ = tiny_augmented
    tokens, calls = encode(tokenizer, ["fib(7)=", "sort 3 1 2="])
    logits, run = model(tokens, calls)
    assert torch.allclose(logits, model.llama(tokens)[run["rows_b"]], atol=1e-6)  # every row, its example's
    assert run["choice"].shape == (2, 3)


def test_tape_holds_the_prompt_text_and_the_machine_answers_from_it(tiny_augmented):
    """The open gates lay the prompt's characters out from cell 0 (bos writes nothing); each program
    runs on it, and reading from the returned address gives the library's answer text."""
    model, tokenizer, tasks = tiny_augmented
    prompts = ["fib(9)=", "sort 5 3 9 1=", "12+345="]
    tokens, calls = encode(tokenizer, prompts)
    h = model.llama.tok_embeddings(tokens)
    cells = all_open(model, tokens, calls)
    for b, p in enumerate(prompts):
        assert cells[b].tolist() == tasks.prompt_tape(p)
    for entry in model.layer.entries:
        with torch.no_grad(), forced(model, entry):
            run = model.layer.run(h, tokens, calls, max_steps=20_000)
        for b, p in enumerate(prompts):
            assert answer_text(run, b) == tasks.solve_with_library(entry, p, model.layer.machine.program)
            assert abs(float(mixture(run, b)[0].sum()) - 1) < 1e-4  # one thread, and it returned
    want = {"fib(9)=": "34", "sort 5 3 9 1=": "1 3 5 9", "12+345=": "357"}
    for b, p in enumerate(prompts):
        with torch.no_grad(), forced(model, ["fib_task", "sort_task", "add_task"][b]):
            assert answer_text(model.layer.run(h, tokens, calls, max_steps=20_000), b) == want[p]


def closed_gates_text(prompt, open_):
    """The prompt with the characters of closed tokens (byte tokenizer: one character each) left out."""
    return "".join(ch for ch, o in zip(prompt, open_) if o)


def library_answer(layer, tasks, entry, text):
    """What the read-back sees for one thread: its answer text from the returned address, then NUL, [N + 1] one-hot rows;
    None if the run does not return within the layer's step budget. On the reference interpreter (which
    wraps modulo V like the machine; CPython would not)."""
    from compiler import ExecutionError
    N = layer.machine.N
    m = tasks.prompt_tape(text)
    try:
        start = layer.machine.program.run(entry, m, n_cells=N, max_steps=20_000)
    except ExecutionError:
        return None
    text = m[start:m.index(0, start)] if 0 in m[start:] else m[start:]
    codes = text + [0] * (N + 1 - len(text))  # the read-back reads the answer, then NUL
    return torch.nn.functional.one_hot(torch.tensor(codes), 128).double()


def test_exact_threads_mix_the_likeliest_tape_and_its_unit_moves(tiny_augmented, monkeypatch):
    """In evaluation the threads are every program on the likeliest tape, weighted by P(program) P(tape).
    In training they add moves drawn from q: one unit (a number as a whole, or one other token) set all
    closed or all open where that differs from the likeliest tape. Forcing every draw onto move c and
    averaging the results under q gives exactly the mixture over the likeliest tape and all its moves, and
    the same holds for the gradient with respect to the gate probabilities (the estimator is unbiased)."""
    model, tokenizer, tasks = tiny_augmented
    layer = model.layer
    prompt = "f(37)+1"
    units = [[0], [1], [2, 3], [4], [5], [6]]  # the prompt's characters by unit: "37" is one number
    T = len(prompt)
    tokens, calls = encode(tokenizer, [prompt])
    _, length = layer.gates(model.llama.tok_embeddings(tokens), tokens, calls)
    g = torch.tensor([0.3, 0.9, 0.6, 0.45, 0.8, 0.2, 0.7], dtype=torch.float64, requires_grad=True)
    gate = lambda: torch.cat([torch.zeros(1, dtype=torch.float64), g])[None]  # bos writes nothing
    choice = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    likeliest = [x > 0.5 for x in g.tolist()]  # "37" is half open: "3" open, "7" closed
    p = [x if o else 1 - x for x, o in zip(g.tolist(), likeliest)]
    # every move: (its index in the layer's [2 (T + 1)] candidates, the characters it changes)
    moves = [(state * (T + 1) + u, [s for s in unit if likeliest[s] != bool(state)])
             for state in (0, 1) for u, unit in enumerate(units)]
    moves = [(c, changed) for c, changed in moves if changed]
    assert sorted(len(changed) for _, changed in moves) == [1] * 7  # singles, and "37" closed or opened
    probe = torch.randn(layer.machine.N + 1, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    mixture_of = globals()["mixture"]

    def mixture(changes, probe=None):
        """The mixture over every program and the likeliest tape and the tapes changing each set in
        `changes`; with a probe, also d <mixture, probe> / d g, the closed form: each thread's weight is a
        product of p's."""
        total, grad = 0, torch.zeros(T, dtype=torch.float64)
        for e, entry in enumerate(layer.entries):
            for changed in [[], *changes]:
                open_ = [o != (s in changed) for s, o in enumerate(likeliest)]
                factors = [p[s] if s not in changed else 1 - p[s] for s in range(T)]  # P(each decision)
                w = float(choice[0, e]) * torch.tensor(factors, dtype=torch.float64).prod()
                chars = library_answer(layer, tasks, entry, closed_gates_text(prompt, open_))
                if chars is None:
                    continue
                total = total + w * chars
                if probe is not None:
                    for s in range(T):  # d w / d g_s: open decisions have probability g_s, closed 1 - g_s
                        grad[s] += w / factors[s] * (1 if open_[s] else -1) * float((probe * chars).sum())
        return total if probe is None else grad

    layer.eval()
    run = layer.run_exact(tokens, length, choice, gate(), max_steps=20_000)
    layer.train()
    assert run["threads"] == 3
    assert torch.allclose(mixture_of(run, 0), mixture([]), atol=1e-9)

    ratio = torch.tensor([math.prod((1 - p[s]) / p[s] for s in changed) for _, changed in moves], dtype=torch.float64)
    q = (1 / len(moves) + ratio / ratio.sum()) / 2  # the draw distribution of the docstring, written out again
    expected, grads = 0, 0
    for (c, _), q_c in zip(moves, q):
        monkeypatch.setattr(torch, "multinomial", lambda w, n, replacement, generator: torch.full((n,), c))
        run = layer.run_exact(tokens, length, choice, gate(), max_steps=20_000)
        g.grad = None
        (mixture_of(run, 0) * probe).sum().backward()
        expected, grads = expected + q_c * mixture_of(run, 0).detach(), grads + q_c * g.grad
    changes = [changed for _, changed in moves]
    assert torch.allclose(expected, mixture(changes), atol=1e-9)
    assert torch.allclose(grads, mixture(changes, probe), atol=1e-9)


def test_a_number_moves_as_a_whole(tiny_augmented):
    """The moves of a two-digit number whose digits the gate splits (one open, one closed) are "both
    closed" and "both open"; a number with both digits open has one move, both closed."""
    model, tokenizer, _ = tiny_augmented
    layer = model.layer
    tokens, calls = encode(tokenizer, ["ab 42 7"])
    _, length = layer.gates(model.llama.tok_embeddings(tokens), tokens, calls)
    unit, n_units = layer.units(tokens, length > 0)
    assert n_units.tolist() == [6] and unit[0, 4].item() == unit[0, 5].item() != unit[0, 7].item()
    gate = torch.full((1, 8), 0.9).index_fill(1, torch.tensor([0]), 0.0)
    gate[0, 5] = 0.2  # "4" open, "2" closed
    _, _, _, _, _, _, dropped = layer.threads(tokens, length, torch.tensor([[1.0, 0, 0]]), gate)
    p_map = torch.tensor([0.9, 0.9, 0.9, 0.8, 0.9, 0.9, 0.9])
    moves = [0.1 / 0.9] * 5 + [0.2 / 0.8, 0.1 / 0.9]  # 5 singles ("a", "b", " ", " ", "7"), "42" open or closed
    assert abs(dropped.item() - (1 - p_map.prod().item() * (1 + sum(moves)))) < 1e-6


def test_read_back_positions_read_successive_answer_characters(tiny_augmented):
    """Position call + o reads cell start + o, for an answer longer than any in training: with the
    choice on sort, it reads exactly the output vector of the answer's next character (then NUL: eos)."""
    model, tokenizer, _ = tiny_augmented
    prompt, answer = "sort 9 8 7 6 5 4 3 2 1 0 11 12 10 13 14 15 16 17 18 19 20=", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"
    tokens, _ = encode(tokenizer, [prompt + answer])
    calls = torch.tensor([len(tokenizer.encode(prompt, bos=True)) - 1])
    h = model.llama.tok_embeddings(tokens)
    with torch.no_grad(), forced(model, "sort_task"):
        run = model.layer.run(h, tokens, calls, max_steps=20_000)
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
    assert run["answer"].shape == (2, 9, 128)
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
    assert all_open(model, tokens, calls)[0].tolist() == tasks.prompt_tape(prompt)
    with torch.no_grad(), forced(model, "add_task"):
        run = model.layer.run(h, tokens, calls, max_steps=20_000)
    assert answer_text(run, 0) == answer
    off = model.layer.offsets(tokens, calls)[0, :, 0].tolist()
    c = len(ids) - 1
    emitted = 0
    for t in range(c, len(full)):
        assert off[t] == emitted
        if t + 1 < len(full):
            emitted += len(tokenizer.decode([full[t + 1]]))


def test_cached_generation_equals_recomputing_every_step(tiny_augmented):
    """AugmentedLlama.generate (machine once, KV cache per row, rows of equal prompt lengths together)
    gives the same greedy tokens as recomputing the whole sequence at every step and taking the argmax of
    the exact mixture: sum over the example's rows of weight * P(tokens so far and the next | row). With
    the untrained choice head each example has a row per program (three different answers)."""
    model, tokenizer, _ = tiny_augmented
    prompts = [tokenizer.encode(p, bos=True) for p in ["fib(5)=", "sort 5 3 9 1=", "2+3=", "fib(3)="]]
    model.eval()
    with torch.no_grad():
        model.layer.gain.fill_(1.0)
        model.layer.out_proj.weight.normal_(0, 0.05)
        got, run = model.generate(prompts, 8, eos_id=tokenizer.eos_id)
        assert len(run["rows_b"]) > len(prompts)
        for p, g in zip(prompts, got):
            seq = list(p)
            for _ in range(8):
                logits, run = model(torch.tensor([seq]), torch.tensor([len(p) - 1]))
                log_p = torch.log_softmax(logits.double(), -1)  # [rows, T, vocab]
                log_w = run["rows_weight"].double().log()  # [rows]
                so_far = sum((log_p[:, t - 1, seq[t]] for t in range(len(p), len(seq))), torch.zeros_like(log_w))
                score = torch.logsumexp(log_w[:, None] + so_far[:, None] + log_p[:, -1], 0)  # [vocab]
                nxt = int(score.argmax())
                if nxt == tokenizer.eos_id:
                    break
                seq.append(nxt)
            assert g == seq[len(p):]
        assert sum(len(g) for g in got) >= 4
        model.layer.gain.zero_()
        model.layer.out_proj.weight.zero_()
    model.train()


def test_the_late_copy_adds_the_read_character_after_the_last_block():
    """late_copy: the read character's vector is added once more after the LLaMA's last block, with a gain
    of its own that starts at zero (the logits are those of the model without it) and learns from the
    answers' likelihood, to which the copy alone adds its own; made large, it alone copies the machine's
    answer to the output (tied vectors)."""
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    import tasks

    def build(late_copy):
        torch.manual_seed(0)
        args = ModelArgs.preset("tiny")
        args.n_layers, args.dim, args.n_heads, args.n_kv_heads, args.ffn_hidden_dim = 2, 32, 2, 1, 64
        return AugmentedLlama(Llama(args), tokenizer, tasks.compile_library(), ["fib_task", "add_task"],
                              n_cells=tasks.N_CELLS, late_copy=late_copy)

    tokenizer = Tokenizer()
    plain, late = build(False), build(True)
    assert not hasattr(plain.layer, "late_gain") and float(late.layer.late_gain.detach()) == 0.0
    prompt, answer = "fib(7)=", "13"  # fib(7) = 13
    ids = tokenizer.encode(prompt, bos=True)
    full = ids + tokenizer.encode(answer) + [tokenizer.eos_id]
    tokens, calls = torch.tensor([full]), torch.tensor([len(ids) - 1])
    want = full[len(ids):]  # what the call position and each answer position should predict
    with forced(plain, "fib_task"), forced(late, "fib_task"):
        before, _ = plain(tokens, calls)
        assert torch.equal(late(tokens, calls)[0], before)  # zero gain: the same model
        targets = torch.full_like(tokens, -100)
        targets[0, len(ids):] = tokens[0, len(ids):]
        loss, _ = late(tokens[:, :-1], calls, targets=targets[:, 1:])
        # the copy alone is asked for the answer too: at zero gain its logits are flat, log(vocab) a token
        n = int((targets != -100).sum())
        with torch.no_grad():
            without = plain(tokens[:, :-1], calls, targets=targets[:, 1:])[0]
        assert math.isclose(float(loss.detach() - without), n * math.log(late.llama.args.vocab_size), rel_tol=1e-5)
        loss.backward()
        assert late.layer.late_gain.grad is not None and float(late.layer.late_gain.grad) < 0  # it should grow
        with torch.no_grad():
            late.layer.late_gain.fill_(1.0)
            after, _ = late(tokens, calls)
    predicted = lambda logits: logits[0, len(ids) - 1:-1].argmax(-1).tolist()  # noqa: E731
    assert predicted(after) == want
    assert predicted(before) != want  # the untrained LLaMA does not copy by itself


# -----------------------------------------------------------------------------
# The paper's interface (--interface args): argument heads fill the entry point's numbers.


def tiny_args_model(entry, grad="exact", args_len=0, max_threads=8, reader="ordinal", **settings):
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    import tasks

    torch.manual_seed(0)
    args = ModelArgs.preset("tiny")
    args.n_layers, args.dim, args.n_heads, args.n_kv_heads, args.ffn_hidden_dim = 2, 32, 2, 1, 64
    model = AugmentedLlama(Llama(args), Tokenizer(), tasks.compile_library(), [entry], grad=grad,
                           n_cells=tasks.N_CELLS, interface="args", args_len=args_len, max_threads=max_threads,
                           max_steps=2_000, max_steps_train=2_000, reader=reader, **settings)
    model.layer.gain.data.fill_(1.0)  # the read-back reaches the logits from the first step
    return model


@pytest.mark.parametrize("entry,args_len,grad,reader", [
    ("add_mod_args", 0, "exact", "ordinal"), ("sort_args", 4, "exact", "ordinal"), ("fib_args", 0, "exact", "ordinal"),
    ("add_mod_args", 0, "mean_field", "ordinal"), ("sort_args", 4, "exact", "query"), ("sort_args", 4, "exact", "runs"),
    ("sort_args", 4, "exact", "runs+tokens")])
def test_argument_heads_get_gradients_through_the_machine(entry, args_len, grad, reader):
    """The loss of the answer text reaches the argument heads only through the machine's run (exact
    threads weighted by the heads, or the mean field's soft registers and cells): nonzero, finite."""
    from model import Tokenizer

    model = tiny_args_model(entry, grad, args_len, reader=reader.split("+")[0], token_values=reader.endswith("+tokens"))
    tokenizer = Tokenizer()
    prompt, answer = {"add_mod_args": ("3+4 mod 128 =", "7"), "sort_args": ("sort 3 1 2 0=", "0 1 2 3"),
                      "fib_args": ("fib(5)=", "5")}[entry]
    ids = tokenizer.encode(prompt, bos=True)
    full = ids + tokenizer.encode(answer) + [tokenizer.eos_id]
    tokens, calls = torch.tensor([full, full]), torch.tensor([len(ids) - 1] * 2)
    targets = torch.full_like(tokens, -100)
    targets[:, len(ids) - 1:-1] = tokens[:, len(ids):]
    nll, run = model(tokens, calls, targets=targets)
    nll.backward()
    heads = model.layer.arg_heads
    assert run["args"].shape[1] == {"add_mod_args": 2, "sort_args": 4, "fib_args": 1}[entry]
    names = {"query": ("query", "decode.weight"), "runs": ("mark.weight", "kind.weight", "end", "decode.weight"),
             "runs+tokens": ("mark.weight", "kind.weight", "end", "decode.weight", "decode_tokens.weight")}
    for name in names.get(reader, ("mark.weight", "end", "decode.weight")):
        g = heads.get_parameter(name).grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name
    assert model.llama.layers[0].attention.wq.weight.grad.abs().sum() > 0  # and on into the LLaMA below


def test_the_training_loss_is_the_mixture_of_the_rows_likelihoods():
    """AugmentedLlama's loss with targets (the output head run at the answer's positions only) equals the
    mixture written out from the whole logits: -sum over examples of log sum over its rows of weight x
    P(answer | row), plus the machine's own term; and the baseline's, the plain cross-entropy."""
    import torch.nn.functional as F
    from model import Tokenizer
    import train

    model = tiny_args_model("sort_args", "exact", 4, max_threads=9, reader="runs").train()
    tokenizer = Tokenizer()
    prompts, answers = ["sort 3 1 2 0=", "order 9 7 8 5:"], ["0 1 2 3", "5 7 8 9"]
    tokens, targets, calls = train.encode_batch(tokenizer, list(zip(prompts, answers)), "cpu")
    model.layer.seed = 7
    loss, run = model(tokens, calls, targets=targets)
    model.layer.seed = 7
    with torch.no_grad():
        logits, again = model(tokens, calls)
    assert torch.equal(run["rows_b"], again["rows_b"]) and len(run["rows_b"]) > 2  # several rows an example
    log_p = torch.log_softmax(logits.double(), -1)  # [U, T, vocab]
    weight = run["rows_weight"].detach()
    want = 0.0
    for i in range(2):
        terms = []
        for r in (run["rows_b"] == i).nonzero()[:, 0].tolist():
            at = (targets[i] != -100).nonzero()[:, 0]
            terms.append(float(weight[r]) * float(log_p[r, at, targets[i, at]].sum().exp()))
        want -= torch.tensor(sum(terms), dtype=torch.double).log()
    want += float(model.layer.machine_nll(run, targets).sum().detach())  # the machine's own term
    assert torch.isclose(loss.double(), want, rtol=1e-4), (loss, want)
    base = tiny_args_model("sort_args", "exact", 4)
    base.layer = None
    nll, _ = base(tokens, calls, targets=targets)
    plain = F.cross_entropy(base.llama(tokens).transpose(1, 2), targets, ignore_index=-100, reduction="sum")  # noqa: E501
    assert torch.isclose(nll, plain, rtol=1e-5)


@pytest.mark.parametrize("interface", ["args", "tape"])
def test_the_training_loss_runs_the_shared_prompt_once_with_the_same_loss_and_gradients(interface):
    """AugmentedLlama's training loss runs the blocks above the layer on each example's positions before
    its earliest call once (`Llama.blocks_sharing`), not once a row: the loss and every parameter's
    gradient equal those of the rows run whole (share_prefix False), with prompts of other lengths in one
    batch, the late copy on (args) and the tape's rows."""
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    import tasks
    import train

    if interface == "args":
        model = tiny_args_model("sort_args", "exact", 4, max_threads=9, reader="runs", token_values=True,
                                late_copy=True)
        model.layer.late_gain.data.fill_(0.05)
        prompts, answers = ["sort 3 1 2 0=", "order 9 7 8 5:", "Sort: 5 4 12 3?"], ["0 1 2 3", "5 7 8 9", "3 4 5 12"]
    else:
        torch.manual_seed(0)
        args = ModelArgs.preset("tiny")
        args.n_layers, args.dim, args.n_heads, args.n_kv_heads, args.ffn_hidden_dim = 2, 32, 2, 1, 64
        model = AugmentedLlama(Llama(args), Tokenizer(), tasks.compile_library(), ["sort_task", "fib_task"],
                               n_cells=tasks.N_CELLS, max_threads=4)
        model.layer.gain.data.fill_(1.0)
        prompts, answers = ["sort 3 1 2=", "fib(5)=", "sort the list 9,1:"], ["1 2 3", "5", "1 9"]
    model.train()
    tokenizer = Tokenizer()
    tokens, targets, calls = train.encode_batch(tokenizer, list(zip(prompts, answers)), "cpu")
    results = []
    for share in (True, False):
        model.share_prefix = share
        model.layer.seed = 7
        model.zero_grad()
        loss, run = model(tokens, calls, targets=targets)
        loss.backward()
        results.append((loss.detach(), run["rows_b"], {n: p.grad.clone() for n, p in model.named_parameters()
                                                       if p.grad is not None}))
    (shared, rows, grads), (whole, rows_whole, grads_whole) = results
    assert len(rows) > len(prompts) and torch.equal(rows, rows_whole)  # several rows an example, the same ones
    assert torch.allclose(shared, whole, rtol=1e-5), (shared, whole)
    assert grads.keys() == grads_whole.keys() and any(k.startswith("llama.layers.1.") for k in grads)
    for name in grads:
        assert torch.allclose(grads[name], grads_whole[name], rtol=1e-4, atol=1e-6), name


def test_ordinal_attention_reads_the_marked_positions_in_order():
    """Slot s reads the positions whose marks take the running count from s to s + 1: a whole mark is one
    position, two half marks are one number read in halves, and the slots after it are not shifted;
    a slot past the last mark reads nothing. Worked by hand."""
    from reasoning import ordinal_attention

    mark = torch.tensor([[0, 1, 0, 0.5, 0.5, 0, 1, 0], [0.25, 0.25, 0.25, 0.25, 0, 0, 0, 0]])
    attn = ordinal_attention(mark, 4)
    want = torch.zeros(2, 4, 8)
    want[0, 0, 1] = 1
    want[0, 1, 3] = want[0, 1, 4] = 0.5
    want[0, 2, 6] = 1  # slot 3: no fourth mark
    want[1, 0, :4] = 0.25  # four quarter marks make one number
    assert torch.allclose(attn, want, atol=0, rtol=0)
    third = torch.tensor([[0.0, 0.6, 0.6, 0.6, 0.6, 0.6]])  # counts 0.6, 1.2, 1.8, 2.4, 3.0
    # slot 1 reads [1, 2): 0.2 of the mark covering [0.6, 1.2), all of [1.2, 1.8), 0.2 of [1.8, 2.4)
    assert torch.allclose(ordinal_attention(third, 3)[0, 1], torch.tensor([0, 0, 0.2, 0.6, 0.2, 0]))
    assert torch.allclose(ordinal_attention(third, 3).sum(-1), torch.ones(1, 3))
    heads = tiny_args_model("sort_args", args_len=4).layer.arg_heads  # explain gives what forward gives
    h, call_pos = torch.nn.functional.normalize(torch.randn(2, 9, 32), dim=-1), torch.tensor([8, 5])
    slots, marks, values = heads.explain(h, call_pos)
    assert torch.allclose(slots, heads(h, call_pos)) and torch.allclose(slots.sum(-1), torch.ones(2, 4))
    assert marks.shape == (2, 10) and (marks[1, 7:] == 0).all()  # nothing past the prompt's end state is read


def test_neighbourhood_threads_are_unbiased_for_the_one_slot_changes(monkeypatch):
    """Training threads for several slots: the likeliest assignment and draws of one-slot changes with
    Hansen-Hurwitz weights. Forcing the draw onto each change d and averaging under q (written out again
    here) gives exactly sum over {likeliest, every one-slot change} of P(assignment) f(assignment), and
    the same for the gradient with respect to the slots' distributions."""
    model = tiny_args_model("add_mod_args", max_threads=2)
    layer = model.layer
    V = layer.machine.V
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 2, V, dtype=torch.float64, generator=gen).requires_grad_()
    f = torch.randn(V, V, dtype=torch.float64, generator=gen)  # any function of the two values
    tokens, calls = torch.tensor([[1, 2, 3]]), torch.tensor([2])

    def estimate(d):
        monkeypatch.setattr(torch, "multinomial", lambda w, n, replacement, generator: torch.full((n,), d))
        b, values, weight, _ = layer.neighbourhood(logits.softmax(-1), tokens, calls)
        return (weight * f[values[:, 0], values[:, 1]]).sum()

    p = logits.softmax(-1)[0].detach()
    best = p.argmax(-1).tolist()
    truth = p[0, best[0]] * p[1, best[1]] * f[best[0], best[1]]
    ratio, changes = [], []
    for s in range(2):
        for v in range(V):
            if v != best[s]:
                a = list(best)
                a[s] = v
                changes.append((s * V + v, a))
                ratio.append(float(p[s, v] / p[s, best[s]]))
    ratio = torch.tensor(ratio, dtype=torch.float64)
    q = (1 / len(changes) + ratio / ratio.sum()) / 2

    def exact():
        p = logits.softmax(-1)[0]
        total = p[0, best[0]] * p[1, best[1]] * f[best[0], best[1]]
        return total + sum(p[0, a[0]] * p[1, a[1]] * f[a[0], a[1]] for _, a in changes)

    expected = exact()
    grad_exact, = torch.autograd.grad(expected, logits)
    mean, grad_mean = 0, 0
    for (d, _), w in zip(changes, q):
        est = estimate(d)
        g, = torch.autograd.grad(est, logits)
        mean, grad_mean = mean + w * est.detach(), grad_mean + w * g
    assert float(truth) != 0 and torch.allclose(mean, expected.detach(), rtol=1e-9, atol=0)
    assert torch.allclose(grad_mean, grad_exact, rtol=1e-7, atol=1e-12)


def test_the_args_interface_refuses_what_it_cannot_fill():
    """Bad configurations stop with a message naming the problem."""
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama
    from compiler import compile_source
    import train

    program = compile_source('''
def two_lists(a, b, m):
    m[0] = a[0] + b[0]
    return 0

def no_tape(n):
    return n

def only_tape(m):
    m[0] = 1
    return 0
''')
    args = ModelArgs.preset("tiny")
    for entries, args_len, message in [(["two_lists"], 2, "at most one list"), (["no_tape"], 0, "answer tape"),
                                       (["only_tape"], 0, "nothing for the heads"),
                                       (["only_tape", "no_tape"], 0, "one entry point")]:
        with pytest.raises(ValueError, match=message):
            AugmentedLlama(Llama(args), Tokenizer(), program, entries, interface="args", args_len=args_len)
    for argv, message in [(["--task", "gcd"], "text only"), (["--task", "all"], "one task at a time")]:
        with pytest.raises(SystemExit, match=message):
            train.main([*argv, "--interface", "args", "--iters", "1", "--out_dir", "/nonexistent/never"])
    with pytest.raises(SystemExit, match="needs --interface args"):
        train.main(["--task", "fib", "--reader", "ordinal", "--iters", "1", "--out_dir", "/nonexistent/never"])


def test_the_args_table_answers_as_cpython_for_every_assignment():
    """add_mod's table (the entry run once on all 128 x 128 assignments) prints (a + b) % 128 for each,
    as CPython computes it, and nothing wraps."""
    model = tiny_args_model("add_mod_args")
    layer = model.layer
    table = layer.args_table(2, 2_000)
    V = layer.machine.V
    for a in range(V):
        for b in (0, 1, 63, 127 - a, (128 - a) % 128, 127):
            u = int(table["answer"][a * V + b])
            text = "".join(map(chr, table["chars"][u].tolist())).split("\0")[0]
            assert bool(table["ok"][u]) and text == str((a + b) % 128), (a, b, text)
    assert not table["wrapped"].any() and not table["not_halted"].any() and not table["failed"].any()


def test_the_machine_loss_is_the_runs_likelihood_of_the_answer():
    """With every assignment run (the table), machine_nll is -log of the exact probability that the
    program prints the answer: for add_mod, the sum over the pairs (a, b) with (a + b) % 128 == answer of
    P(a) P(b), written out here in Python; its gradient reaches both heads' distributions."""
    from model import Tokenizer

    model = tiny_args_model("add_mod_args")
    layer, tokenizer = model.layer, Tokenizer()
    V = layer.machine.V
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 2, V, dtype=torch.float64, generator=gen).requires_grad_()
    run = layer.run_args_exact(logits.softmax(-1), 2_000, None, None)
    answers = [5, 120]
    targets = torch.full((2, 6), -100)
    for i, s in enumerate(answers):
        ids = tokenizer.encode(str(s)) + [tokenizer.eos_id]
        targets[i, :len(ids)] = torch.tensor(ids)
    nll = layer.machine_nll(run, targets)
    p = logits.softmax(-1).detach()
    for i, s in enumerate(answers):
        truth = sum(float(p[i, 0, a] * p[i, 1, (s - a) % 128]) for a in range(V))
        assert math.isclose(float(nll[i]), -math.log(truth + 1e-6), rel_tol=1e-6)  # float32
    nll.sum().backward()
    assert logits.grad[:, 0].abs().sum() > 0 and logits.grad[:, 1].abs().sum() > 0


def test_the_machine_loss_gives_credit_per_word_without_the_table():
    """Sampled threads (sort's neighbourhood) do not hold every answer: there the loss gives credit per
    word of the answer (as often as the target has it) and for the number of words, and to the whole
    answer where some row has it right (no term where none has), counted by hand here."""
    from model import Tokenizer

    model = tiny_args_model("sort_args", args_len=4)
    layer, tokenizer = model.layer, Tokenizer()
    N = layer.machine.N

    def chars(text):
        c = torch.zeros(N + 1, dtype=torch.long)
        c[:len(text)] = torch.tensor([ord(x) for x in text], dtype=torch.long)
        return c

    def nll(rows, weights, ok, target):
        run = {"rows_b": torch.zeros(len(rows), dtype=torch.long), "rows_ok": torch.tensor(ok),
               "rows_chars": torch.stack([chars(r) for r in rows]), "rows_weight": torch.tensor(weights)}
        return float(layer.machine_nll(run, torch.tensor([tokenizer.encode(target) + [tokenizer.eos_id]]))[0])

    # "1": rows 0 and 1 (0.8); "2": row 0 (0.5); two words: rows 0 and 1 (0.8); row 2 did not return;
    # the whole answer: row 0 (0.5)
    expected = -(math.log(0.8 + 1e-6) + math.log(0.5 + 1e-6) + math.log(0.8 + 1e-6) + math.log(0.5))
    assert math.isclose(nll(["1 2", "1 3", "1 2"], [0.5, 0.3, 0.2], [True, True, False], "1 2"), expected, rel_tol=1e-6)
    # a word counts as often as the target has it: "3 5 5" has the first 3 and the 5, not the second 3
    expected = -(math.log(1.0 + 1e-6) + math.log(0.4 + 1e-6) + math.log(1.0 + 1e-6) + math.log(1.0 + 1e-6)
                 + math.log(0.4))  # the whole answer: the second row
    assert math.isclose(nll(["3 5 5", "3 3 5"], [0.6, 0.4], [True, True], "3 3 5"), expected, rel_tol=1e-6)
    # "12" is not "1" and "2"; and a word is not a prefix of another
    assert nll(["12", "1 2"], [0.7, 0.3], [True, True], "1 2") > nll(["1 2", "12"], [0.7, 0.3], [True, True], "1 2")
    assert math.isclose(nll(["123 45"], [1.0], [True], "12 45"), -math.log(1e-6), rel_tol=1e-6)  # no whole term


def test_heaviest_rows_keeps_each_examples_k_heaviest():
    from reasoning import heaviest_rows

    rows = {"rows_b": torch.tensor([0, 0, 0, 1, 1]), "rows_ok": torch.ones(5, dtype=torch.bool),
            "rows_chars": torch.arange(5)[:, None], "rows_weight": torch.tensor([0.1, 0.6, 0.3, 0.2, 0.8])}
    kept, lost = heaviest_rows(rows, 2, 2)
    assert kept["rows_chars"][:, 0].tolist() == [1, 2, 3, 4]  # in their order, each example's two heaviest
    assert torch.allclose(lost, torch.tensor([0.1, 0.0]))


def test_a_trained_tiny_args_run_beats_its_baseline(tmp_path):
    """fib through the argument heads (one slot, every value run: exact) against the plain LLaMA, the
    same tiny model, data and number of steps: the heads learn which n the prompt names, the baseline
    has not learned to answer in so few steps (the plain LLaMA learns fib's 8 inputs by heart after ~80
    steps). One slot: the query reader, the default. Measured over `--seed` 0-6: the args run 0.875-1.0 on
    the held-out phrasings after 60 steps, the baseline 0.44-0.81 (with --vector_grad off, seed 0: 1.0 and
    0.81).

    The ordinal reader must read every prompt of the training phrasings right after 120 steps, without the
    late copy (56 of 56 for seeds 0-5). Its held-out phrasings are not asserted: whether its marks carry over
    to "fib 4 ->" after so few steps is a draw (0.69-1.0 over seeds 0-5 here; 0.5 on a CI run before the
    runs were deterministic, train.main)."""
    import train
    import tasks

    common = ["--task", "fib", "--eval_interval", "1000", "--log_interval", "1000", "--batch_size", "16"]
    args = train.main([*common, "--iters", "60", "--interface", "args", "--out_dir", str(tmp_path / "args")])
    base = train.main([*common, "--iters", "60", "--baseline", "--out_dir", str(tmp_path / "base")])
    assert args["test"]["exact_match"] >= 0.8, args["test"]
    assert args["test"]["exact_match"] > base["test"]["exact_match"], (args["test"], base["test"])
    train.main([*common, "--iters", "120", "--interface", "args", "--reader", "ordinal", "--late_copy", "off",
                "--out_dir", str(tmp_path / "ordinal")])
    model, tokenizer = train.load_trained(str(tmp_path / "ordinal"))
    examples = tasks.TASKS["fib"].examples("train")  # every prompt: 8 values x the training phrasings
    answers = train.ask(model, tokenizer, [p for p, _ in examples])
    wrong = [(p, a.text, want) for a, (p, want) in zip(answers, examples) if a.text != want]
    assert len(examples) >= 40 and not wrong, wrong


def test_the_reasoning_config_is_every_setting_in_one_place():
    """A model built from a config and one built from the same settings by name are the same; the config
    goes through a dict (what checkpoints and exports store) unchanged; an unknown stored setting is refused."""
    from model import Llama, ModelArgs, Tokenizer
    from reasoning import AugmentedLlama, ReasoningConfig
    import tasks

    args = ModelArgs.preset("tiny")
    config = ReasoningConfig(entries=["fib_args"], interface="args", grad="exact", max_threads=5, n_cells=tasks.N_CELLS)
    assert ReasoningConfig.from_dict(config.to_dict()) == config
    torch.manual_seed(0)
    a = AugmentedLlama(Llama(args), Tokenizer(), tasks.compile_library(), config=config)
    torch.manual_seed(0)
    b = AugmentedLlama(Llama(args), Tokenizer(), tasks.compile_library(), ["fib_args"], interface="args",
                       max_threads=5, n_cells=tasks.N_CELLS)
    assert a.config == b.config and a.layer.max_threads == 5 and a.layer.interface == "args"
    assert a.config.machine_loss_weight == 1.0 and ReasoningConfig().machine_loss_weight == 0.0
    with pytest.raises(ValueError, match="unknown reasoning settings"):
        ReasoningConfig.from_dict({**config.to_dict(), "max_stepz": 3})
    assert config.reader is None and a.layer.arg_heads.reader == "query"  # one slot; several read in order
    assert tiny_args_model("add_mod_args", reader=None).layer.arg_heads.reader == "ordinal"
    # a config stored before the reader was a setting had queries
    assert ReasoningConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "reader"}).reader == "query"
    with pytest.raises(ValueError, match="reader must be"):
        AugmentedLlama(Llama(args), Tokenizer(), tasks.compile_library(), ["fib_args"], interface="args",
                       n_cells=tasks.N_CELLS, reader="position")


def test_the_runs_reader_marks_where_a_run_of_number_positions_ends():
    """run_ends: one mark after each run of inside positions, worked by hand (hard and soft insides); the
    runs reader: the BOS and the end state are in no number, so a prompt whose every position is inside
    is one run, marked once at the end state, and one with none inside has no marks."""
    from reasoning import run_ends

    inside = torch.tensor([[0.0, 1, 1, 0, 1, 0, 0, 1], [0.5, 0.5, 0, 0, 0, 0, 0, 0]])
    assert torch.equal(run_ends(inside), torch.tensor([[0.0, 0, 0, 1, 0, 1, 0, 0], [0, 0.25, 0.5, 0, 0, 0, 0, 0]]))
    heads = tiny_args_model("sort_args", args_len=4, reader="runs").layer.arg_heads
    h, call_pos = torch.nn.functional.normalize(torch.randn(2, 9, 32), dim=-1), torch.tensor([8, 5])
    e = torch.nn.functional.normalize(torch.randn(2, 9, 32), dim=-1)
    with pytest.raises(ValueError, match="tokens' own vectors"):
        heads.explain(h, call_pos)
    for bias, want in ((30.0, [[0] * 9 + [1], [0] * 6 + [1, 0, 0, 0]]), (-30.0, [[0] * 10] * 2)):
        heads.mark.bias.data.fill_(bias)
        _, marks, _ = heads.explain(h, call_pos, e)
        assert torch.allclose(marks, torch.tensor(want, dtype=marks.dtype), atol=1e-6), (bias, marks)


def test_token_values_read_the_value_from_the_tokens_own_vectors():
    """token_values: a second decoder maps the window of the tokens' own vectors e to the values' logits. It
    starts at zero (the heads give what they gave without it); with the states' decoder zeroed and this
    one set, each position's value follows the tokens in its window and not the states. Only the runs
    reader reads e: with another reader it is an error."""
    import torch.nn.functional as F

    plain = tiny_args_model("sort_args", args_len=4, reader="runs").layer.arg_heads
    heads = tiny_args_model("sort_args", args_len=4, reader="runs", token_values=True).layer.arg_heads
    heads.load_state_dict(plain.state_dict(), strict=False)  # every tensor but decode_tokens
    h, call_pos = F.normalize(torch.randn(2, 9, 32), dim=-1), torch.tensor([8, 5])
    e = F.normalize(torch.randn(2, 9, 32), dim=-1)
    assert torch.equal(heads.explain(h, call_pos, e)[2], plain.explain(h, call_pos, e)[2])
    with torch.no_grad():
        heads.decode.weight.zero_()
        heads.decode.bias.zero_()
        heads.decode_tokens.weight.normal_()
    _, _, values = heads.explain(h, call_pos, e)
    _, _, other_states = heads.explain(F.normalize(torch.randn(2, 9, 32), dim=-1), call_pos, e)
    assert torch.allclose(values, other_states)  # the states do not matter
    e2 = e.clone()
    e2[0, 3] = F.normalize(torch.randn(32), dim=-1)  # one token: the windows that hold it (positions 3 to 6)
    _, _, changed = heads.explain(h, call_pos, e2)
    moved = (changed - values).abs().amax(-1)[0] > 1e-4
    assert moved[3:7].all() and not moved[:3].any() and not moved[7:].any(), moved
    for reader in ("ordinal", "query"):
        with pytest.raises(ValueError, match="only the runs reader"):
            tiny_args_model("sort_args", args_len=4, reader=reader, token_values=True)


def test_vector_grad_off_keeps_the_copies_from_training_the_token_vectors(monkeypatch):
    """vector_grad: the token vectors (one table, tied) are used by the LLaMA (its input and output), by the
    runs reader (each token's own vector) and as the codes of what is read back and copied
    (`ReasoningLayer.codes`). Given the codes a leaf of their own, the loss's gradient splits into the
    copies' part and the rest; with vector_grad on the table gets both, with it off the rest alone, of
    which the reader's view is a part (cut too, the table's gradient changes). The loss and every other
    gradient are the same either way."""
    from model import Tokenizer
    import train

    tokenizer = Tokenizer()
    batch = train.encode_batch(tokenizer, [("sort 3 1 2 0=", "0 1 2 3"), ("order 9 7 8 5:", "5 7 8 9")], "cpu")

    def grads(vector_grad, split=False, reader_cut=False):
        model = tiny_args_model("sort_args", args_len=4, max_threads=9, reader="runs", token_values=True,
                                late_copy=True, vector_grad=vector_grad).train()
        with torch.no_grad():
            model.layer.late_gain.fill_(0.05)  # the copy's codes reach the loss
            heads, g = model.layer.arg_heads, torch.Generator().manual_seed(0)
            for w in (heads.kind.weight, heads.decode_tokens.weight):  # and the tokens' own (zero at first)
                w.copy_(0.1 * torch.randn(w.shape, generator=g))
        leaf = model.llama.output.weight.detach().clone().requires_grad_()
        if split:
            monkeypatch.setattr(model.layer, "codes", lambda vectors: leaf)
        if reader_cut:
            run = model.layer.run
            monkeypatch.setattr(model.layer, "run", lambda *a: run(*a[:-1], a[-1].detach()))
        model.layer.seed = 3
        tokens, targets, calls = batch
        loss, _ = model(tokens, calls, targets=targets)
        loss.backward()
        named = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return loss.detach(), named, leaf.grad

    table = "llama.tok_embeddings.weight"
    loss_on, on, _ = grads(True)
    loss_off, off, _ = grads(False)
    loss_split, rest, copies = grads(True, split=True)
    assert torch.equal(loss_on, loss_off) and torch.equal(loss_on, loss_split)
    assert copies.abs().sum() > 0  # the copies do send gradient to their codes ...
    assert torch.allclose(on[table], rest[table] + copies, atol=1e-6)  # ... and on, the table gets it
    assert torch.allclose(off[table], rest[table], atol=1e-7)  # off: the rest alone
    assert not torch.allclose(on[table], off[table], atol=1e-6)
    assert all(torch.equal(on[n], off[n]) for n in on if n != table)
    _, cut, _ = grads(False, reader_cut=True)  # the reader's own view is part of the rest
    assert not torch.allclose(cut[table], off[table], atol=1e-6)


def test_by_phrasing_reports_every_phrasing_and_shows_the_marks(tmp_path):
    """tests/scripts/by_phrasing.py on a short ordinal run: one line per training and held-out phrasing,
    each a share in [0, 1]; --show prints every position's mark and the slot; a query run has no marks."""
    import re
    import subprocess
    import sys
    import tasks
    import train

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    common = ["--task", "fib", "--interface", "args", "--iters", "3", "--batch_size", "4", "--eval_n", "2",
              "--log_interval", "1000"]
    train.main([*common, "--reader", "ordinal", "--out_dir", str(tmp_path / "ordinal")])
    script = [sys.executable, os.path.join(repo, "tests", "scripts", "by_phrasing.py")]
    out = subprocess.run([*script, str(tmp_path / "ordinal"), "--n", "3"], capture_output=True, text=True, check=True)
    rows = [re.fullmatch(r"(train|held out) +([0-9.]+)  heads +([0-9.]+)  (.*)", line).groups()
            for line in out.stdout.splitlines()]  # the exact match, and the share the heads read whole
    fib = tasks.get_task("fib")
    assert [(kind, phrasing) for kind, _, _, phrasing in rows] == \
        [("train", p) for p in fib.train_phrasings] + [("held out", p) for p in fib.test_phrasings], out.stdout
    assert all(0 <= float(share) <= 1 and 0 <= float(heads) <= 1 for _, share, heads, _ in rows)
    show = subprocess.run([*script, str(tmp_path / "ordinal"), "--show", "fib(5)="], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    assert len(show) == len("fib(5)=") + 2 + 1 and show[-1].startswith("slot 0: "), show  # BOS, 7 chars, end
    train.main([*common, "--out_dir", str(tmp_path / "query")])
    refused = subprocess.run([*script, str(tmp_path / "query"), "--show", "fib(5)="], capture_output=True, text=True)
    assert refused.returncode != 0 and "ordinal reader" in refused.stderr
    for reader in ("ordinal", "query"):  # --truth: V P(true) in [0, V], entropy in [0, log V], the marks' sum
        out = subprocess.run([*script, str(tmp_path / reader), "--n", "3", "--truth"], capture_output=True, text=True,
                             check=True).stdout.splitlines()
        rows = [re.fullmatch(r"(train|held out) +([0-9.]+) +([0-9.]+) +([0-9.]+|nan)  (.*)", line).groups()
                for line in out[1:]]
        assert [row[-1] for row in rows] == fib.train_phrasings + fib.test_phrasings, out
        assert all(0 <= float(p) <= 128 and 0 <= float(h) <= math.log(128) + 1e-3 for _, p, h, _, _ in rows), out
        assert all((m == "nan") == (reader == "query") for *_, m, _ in rows), out
    refused = subprocess.run([*script, str(tmp_path / "query"), "--misses"], capture_output=True, text=True)
    assert refused.returncode != 0 and "not drawn by Task.examples" in refused.stderr  # fib: every prompt


def test_by_phrasing_lists_the_test_splits_misses_with_what_the_heads_read(tmp_path):
    """by_phrasing.py --misses on a barely trained sort4 run: one line per wrong answer of the test split
    (results.json's), each with the values the heads read and, when misread, the prompt's own numbers;
    then the count, split into read whole and misread."""
    import re
    import subprocess
    import sys
    import tasks
    import train

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    train.main(["--task", "sort4", "--interface", "args", "--iters", "2", "--batch_size", "2", "--max_threads", "9",
                "--eval_n", "1", "--log_interval", "1000", "--out_dir", str(tmp_path / "run")])
    script = os.path.join(repo, "tests", "scripts", "by_phrasing.py")
    out = subprocess.run([sys.executable, script, str(tmp_path / "run"), "--misses"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    wrong, n, whole, misread = map(int, re.fullmatch(
        r"(\d+) of (\d+) answered wrong: (\d+) read whole \(lost in the copy\), (\d+) misread", out[-1]).groups())
    examples = dict(tasks.get_task("sort4").examples("test"))
    assert n == len(examples) == 200 and wrong == len(out) - 1 == whole + misread > 0
    for line in out[:-1]:
        prompt, want, got, read, truth = re.fullmatch(
            r"'(.*)': wanted '(.*)', answered '(.*)'; read (\[.*?\])(?:, not (\[.*\]))?", line).groups()
        assert examples[prompt] == want != got, line
        if truth is not None:  # misread: the true values are the prompt's numbers, in order
            assert eval(truth) == [int(x) for x in re.findall(r"\d+", prompt)] != eval(read), line
    assert misread == sum(", not [" in line for line in out[:-1])
    # tests/scripts/token_vectors.py on the same run: the digits' cosines, from the checkpoint's own table
    from safetensors.torch import load_file
    from model import Tokenizer

    line = subprocess.run([sys.executable, os.path.join(repo, "tests", "scripts", "token_vectors.py"),
                           str(tmp_path / "run")], capture_output=True, text=True, check=True).stdout.strip()
    mean, i, j, closest = re.fullmatch(r".*: digits' cosine mean (-?[0-9.]+), closest (\d) and (\d) at (-?[0-9.]+)",
                                       line).groups()
    table = load_file(os.path.join(tmp_path / "run", "ckpt-2", "model.safetensors"))["llama.output.weight"]  # tied
    digits = table[[Tokenizer().encode(str(d))[0] for d in range(10)]]
    cos = [[float(torch.nn.functional.cosine_similarity(digits[a], digits[b], dim=0)) for b in range(10)]
           for a in range(10)]
    pairs = [(cos[a][b], a, b) for a in range(10) for b in range(a + 1, 10)]
    assert abs(float(mean) - sum(c for c, _, _ in pairs) / 45) < 0.006
    assert max(pairs)[1:] == (int(i), int(j)) and abs(max(pairs)[0] - float(closest)) < 0.006, line


def test_fewer_numbers_than_the_entry_takes_is_a_warning():
    """The ordinal reader knows when its marks add up to fewer than the entry's arguments: the last slot
    then read nothing, and the answer says so; marks enough for every slot give no such warning."""
    from model import Tokenizer

    model = tiny_args_model("sort_args", args_len=4).eval()
    tokenizer = Tokenizer()
    ids = tokenizer.encode("sort 3 1=", bos=True)
    marks = model.layer.arg_heads.mark.bias
    for bias, warned in ((-30.0, True), (30.0, False)):  # no marks at all; a mark at every position
        marks.data.fill_(bias)
        _, run = model.generate([ids], 2, tokenizer.eos_id)
        found = [w for w in run["warnings"][0] if "fewer numbers" in w]
        assert len(found) == warned, run["warnings"][0]
        assert all("sort_args takes (4): the last read nothing (100%)" in w for w in found)


def test_heads_credit_prints_the_gradient_each_slot_gets(tmp_path):
    """tests/scripts/heads_credit.py on a short sort4 run: one line per slot of the prompts it shows, each
    holding the value in at least one slot, and the two means; a run without heads is refused."""
    import re
    import subprocess
    import sys
    import train

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    train.main(["--task", "sort4", "--interface", "args", "--iters", "2", "--batch_size", "2", "--max_threads", "9",
                "--eval_n", "1", "--log_interval", "1000", "--out_dir", str(tmp_path / "sort4")])
    script = [sys.executable, os.path.join(repo, "tests", "scripts", "heads_credit.py")]
    out = subprocess.run([*script, str(tmp_path / "sort4"), "5", "--n", "3", "--show", "2"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    slots = [re.fullmatch(r"  slot (\d): holds +(\d+), likeliest +(\d+), P\(5\) ([0-9.]+), dL/dP\(5\) +(\S+)", line)
             for line in out if line.startswith("  slot")]
    assert len(slots) == 2 * 4 and all(slots), out
    assert all(sum(int(m.group(2)) == 5 for m in slots[k:k + 4]) >= 1 for k in (0, 4)), out
    assert re.fullmatch(r"mean dL/dP\(5\): \S+ at the slots holding it, \S+ at the others \(3 prompts\)", out[-1]), out
    train.main(["--task", "fib", "--baseline", "--iters", "1", "--batch_size", "2", "--eval_n", "1",
                "--out_dir", str(tmp_path / "base")])
    refused = subprocess.run([*script, str(tmp_path / "base"), "5"], capture_output=True, text=True)
    assert refused.returncode != 0 and "--interface args" in refused.stderr
