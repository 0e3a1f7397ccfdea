"""A corpus of restricted-Python programs, shared by the tests of compiler.py and reasoning.py.

Each `Case` is a program's source, the function to call, and two input generators, `gen(rng)` and
`small_gen(rng)`, returning a tuple of arguments (ints and lists of ints). Inputs are chosen so that
CPython's values never leave [0, V) = [0, 128) and nothing divides by zero: then CPython, `Program.run`
and the tensor machine must all agree exactly. `gen` inputs run in under ~5,000 machine steps,
`small_gen` inputs in under ~300 (for the expensive tensor machine). Every entry function returns an
int (a helper may return nothing: on the machine that is 0, in CPython None).
"""

from dataclasses import dataclass
from typing import Callable

V = 128


@dataclass
class Case:
    name: str
    source: str
    entry: str
    gen: Callable
    small_gen: Callable


def ints(rng, n, lo, hi):
    return [rng.randrange(lo, hi) for _ in range(n)]


CORPUS = [
    Case("fib_recursive", '''
def fib(n):
    """The paper's example: doubly recursive Fibonacci."""
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)
''', "fib", lambda r: (r.randrange(0, 12),), lambda r: (r.randrange(0, 6),)),

    Case("fib_iterative", '''
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
''', "fib", lambda r: (r.randrange(0, 12),), lambda r: (r.randrange(0, 8),)),

    Case("factorial", '''
def factorial(n):
    if n <= 1:
        return 1
    return n * factorial(n - 1)
''', "factorial", lambda r: (r.randrange(0, 6),), lambda r: (r.randrange(0, 5),)),

    Case("insertion_sort", '''
def insertion_sort(a):
    for i in range(1, len(a)):
        key = a[i]
        j = i
        while j > 0 and a[j - 1] > key:
            a[j] = a[j - 1]
            j -= 1
        a[j] = key
    return len(a)
''', "insertion_sort", lambda r: (ints(r, r.randrange(0, 12), 0, V),), lambda r: (ints(r, r.randrange(0, 4), 0, V),)),

    Case("bubble_sort", '''
def bubble_sort(a):
    n = len(a)
    for i in range(n):
        swapped = False
        for j in range(n - 1 - i):
            if a[j] > a[j + 1]:
                a[j], a[j + 1] = a[j + 1], a[j]
                swapped = True
        if not swapped:
            break
    return n
''', "bubble_sort", lambda r: (ints(r, r.randrange(1, 10), 0, V),), lambda r: (ints(r, r.randrange(1, 4), 0, V),)),

    Case("selection_sort", '''
def selection_sort(a):
    for i in range(len(a)):
        best = i
        for j in range(i + 1, len(a)):
            if a[j] < a[best]:
                best = j
        a[i], a[best] = a[best], a[i]
    return len(a)
''', "selection_sort", lambda r: (ints(r, r.randrange(0, 10), 0, V),), lambda r: (ints(r, r.randrange(0, 4), 0, V),)),

    Case("gcd", '''
def gcd(a, b):
    while b:
        a, b = b, a % b
    return a
''', "gcd", lambda r: tuple(ints(r, 2, 0, V)), lambda r: tuple(ints(r, 2, 0, 30))),

    Case("gcd_recursive", '''
def gcd(a, b):
    return a if b == 0 else gcd(b, a % b)
''', "gcd", lambda r: tuple(ints(r, 2, 0, V)), lambda r: tuple(ints(r, 2, 0, 30))),

    Case("list_max", '''
def list_max(a):
    best = a[0]
    for x in range(1, len(a)):
        best = max(best, a[x])
    return best
''', "list_max", lambda r: (ints(r, r.randrange(1, 20), 0, V),), lambda r: (ints(r, r.randrange(1, 5), 0, V),)),

    Case("argmax", '''
def argmax(a):
    best = 0
    i = 1
    while i < len(a):
        if a[i] > a[best]:
            best = i
        i += 1
    return best
''', "argmax", lambda r: (ints(r, r.randrange(1, 20), 0, V),), lambda r: (ints(r, r.randrange(1, 5), 0, V),)),

    Case("list_sum", '''
def list_sum(a):
    total = 0
    for i in range(len(a)):
        total += a[i]
    return total
''', "list_sum", lambda r: (ints(r, r.randrange(0, 10), 0, 12),), lambda r: (ints(r, r.randrange(0, 4), 0, 30),)),

    Case("reverse", '''
def reverse(a):
    i, j = 0, len(a)
    while i + 1 < j:
        a[i], a[j - 1] = a[j - 1], a[i]
        i += 1
        j -= 1
    return a[0] if len(a) > 0 else 0
''', "reverse", lambda r: (ints(r, r.randrange(0, 20), 0, V),), lambda r: (ints(r, r.randrange(0, 5), 0, V),)),

    Case("linear_search", '''
def linear_search(a, x):
    """Index of the first x in a, or len(a) if there is none."""
    for i in range(len(a)):
        if a[i] == x:
            return i
    return len(a)
''', "linear_search", lambda r: (ints(r, r.randrange(0, 20), 0, 10), r.randrange(0, 12)),
        lambda r: (ints(r, r.randrange(0, 4), 0, 4), r.randrange(0, 5))),

    Case("binary_search", '''
def binary_search(a, x):
    """Index of x in the sorted list a, or len(a) if it is absent."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid + 1
        elif a[mid] > x:
            hi = mid
        else:
            return mid
    return len(a)
''', "binary_search", lambda r: (sorted(set(ints(r, r.randrange(0, 30), 0, 40))), r.randrange(0, 40)),
        lambda r: (sorted(set(ints(r, r.randrange(0, 5), 0, 10))), r.randrange(0, 10))),

    Case("power_mod", '''
def power_mod(b, e, m):
    result = 1 % m
    b %= m
    while e > 0:
        if e % 2 == 1:
            result = result * b % m
        e //= 2
        b = b * b % m
    return result
''', "power_mod", lambda r: (r.randrange(0, V), r.randrange(0, V), r.randrange(1, 12)),
        lambda r: (r.randrange(0, V), r.randrange(0, 8), r.randrange(1, 12))),

    Case("is_prime", '''
def is_prime(n):
    if n < 2:
        return 0
    d = 2
    while d <= n // d:
        if n % d == 0:
            return 0
        d += 1
    return 1
''', "is_prime", lambda r: (r.randrange(0, V),), lambda r: (r.randrange(0, 30),)),

    Case("count_primes", '''
def is_prime(n):
    d = 2
    while d <= n // d:
        if n % d == 0:
            return False
        d += 1
    return n >= 2

def count_primes(n):
    count = 0
    for k in range(n):
        count += is_prime(k)
    return count
''', "count_primes", lambda r: (r.randrange(0, 40),), lambda r: (r.randrange(0, 6),)),

    Case("count", '''
def count(a, x):
    c = 0
    for i in range(len(a)):
        if a[i] == x:
            c += 1
    return c
''', "count", lambda r: (ints(r, r.randrange(0, 25), 0, 5), r.randrange(0, 6)),
        lambda r: (ints(r, r.randrange(0, 4), 0, 3), r.randrange(0, 3))),

    Case("prefix_sums", '''
def prefix_sums(a):
    for i in range(1, len(a)):
        a[i] += a[i - 1]
    return a[-1]
''', "prefix_sums", lambda r: (ints(r, r.randrange(1, 12), 0, 10),), lambda r: (ints(r, r.randrange(1, 4), 0, 30),)),

    Case("add_digits", '''
def add_digits(x, y, out):
    """Add two little-endian base-10 digit lists of the same length into out (one digit longer)."""
    carry = 0
    for i in range(len(x)):
        s = x[i] + y[i] + carry
        out[i] = s % 10
        carry = s // 10
    out[len(x)] = carry
    return carry
''', "add_digits", lambda r: (lambda n: (ints(r, n, 0, 10), ints(r, n, 0, 10), [0] * (n + 1)))(r.randrange(0, 12)),
        lambda r: (lambda n: (ints(r, n, 0, 10), ints(r, n, 0, 10), [0] * (n + 1)))(r.randrange(0, 3))),

    Case("quicksort", '''
def partition(a, lo, hi):
    pivot = a[hi - 1]
    i = lo
    for j in range(lo, hi - 1):
        if a[j] < pivot:
            a[i], a[j] = a[j], a[i]
            i += 1
    a[i], a[hi - 1] = a[hi - 1], a[i]
    return i

def quicksort(a, lo, hi):
    if hi - lo > 1:
        p = partition(a, lo, hi)
        quicksort(a, lo, p)
        quicksort(a, p + 1, hi)

def sort(a):
    quicksort(a, 0, len(a))
    return len(a)
''', "sort", lambda r: (ints(r, r.randrange(0, 12), 0, V),), lambda r: (ints(r, r.randrange(0, 3), 0, V),)),

    Case("even_odd", '''
def is_even(n):
    if n == 0:
        return True
    return is_odd(n - 1)

def is_odd(n):
    return n != 0 and is_even(n - 1)
''', "is_even", lambda r: (r.randrange(0, 40),), lambda r: (r.randrange(0, 6),)),

    Case("last_index", '''
def last_index(a, x):
    """Descending range down to 0: the last index of x, or len(a)."""
    for i in range(len(a) - 1, -1, -1):
        if a[i] == x:
            return i
    return len(a)
''', "last_index", lambda r: (ints(r, r.randrange(1, 20), 0, 6), r.randrange(0, 7)),
        lambda r: (ints(r, r.randrange(1, 4), 0, 3), r.randrange(0, 3))),

    Case("ranges", '''
def ranges(n, m):
    s = 0
    for i in range(2, n, 3):
        s += i
    for j in range(n, m, -2):
        s += 1
    for j in range(10, -1, -3):
        s += j
    for j in range(m, 3):
        s += 1
    for k in range(n + 1, 0, -1):
        if k == m:
            continue
        s += 1
    for k in range(0, m, 4):
        s += k
    return s
''', "ranges", lambda r: tuple(ints(r, 2, 0, 10)), lambda r: tuple(ints(r, 2, 0, 4))),

    Case("loop_variable", '''
def loop_variable(n):
    """The loop variable after the loop, and changed inside it: Python's for semantics."""
    s = 0
    i = 7
    for i in range(n):
        i += 2
        s += i
    for j in range(n):
        if j * j >= n:
            break
    return s + i + j
''', "loop_variable", lambda r: (r.randrange(1, 9),), lambda r: (r.randrange(1, 3),)),

    Case("arith", '''
def arith(x, y):
    """Every arithmetic operator and augmented assignment; y >= 1."""
    a = x + y
    b = a - y
    c = b * 2 // y
    d = a % y
    e = max(x, y) - min(x, y, 100)
    a += 1
    a -= y
    a //= 2
    a %= 50
    a *= 2
    t = x if x > y else y
    k = not x < y
    n = +(x + 5) + -3
    return a % 20 + b % 7 + c % 9 + d % 11 + e % 13 + k + t % 17 + n % 5 + -(-1)
''', "arith", lambda r: (r.randrange(0, 64), r.randrange(1, 64)), lambda r: (r.randrange(0, 64), r.randrange(1, 64))),

    Case("logic", '''
def logic(x, y, z):
    """Chained comparisons, and/or with Python's value semantics, not."""
    r = 0
    if x < y < z:
        r += 1
    if x <= y == z or not z:
        r += 2
    if 3 < x >= y != z:
        r += 4
    if not (x and y) or z > 5 and not x == y:
        r += 8
    v = (x and y) + (y or z) + (x % 2 or z % 3) + (x < y <= z) + (not y)
    w = x if x < y and y < z else z or y
    return r + v + w
''', "logic", lambda r: tuple(ints(r, 3, 0, 20)), lambda r: tuple(ints(r, 3, 0, 8))),

    Case("control", '''
def helper(x, y):
    return (x * 3 + y) % 11

def control(n, k):
    """while with break and continue, elif chains, calls nested in expressions and arguments."""
    total = 0
    i = 0
    while True:
        i += 1
        if i > n:
            break
        if i % 3 == 0:
            continue
        elif i % 3 == 1:
            total += 1
        else:
            total += 2
    if k > 5:
        pass
    helper(1, 2)
    t = helper(helper(k, 1), helper(n, k) + 1) + helper(n, 0) * 2
    return total + t + min(helper(k, k), 3)
''', "control", lambda r: (r.randrange(0, 30), r.randrange(0, 20)), lambda r: (r.randrange(0, 4), r.randrange(0, 20))),

    Case("recursive_sum", '''
def rsum(a, i):
    if i == len(a):
        return 0
    return a[i] + rsum(a, i + 1)

def total(a):
    return rsum(a, 0)
''', "total", lambda r: (ints(r, r.randrange(0, 12), 0, 10),), lambda r: (ints(r, r.randrange(0, 3), 0, 30),)),

    Case("hanoi", '''
def hanoi(n):
    """Moves needed for n disks: 2 * hanoi(n - 1) + 1."""
    if n == 0:
        return 0
    return 2 * hanoi(n - 1) + 1
''', "hanoi", lambda r: (r.randrange(0, 7),), lambda r: (r.randrange(0, 4),)),
]
