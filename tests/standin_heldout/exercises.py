"""A second stand-in, written after the compiler work on the first and run once: exercises as
intro-programming courses and interview-prep sites set them."""

import math
from collections import Counter


def sum_n_natural(n):
    total = 0
    i = 1
    while i <= n:
        total = total + i
        i = i + 1
    return total


def sum_of_squares(n: int) -> int:
    return sum(i * i for i in range(1, n + 1))


def count_digits(n):
    if n == 0:
        return 1
    count = 0
    while n != 0:
        n //= 10
        count += 1
    return count


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def largest_of_three(a, b, c):
    if a >= b and a >= c:
        return a
    elif b >= a and b >= c:
        return b
    else:
        return c


def fizzbuzz(n):
    result = []
    for i in range(1, n + 1):
        if i % 15 == 0:
            result.append("FizzBuzz")
        elif i % 3 == 0:
            result.append("Fizz")
        elif i % 5 == 0:
            result.append("Buzz")
        else:
            result.append(str(i))
    return result


def fizzbuzz_count(n: int) -> int:
    count = 0
    for i in range(1, n + 1):
        if i % 3 == 0 or i % 5 == 0:
            count += 1
    return count


def nth_prime(n):
    count = 0
    candidate = 1
    while count < n:
        candidate += 1
        is_p = True
        for d in range(2, candidate):
            if candidate % d == 0:
                is_p = False
                break
        if is_p:
            count += 1
    return candidate


def primes_up_to(n):
    primes = []
    for num in range(2, n + 1):
        for p in primes:
            if num % p == 0:
                break
        else:
            primes.append(num)
    return primes


def is_strong_number(n):
    total = 0
    temp = n
    while temp > 0:
        digit = temp % 10
        total += math.factorial(digit)
        temp //= 10
    return total == n


def hcf(x, y):
    smaller = x if x < y else y
    result = 1
    for i in range(1, smaller + 1):
        if x % i == 0 and y % i == 0:
            result = i
    return result


def find_mode(nums):
    counts = Counter(nums)
    return max(counts, key=counts.get)


def mode_by_hand(nums):
    best, best_count = None, 0
    for x in nums:
        c = nums.count(x)
        if c > best_count:
            best, best_count = x, c
    return best


def range_of_list(nums: list[int]) -> int:
    return max(nums) - min(nums)


def index_of_min(values):
    idx = 0
    for i in range(1, len(values)):
        if values[i] < values[idx]:
            idx = i
    return idx


def kth_largest(nums, k):
    return sorted(nums, reverse=True)[k - 1]


def intersection(a, b):
    return [x for x in a if x in b]


def union_sorted(a, b):
    result = sorted(a + b)
    out = []
    for x in result:
        if not out or out[-1] != x:
            out.append(x)
    return out


def all_positive(nums):
    for n in nums:
        if n <= 0:
            return False
    return True


def swap_first_last(lst):
    lst[0], lst[-1] = lst[-1], lst[0]
    return lst


def every_other(items):
    return items[::2]


def squares(nums):
    return [n ** 2 for n in nums]


def evens_then_odds(nums):
    evens = [n for n in nums if n % 2 == 0]
    odds = [n for n in nums if n % 2 == 1]
    return evens + odds


def array_equal(a, b):
    if len(a) != len(b):
        return False
    for i in range(len(a)):
        if a[i] != b[i]:
            return False
    return True


def transpose(matrix):
    return [list(row) for row in zip(*matrix)]


def matrix_trace(m):
    return sum(m[i][i] for i in range(len(m)))


