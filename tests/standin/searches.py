"""Searching, as tutorials write it."""

from __future__ import annotations

import math


def linear_search(sequence: list, target: int) -> int:
    for index, item in enumerate(sequence):
        if item == target:
            return index
    return -1


def binary_search(sorted_collection: list[int], item: int) -> int:
    left = 0
    right = len(sorted_collection) - 1
    while left <= right:
        midpoint = left + (right - left) // 2
        current_item = sorted_collection[midpoint]
        if current_item == item:
            return midpoint
        elif item < current_item:
            right = midpoint - 1
        else:
            left = midpoint + 1
    return -1


def binary_search_recursive(arr, low, high, x):
    if high >= low:
        mid = (high + low) // 2
        if arr[mid] == x:
            return mid
        elif arr[mid] > x:
            return binary_search_recursive(arr, low, mid - 1, x)
        else:
            return binary_search_recursive(arr, mid + 1, high, x)
    else:
        return -1


def jump_search(arr: list, item: int) -> int:
    arr_size = len(arr)
    block_size = int(math.sqrt(arr_size))
    prev = 0
    step = block_size
    while arr[min(step, arr_size) - 1] < item:
        prev = step
        step += block_size
        if prev >= arr_size:
            return -1
    while arr[prev] < item:
        prev += 1
        if prev == min(step, arr_size):
            return -1
    if arr[prev] == item:
        return prev
    return -1


def lower_bound(arr, target):
    lo, hi = 0, len(arr)
    while lo < hi:
        mid = (lo + hi) // 2
        if arr[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def find_max(nums: list[int]) -> int:
    if len(nums) == 0:
        raise ValueError("find_max() arg is an empty sequence")
    max_num = nums[0]
    for x in nums:
        if x > max_num:
            max_num = x
    return max_num


def find_min_recursive(nums, left, right):
    if left == right:
        return nums[left]
    mid = (left + right) >> 1
    left_min = find_min_recursive(nums, left, mid)
    right_min = find_min_recursive(nums, mid + 1, right)
    return left_min if left_min <= right_min else right_min


def count_occurrences(arr, x):
    count = 0
    for value in arr:
        if value == x:
            count += 1
    return count


def sentinel_linear_search(sequence, target):
    sequence.append(target)
    index = 0
    while sequence[index] != target:
        index += 1
    sequence.pop()
    if index == len(sequence):
        return None
    return index


def ternary_search(arr, target):
    left, right = 0, len(arr) - 1
    while left <= right:
        third = (right - left) // 3
        mid1 = left + third
        mid2 = right - third
        if arr[mid1] == target:
            return mid1
        if arr[mid2] == target:
            return mid2
        if target < arr[mid1]:
            right = mid1 - 1
        elif target > arr[mid2]:
            left = mid2 + 1
        else:
            left = mid1 + 1
            right = mid2 - 1
    return -1
