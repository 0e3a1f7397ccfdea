"""Section 5: the reasoning layer: how the transformer calls the library."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from compiler import _lay_out_arguments

from .exact import top_assignments
from .machine import Machine


# -----------------------------------------------------------------------------
# 5. The reasoning layer: how the transformer calls the library.


def token_characters(tokenizer, vocab_size, n_values):
    """For each token id, its characters as values (a tuple), or () for a token that is not text
    made of characters below `n_values` (special tokens, non-ASCII pieces): such tokens write nothing."""
    specials = set(tokenizer.special_tokens.values())
    table = []
    for i in range(vocab_size):
        if i in specials or i >= tokenizer.vocab_size:
            chars = b""
        elif tokenizer.sp is not None:
            chars = b"" if tokenizer.sp.is_control(i) else tokenizer.sp.id_to_piece(i).replace("\u2581", " ").encode()
        else:
            chars = tokenizer.model.decode_single_token_bytes(i)
        table.append(tuple(chars) if all(c < n_values for c in chars) else ())
    return table


GAIN_SCALE = 30.0
MIN_CHOICE = 1e-3  # programs less likely than this are not run (their mass is dropped)


class ArgumentHeads(nn.Module):
    """The paper's interface: the network writes the program's inputs (`interface="args"`).

    For each argument slot s (an int parameter of the entry point, or one cell of its fixed-length list
    parameter) a learned query attends over the prompt's hidden states, and the pooled state is decoded
    into a distribution over the V values: [B, S, V]. The decoder is shared by the slots (a value is a
    value wherever it was read); the slots differ only in where they look. Nothing parses the text.

    The entry point is `f(x1, ..., [xs], m)`: ints, at most one list of `args_len` cells, and last the
    answer tape m, into which it prints its answer and returns where it starts (tasks.py). `layout` says
    where each slot lives in the machine: an argument register or a memory cell (lists are laid out from
    address 0, as `Program.run` does), and where m begins.
    """

    def __init__(self, dim, machine, entry, args_len):
        super().__init__()
        fn = machine.program.functions[entry]
        *inputs, tape = fn.params
        if not fn.params or not tape.is_list:
            raise ValueError(f"the args interface needs an entry point whose last parameter is the answer tape "
                             f"(a list, e.g. fib_args(n, m)); {entry} has parameters "
                             f"({', '.join(p.name for p in fn.params)})")
        lists = [p for p in inputs if p.is_list]
        if len(lists) > 1:
            raise ValueError(f"{entry}: the args interface fills at most one list parameter, got {len(lists)}")
        if bool(lists) != (args_len > 0):
            raise ValueError(f"{entry}: a list parameter needs a fixed length args_len > 0 (and only then); "
                             f"got args_len={args_len}")
        n_slots = len(inputs) - len(lists) + args_len
        if n_slots < 1:
            raise ValueError(f"{entry} takes no arguments before its tape: nothing for the heads to fill")
        template = [[0] * args_len if p.is_list else 0 for p in inputs] + [[0] * (machine.N - args_len)]
        memory, regs, _ = _lay_out_arguments(fn, template, machine.R, machine.arg_regs, machine.V, machine.N,
                                             machine.program)
        where = machine._argument_places(fn, template)
        self.slots = [where[p.name] if not p.is_list else ("mem", where[p.name][1] + i)
                      for p in inputs for i in range(args_len if p.is_list else 1)]  # ("reg" | "mem", index)
        self.tape_base = where[tape.name][1]  # the answer tape m starts at this cell
        self.register_buffer("regs", torch.tensor(regs), persistent=False)  # [R] the registers before the heads
        self.register_buffer("memory", torch.tensor(memory), persistent=False)  # [N]
        self.query = nn.Parameter(torch.randn(n_slots, dim) * dim ** -0.5)  # distinct: the slots must differ
        self.key = nn.Linear(dim, dim, bias=False)
        self.decode = nn.Linear(dim, machine.V)

    def forward(self, h, call_pos):
        """[B, S, V]: each slot's distribution over the values, from the prompt's hidden states h [B, T, D]."""
        prompt = torch.arange(h.shape[1], device=h.device)[None] <= call_pos[:, None]  # [B, T]
        scores = torch.einsum("sd,btd->bst", self.query, self.key(h)) * h.shape[-1] ** -0.5  # [B, S, T]
        attn = torch.softmax(scores.masked_fill(~prompt[:, None], float("-inf")), -1)
        return torch.softmax(self.decode(attn @ h).float(), -1)  # [B, S, V]

    def fill(self, values):
        """Hard inputs for the slots' values [M, S]: (registers [M, R], memory [M, N])."""
        regs = self.regs.repeat(len(values), 1)
        memory = self.memory.repeat(len(values), 1)
        for s, (kind, at) in enumerate(self.slots):
            (regs if kind == "reg" else memory)[:, at] = values[:, s]
        return regs, memory

    def fill_soft(self, dists, V):
        """Soft inputs for the mean field: (registers [B, R, V], memory [B, N, V]) with the slots' distributions."""
        B = dists.shape[0]
        regs = F.one_hot(self.regs, V).to(dists.dtype).repeat(B, 1, 1)
        memory = F.one_hot(self.memory, V).to(dists.dtype).repeat(B, 1, 1)
        for s, (kind, at) in enumerate(self.slots):
            target = regs if kind == "reg" else memory
            target = target.index_copy(1, torch.tensor([at], device=dists.device), dists[:, s:s + 1])
            regs, memory = (target, memory) if kind == "reg" else (regs, target)
        return regs, memory