def spiral_sum(n):
    total = 1
    for layer in range(1, n // 2 + 1):
        side = 2 * layer + 1
        total += 4 * side * side - 6 * (side - 1)
    return total


def reverse_each_word(sentence):
    words = sentence.split(" ")
    return " ".join(w[::-1] for w in words)


def longest_word_length(sentence: str) -> int:
    longest = 0
    current = 0
    for ch in sentence:
        if ch == " ":
            current = 0
        else:
            current += 1
            if current > longest:
                longest = current
    return longest


def count_uppercase(s):
    return sum(1 for c in s if c.isupper())


def swap_case(s):
    out = ""
    for c in s:
        if c.isupper():
            out += c.lower()
        elif c.islower():
            out += c.upper()
        else:
            out += c
    return out


def is_isogram(word):
    word = word.lower()
    for i in range(len(word)):
        if word[i] in word[i + 1:]:
            return False
    return True


def char_frequency(s):
    freq = {}
    for c in s:
        freq[c] = freq.get(c, 0) + 1
    return freq


def most_common_char(s):
    best = ""
    best_count = 0
    for c in s:
        n = s.count(c)
        if n > best_count:
            best, best_count = c, n
    return best


def remove_vowels(text):
    return "".join([c for c in text if c not in "aeiouAEIOU"])


def starts_with(s, prefix):
    if len(prefix) > len(s):
        return False
    for i in range(len(prefix)):
        if s[i] != prefix[i]:
            return False
    return True


def find_substring(haystack, needle):
    n, m = len(haystack), len(needle)
    for i in range(n - m + 1):
        if haystack[i:i + m] == needle:
            return i
    return -1


def digits_to_number(digits):
    n = 0
    for d in digits:
        n = n * 10 + d
    return n


def number_to_digits(n):
    if n == 0:
        return [0]
    digits = []
    while n > 0:
        digits.append(n % 10)
        n //= 10
    digits.reverse()
    return digits


def add_binary(a: str, b: str) -> str:
    return bin(int(a, 2) + int(b, 2))[2:]


def to_base(n, base):
    if n == 0:
        return "0"
    chars = "0123456789ABCDEF"
    out = ""
    while n > 0:
        out = chars[n % base] + out
        n //= base
    return out


def roman_to_int(s: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for i in range(len(s)):
        if i + 1 < len(s) and values[s[i]] < values[s[i + 1]]:
            total -= values[s[i]]
        else:
            total += values[s[i]]
    return total


def hanoi_moves(n):
    if n == 0:
        return 0
    return 2 * hanoi_moves(n - 1) + 1


def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))


def power_set_size(items):
    return 2 ** len(items)


def count_paths(r, c):
    if r == 1 or c == 1:
        return 1
    return count_paths(r - 1, c) + count_paths(r, c - 1)


def binary_search_first(arr, x):
    lo, hi = 0, len(arr) - 1
    ans = -1
    while lo <= hi:
        mid = (lo + hi) // 2
        if arr[mid] >= x:
            if arr[mid] == x:
                ans = mid
            hi = mid - 1
        else:
            lo = mid + 1
    return ans


def peak_index(arr):
    for i in range(1, len(arr) - 1):
        if arr[i - 1] < arr[i] > arr[i + 1]:
            return i
    return -1


def stock_profit(prices):
    if not prices:
        return 0
    lowest = prices[0]
    best = 0
    for p in prices:
        lowest = min(lowest, p)
        best = max(best, p - lowest)
    return best


def valid_parentheses(s: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for ch in s:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def bubble_sort_desc(a):
    n = len(a)
    for i in range(n):
        for j in range(0, n - i - 1):
            if a[j] < a[j + 1]:
                temp = a[j]
                a[j] = a[j + 1]
                a[j + 1] = temp
    return a


def insertion_sort_copy(values):
    result = list(values)
    for i in range(1, len(result)):
        current = result[i]
        j = i - 1
        while j >= 0 and result[j] > current:
            result[j + 1] = result[j]
            j = j - 1
        result[j + 1] = current
    return result


def count_inversions(arr):
    inv = 0
    for i in range(len(arr)):
        for j in range(i + 1, len(arr)):
            if arr[i] > arr[j]:
                inv += 1
    return inv


def gcd_list(nums):
    result = nums[0]
    for n in nums[1:]:
        result = math.gcd(result, n)
    return result


def mean_of_list(values):
    return sum(values) / len(values)
