"""String exercises."""


def reverse_string(s: str) -> str:
    return s[::-1]


def reverse_words(sentence: str) -> str:
    return " ".join(sentence.split()[::-1])


def is_palindrome(s: str) -> bool:
    """
    >>> is_palindrome("racecar")
    True
    """
    start_i = 0
    end_i = len(s) - 1
    while start_i < end_i:
        if s[start_i] == s[end_i]:
            start_i += 1
            end_i -= 1
        else:
            return False
    return True


def is_palindrome_clean(text):
    cleaned = "".join(ch.lower() for ch in text if ch.isalnum())
    return cleaned == cleaned[::-1]


def count_vowels(s: str) -> int:
    if not isinstance(s, str):
        raise ValueError("Input must be a string")
    vowels = "aeiouAEIOU"
    return sum(1 for char in s if char in vowels)


def count_vowels_loop(text):
    count = 0
    for ch in text.lower():
        if ch in ("a", "e", "i", "o", "u"):
            count += 1
    return count


def capitalize_words(sentence):
    return " ".join(word.capitalize() for word in sentence.split(" "))


def to_upper(word: str) -> str:
    return "".join(chr(ord(char) - 32) if "a" <= char <= "z" else char for char in word)


def to_lower(word):
    result = ""
    for c in word:
        if "A" <= c <= "Z":
            result += chr(ord(c) + 32)
        else:
            result += c
    return result


def is_anagram(first_str: str, second_str: str) -> bool:
    first_str = first_str.lower().strip()
    second_str = second_str.lower().strip()
    first_str = first_str.replace(" ", "")
    second_str = second_str.replace(" ", "")
    if len(first_str) != len(second_str):
        return False
    count = {}
    for i in range(len(first_str)):
        count[first_str[i]] = count.get(first_str[i], 0) + 1
        count[second_str[i]] = count.get(second_str[i], 0) - 1
    return all(_count == 0 for _count in count.values())


def is_anagram_sorted(a, b):
    return sorted(a) == sorted(b)


def hamming_distance(string1: str, string2: str) -> int:
    if len(string1) != len(string2):
        raise ValueError("String lengths must match!")
    count = 0
    for char1, char2 in zip(string1, string2):
        if char1 != char2:
            count += 1
    return count


def caesar_encrypt(text, shift):
    result = ""
    for ch in text:
        if ch.isupper():
            result += chr((ord(ch) + shift - 65) % 26 + 65)
        elif ch.islower():
            result += chr((ord(ch) + shift - 97) % 26 + 97)
        else:
            result += ch
    return result


def atbash(sequence: str) -> str:
    output = ""
    for i in sequence:
        extract = ord(i)
        if 65 <= extract <= 90:
            output += chr(155 - extract)
        elif 97 <= extract <= 122:
            output += chr(219 - extract)
        else:
            output += i
    return output


def count_char(s, c):
    count = 0
    for ch in s:
        if ch == c:
            count = count + 1
    return count


def first_non_repeating(s):
    for i, ch in enumerate(s):
        if s.count(ch) == 1:
            return i
    return -1


def longest_common_prefix(a: str, b: str) -> str:
    i = 0
    while i < len(a) and i < len(b) and a[i] == b[i]:
        i += 1
    return a[:i]


def remove_spaces(s):
    return s.replace(" ", "")


def run_length_encode(text: str) -> list:
    encoded = []
    count = 1
    for i in range(len(text)):
        if i + 1 < len(text) and text[i] == text[i + 1]:
            count += 1
        else:
            encoded.append((text[i], count))
            count = 1
    return encoded


def compress(s):
    if not s:
        return ""
    out = []
    prev = s[0]
    n = 1
    for ch in s[1:]:
        if ch == prev:
            n += 1
        else:
            out.append(prev + str(n))
            prev = ch
            n = 1
    out.append(prev + str(n))
    return "".join(out)


def is_pangram(input_str: str = "The quick brown fox jumps over the lazy dog") -> bool:
    frequency = set()
    input_str = input_str.replace(" ", "")
    for alpha in input_str:
        if "a" <= alpha.lower() <= "z":
            frequency.add(alpha.lower())
    return len(frequency) == 26


def word_count(sentence):
    return len(sentence.split())


def count_words_manual(s):
    words = 0
    in_word = False
    for ch in s:
        if ch != " " and not in_word:
            words += 1
            in_word = True
        elif ch == " ":
            in_word = False
    return words


def binary_to_decimal(bin_string: str) -> int:
    bin_string = str(bin_string).strip()
    if not bin_string:
        raise ValueError("Empty string was passed to the function")
    is_negative = bin_string[0] == "-"
    if is_negative:
        bin_string = bin_string[1:]
    if not all(char in "01" for char in bin_string):
        raise ValueError("Non-binary value was passed to the function")
    decimal_number = 0
    for char in bin_string:
        decimal_number = 2 * decimal_number + int(char)
    return -decimal_number if is_negative else decimal_number


def decimal_to_binary(num: int) -> str:
    if num == 0:
        return "0b0"
    binary = []
    while num > 0:
        binary.insert(0, num % 2)
        num >>= 1
    return "0b" + "".join(str(e) for e in binary)


def str_to_int(s):
    result = 0
    for ch in s:
        if not ch.isdigit():
            raise ValueError("not a digit")
        result = result * 10 + (ord(ch) - ord("0"))
    return result