class ReasoningLayer(nn.Module):
    """Connects a transformer to a `Machine` running the compiled library.

    It sits after one transformer block. For each example, at the *call position* (the last prompt token):

    - choose: a linear head on the call position's hidden state plus an attention pooling of the whole
      prompt (one learned query) gives a distribution over the library's entry points. The pooling lets
      the choice rest on the words of the request, wherever they are, rather than on how the prompt ends:
      a tiny model then generalises better to unseen phrasings and to long lists. The choice is the
      machine's initial program counter, so choosing a program and running it are one mechanism.
    - write: every prompt position writes its token's characters into memory, as a *text tape* (see
      tasks.py). A gate head (on the states of the token and the two before it) gives the probability
      that a position writes; the cell of a token's first character is the number of characters the
      tokens before it wrote, so a tape of any length is laid out exactly. The gate starts open. The
      value written is the character itself (a fixed table): a learned value head would only learn the
      characters it saw.
    - run: the entry point gets the whole memory as its list argument `m` (base 0, length `n_cells`).
    - read back: the program returns the address where its answer text starts. The position that has
      emitted `o` answer characters since the call reads the answer's characters `o, ..., o + K-1`
      (K = `read_window`, at most the longest token: 1 for bytes). The query is fixed, so the alignment
      holds for answers longer than any in training. Each character is embedded as the model's own output
      vector of that character's token (NUL: end-of-text) and added to the residual stream through a
      projection and a gain, both initialised to zero: a pretrained LLaMA starts out unchanged.

    How gradients cross the machine (`grad`):
    - "exact": exact probabilistic execution (section 4). The program choice and every token's write
      decision are independent soft inputs; a thread is one program and one tape (an open/closed decision
      per token), laid out from the open tokens and run on the hard path; the read-back mixes the
      threads' answers by their weights, so the choice head and the gate head get the exact gradient of
      that mixture: a gate learns to close a token when the threads that leave it out answer better.
      There are 2^T tapes, so not all are run (`threads`): every program that is not negligible, on the
      likeliest tape and, while training, on tapes that move one unit (a number, or one other token) to
      all closed or all open, drawn at random and weighted so that the mixture is unbiased for the
      neighbourhood of the likeliest tape. The mass outside it is reported as `dropped`. Without the gate's uncertainty (one tape) this is the exact expectation over
      the program choice, which is how the choice head learns.
    - "mean_field": one soft run of the differentiable machine with the pc in superposition over the
      entry points, the tape written with the soft gate weights; gradients flow through every step of
      the machine into the choice and gate heads. Slower by orders of magnitude on a CPU, and unstable on
      long runs (the paper's method, kept for comparison).
    A program that has not returned within `max_steps` (`max_steps_train` while training: a program run on
    another task's prompt may take very long, e.g. fib of a list's first number) reads as nothing; the
    run reports that mass per example (`not_halted`), with the `dropped` mass, the mass whose arithmetic
    wrapped modulo V (`wrapped`) and whether the likeliest tape overflowed memory (`overflow`).
    """

    def __init__(self, dim, machine, entries, token_chars, char_token_ids, grad="exact", max_steps=20_000,
                 max_steps_train=3_000, read_window=4, gate_bias=6.0, max_threads=8, interface="tape", args_len=0,
                 gate_window=3):
        super().__init__()
        if grad not in ("exact", "mean_field"):
            raise ValueError(f"grad must be 'exact' or 'mean_field', got {grad!r}")
        if interface not in ("tape", "args"):
            raise ValueError(f"interface must be 'tape' or 'args', got {interface!r}")
        if interface == "args" and len(entries) != 1:
            raise ValueError(f"the args interface runs one entry point (its heads fill its arguments), got {list(entries)}")
        self.interface = interface
        self.arg_heads = ArgumentHeads(dim, machine, entries[0], args_len) if interface == "args" else None
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.machine, self.entries, self.grad, self.max_threads = machine, list(entries), grad, max_threads
        self.seed = 0  # of the threads drawn while training (see `draw`)
        self.max_steps, self.max_steps_train = max_steps, max_steps_train
        self.choose = nn.Linear(dim, len(self.entries))
        self.choose_query = nn.Parameter(torch.zeros(dim))  # zero: pooling starts as the prompt's mean
        self.gate_window = gate_window  # the gate reads its token's state and those of the tokens before it
        self.gate = nn.Linear(dim * gate_window, 1)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, gate_bias)  # open: a fresh layer copies the whole prompt
        self.K = max(1, max(len(c) for c in token_chars))  # the most characters one token writes
        self.window = min(self.K, read_window)  # how many characters each position reads back
        chars = torch.zeros(len(token_chars), self.K, dtype=torch.long)
        for i, c in enumerate(token_chars):
            chars[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        self.register_buffer("token_chars", chars, persistent=False)  # [vocab, K]
        self.register_buffer("token_len", torch.tensor([len(c) for c in token_chars]), persistent=False)  # [vocab]
        digits = [bool(c) and all(48 <= x <= 57 for x in c) for c in token_chars]  # tokens of digits only
        self.register_buffer("token_digits", torch.tensor(digits), persistent=False)  # [vocab]
        self.register_buffer("entry_lines", torch.tensor([machine.program.functions[e].entry for e in self.entries]),
                             persistent=False)  # [E]
        self.register_buffer("char_token_ids", torch.tensor(char_token_ids), persistent=False)  # [V]
        # What is read goes into the residual stream two ways, both zero at the start: a learned projection,
        # and a learned gain on the read character's own output-token vector (see read_back).
        self.out_proj = nn.Linear(self.window * dim, dim, bias=False)
        nn.init.zeros_(self.out_proj.weight)
        self.gain = nn.Parameter(torch.zeros(()))

    # -- the heads -------------------------------------------------------------

    def choose_program(self, h, call_pos):
        """[B, E]: the distribution over entry points, from the call position and a pooling of the prompt."""
        B = h.shape[0]
        prompt = torch.arange(h.shape[1], device=h.device)[None] <= call_pos[:, None]  # [B, T]
        attn = torch.softmax((h @ self.choose_query).masked_fill(~prompt, float("-inf")), -1)  # [B, T]
        h_pool = (attn[..., None] * h).sum(1)  # [B, D] attention pooling over the prompt
        return torch.softmax(self.choose(h[torch.arange(B), call_pos] + h_pool).float(), -1)

    def gates(self, h, tokens, call_pos):
        """(gate [B, T], length [B, T]): P(token t writes), 0 for tokens with nothing to write; its characters."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        length = self.token_len[tokens] * (pos[None] <= call_pos[:, None])  # [B, T] characters each can write
        # Whether a number is a distractor shows in the words before it ("Ignore 42."), so the gate reads a
        # window of the last `gate_window` positions; a tiny LLaMA's own state at the digit did not tell.
        window = torch.cat([F.pad(h, (0, 0, k, 0))[:, :h.shape[1]] for k in reversed(range(self.gate_window))], -1)
        return torch.sigmoid(self.gate(window).squeeze(-1).float()) * (length > 0), length

    # -- write -----------------------------------------------------------------

    def lay_out(self, tokens, length, open_):
        """Tapes: the characters of the open tokens, one after another from cell 0, NUL after them.

        tokens, length [M, T]; open_ [M, T] bool. Returns (cells [M, N] ints, cell [M, T, K] where each
        character of each token goes if it is written, overflow [M]: the tape did not fit with its NUL)."""
        M, T = tokens.shape
        N = self.machine.N
        written = length * open_
        address = torch.cumsum(written, 1) - written  # [M, T] the cell of each token's first character
        k = torch.arange(self.K, device=tokens.device)
        cell = address[..., None] + k  # [M, T, K]
        ok = (k < written[..., None]) & (cell < N)
        cells = torch.zeros(M, N + 1, dtype=torch.long, device=tokens.device)  # one spare cell for the misses
        cells.scatter_(1, torch.where(ok, cell, N).flatten(1), (self.token_chars[tokens] * ok).flatten(1))
        return cells[:, :N], cell, written.sum(1) >= N

    def soft_tape(self, tokens, length, gate):
        """Memory [B, N, V] as written with the soft gate weights: a later write to a cell wins (mean field).
        A token's cells are those of the likeliest tape (gates > 1/2), as the mean field has one layout."""
        B, T = tokens.shape
        V, N = self.machine.V, self.machine.N
        _, cell, _ = self.lay_out(tokens, length, gate > 0.5)
        ok = (torch.arange(self.K, device=tokens.device) < length[..., None]) & (cell < N)
        memory = F.one_hot(torch.zeros(B, N, dtype=torch.long, device=tokens.device), V).to(gate.dtype)
        rows = torch.arange(B, device=tokens.device)
        for t in range(T):
            for k in range(self.K):
                if not ok[:, t, k].any():
                    continue
                w = (gate[:, t] * ok[:, t, k])[:, None]  # [B, 1]
                c = cell[:, t, k].clamp(max=N - 1)
                new = F.one_hot(self.token_chars[tokens[:, t], k], V).to(gate.dtype)
                memory = memory.index_put((rows, c), (1 - w) * memory[rows, c] + w * new)
        return memory

    # -- run -------------------------------------------------------------------

    def run(self, h, tokens, call_pos, max_steps):
        """Choose, write, run. Returns the run (a dict) that `read_back` uses and `forward` reuses: the
        heads' outputs, `answer` [B, N + 1, V] (P(the answer's o-th character is c); its total is the
        mass that returned) and the per-example masses and flags of the docstring."""
        choice = self.choose_program(h, call_pos)  # [B, E]
        if self.interface == "args":
            args = self.arg_heads(h, call_pos)  # [B, S, V]
            run = self.run_args_exact if self.grad == "exact" else self.run_args_mean_field
            return {"choice": choice, "args": args, **run(args, max_steps, tokens, call_pos)}
        gate, length = self.gates(h, tokens, call_pos)  # [B, T]
        run = self.run_exact if self.grad == "exact" else self.run_mean_field
        return {"choice": choice, "gate": gate, **run(tokens, length, choice, gate, max_steps)}

    def draw(self, q, n, tokens, writes):
        """n draws with replacement from each row of q [B, T]. An example's draws depend only on its prompt
        and `self.seed` (train.py sets it each iteration), not on the batch it is in, so one process or
        several, one micro-step or several, run the same threads (and a resumed run is exact)."""
        draws = []
        for b in range(len(q)):
            key = hash((self.seed, tuple(tokens[b][writes[b]].tolist()))) % 2 ** 62
            g = torch.Generator(device=q.device).manual_seed(key)
            draws.append(torch.multinomial(q[b], n, replacement=True, generator=g))
        return torch.stack(draws)  # [B, n]

    def units(self, tokens, writes):
        """unit [B, T]: which unit each token belongs to, and n_units [B]. A unit is a number (a maximal run
        of writing tokens made of digits only) or any other writing token on its own."""
        digit = self.token_digits[tokens] & writes  # [B, T]
        start = writes & ~(digit & F.pad(digit[:, :-1], (1, 0)))  # a unit starts here (or continues a number)
        unit = (torch.cumsum(start.long(), 1) - 1).clamp(min=0)  # [B, T]
        return unit, start.sum(1)

    def threads(self, tokens, length, choice, gate):
        """Which (program, tape) threads each example runs, and their weights (the class docstring).

        Programs: every entry point of probability >= MIN_CHOICE. Tapes: the likeliest (each gate decided
        by > 1/2) and, while training, `n` *moves* drawn around it. A move sets one unit (`units`: a number,
        or one other token) all closed or all open, where that differs from the likeliest tape: a number is
        kept off the tape or written as a whole ("42" needs both digits closed; closing one leaves another
        number, and a toggle of a half-closed "42" would open the closed digit). Moves are drawn with
        replacement from q(c) = (1/C_b + P(move c) / sum_d P(move d)) / 2 over the example's C_b moves, and
        a move's thread is weighted P(program) P(its tape) / (n q(c)), the Hansen-Hurwitz estimator: its
        expectation over the draws is exactly the mixture over every move, so the mixture and its gradient
        are unbiased for the neighbourhood {likeliest tape, every move}; what lies outside it (and the
        programs below MIN_CHOICE) is `dropped`. Half of q is uniform so that every unit is sometimes
        moved (a gate that is never moved gets no gradient); the other half goes where a move is likely.
        Each example runs at most `max_threads` threads: n = max_threads // programs - 1.

        Returns b, e, move (-1: none) [M] (example, program, move c: unit c % T set closed (c < T) or open),
        weight [M], the likeliest decisions open_ [B, T], the units [B, T] and dropped [B]."""
        B, T = gate.shape
        device = gate.device
        writes = length > 0
        open_ = (gate > 0.5) & writes  # [B, T] the likeliest tape's decisions
        p_map = torch.where(open_, gate, 1 - gate)  # [B, T] P(the likeliest decision); 1 where nothing is written
        p_flip = (1 - p_map) * writes  # [B, T] P(the other decision)
        tape = p_map.prod(1)  # [B] P(the likeliest tape)
        unit, _ = self.units(tokens, writes)
        log_ratio = torch.where(writes, p_flip.clamp_min(1e-30).log() - p_map.log(), 0)  # [B, T]
        moves = []  # per target state (closed, open): [B, U = T] P(tape with the move) / P(likeliest tape)
        for changed in (open_, writes & ~open_):  # the tokens a move to closed / to open changes
            log_move = torch.zeros_like(log_ratio).scatter_add(1, unit, log_ratio * changed)
            exists = torch.zeros_like(unit).scatter_add(1, unit, changed.long()) > 0  # the move changes something
            moves.append(log_move.exp() * exists)
        ratio = torch.cat(moves, 1)  # [B, 2T]
        exists = ratio.detach() > 0
        live = choice.detach() >= MIN_CHOICE  # [B, E]
        n_prog = live.sum(1)  # [B]
        n = (self.max_threads // n_prog - 1).clamp(min=0) * self.training  # [B] moves drawn per example
        drawn = torch.full((B, max(1, int(n.max()))), -1, dtype=torch.long, device=device)
        q = torch.zeros(B, 2 * T, device=device)
        if n.max() > 0:
            share = ratio.detach() / ratio.detach().sum(1, keepdim=True).clamp_min(1e-30)
            q = (exists / exists.sum(1, keepdim=True).clamp_min(1) + share) / 2  # [B, 2T]
            draws = self.draw(q.clamp_min(1e-30) * exists, drawn.shape[1], tokens, writes)  # [B, n_max]
            drawn = torch.where(torch.arange(drawn.shape[1], device=device) < n[:, None], draws, -1)
        options = torch.cat([torch.full((B, 1), -1, dtype=torch.long, device=device), drawn], 1)  # [B, 1 + n_max]
        be, e = live.nonzero(as_tuple=True)  # the (example, program) pairs
        j = torch.arange(options.shape[1], device=device)
        pair, j = (options[be] >= 0).logical_or(j == 0).nonzero(as_tuple=True)  # skip unused draws
        b, e, move = be[pair], e[pair], options[be[pair], j]
        c = move.clamp(min=0)
        hh = ratio[b, c] / (n[b] * q[b, c]).clamp_min(1e-30)  # Hansen-Hurwitz weight of one draw
        weight = choice[b, e] * tape[b] * torch.where(move >= 0, hh, torch.ones_like(hh))
        neighbourhood = tape * (1 + ratio.sum(1) * (n > 0))  # [B] its exact mass
        dropped = 1 - (choice * live).sum(1) * neighbourhood
        return b, e, move, weight, open_, unit, dropped.detach()

    def run_exact(self, tokens, length, choice, gate, max_steps):
        """The threads of each example, run on the hard path in one batch; their answers mixed by weight."""
        B, T = tokens.shape
        N, V = self.machine.N, self.machine.V
        b, e, move, weight, open_, unit, dropped = self.threads(tokens, length, choice, gate)
        moved = (unit[b] == (move % T)[:, None]) & (move >= 0)[:, None] & (length[b] > 0)  # [M, T] its unit
        decisions = torch.where(moved, (move >= T)[:, None], open_[b])  # [M, T] set closed (< T) or open
        cells, _, overflow = self.lay_out(tokens[b], length[b], decisions)
        regs = self.machine.list_registers(len(b), base=0, length=N)
        out = self.machine.run_hard(self.entry_lines[e], regs, cells, max_steps)
        likeliest = move < 0
        overflow = torch.zeros(B, dtype=torch.bool, device=tokens.device).index_put((b[likeliest],), overflow[likeliest])
        return {**self.answers(out, b, weight, B, out[0]), "dropped": dropped, "overflow": overflow}

    def answers(self, out, b, weight, B, start):
        """The threads grouped by what they answer: one *row* per (example, answer text), its weight the
        sum of its threads' (threads that agree merge), plus a row for what did not return, which reads
        nothing. out: the hard run of the threads, b [M] their examples, start [M] where each answer starts.

        Returns rows_b [U] (the example), rows_chars [U, N + 1] (the answer's characters, NUL from its end
        on), rows_ok [U] (it returned), rows_weight [U]; and the masses per example that the run reports."""
        N = self.machine.N
        memory, halted = out[1], out[2]
        where = start[:, None] + torch.arange(N + 1, device=b.device)  # [M, N + 1] past memory: NUL
        chars = memory.gather(1, where.clamp(max=N - 1)) * (where < N) * halted[:, None]
        chars = chars * (torch.cumsum(chars == 0, 1) == 0)  # nothing after the first NUL is ever read
        key = torch.cat([b[:, None], halted[:, None].long(), chars], 1)
        rows, inverse = torch.unique(key, dim=0, return_inverse=True)  # sorted: the rows of an example together
        per_example = lambda x: weight.new_zeros(B).index_add(0, b, x.to(weight.dtype)).detach()  # [B] a mass
        error = getattr(out, "error", torch.full_like(start, -1))  # [M] the `fail` each thread stopped at, or -1
        failed = error >= 0
        wrapped = getattr(out, "wrapped", torch.zeros_like(halted))
        return {"rows_b": rows[:, 0], "rows_ok": rows[:, 1].bool(), "rows_chars": rows[:, 2:],
                "rows_weight": weight.new_zeros(len(rows)).index_add(0, inverse, weight),
                "steps": out[3], "threads": len(b),
                "error": torch.full((B,), -1, dtype=torch.long, device=b.device).scatter_reduce(0, b, error, "amax"),
                "not_halted": per_example(weight * (~halted & ~failed)), "failed": per_example(weight * failed),
                "wrapped": per_example(weight * wrapped)}

    def run_args_exact(self, args, max_steps, tokens, call_pos):
        """The args interface's threads, run on the hard path; their answers grouped into rows.

        One slot: every value (V threads), so the mixture and its gradient are exact. Several slots: in
        evaluation the `max_threads` heaviest joint assignments (exactly the top k, `top_assignments`); in
        training the likeliest and a sample of its neighbourhood (`neighbourhood`)."""
        B, S, V = args.shape
        if self.training and S > 1:
            b, values, weight, dropped = self.neighbourhood(args, tokens, call_pos)
        else:
            k = V if S == 1 else self.max_threads  # one slot: every value
            weight, values, dropped = top_assignments(list(args.unbind(1)), k)  # [B, K], [B, K, S]
            b, k = (weight.detach() > 0).nonzero(as_tuple=True)  # [M] the threads
            values, weight = values[b, k], weight[b, k]
        regs, memory = self.arg_heads.fill(values)
        entry = self.entry_lines[0].expand(len(b))
        out = self.machine.run_hard(entry, regs, memory, max_steps)
        rows = self.answers(out, b, weight, B, out[0] + self.arg_heads.tape_base)
        if self.training and S > 1:
            # The loss is the likelihood given the neighbourhood: each example's row weights divided by their
            # sum (the estimated neighbourhood mass). Left unnormalised, the mass outside the neighbourhood
            # counts as a wrong answer, and the quickest way to raise the likelihood is to pull mass into it:
            # the heads grew confident on wrong values before the LM could tell right from wrong (measured:
            # entropy 4.85 -> 0.68 nats, sort8 0% after 200 iterations).
            total = torch.zeros(B, dtype=weight.dtype, device=weight.device).index_add(0, rows["rows_b"],
                                                                                     rows["rows_weight"])
            rows["rows_weight"] = rows["rows_weight"] / total[rows["rows_b"]].clamp_min(1e-30)
        return {**rows, "dropped": dropped.detach(), "overflow": torch.zeros(B, dtype=torch.bool, device=args.device)}

    def neighbourhood(self, args, tokens, call_pos):
        """Training threads for several slots: the likeliest assignment and n = max_threads - 1 draws from
        its neighbourhood, the S (V - 1) assignments that change one slot's value, drawn with replacement
        from q(s, v) = (uniform + P(change s to v) / sum) / 2 and weighted P(that assignment) / (n q), the
        Hansen-Hurwitz estimator of the tape's moves (`threads`): the mixture and its gradient are unbiased
        for {likeliest, every one-slot change}. So each slot's head gets, in expectation, the exact
        gradient of its own distribution given the other slots' likeliest values: how a single argument
        (fib's, enumerated in full) learns. The top k of the joint would keep only the near-ties of the
        likeliest assignment and never try a value the heads think unlikely. The mass outside the
        neighbourhood is `dropped`. Returns b [M], values [M, S], weight [M], dropped [B]."""
        B, S, V = args.shape
        p_map, best = args.max(-1)  # [B, S]
        likeliest = p_map.prod(1)  # [B] P(the likeliest assignment)
        other = ~F.one_hot(best, V).bool()  # [B, S, V] the values a change can take
        ratio = (args / p_map[..., None] * other).flatten(1)  # [B, S V] P(one change) / P(likeliest)
        n = self.max_threads - 1
        values = best[:, None, :].repeat(1, 1 + n, 1)  # [B, 1 + n, S]
        weight = likeliest[:, None].repeat(1, 1 + n)
        if n > 0:
            valid = other.flatten(1).float()
            share = ratio.detach() / ratio.detach().sum(1, keepdim=True).clamp_min(1e-30)
            q = (valid / valid.sum(1, keepdim=True) + share) / 2  # [B, S V]
            prompt = torch.arange(tokens.shape[1], device=tokens.device)[None] <= call_pos[:, None]
            drawn = self.draw(q.clamp_min(1e-30) * valid, n, tokens, prompt)  # [B, n]
            values[:, 1:].scatter_(2, (drawn // V)[..., None], (drawn % V)[..., None])
            hh = ratio.gather(1, drawn) / (n * q.gather(1, drawn))  # [B, n]
            weight = likeliest[:, None] * torch.cat([torch.ones_like(hh[:, :1]), hh], 1)
        dropped = 1 - likeliest * (1 + ratio.sum(1) * (n > 0))
        b = torch.arange(B, device=args.device).repeat_interleave(1 + n)
        return b, values.flatten(0, 1), weight.flatten(), dropped.detach()

    def run_args_mean_field(self, args, max_steps, tokens=None, call_pos=None):
        """The paper's method: one soft run with the argument distributions in the registers and cells."""
        B = args.shape[0]
        regs, memory = self.arg_heads.fill_soft(args, self.machine.V)
        pc = F.one_hot(self.entry_lines[:1], self.machine.L).to(args.dtype).expand(B, -1)
        out = self.machine(pc, regs, memory, max_steps=max_steps)
        value = F.pad(out.value, (self.arg_heads.tape_base, 0))[:, :self.machine.V]  # the start, as a cell
        zero = torch.zeros(B, device=args.device)
        return {"answer": self.answer_of_soft_run(value, out.memory), **self.one_row_each(B, args.device),
                "steps": out.steps, "threads": B,
                "dropped": zero, "not_halted": (1 - out.halted).detach(), "failed": getattr(out, "failed", zero).detach(),
                "wrapped": zero, "overflow": torch.zeros(B, dtype=torch.bool, device=args.device)}

    def run_mean_field(self, tokens, length, choice, gate, max_steps):
        """One soft run: all programs in superposition on the soft tape."""
        B = tokens.shape[0]
        N, V = self.machine.N, self.machine.V
        memory = self.soft_tape(tokens, length, gate)
        pc = choice @ F.one_hot(self.entry_lines, self.machine.L).to(choice.dtype)  # [B, L] superposition
        regs = self.machine.one_hot(self.machine.list_registers(B, base=0, length=N))
        out = self.machine(pc, regs, memory, max_steps=max_steps)
        answer = self.answer_of_soft_run(out.value, out.memory)
        _, _, overflow = self.lay_out(tokens, length, gate > 0.5)
        zero = torch.zeros(B, device=tokens.device)
        return {"answer": answer, **self.one_row_each(B, tokens.device), "steps": out.steps, "threads": B, "dropped": zero,
                "not_halted": (1 - out.halted).detach(), "failed": getattr(out, "failed", zero).detach(),
                "wrapped": zero, "overflow": overflow}

    @staticmethod
    def one_row_each(B, device):
        """The mean field's rows: one per example, of weight 1 (its answer is the soft `answer`)."""
        return {"rows_b": torch.arange(B, device=device), "rows_weight": torch.ones(B, device=device)}

    def answer_of_soft_run(self, start, memory):
        """answer[b, o] = sum_s P(start = s) memory[s + o] [B, N + 1, V]: a shifted copy of P(start) [B, V]
        times the memory [B, N, V], whose cells past the end (a start s >= N, or s + o >= N) hold NUL."""
        B, N, V = memory.shape
        O = N + 1
        nul = F.one_hot(torch.zeros(B, V + O - N, dtype=torch.long, device=memory.device), V).to(memory.dtype)
        cells = torch.cat([memory, nul], 1)  # [B, V + O, V]
        o, c = torch.arange(O, device=memory.device), torch.arange(V + O, device=memory.device)
        src = c[None, :] - o[:, None]  # [O, V + O]: shifted[b, o, c] = P(start = c - o)
        shifted = start[:, src.clamp(0, V - 1)] * ((src >= 0) & (src < V))  # [B, O, V + O]
        return torch.bmm(shifted, cells)  # [B, O, V]

    # -- read back -------------------------------------------------------------

    def offsets(self, tokens, call_pos):
        """[B, T, window]: the answer characters each position reads: the characters emitted so far, on."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        emitted = torch.cumsum(self.token_len[tokens] * (pos[None] > call_pos[:, None]), 1)  # [B, T]
        return emitted[..., None] + torch.arange(self.window, device=tokens.device)

    def read_back(self, run, tokens, call_pos, token_vectors):
        """The embedding of what each row's positions read, [U, T, window, D] (tokens, call_pos per row).

        A character is embedded as its token's row of `token_vectors`, the model's output head (the
        token embeddings, when tied; NUL as end-of-text). So reading a character and predicting it share
        one vector: a gain learned on the characters seen in training carries over to every other one.
        Exact rows read their answer's characters (a row that did not return reads nothing); the mean
        field's read the expected output vector under its soft answer.
        """
        E_val = token_vectors[self.char_token_ids]  # [V, D]
        U = len(tokens)
        if "rows_chars" in run:
            chars = run["rows_chars"]  # [U, N + 1]
            off = self.offsets(tokens, call_pos).clamp(max=chars.shape[1] - 1)  # past the end: NUL
            read = chars[torch.arange(U, device=chars.device)[:, None, None], off]  # [U, T, window]
            return E_val[read] * run["rows_ok"][:, None, None, None].to(E_val.dtype)
        answer = run["answer"]  # [U, N + 1, V]
        off = self.offsets(tokens, call_pos).clamp(max=answer.shape[1] - 1)
        read = answer[torch.arange(U, device=answer.device)[:, None, None], off]  # [U, T, window, V]
        return read @ E_val.to(read.dtype)

    def forward(self, h, tokens, call_pos, token_vectors, cache=None, start_pos=0):
        """h [B, T', D] -> (h of each row plus what its positions from the call on read back [U, T', D], the run).

        Without `cache` the machine runs on the prompts and h, tokens [B, T] and call_pos [B] are per
        example; each example's hidden states are copied to its rows (`run["rows_b"]`). With `cache` (the
        run of the prompts, in `AugmentedLlama.generate`) they are already per row. `tokens` is the whole
        sequence; h holds its last T' positions, from `start_pos` (T' = T except in KV-cached decoding)."""
        max_steps = self.max_steps if not self.training else min(self.max_steps, self.max_steps_train)
        if cache is None and start_pos > 0:
            raise ValueError("the machine runs on the whole prompt: pass the run of the prompt as cache")
        # The heads read the stream scaled to unit length per position: a pretrained LLaMA's stream holds
        # "massive activations" (SmolLM2 after block 14: RMS ~1000 at the first token, ~6 elsewhere), which
        # would swamp the prompt pooling; and unit length keeps the choice's steps (about lr x |h|_1 per
        # Adam step) small next to the read-back's, so the choice follows read-backs that already inform.
        run = cache
        if cache is None:
            h_heads = h * torch.rsqrt(h.float().pow(2).sum(-1, keepdim=True) + 1e-6).to(h.dtype)
            run = self.run(h_heads, tokens, call_pos, max_steps)
            rows = run["rows_b"]
            h, tokens, call_pos = h[rows], tokens[rows], call_pos[rows]
        emb = self.read_back(run, tokens, call_pos, token_vectors)[:, start_pos:].to(h.dtype)  # [U, T', window, D]
        # The gain path adds the read character's vector at the residual stream's scale (RMS 1); the gain
        # is stored divided by GAIN_SCALE so that Adam, which moves a parameter by about lr per step,
        # can move this single number far enough within a short run.
        unit = emb[:, :, 0] * torch.rsqrt(token_vectors.float().pow(2).mean().to(h.dtype))
        delta = self.out_proj(emb.flatten(2)) + GAIN_SCALE * self.gain * unit  # [U, T', D]
        after = torch.arange(start_pos, tokens.shape[1], device=h.device)[None] >= call_pos[:, None]  # [U, T']
        return h + delta * after[..., None], run


def segment_logsumexp(x, segment, n):
    """out[s] = log sum over i with segment[i] = s of exp(x[i]), for s in 0..n-1 (x [I], segment [I])."""
    top = x.new_full((n,), float("-inf")).scatter_reduce(0, segment, x.detach(), "amax")
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return top + x.new_zeros(n).index_add(0, segment, torch.exp(x - top[segment])).log()


class AugmentedLlama(nn.Module):
    """A `Llama` with a `ReasoningLayer` after block `layer_after` (default: the middle block).

    With `entries=None` it is the plain LLaMA (the `--baseline`), so both are trained and evaluated by the
    same code. `forward(tokens, call_pos, cache=None) -> (logits, cache)`: the cache holds the machine's
    run, which depends on the prompt only, so `generate` runs the machine once per prompt.
    """

    def __init__(self, llama, tokenizer, program=None, entries=None, layer_after=None, grad="exact",
                 max_steps=20_000, max_steps_train=3_000, n_cells=None, max_depth=16, trainable_library=False,
                 max_threads=8, interface="tape", args_len=0):
        super().__init__()
        self.llama = llama
        self.layer_after = llama.args.n_layers // 2 - 1 if layer_after is None else layer_after
        if not 0 <= self.layer_after < llama.args.n_layers:
            raise ValueError(f"layer_after={self.layer_after}: the model has blocks 0..{llama.args.n_layers - 1}")
        self.layer = None
        if entries is not None:
            V = program.n_values
            machine = Machine(program, n_cells=n_cells, max_depth=max_depth, trainable=trainable_library)
            chars = token_characters(tokenizer, llama.args.vocab_size, V)
            char_ids = [tokenizer.eos_id] + [_token_of_char(tokenizer, c) for c in range(1, V)]
            self.layer = ReasoningLayer(llama.args.dim, machine, entries, chars, char_ids, grad, max_steps,
                                        max_steps_train, max_threads=max_threads, interface=interface,
                                        args_len=args_len)

    def forward(self, tokens, call_pos, cache=None, start_pos=0, targets=None):
        """tokens [B, T] -> (logits of positions start_pos.. [U, T - start_pos, vocab], the machine's run).

        With the layer there is one row of logits per row of the run (an example's distinct answers, see
        `ReasoningLayer.answers`); the baseline has one per example. With `targets` [B, T] (-100 off the
        answer) it returns instead the answers' negative log-likelihood, summed over the batch: for each
        example, -log sum over its rows of weight * P(answer | the row), the exact mixture over the threads
        (the mean field and the baseline have one row of weight 1: the usual cross-entropy).
        start_pos > 0 only inside `generate`, whose KV cache holds the earlier positions."""
        if self.layer is None:
            logits, run = self.llama(tokens[:, start_pos:], start_pos), None
        else:
            out = {}

            def hook(i, h):
                if i == self.layer_after:
                    h, out["run"] = self.layer(h, tokens, call_pos, self.llama.output.weight, cache, start_pos)
                return h

            logits, run = self.llama(tokens[:, start_pos:], start_pos, block_hook=hook), out["run"]
        if targets is None:
            return logits, run
        rows = torch.arange(len(tokens), device=tokens.device) if run is None else run["rows_b"]
        weight = torch.ones(len(rows), device=tokens.device) if run is None else run["rows_weight"]
        nll = F.cross_entropy(logits.float().transpose(1, 2), targets[rows], ignore_index=-100, reduction="none")
        log_p = torch.log(weight.float()) - nll.sum(1)  # [U] log(weight * P(answer | row))
        return -segment_logsumexp(log_p, rows, len(tokens)).sum(), run

    @torch.no_grad()
    def generate(self, prompts, max_new_tokens, eos_id):
        """Greedy answers: token lists `prompts`, each ending at its call position -> (new tokens of each,
        cut before eos; the machine's run). The machine runs once on the whole batch. Then each group of
        prompts of one length is decoded with the LLaMA's KV cache, one cache row per row of the run: the
        next token of an example is the argmax of the mixture of its rows' next-token distributions, each
        weighted by its weight times the likelihood it gave the tokens chosen so far (exact marginal).
        run["warnings"] lists, per prompt, why its answer may be wrong (`run_warnings`; empty: no reason
        known). A prompt of max_seq_len tokens or more is a ValueError: no room is left to answer."""
        device = self.llama.tok_embeddings.weight.device
        for i, p in enumerate(prompts):  # a prompt that fills the context leaves no room for an answer
            if len(p) >= self.llama.args.max_seq_len:
                raise ValueError(f"prompt {i} is {len(p)} tokens long; the model reads at most "
                                 f"{self.llama.args.max_seq_len - 1} (max_seq_len {self.llama.args.max_seq_len}) "
                                 "and would have no room left to answer")
        T = max(len(p) for p in prompts)
        tokens = torch.tensor([p + [eos_id] * (T - len(p)) for p in prompts], device=device)  # [B, T]
        calls = torch.tensor([len(p) - 1 for p in prompts], device=device)  # [B]
        run = None if self.layer is None else self(tokens[:, :calls.max() + 1], calls)[1]
        rows_b = torch.arange(len(prompts), device=device) if run is None else run["rows_b"]  # [U]
        log_w = torch.zeros(len(rows_b), device=device) if run is None else run["rows_weight"].float().log()
        out = [None] * len(prompts)
        for length in sorted({len(p) for p in prompts}):
            rows = (calls[rows_b] == length - 1).nonzero()[:, 0]  # the rows of this group's examples
            examples, local = torch.unique(rows_b[rows], return_inverse=True)  # [G], [g] row -> example
            sub = None if run is None else _rows(run, rows)
            seq, c, lw = tokens[rows_b[rows], :length], calls[rows_b[rows]], log_w[rows]
            new = [[] for _ in examples]
            done, fed = torch.zeros(len(examples), dtype=torch.bool, device=device), 0
            self.llama._setup_cache(len(rows), min(length + max_new_tokens, self.llama.args.max_seq_len))
            try:
                for _ in range(min(max_new_tokens, self.llama.args.max_seq_len - length)):
                    logits, _ = self(seq, c, cache=sub, start_pos=fed)
                    fed = seq.shape[1]
                    log_p = torch.log_softmax(logits[:, -1].float(), -1)  # [g, vocab]
                    mixture = _by_example(lw[None] + log_p.T, local, len(examples))  # [G, vocab]
                    nxt = mixture.argmax(-1)  # [G]
                    done |= nxt == eos_id
                    for j in (~done).nonzero()[:, 0].tolist():
                        new[j].append(int(nxt[j]))
                    if done.all():
                        break
                    lw = lw + log_p.gather(1, nxt[local][:, None])[:, 0]
                    seq = torch.cat([seq, nxt[local][:, None]], 1)
            finally:
                self.llama._setup_cache(None, None)
            for j, i in enumerate(examples.tolist()):
                out[i] = new[j]
        if run is not None:
            run["warnings"] = run_warnings(run, self.layer)
        return out, run


WARN_MASS = 0.1  # a flagged share of an example's run at least this large is a warning
WARN_DROPPED = 0.5  # the share that exact execution did not run: the answer then stands on the smaller part


def run_warnings(run, layer):
    """Why an answer may be wrong though the model gives it: per example, a list of messages (empty: none).
    From the run's masses: the library did not finish (steps, call depth), stopped at an error (assert,
    raise, an index past the end), wrapped a value modulo V, or the prompt overflowed the tape; or most of
    the model's probability was not run (`dropped`). `generate` puts them in run["warnings"]."""
    machine, V = layer.machine, layer.machine.V
    per = {k: run[k].tolist() for k in ("not_halted", "failed", "wrapped", "dropped", "overflow")}
    errors = run["error"].tolist() if "error" in run else [-1] * len(per["failed"])
    out = []
    for b in range(len(per["failed"])):
        w = []
        if per["overflow"][b]:
            w.append(f"the prompt does not fit the library's tape ({machine.N} cells): its end was cut off")
        if per["not_halted"][b] >= WARN_MASS:
            w.append(f"the library did not finish ({per['not_halted'][b]:.0%} of the run): no result within "
                     f"{layer.max_steps} steps, or recursion deeper than the call stack ({machine.D})")
        if per["failed"][b] >= WARN_MASS:
            why = machine.program.errors[errors[b]] if 0 <= errors[b] < len(machine.program.errors) else "an error"
            w.append(f"the library stopped with an error ({per['failed'][b]:.0%} of the run): {why}")
        if per["wrapped"][b] >= WARN_MASS:
            w.append(f"a value passed {V - 1} and wrapped around ({per['wrapped'][b]:.0%} of the run): the library "
                     f"computes modulo {V}, so the input is out of its range")
        if per["dropped"][b] >= WARN_DROPPED:
            w.append(f"{per['dropped'][b]:.0%} of the model's probability was not run (exact execution runs the "
                     "likeliest tape only): the answer stands on the rest")
        out.append(w)
    return out


def _by_example(scores, local, G):
    """[vocab, g] per-row log scores -> [G, vocab]: the log of each example's sum over its rows."""
    top = scores.new_full((scores.shape[0], G), float("-inf")).scatter_reduce(1, local.expand_as(scores), scores, "amax")
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = scores.new_zeros(scores.shape[0], G).index_add(1, local, torch.exp(scores - top[:, local]))
    return (top + total.log()).T


def _rows(run, rows):
    """The rows of a run that reading back needs, restricted to `rows` (the mean field's rows are examples)."""
    return {k: v[rows] for k, v in run.items() if k.startswith("rows_") or k == "answer"}


def _token_of_char(tokenizer, c):
    ids = tokenizer.encode(chr(c))
    return ids[0] if len(ids) == 1 else tokenizer.eos_id
