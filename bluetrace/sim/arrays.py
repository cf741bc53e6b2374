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


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def hash_uniform(*keys: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A uniform number in [0, 1) fixed by integer ``keys`` (broadcast together).

    SplitMix64 over the keys in turn: the same keys give the same number in any
    engine, in any order and on any day, without drawing from (and so without
    shifting) a random stream. Used for what is fixed per person or per pair and
    time slot: whether a directed pair can hear each other, whether a phone is in
    the background in a spell.
    """
    shape = np.broadcast(*[np.asarray(k) for k in keys]).shape
    state = np.zeros(shape, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2^64 is the point
        for key in keys:
            state = state ^ np.asarray(key, dtype=np.int64).astype(np.uint64)
            state = state + _GOLDEN
            state = (state ^ (state >> np.uint64(30))) * _MIX1
            state = (state ^ (state >> np.uint64(27))) * _MIX2
            state = state ^ (state >> np.uint64(31))
    return np.asarray((state >> np.uint64(11)).astype(np.float64) * 2.0**-53, dtype=np.float64)
