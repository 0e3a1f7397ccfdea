"""Number theory and arithmetic exercises, written the way tutorials write them."""

import math


def factorial(n: int) -> int:
    """
    >>> factorial(5)
    120
    """
    if n < 0:
        raise ValueError("factorial() not defined for negative values")
    result = 1
    for i in range(2, n + 1):
        result *= i
    return result


def factorial_recursive(n):
    if n == 0 or n == 1:
        return 1
    return n * factorial_recursive(n - 1)


def fibonacci(n: int) -> int:
    if n <= 0:
        return 0
    a, b = 0, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return b


def fib_memo(n, memo={}):
    if n in memo:
        return memo[n]
    if n <= 2:
        return 1
    memo[n] = fib_memo(n - 1, memo) + fib_memo(n - 2, memo)
    return memo[n]


def gcd(a: int, b: int) -> int:
    while b != 0:
        a, b = b, a % b
    return abs(a)


def gcd_recursive(a, b):
    return a if b == 0 else gcd_recursive(b, a % b)


def lcm(a: int, b: int) -> int:
    return a * b // gcd(a, b)


def is_prime(number: int) -> bool:
    """
    >>> is_prime(7)
    True
    """
    if not isinstance(number, int) or number < 0:
        raise ValueError("is_prime() only accepts positive integers")
    if 1 < number < 4:
        return True
    elif number < 2 or number % 2 == 0 or number % 3 == 0:
        return False
    for i in range(5, int(math.sqrt(number) + 1), 6):
        if number % i == 0 or number % (i + 2) == 0:
            return False
    return True


def is_prime_simple(n):
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def prime_factors(n: int) -> list[int]:
    i = 2
    factors = []
    while i * i <= n:
        if n % i:
            i += 1
        else:
            n //= i
            factors.append(i)
    if n > 1:
        factors.append(n)
    return factors


def sum_of_digits(n: int) -> int:
    n = abs(n)
    res = 0
    while n > 0:
        res += n % 10
        n = n // 10
    return res


def sum_of_digits_compact(n: int) -> int:
    return sum(int(c) for c in str(abs(n)))


def digital_root(n):
    while n >= 10:
        n = sum_of_digits(n)
    return n


def reverse_number(n):
    rev = 0
    while n > 0:
        rev = rev * 10 + n % 10
        n //= 10
    return rev


def is_armstrong_number(n: int) -> bool:
    if not isinstance(n, int) or n < 1:
        return False
    number_of_digits = len(str(n))
    total = 0
    temp = n
    while temp > 0:
        rem = temp % 10
        total += rem ** number_of_digits
        temp //= 10
    return n == total


def is_perfect_number(number: int) -> bool:
    return sum(i for i in range(1, number // 2 + 1) if number % i == 0) == number


def sum_of_divisors(n):
    total = 0
    for i in range(1, n + 1):
        if n % i == 0:
            total += i
    return total


def power(base: int, exponent: int) -> int:
    if exponent == 0:
        return 1
    half = power(base, exponent // 2)
    if exponent % 2 == 0:
        return half * half
    return half * half * base


def binary_exponentiation(a, n, mod):
    result = 1
    a = a % mod
    while n > 0:
        if n & 1:
            result = (result * a) % mod
        a = (a * a) % mod
        n >>= 1
    return result


def integer_sqrt(n: int) -> int:
    if n < 0:
        raise ValueError("square root of a negative number")
    low, high = 0, n
    while low <= high:
        mid = (low + high) // 2
        if mid * mid == n:
            return mid
        if mid * mid < n:
            low = mid + 1
        else:
            high = mid - 1
    return high


def collatz_length(n: int) -> int:
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    steps = 1
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def binomial_coefficient(n: int, k: int) -> int:
    if k > n:
        return 0
    k = min(k, n - k)
    result = 1
    for i in range(k):
        result = result * (n - i) // (i + 1)
    return result


def catalan(n):
    if n <= 1:
        return 1
    res = 0
    for i in range(n):
        res += catalan(i) * catalan(n - i - 1)
    return res


def triangular_number(n):
    return n * (n + 1) // 2


def count_divisors(n: int) -> int:
    count = 0
    for i in range(1, int(n ** 0.5) + 1):
        if n % i == 0:
            count += 1 if i * i == n else 2
    return count


def is_happy_number(n):
    seen = set()
    while n != 1 and n not in seen:
        seen.add(n)
        n = sum(int(d) ** 2 for d in str(n))
    return n == 1


def euler_totient(n):
    result = n
    p = 2
    while p * p <= n:
        if n % p == 0:
            while n % p == 0:
                n //= p
            result -= result // p
        p += 1
    if n > 1:
        result -= result // n
    return result


def sieve_of_eratosthenes(limit: int) -> list:
    if limit < 2:
        return []
    is_prime = [True] * (limit + 1)
    is_prime[0] = is_prime[1] = False
    for i in range(2, int(limit ** 0.5) + 1):
        if is_prime[i]:
            for j in range(i * i, limit + 1, i):
                is_prime[j] = False
    return [i for i in range(limit + 1) if is_prime[i]]


def average(nums: list) -> float:
    if not nums:
        raise ValueError("List is empty")
    return sum(nums) / len(nums)


def mean_floor(values):
    return sum(values) // len(values)


def median(nums: list) -> float:
    sorted_list = sorted(nums)
    length = len(sorted_list)
    mid_index = length >> 1
    return (
        (sorted_list[mid_index] + sorted_list[mid_index - 1]) / 2
        if length % 2 == 0
        else sorted_list[mid_index]
    )


def is_even(number: int) -> bool:
    return number & 1 == 0


def is_palindrome_number(num: int) -> bool:
    if num < 0:
        return False
    num_copy = num
    rev_num = 0
    while num > 0:
        rev_num = rev_num * 10 + (num % 10)
        num //= 10
    return num_copy == rev_num


def number_of_digits(n: int) -> int:
    digits = 0
    n = abs(n)
    while True:
        n = n // 10
        digits += 1
        if n == 0:
            break
    return digits


def abs_max(x: list[int]) -> int:
    if len(x) == 0:
        raise ValueError("abs_max() arg is an empty sequence")
    j = x[0]
    for i in x:
        if abs(i) > abs(j):
            j = i
    return j


def tribonacci(n):
    if n == 0:
        return 0
    if n <= 2:
        return 1
    a, b, c = 0, 1, 1
    for _ in range(n - 2):
        a, b, c = b, c, a + b + c
    return c


if __name__ == "__main__":
    import doctest

    doctest.testmod()
