"""Section 1: the operation library (tables and fast forms), and 1b: the circuit ALU."""

from functools import lru_cache

import torch
import torch.nn.functional as F

from compiler import PRIMITIVES


# -----------------------------------------------------------------------------
# 1. The operation library. p, q: [B, V] distributions of the two operands; out: [B, V].


@lru_cache(maxsize=None)
def op_table(name, V):
    """The primitive `name` tabulated: T[a, b] = PRIMITIVES[name](a, b, V), a [V, V] LongTensor."""
    f = PRIMITIVES[name]
    return torch.tensor([[f(a, b, V) for b in range(V)] for a in range(V)], dtype=torch.long)


def apply_table(T, p, q, support=None):
    """out[k] = sum over a, b with T[a, b] = k of p(a) q(b): the definition of an op on distributions.

    `support`: the only columns b where q can be nonzero (a [K] index); skipping the rest is exact and
    turns an op with a one-hot (e.g. immediate) second operand into a gather of p by T[:, b].
    """
    if support is not None:
        T, q = T[:, support], q[:, support]
    B, V = p.shape
    joint = (p[:, :, None] * q[:, None, :]).reshape(B, -1)  # [B, V * K]: p(a) q(b)
    return p.new_zeros(B, V).scatter_add(1, T.reshape(1, -1).expand(B, -1), joint)


def _circular(p, q, sign):
    """add (sign +1) or sub (-1): out[k] = sum_a p(a) q(sign (k - a) mod V), a circular convolution.

    q is gathered into its circulant matrix [B, V, V] and multiplied by p. An FFT would be O(V log V)
    but leaves ~1e-7 round-off on exact zeros, and the mean-field stack amplifies any error on the
    pc step after step (see tests/soft_vs_hard.py); this form is exact on one-hot inputs.
    """
    V = p.shape[-1]
    k = torch.arange(V, device=p.device)
    index = (sign * (k[None, :] - k[:, None])) % V  # [a, k] -> b with a + b = k (or a - b = k)
    return torch.bmm(p[:, None], q[:, index])[:, 0]


def _bit(p1, p, q):
    """A comparison's output: mass p1 on the value 1, the rest of the joint mass |p| |q| on 0."""
    total = p.sum(-1) * q.sum(-1)
    return F.pad(torch.stack([total - p1, p1], -1), (0, p.shape[-1] - 2))


def _at_least(p):
    """S[k] = P(a >= k), a reversed cumulative sum."""
    return p.sum(-1, keepdim=True) - p.cumsum(-1) + p


# Each equals apply_table(op_table(name, V), p, q) for any non-negative p, q (tests/test_reasoning.py).
FAST_FORMS = {
    "add": lambda p, q: _circular(p, q, +1),
    "sub": lambda p, q: _circular(p, q, -1),
    "lt": lambda p, q: _bit((q * (p.cumsum(-1) - p)).sum(-1), p, q),  # P(a < b) = sum_b q(b) P(a <= b - 1)
    "le": lambda p, q: _bit((q * p.cumsum(-1)).sum(-1), p, q),
    "gt": lambda p, q: _bit((p * (q.cumsum(-1) - q)).sum(-1), p, q),
    "ge": lambda p, q: _bit((p * q.cumsum(-1)).sum(-1), p, q),
    "eq": lambda p, q: _bit((p * q).sum(-1), p, q),
    "ne": lambda p, q: _bit(p.sum(-1) * q.sum(-1) - (p * q).sum(-1), p, q),
    "and": lambda p, q: _bit((p.sum(-1) - p[:, 0]) * (q.sum(-1) - q[:, 0]), p, q),
    "or": lambda p, q: _bit(p.sum(-1) * q.sum(-1) - p[:, 0] * q[:, 0], p, q),
    # P(min >= k) = P(a >= k) P(b >= k); the pmf is its difference. max likewise with P(max <= k).
    "min": lambda p, q: (lambda G: G - F.pad(G[:, 1:], (0, 1)))(_at_least(p) * _at_least(q)),
    "max": lambda p, q: (lambda G: G - F.pad(G[:, :-1], (1, 0)))(p.cumsum(-1) * q.cumsum(-1)),
}  # mul, floordiv and mod have no such structure: they use the table.


