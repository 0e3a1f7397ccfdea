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


# -----------------------------------------------------------------------------
# Textbook programs: written the way textbooks and tutorials write them (local lists, strings, tuples,
# comprehensions, `for x in xs`, slicing, assert/raise). Their entry functions may return lists, strings
# and tuples; an int result is compared modulo V (a negative number is V - c on the machine).

def words(rng, n, alphabet="ab "):
    return "".join(rng.choice(alphabet) for _ in range(n))


TEXTBOOK = [
    Case("tb_bubble_sort", '''
def bubble_sort(arr):
    n = len(arr)
    for i in range(n):
        for j in range(0, n - i - 1):
            if arr[j] > arr[j + 1]:
                arr[j], arr[j + 1] = arr[j + 1], arr[j]
    return arr
''', "bubble_sort", lambda r: (ints(r, r.randrange(0, 10), 0, V),), lambda r: (ints(r, r.randrange(0, 3), 0, V),)),

    Case("tb_selection_sort", '''
def selection_sort(items):
    items = items[:]
    for i in range(len(items)):
        smallest = i
        for j in range(i + 1, len(items)):
            if items[j] < items[smallest]:
                smallest = j
        items[i], items[smallest] = items[smallest], items[i]
    return items
''', "selection_sort", lambda r: (ints(r, r.randrange(0, 10), 0, V),), lambda r: (ints(r, r.randrange(0, 3), 0, V),)),

    Case("tb_insertion_sort", '''
def insertion_sort(a):
    for i in range(1, len(a)):
        key = a[i]
        j = i - 1
        while j >= 0 and a[j] > key:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = key
    return a
''', "insertion_sort", lambda r: (ints(r, r.randrange(0, 10), 0, V),), lambda r: (ints(r, r.randrange(0, 3), 0, V),)),

    Case("tb_binary_search", '''
def binary_search(arr, target):
    low = 0
    high = len(arr) - 1
    while low <= high:
        mid = (low + high) // 2
        if arr[mid] == target:
            return mid
        elif arr[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1
''', "binary_search", lambda r: (sorted(set(ints(r, r.randrange(1, 20), 1, 60))), r.randrange(1, 60)),
        lambda r: (sorted(set(ints(r, r.randrange(1, 4), 1, 9))), r.randrange(1, 9))),

    Case("tb_sieve", '''
def sieve(n):
    """Primes below n, by the sieve of Eratosthenes."""
    is_prime = [True] * n
    primes = []
    for p in range(2, n):
        if is_prime[p]:
            primes.append(p)
            for multiple in range(2 * p, n, p):
                is_prime[multiple] = False
    return primes
''', "sieve", lambda r: (r.randrange(0, 60),), lambda r: (r.randrange(0, 6),)),

    Case("tb_reverse_string", '''
def reverse_string(s: str) -> str:
    return s[::-1]
''', "reverse_string", lambda r: (words(r, r.randrange(0, 12), "abcxyz"),), lambda r: (words(r, r.randrange(0, 4), "ab"),)),

    Case("tb_reverse_loop", '''
def reverse(s: str) -> str:
    result = ""
    for ch in s:
        result = ch + result
    return result
''', "reverse", lambda r: (words(r, r.randrange(0, 8), "abc"),), lambda r: (words(r, r.randrange(0, 3), "ab"),)),

    Case("tb_palindrome", '''
def is_palindrome(text: str) -> bool:
    left, right = 0, len(text) - 1
    while left < right:
        if text[left] != text[right]:
            return False
        left += 1
        right -= 1
    return True
''', "is_palindrome", lambda r: (r.choice(["abba", "racecar", "ab", "", "a", words(r, r.randrange(0, 7), "ab")]),),
        lambda r: (r.choice(["aba", "ab", "", words(r, 3, "ab")]),)),

    Case("tb_palindrome_slice", '''
def is_palindrome(s: str) -> bool:
    s = s.lower()
    return s == s[::-1]
''', "is_palindrome", lambda r: (r.choice(["Abba", "Noon", "xY", words(r, r.randrange(0, 7), "aAbB")]),),
        lambda r: (r.choice(["aA", "ab", words(r, 2, "aA")]),)),

    Case("tb_digit_sum", '''
def digit_sum(n: int) -> int:
    total = 0
    while n > 0:
        total += n % 10
        n //= 10
    return total
''', "digit_sum", lambda r: (r.randrange(0, V),), lambda r: (r.randrange(0, 30),)),

    Case("tb_digit_sum_str", '''
def digit_sum(n):
    return sum(int(digit) for digit in str(n))
''', "digit_sum", lambda r: (r.randrange(0, V),), lambda r: (r.randrange(0, 10),)),

    Case("tb_run_lengths", '''
def run_lengths(values):
    """Lengths of the runs of equal neighbours: [1, 1, 2, 2, 2] -> [2, 3]."""
    if not values:
        return []
    counts = []
    current = values[0]
    count = 0
    for v in values:
        if v == current:
            count += 1
        else:
            counts.append(count)
            current = v
            count = 1
    counts.append(count)
    return counts
''', "run_lengths", lambda r: (ints(r, r.randrange(0, 12), 0, 3),), lambda r: (ints(r, r.randrange(0, 3), 0, 2),)),

    Case("tb_rle_string", '''
def compress(s: str) -> str:
    """Run-length encoding: 'aaab' -> 'a3b1'."""
    out = ""
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        out += s[i] + str(j - i)
        i = j
    return out
''', "compress", lambda r: (words(r, r.randrange(0, 10), "ab"),), lambda r: (words(r, r.randrange(0, 2), "ab"),)),

    Case("tb_count_vowels", '''
def count_vowels(s: str) -> int:
    return sum(1 for c in s if c in "aeiou")
''', "count_vowels", lambda r: (words(r, r.randrange(0, 15), "abeioxu "),), lambda r: (words(r, r.randrange(0, 3), "ab"),)),

    Case("tb_two_sum", '''
def two_sum(nums, target):
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            if nums[i] + nums[j] == target:
                return i, j
    return -1, -1
''', "two_sum", lambda r: (ints(r, r.randrange(0, 8), 0, 30), r.randrange(0, 60)),
        lambda r: (ints(r, r.randrange(0, 3), 0, 4), r.randrange(0, 8))),

    Case("tb_merge", '''
def merge(left, right):
    result = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            result.append(left[i])
            i += 1
        else:
            result.append(right[j])
            j += 1
    result.extend(left[i:])
    result.extend(right[j:])
    return result
''', "merge", lambda r: (sorted(ints(r, r.randrange(0, 7), 0, V)), sorted(ints(r, r.randrange(0, 7), 0, V))),
        lambda r: (sorted(ints(r, r.randrange(0, 2), 0, V)), sorted(ints(r, r.randrange(0, 2), 0, V)))),

    Case("tb_merge_sort", '''
def merge_sort(a):
    if len(a) <= 1:
        return a[:]
    mid = len(a) // 2
    left = merge_sort(a[:mid])
    right = merge_sort(a[mid:])
    merged = []
    while left and right:
        if left[0] <= right[0]:
            merged.append(left.pop(0))
        else:
            merged.append(right.pop(0))
    return merged + left + right
''', "merge_sort", lambda r: (ints(r, r.randrange(0, 7), 0, V),), lambda r: (ints(r, r.randrange(0, 2), 0, V),)),

    Case("tb_quicksort_comprehension", '''
def quicksort(xs):
    if len(xs) <= 1:
        return xs[:]
    pivot = xs[0]
    smaller = [x for x in xs[1:] if x < pivot]
    larger = [x for x in xs[1:] if x >= pivot]
    return quicksort(smaller) + [pivot] + quicksort(larger)
''', "quicksort", lambda r: (ints(r, r.randrange(0, 6), 0, V),), lambda r: (ints(r, r.randrange(0, 2), 0, V),)),

    Case("tb_gcd_lcm", '''
def gcd(a, b):
    while b:
        a, b = b, a % b
    return a

def lcm(a, b):
    if a == 0 or b == 0:
        return 0
    return a // gcd(a, b) * b
''', "lcm", lambda r: (r.randrange(0, 12), r.randrange(0, 10)), lambda r: (r.randrange(0, 5), r.randrange(0, 5))),

    Case("tb_fib_list", '''
def fibonacci(n):
    """The first n Fibonacci numbers."""
    seq = [0, 1]
    while len(seq) < n:
        seq.append(seq[-1] + seq[-2])
    return seq[:n]
''', "fibonacci", lambda r: (r.randrange(0, 12),), lambda r: (r.randrange(0, 4),)),

    Case("tb_count_words", '''
def count_words(sentence: str) -> int:
    count = 0
    in_word = False
    for ch in sentence:
        if ch == " ":
            in_word = False
        elif not in_word:
            in_word = True
            count += 1
    return count
''', "count_words", lambda r: (words(r, r.randrange(0, 16), "ab  "),), lambda r: (words(r, r.randrange(0, 3), "a "),)),

    Case("tb_caesar", '''
def caesar(text: str, shift: int) -> str:
    result = ""
    for ch in text:
        if ch.isalpha():
            result += chr((ord(ch) - ord("a") + shift) % 26 + ord("a"))
        else:
            result += ch
    return result
''', "caesar", lambda r: (words(r, r.randrange(0, 8), "abxyz "), r.randrange(0, 26)),
        lambda r: (words(r, r.randrange(0, 2), "az"), r.randrange(0, 26))),

    Case("tb_to_binary", '''
def to_binary(n: int) -> str:
    if n == 0:
        return "0"
    bits = ""
    while n > 0:
        bits = str(n % 2) + bits
        n //= 2
    return bits
''', "to_binary", lambda r: (r.randrange(0, V),), lambda r: (r.randrange(0, 3),)),

    Case("tb_from_binary", '''
def from_binary(bits: str) -> int:
    value = 0
    for b in bits:
        value = value * 2 + int(b)
    return value
''', "from_binary", lambda r: (words(r, r.randrange(0, 7), "01"),), lambda r: (words(r, r.randrange(0, 3), "01"),)),

    Case("tb_anagram", '''
def is_anagram(a: str, b: str) -> bool:
    return sorted(a) == sorted(b)
''', "is_anagram", lambda r: (lambda s: (s, r.choice(["".join(r.sample(s, len(s))), words(r, len(s), "abc")])))(
        words(r, r.randrange(0, 6), "abc")), lambda r: (words(r, r.randrange(0, 2), "ab"), words(r, r.randrange(0, 2), "ab"))),

    Case("tb_dedupe", '''
def remove_duplicates(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
''', "remove_duplicates", lambda r: (ints(r, r.randrange(0, 12), 0, 6),), lambda r: (ints(r, r.randrange(0, 3), 0, 2),)),

    Case("tb_second_largest", '''
def second_largest(numbers):
    if len(numbers) < 2:
        raise ValueError("need at least two numbers")
    first, second = max(numbers[0], numbers[1]), min(numbers[0], numbers[1])
    for x in numbers[2:]:
        if x > first:
            first, second = x, first
        elif x > second:
            second = x
    return second
''', "second_largest", lambda r: (ints(r, r.randrange(0, 10), 0, V),), lambda r: (ints(r, r.randrange(0, 3), 0, V),)),

    Case("tb_rotate", '''
def rotate(a, k):
    if not a:
        return a
    k = k % len(a)
    return a[k:] + a[:k]
''', "rotate", lambda r: (ints(r, r.randrange(0, 9), 0, V), r.randrange(0, 20)),
        lambda r: (ints(r, r.randrange(0, 3), 0, V), r.randrange(0, 4))),

    Case("tb_bits", '''
def count_bits(n: int) -> int:
    count = 0
    while n:
        n &= n - 1
        count += 1
    return count

def is_power_of_two(n):
    return n > 0 and n & (n - 1) == 0

def bits(n, m):
    return count_bits(n ^ m) * 2 + is_power_of_two(n) + (n >> 2 | m << 1 & 63) % 7 + (~n & 15)
''', "bits", lambda r: (r.randrange(0, V), r.randrange(0, V)), lambda r: (r.randrange(0, 8), r.randrange(0, 8))),

    Case("tb_balanced", '''
def balanced(s: str) -> bool:
    stack = []
    for c in s:
        if c in "([":
            stack.append(c)
        elif c in ")]":
            if not stack:
                return False
            top = stack.pop()
            if (c == ")" and top != "(") or (c == "]" and top != "["):
                return False
    return not stack
''', "balanced", lambda r: (words(r, r.randrange(0, 8), "()[]"),), lambda r: (words(r, r.randrange(0, 3), "()"),)),

    Case("tb_average", '''
def average(values):
    assert len(values) > 0, "average of an empty list"
    return sum(values) // len(values)
''', "average", lambda r: (ints(r, r.randrange(0, 8), 0, 15),), lambda r: (ints(r, r.randrange(0, 3), 0, 20),)),

    Case("tb_min_max", '''
def min_max(values):
    return min(values), max(values)
''', "min_max", lambda r: (ints(r, r.randrange(1, 10), 0, V),), lambda r: (ints(r, r.randrange(1, 3), 0, V),)),

    Case("tb_prefix_sums", '''
def prefix_sums(nums):
    sums = []
    total = 0
    for x in nums:
        total += x
        sums.append(total)
    return sums
''', "prefix_sums", lambda r: (ints(r, r.randrange(0, 10), 0, 12),), lambda r: (ints(r, r.randrange(0, 3), 0, 20),)),

    Case("tb_digits", '''
def digits(n):
    return [int(d) for d in str(n)]
''', "digits", lambda r: (r.randrange(0, V),), lambda r: (r.randrange(0, 10),)),

    Case("tb_collatz", '''
def collatz_steps(n):
    if n < 1:
        raise ValueError("n must be positive")
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps
''', "collatz_steps", lambda r: (r.choice([1, 2, 3, 5, 6, 7, 8, 10, 12, 13, 16, 20, 21, 32, 40]),), lambda r: (r.choice([1, 2, 4]),)),

    Case("tb_perfect", '''
def is_perfect(n: int) -> bool:
    divisors = [d for d in range(1, n) if n % d == 0]
    return sum(divisors) == n
''', "is_perfect", lambda r: (r.choice([6, 28, r.randrange(1, 40)]),), lambda r: (r.randrange(1, 5),)),

    Case("tb_enumerate", '''
def positions(items, target):
    found = []
    for index, value in enumerate(items):
        if value == target:
            found.append(index)
    return found
''', "positions", lambda r: (ints(r, r.randrange(0, 12), 0, 4), r.randrange(0, 4)),
        lambda r: (ints(r, r.randrange(0, 3), 0, 2), r.randrange(0, 2))),

    Case("tb_power_default", '''
def power(base, exponent=2):
    result = 1
    for _ in range(exponent):
        result *= base
    return result

def sum_of_squares(n):
    return sum(power(k) for k in range(n)) + power(2, exponent=3)
''', "sum_of_squares", lambda r: (r.randrange(0, 7),), lambda r: (r.randrange(0, 2),)),

    Case("tb_upper_count", '''
def summary(s: str):
    upper = 0
    digits = 0
    for c in s:
        if c.isupper():
            upper += 1
        elif c.isdigit():
            digits += 1
    return upper, digits, s.count("a"), s.upper()
''', "summary", lambda r: (words(r, r.randrange(0, 10), "aAb1 "),), lambda r: (words(r, r.randrange(0, 2), "aA1"),)),

    Case("tb_sorted_insert", '''
def sorted_insert(items, x):
    result = sorted(items)
    i = 0
    while i < len(result) and result[i] < x:
        i += 1
    result.insert(i, x)
    return result
''', "sorted_insert", lambda r: (ints(r, r.randrange(0, 8), 0, V), r.randrange(0, V)),
        lambda r: (ints(r, r.randrange(0, 2), 0, V), r.randrange(0, V))),

    Case("tb_zip_dot", '''
def dot(xs, ys):
    total = 0
    for x, y in zip(xs, ys):
        total += x * y
    return total
''', "dot", lambda r: (ints(r, r.randrange(0, 5), 0, 5), ints(r, r.randrange(0, 5), 0, 5)),
        lambda r: (ints(r, r.randrange(0, 2), 0, 5), ints(r, r.randrange(0, 2), 0, 5))),
]
