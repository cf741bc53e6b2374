"""Small array helpers that stay fast on large int64 keys.

numpy's hash-based ``unique`` is slow on the shifted composite keys the
simulator builds (pair * 2^k + window), so sets are kept as sorted arrays and
membership is a binary search.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def uniq(x: npt.ArrayLike) -> IntArray:
    """Sorted unique values of an integer array."""
    s = np.sort(np.asarray(x, dtype=np.int64).ravel())
    if s.size == 0:
        return s
    return np.asarray(s[np.r_[True, s[1:] != s[:-1]]], dtype=np.int64)


def uniq_inverse(x: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """(sorted unique values, index of each input value in them)."""
    arr = np.asarray(x, dtype=np.int64).ravel()
    order = np.argsort(arr, kind="stable")
    s = arr[order]
    first = np.r_[True, s[1:] != s[:-1]] if s.size else np.empty(0, dtype=bool)
    group = np.cumsum(first) - 1
    inverse = np.empty(arr.size, dtype=np.int64)
    inverse[order] = group
    return np.asarray(s[first], dtype=np.int64), inverse


def member(values: npt.ArrayLike, sorted_set: IntArray) -> npt.NDArray[np.bool_]:
    """Whether each value is in ``sorted_set`` (sorted, unique)."""
    v = np.asarray(values, dtype=np.int64)
    if sorted_set.size == 0:
        return np.zeros(v.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, v), sorted_set.size - 1)
    return np.asarray(sorted_set[pos] == v)