# -----------------------------------------------------------------------------
# 1b. The other ALU: ops as differentiable circuits over the bits of a value (the paper's other ALU, its
# section 4.1 as its reviewers describe it).
#
# A value in [0, V), V = 2^n, is n bits, low bit first. A circuit keeps of a value's distribution only
# the probability that each bit is 1, treats the n bits as independent Bernoullis and computes with gates
# on those probabilities. A gate on independent inputs is exact (P(x AND y) = P(x) P(y)); the error is
# in what the bits leave out, in three places, none of which exists on one-hot inputs (there every circuit
# equals its table: tests/test_reasoning.py checks all V x V pairs):
#   - to_bits keeps a value's bit marginals and drops their correlations (1/2 on the value 1 and 1/2 on 2
#     becomes uniform over 0..3); and/or test a != 0 as 1 - prod_i (1 - P(bit i)), not as 1 - p(0);
#   - from_bits returns the product of the result's bit marginals: a sum's bits are correlated through
#     its carries (a + b with a, b uniform over {0, 1}: p(0) = 1/4, p(1) = 1/2, p(2) = 1/4 comes back as
#     3/8, 3/8, 1/8, 1/8 over 0..3), and that is lost;
#   - min/max select a or b by comparing the very bits they select: the MUX's inputs are not independent.
# On inputs that are products over their bits, comparisons, eq/ne, and/or and the bitwise ops are exact,
# and add, sub and the shifts have exact bit marginals (tests). The price of the table's exactness is
# V x V entries per op; a circuit is O(log V) gates (plus O(V log V) to change representation).
# `python tests/alu_arithmetic.py --soft` measures the distance to the table on random soft inputs.


def n_bits(V):
    """log2 V, the number of bits of a value; V must be a power of two (at least 2)."""
    n = V.bit_length() - 1
    if V < 2 or V != 1 << n:
        raise ValueError(f"the circuit ALU needs V to be a power of two (a value is log2 V bits), got V={V}; "
                         f"use n_values=2**k, or alu='tables'")
    return n


def to_bits(p):
    """Value distributions p [B, V] -> (P(bit i = 1) [B, n], low bit first; p's mass [B]).

    The marginals only: P(bit i = 1) sums p over the values whose bit i is set, which are the second
    halves of p's blocks of 2^(i + 1) values. (Not a matmul with a [V, n] bit matrix: on this CPU a
    [2, V] x [V, n] matmul can cost milliseconds.) The mass is kept apart so that a circuit, like a
    table, is bilinear: |out| = |p| |q|, and a zero row stays zero.
    """
    (B, V), mass = p.shape, p.sum(-1)
    ones = torch.stack([p.reshape(B, -1, 2, 1 << i)[:, :, 1].sum((1, 2)) for i in range(n_bits(V))], -1)  # [B, n]
    return ones / mass.clamp_min(torch.finfo(p.dtype).tiny)[:, None], mass


def from_bits(bits, mass):
    """(bits [B, n], mass [B]) -> the product distribution over values [B, 2^n], times the mass:
    out[k] = mass prod_i (bits_i if bit i of k is set else 1 - bits_i)."""
    out = mass[:, None]  # [B, 1]: the distribution over the low 0 bits
    for i in range(bits.shape[-1]):  # over the low i bits -> over the low i + 1 (bit i is the high one)
        b = bits[:, i:i + 1]
        out = torch.cat([out * (1 - b), out * b], -1)  # [B, 2^(i + 1)]
    return out


# Gates on the probabilities of independent bits, elementwise ([B] or [B, n]).
NOT = lambda x: 1 - x
AND = lambda x, y: x * y
OR = lambda x, y: x + y - x * y
XOR = lambda x, y: x + y - 2 * x * y
MUX = lambda s, x, y: s * x + (1 - s) * y  # s ? x : y


