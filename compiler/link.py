"""Passes 7-8: simplify each function's lowered code (a peephole pass), then link the functions into
one Program: labels and call targets become lines, window and hole slots become registers.
"""

from .ir import Function, Hole, Instr, Program, _error
from .lower.core import HOLE0, _Label


def simplify(items):
    """Pass 7: peephole clean-up on one function: thread jumps to jumps, drop unreferenced labels, code
    that cannot be reached, and jumps to the very next line. Repeats until nothing changes."""
    for _ in range(100):
        after, pending = {}, []  # label -> the first instruction at or after it
        for it in items:
            if isinstance(it, _Label):
                pending.append(it)
            else:
                after.update({l: it for l in pending})
                pending = []
        changed = False
        for it in items:
            hop = after.get(it.target) if isinstance(it, Instr) else None
            if hop is not None and hop is not it and hop.op == "jump" and hop.target is not it.target:
                it.target, changed = hop.target, True
        targets, out, dead = {it.target for it in items if isinstance(it, Instr)}, [], False
        for it in items:
            if isinstance(it, _Label):
                dead = dead and it not in targets
                if it in targets:
                    out.append(it)
            elif not dead:
                out.append(it)
                dead = it.op in ("jump", "ret", "halt", "fail")
        for i, it in enumerate(out):
            j = i + 1
            while isinstance(it, Instr) and it.op == "jump" and j < len(out) and isinstance(out[j], _Label):
                if out[j] is it.target:
                    out[i] = None
                    break
                j += 1
            prev = out[i - 1] if i else None  # mov x, y right after mov y, x (or mov x, x) changes nothing
            if isinstance(it, Instr) and it.op == "mov" and (it.a == it.dst or isinstance(prev, Instr) and
                                                             (prev.op, prev.dst, prev.a) == ("mov", it.a, it.dst)):
                out[i] = None
        out = [it for it in out if it is not None]
        changed = changed or len(out) != len(items)
        items = out
        if not changed:
            break
    return items


def link(table, lowered, source, V, max_regs, shared, holes):
    """Pass 8, link: lay the functions out one after another, resolve labels and call targets to lines, and
    put the hole registers and then the argument window at the top of the register file."""
    window = max([1] + [fn_.n_arg_regs for fn_ in (Function(n, 0, fn.params) for n, fn in table.items())])
    n_holes = len(holes)
    for name, fn in table.items():
        need = fn.n_fixed + fn.n_temps + n_holes + window
        if need > max_regs:
            raise _error(f"function {name} needs {need} registers ({fn.n_fixed} for variables, {fn.n_temps} for "
                         f"temporaries, {n_holes} for holes, {window} for arguments), more than max_regs={max_regs}: "
                         "simplify it or raise max_regs", fn.node)
    n_regs = max([fn.n_fixed + fn.n_temps for fn in table.values()], default=0) + n_holes + window

    def reg(r):
        if r is None or r >= 0:
            return r
        if r <= HOLE0:  # hole i -> h{i}, just below the window
            return n_regs - window - n_holes + (HOLE0 - r)
        return n_regs - window + (-1 - r)  # window slot k -> a{k}

    lines, functions, instructions = {}, {}, []
    for name, items in lowered.items():
        functions[name] = Function(name, len(instructions), table[name].params, table[name].returns, table[name].bias)
        for it in items:
            if isinstance(it, _Label):
                lines[it] = len(instructions)
            else:
                instructions.append(it)
    for ins in instructions:
        ins.dst, ins.a, ins.b = reg(ins.dst), reg(ins.a), reg(ins.b)
        if ins.target is not None:
            ins.target = functions[ins.target].entry if isinstance(ins.target, str) else lines[ins.target]
    used = sorted({ins.imm for ins in instructions if ins.op == "fail"})  # errors whose fail survived simplify
    for ins in instructions:
        if ins.op == "fail":
            ins.imm = used.index(ins.imm)
    hole_list = [Hole(i, fn_name, line, text, n, reg(HOLE0 - i)) for i, (fn_name, line, text, n) in enumerate(holes)]
    reserved = [0, 0] + [0] * shared.n_ret + shared.data if shared.used else []
    return Program(instructions, functions, n_regs, [n_regs - window + k for k in range(window)], V, source,
                   [shared.errors[k] for k in used], hole_list, reserved)
