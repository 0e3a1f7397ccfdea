"""Section 4: exact probabilistic execution: threads, `top_assignments`, `Distribution`, holes."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from compiler import INT, LIST, SEQS, ExecutionError, _lay_out_arguments


# -----------------------------------------------------------------------------
# 4. Exact probabilistic execution: the state is a weighted set of hard runs ("threads").
#
# The mean-field machine keeps one marginal per register and cell and so forgets which value of one goes
# with which value of another; over long runs that error grows (see `Machine`). Here nothing is forgotten:
# every soft input (an argument or memory cell given as a distribution over values, a hole of the program,
# the program choice in the reasoning layer) is split into one thread per value of its support, every
# thread is an ordinary machine run on the hard path, and the output distribution is the sum of the
# threads' weights by what they return. The weight of a thread is the product of its inputs'
# probabilities, a differentiable function of them, so the gradient is the exact derivative of the output
# distribution wherever a thread was run: stable at any depth, since no derivative crosses a step.
#
# All the splits happen before the first step (a thread picks a value for every soft input at once). This
# gives the same distribution as splitting when a value is first read, and lets one batched hard run
# execute every thread. When the joint support is larger than `max_threads`, the heaviest assignments are
# kept (`top_assignments`, exactly the top k, as in the top-k proofs of Scallop/DeepProbLog) and the mass of
# the rest is reported as `dropped`, never renormalised away. Threads that end in the same output are
# merged by adding their weights.


def top_assignments(factors, k):
    """The k most probable joint assignments of independent discrete inputs, for each of B examples.

    factors: a list of F >= 1 tensors [B, S_f], row b of factor f the distribution of input f of example b
    over its S_f values. Returns (weight [B, K], choice [B, K, F] value indices, dropped [B]), K <= k,
    sorted by weight; an assignment of weight 0 (a value outside an input's support, or padding when
    fewer than k assignments exist) is a row of weight 0 that the caller skips.

    A beam that keeps the k heaviest prefixes after each input is exact: a pruned prefix has k kept
    prefixes at least as heavy, and each of them, completed with the same values, weighs at least as much
    as any completion of it, so no completion of it is among the k heaviest. `dropped` adds up the
    pruned prefixes' weights: the mass of all the assignments that were not kept (inputs sum to 1).
    """
    weight = factors[0].new_ones(factors[0].shape[0], 1)  # [B, 1] the empty prefix
    B = weight.shape[0]
    choice = torch.zeros(B, 1, 0, dtype=torch.long, device=weight.device)
    dropped = weight.new_zeros(B)
    for p in factors:
        S = p.shape[1]
        cand = (weight[:, :, None] * p[:, None, :]).flatten(1)  # [B, K * S] every prefix extended
        top = cand.detach().topk(min(k, cand.shape[1]), dim=1).indices  # [B, K'] sorted, heaviest first
        kept = cand.gather(1, top)
        if kept.shape[1] < cand.shape[1]:
            dropped = dropped + (cand.sum(1) - kept.sum(1))
        prev = choice.gather(1, (top // S)[..., None].expand(-1, -1, choice.shape[2]))
        choice, weight = torch.cat([prev, (top % S)[..., None]], 2), kept
    return weight, choice, dropped


@dataclass
class Distribution:
    """What `Machine.run_distribution` returns. Masses add up: value.sum() + not_halted + failed + dropped = 1."""

    value: torch.Tensor  # [V] P(the run returns k)
    memory: list  # per list argument, [len, V]: P(the run returns and cell i of the list then holds k)
    dropped: torch.Tensor  # [] mass of input assignments not run (more than max_threads)
    not_halted: torch.Tensor  # [] mass of runs that did not return (out of steps, past memory or call depth)
    failed: torch.Tensor  # [] mass of runs that stopped at an `assert` / `raise`
    wrapped: torch.Tensor  # [] mass of runs in which some arithmetic wrapped around modulo V
    threads: int  # hard runs made
    steps: int  # the longest run's steps


def _soft_input(x, V, what):
    """A soft argument checked: a 1-D tensor of V probabilities (non-negative, finite, summing to 1)."""
    if x.dim() != 1 or x.shape[0] != V:
        raise ValueError(f"{what}: a distribution must be a 1-D tensor of V={V} probabilities, got shape "
                         f"{tuple(x.shape)}")
    d = x.detach()
    if not torch.isfinite(d).all() or (d < 0).any():
        raise ValueError(f"{what}: probabilities must be finite and non-negative, got min {float(d.min())}")
    if abs(float(d.sum()) - 1) > 1e-4:
        raise ValueError(f"{what}: probabilities must sum to 1, got {float(d.sum()):.6f}")
    return x


class ExactExecution:
    """`Machine`'s methods for exact probabilistic execution and for holes (a mixin: `Machine` inherits
    them; they use its hard path)."""

    # --- exact probabilistic execution (the threads of section 4) -----------------

    def run_distribution(self, name, *args, holes=None, max_threads=4096, max_steps=10_000):
        """`name(*args)` on soft inputs, exactly: a `Distribution` over what it returns.

        Each argument is an int, a 1-D tensor of V probabilities (it may require grad), or, for a list
        parameter, a list of those. Every soft input is independent of the others. Each assignment of
        values to the soft inputs is a thread, run on the hard path, weighted by the product of its
        values' probabilities; with more than `max_threads` assignments the heaviest are run and the rest
        is reported as `dropped`. The program's holes are soft inputs too: by default each takes its
        learned distribution (`hole_probs`); `holes` may give, per hole, an int (the alternative) or a
        tensor of probabilities over its alternatives. On one-hot inputs this is one hard run.
        """
        if not isinstance(max_threads, int) or max_threads < 1:
            raise ValueError(f"max_threads must be an int >= 1, got {max_threads!r}")
        if name not in self.program.functions:
            raise ExecutionError(f"unknown function {name!r}; the program defines {sorted(self.program.functions)}")
        fn = self.program.functions[name]
        if len(args) != len(fn.params):
            raise ExecutionError(f"{name} takes {len(fn.params)} arguments ({', '.join(p.name for p in fn.params)}), "
                                 f"got {len(args)}")
        template, places, dists = [], [], []  # the arguments with 0 where soft; where each soft input goes
        for p, x in zip(fn.params, args):
            what = f"argument {p.name} of {name}"
            if p.type not in (INT, LIST):  # characters and strings are given as they are
                if torch.is_tensor(x) or isinstance(x, list) and any(torch.is_tensor(v) for v in x):
                    raise ExecutionError(f"{what}: soft inputs are ints or lists of ints; a {p.type} must be given as is")
                template.append(x)
                continue
            if p.type == LIST:
                if torch.is_tensor(x) and x.dim() == 2:
                    x = list(x)
                if not isinstance(x, (list, tuple)):
                    raise ExecutionError(f"{what} must be a list (of ints or distributions), got {type(x).__name__}")
                items = [(f"{what}, item {i}", v) for i, v in enumerate(x)]
            else:
                items = [(what, x)]
            ints = []
            for label, v in items:
                if torch.is_tensor(v) and v.dim() > 0:
                    dists.append(_soft_input(v, self.V, label))
                    places.append((p.name, len(ints)))
                    ints.append(0)
                else:
                    ints.append(int(v) if torch.is_tensor(v) else v)
            template.append(ints if p.type == LIST else ints[0])
        memory, regs, lists = _lay_out_arguments(fn, template, self.R, self.arg_regs, self.V, self.N, self.program)
        where = self._argument_places(fn, template)  # param name -> ("reg", r) or ("mem", base)
        slots = [(where[n][0], where[n][1] + i) for n, i in places]
        for i, (reg, p) in enumerate(self._hole_inputs(holes)):
            slots.append(("reg", reg))
            dists.append(p)
        # The threads: the heaviest joint assignments of the soft inputs' supports.
        device = self.e_a0.device
        supports = [d.nonzero()[:, 0] for d in dists]
        if dists:
            weight, choice, dropped = top_assignments([d[s][None] for d, s in zip(dists, supports)], max_threads)
            live = weight[0].detach() > 0
            weight, choice, dropped = weight[0][live], choice[0][live], dropped[0]
        else:
            weight, choice, dropped = torch.ones(1), torch.zeros(1, 0, dtype=torch.long), torch.zeros(())
        M = len(weight)
        regs = torch.tensor(regs, device=device).repeat(M, 1)  # [M, R]
        memory = torch.tensor(memory, device=device).repeat(M, 1)  # [M, N]
        for f, ((kind, at), s) in enumerate(zip(slots, supports)):
            values = s.to(device)[choice[:, f].to(device)]  # [M] this input's value in each thread
            (regs if kind == "reg" else memory)[:, at] = values
        pc = torch.full((M,), fn.entry, dtype=torch.long, device=device)
        out = self.run_hard(pc, regs, memory, max_steps)
        value, mem, halted = out[0], out[1], out[2]
        failed = getattr(out, "error", torch.full_like(value, -1)) >= 0
        wrapped = getattr(out, "wrapped", torch.zeros_like(halted))
        weight = weight.to(device)
        w_ok = weight * halted  # [M] the mass of each thread that returned
        dist = weight.new_zeros(self.V).index_add(0, value, w_ok)  # [V]
        cells = []
        for x, base, _ in lists:  # each list's cells at the end, over the threads that returned
            n = len(x)
            got = mem[:, base:base + n]  # [M, n]
            cells.append(weight.new_zeros(n, self.V).index_put(
                (torch.arange(n, device=device).repeat(M), got.flatten()), w_ok.repeat_interleave(n), accumulate=True))
        return Distribution(value=dist, memory=cells, dropped=dropped, not_halted=(weight * (~halted & ~failed)).sum(),
                            failed=(weight * failed).sum(), wrapped=(weight * wrapped).sum(), threads=M, steps=out[3])

    def _argument_places(self, fn, args):
        """Where each parameter's value lives when `_lay_out_arguments` lays out `args` (defaults filled
        in): ("reg", r) for an int, ("mem", base) for a list or string: the argument window is filled in
        parameter order, and sequences go one after another after the program's reserved cells."""
        args = list(args) + [p.default for p in fn.params[len(args):]]
        window, free, where = iter(self.arg_regs), len(self.program.reserved), {}
        for p, x in zip(fn.params, args):
            if p.type in SEQS:
                next(window), next(window)
                where[p.name], free = ("mem", free), free + len(x)
            else:
                where[p.name] = ("reg", next(window))
        return where

    def hole_probs(self):
        """[n_holes, max alternatives]: each hole's learned distribution (0 past its alternatives)."""
        return self.hole_logits.masked_fill(~self.hole_mask, float("-inf")).softmax(-1)

    def _hole_inputs(self, holes=None):
        """[(register, [V] distribution of its value)] for each hole: the learned ones, or `holes` (per hole,
        an int, the alternative, or a tensor of probabilities over its alternatives)."""
        program_holes = self.program.holes
        if holes is None:
            holes = list(self.hole_probs()) if program_holes else []
        if len(holes) != len(program_holes):
            raise ExecutionError(f"the program has {len(program_holes)} holes, got choices for {len(holes)}")
        out = []
        for h, x in zip(program_holes, holes):
            k, what = h.n_alternatives, f"hole {h.index} ({h.text}, line {h.lineno})"
            if torch.is_tensor(x) and x.dim() > 0:
                p = x[:k]
                if x.shape[0] > k and bool((x[k:].detach() != 0).any()):
                    raise ValueError(f"{what} has {k} alternatives; its distribution puts mass past them")
                p = F.pad(p, (0, self.V - len(p)))
            else:
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < k:
                    raise ExecutionError(f"{what} has {k} alternatives: choose 0..{k - 1}, got {x!r}")
                p = F.one_hot(torch.tensor(x), self.V).float()
            out.append((h.register, _soft_input(p, self.V, what)))
        return out

    def soft_holes(self, registers, holes=None):
        """registers [B, R, V] with every hole's register set to its distribution (for the mean field)."""
        registers = registers.clone()
        for reg, p in self._hole_inputs(holes):
            registers[:, reg] = p.to(registers.dtype)
        return registers