def ripple_add(a, b, carry):
    """a + b + carry by one full adder per bit, from the low end: (sum bits [B, n], carry out [B]).

    a, b [B, n]; carry: P(carry in), a number or [B]. The carry into bit i depends on the bits below i
    only, so each gate's inputs are independent: the sum's marginals are exact for product inputs.
    """
    out = []
    for i in range(a.shape[-1]):
        half = XOR(a[:, i], b[:, i])
        out.append(XOR(half, carry))
        carry = AND(a[:, i], b[:, i]) + AND(half, carry)  # two disjoint ways to carry: their P's add
    return torch.stack(out, -1), carry


def at_least(a, b):
    """P(a >= b) [B]: a - b = a + NOT b + 1 carries out of the top bit exactly when it does not borrow."""
    return ripple_add(a, NOT(b), 1)[1]


def equal(a, b):
    """P(a == b) [B]: every bit agrees."""
    return NOT(XOR(a, b)).prod(-1)


def nonzero(a):
    """P(a != 0) [B]: some bit is set."""
    return NOT(NOT(a).prod(-1))


def shift(a, b, left):
    """a << b or a >> b, bits pushed off the end lost: a barrel shifter. Stage j shifts by 2^j where
    bit j of b is set (one MUX per bit); a shift by n or more leaves 0, as the primitives do at V = 2^n."""
    n = a.shape[-1]
    for j in range(n):
        k = min(1 << j, n)
        moved = F.pad(a, (k, 0))[:, :n] if left else F.pad(a, (0, k))[:, k:]  # low bit first: left is up
        a = MUX(b[:, j:j + 1], moved, a)
    return a


# Each maps the operands' bits a, b [B, n] to the result's bits [B, n], or to P(result = 1) [B] for the
# ops whose result is 0 or 1.
CIRCUITS = {
    "add": lambda a, b: ripple_add(a, b, 0)[0],
    "sub": lambda a, b: ripple_add(a, NOT(b), 1)[0],  # two's complement: a - b = a + NOT b + 1 mod 2^n
    "lt": lambda a, b: NOT(at_least(a, b)),
    "le": lambda a, b: at_least(b, a),
    "gt": lambda a, b: NOT(at_least(b, a)),
    "ge": at_least,
    "eq": equal,
    "ne": lambda a, b: NOT(equal(a, b)),
    "and": lambda a, b: AND(nonzero(a), nonzero(b)),
    "or": lambda a, b: OR(nonzero(a), nonzero(b)),
    "min": lambda a, b: MUX(at_least(a, b)[:, None], b, a),
    "max": lambda a, b: MUX(at_least(a, b)[:, None], a, b),
    "bitand": AND,  # bitand ... rshift: primitives from the compiler branch (coord CONTRACTS.md section 2)
    "bitor": OR,
    "bitxor": XOR,
    "lshift": lambda a, b: shift(a, b, left=True),
    "rshift": lambda a, b: shift(a, b, left=False),
}  # mul, floordiv, mod and pow have no circuit here: they use the table.


def apply_circuit(name, p, q):
    """The primitive `name` as a circuit on value distributions p, q [B, V]: to bits, gates, back."""
    (a, mass_a), (b, mass_b) = to_bits(p), to_bits(q)
    out = CIRCUITS[name](a, b)
    if out.dim() == 1:  # a 0/1 result: the value 1 is bit 0 set, every other bit clear
        out = F.pad(out[:, None], (0, a.shape[-1] - 1))
    return from_bits(out, mass_a * mass_b)


ALUS = ("tables", "circuits")


def apply_op(name, p, q, support=None, alu="tables"):
    """The primitive `name` on distributions. alu="tables": by its fast form if it has one, else by its
    table; exact. alu="circuits": by its circuit if it has one (section 1b: equal on one-hot inputs, an
    approximation on soft ones), else as with tables. `support` only speeds up a table."""
    if alu not in ALUS:
        raise ValueError(f"alu={alu!r} is not an ALU; use 'tables' (lookup tables, exact on distributions) "
                         f"or 'circuits' (gates on bit probabilities)")
    if alu == "circuits" and name in CIRCUITS:
        return apply_circuit(name, p, q)
    if name in FAST_FORMS and support is None:
        return FAST_FORMS[name](p, q)
    return apply_table(op_table(name, p.shape[-1]).to(p.device), p, q, support)
