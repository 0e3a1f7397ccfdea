"""List exercises from interview-prep sites and intro courses."""


def rotate_left(arr, d):
    n = len(arr)
    d = d % n
    return arr[d:] + arr[:d]


def rotate_right_in_place(nums, k):
    n = len(nums)
    k %= n
    nums[:] = nums[n - k:] + nums[:n - k]
    return nums


def reverse_list(lst):
    start = 0
    end = len(lst) - 1
    while start < end:
        lst[start], lst[end] = lst[end], lst[start]
        start += 1
        end -= 1
    return lst


def remove_duplicates(nums):
    result = []
    for n in nums:
        if n not in result:
            result.append(n)
    return result


def remove_duplicates_sorted(nums: list[int]) -> int:
    if not nums:
        return 0
    k = 1
    for i in range(1, len(nums)):
        if nums[i] != nums[i - 1]:
            nums[k] = nums[i]
            k += 1
    return k


def move_zeroes(nums):
    pos = 0
    for i in range(len(nums)):
        if nums[i] != 0:
            nums[pos], nums[i] = nums[i], nums[pos]
            pos += 1
    return nums


def two_sum(nums: list[int], target: int) -> list[int]:
    chk_map = {}
    for index, val in enumerate(nums):
        compl = target - val
        if compl in chk_map:
            return [chk_map[compl], index]
        chk_map[val] = index
    return []


def two_sum_brute(nums, target):
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            if nums[i] + nums[j] == target:
                return [i, j]
    return []


def max_subarray_sum(arr: list[int]) -> int:
    max_so_far = arr[0]
    current = arr[0]
    for num in arr[1:]:
        current = max(num, current + num)
        max_so_far = max(max_so_far, current)
    return max_so_far


def find_missing_number(nums):
    n = len(nums)
    expected = n * (n + 1) // 2
    return expected - sum(nums)


def majority_element(nums):
    count = 0
    candidate = None
    for num in nums:
        if count == 0:
            candidate = num
        count += 1 if num == candidate else -1
    return candidate


def product_except_self(nums):
    n = len(nums)
    answer = [1] * n
    left = 1
    for i in range(n):
        answer[i] = left
        left *= nums[i]
    right = 1
    for i in range(n - 1, -1, -1):
        answer[i] *= right
        right *= nums[i]
    return answer


def merge_sorted_arrays(a, b):
    result = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            result.append(a[i])
            i += 1
        else:
            result.append(b[j])
            j += 1
    result += a[i:]
    result += b[j:]
    return result


def second_largest(arr):
    first = second = -1
    for x in arr:
        if x > first:
            second = first
            first = x
        elif x > second and x != first:
            second = x
    return second


def cumulative_sum(nums):
    result = []
    total = 0
    for n in nums:
        total += n
        result.append(total)
    return result


def running_sum_in_place(nums):
    for i in range(1, len(nums)):
        nums[i] += nums[i - 1]
    return nums


def count_evens(nums):
    return len([x for x in nums if x % 2 == 0])


def contains_duplicate(nums):
    return len(nums) != len(set(nums))


def contains_duplicate_loop(nums):
    for i in range(len(nums)):
        for j in range(i):
            if nums[i] == nums[j]:
                return True
    return False


def list_sum_recursive(lst):
    if not lst:
        return 0
    return lst[0] + list_sum_recursive(lst[1:])


def flatten(nested):
    out = []
    for sub in nested:
        for x in sub:
            out.append(x)
    return out


def pascal_row(n):
    row = [1]
    for _ in range(n):
        row = [x + y for x, y in zip([0] + row, row + [0])]
    return row


def chunk_sums(nums, k):
    sums = []
    for i in range(0, len(nums), k):
        sums.append(sum(nums[i:i + k]))
    return sums


def max_consecutive_ones(nums):
    best = cur = 0
    for n in nums:
        if n == 1:
            cur += 1
            best = max(best, cur)
        else:
            cur = 0
    return best


def dot_product(a, b):
    return sum(x * y for x, y in zip(a, b))


def is_monotonic(nums):
    increasing = decreasing = True
    for i in range(1, len(nums)):
        if nums[i] > nums[i - 1]:
            decreasing = False
        if nums[i] < nums[i - 1]:
            increasing = False
    return increasing or decreasing


def leaders(arr):
    result = []
    max_from_right = -1
    for x in reversed(arr):
        if x > max_from_right:
            result.append(x)
            max_from_right = x
    result.reverse()
    return result
