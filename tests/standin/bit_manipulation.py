"""Bit tricks."""


def count_set_bits(number: int) -> int:
    if number < 0:
        raise ValueError("the value of input must not be negative")
    result = 0
    while number:
        number &= number - 1
        result += 1
    return result


def count_bits_shift(n):
    count = 0
    while n > 0:
        count += n & 1
        n >>= 1
    return count


def is_power_of_two(number: int) -> bool:
    if number < 0:
        raise ValueError("number must not be negative")
    return number & (number - 1) == 0


def binary_string(n):
    return bin(n)[2:]


def gray_code(n):
    return n ^ (n >> 1)


def single_number(nums):
    result = 0
    for n in nums:
        result ^= n
    return result


def get_bit(number: int, position: int) -> int:
    return int((number & (1 << position)) != 0)


def set_bit(number: int, position: int) -> int:
    return number | (1 << position)


def clear_bit(number: int, position: int) -> int:
    return number & ~(1 << position)


def swap_without_temp(a, b):
    a = a ^ b
    b = a ^ b
    a = a ^ b
    return a, b


def highest_set_bit_position(number: int) -> int:
    if not isinstance(number, int):
        raise TypeError("Input value must be an 'int' type")
    position = 0
    while number:
        position += 1
        number >>= 1
    return position


def reverse_bits_7(n):
    result = 0
    for _ in range(7):
        result = (result << 1) | (n & 1)
        n >>= 1
    return result
