"""Filter matrices: unpacking, distinct filters, undoing balancing, Dice.

Filters arrive packed as the connector writes them (bit ``i`` is bit ``7 - i % 8`` of byte
``i // 8``). Attacks work on distinct filters weighted by how many records hold each: a field-level
filter of an unsalted schema is a function of the value, so distinct filters are distinct values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BoolMatrix = np.ndarray[Any, np.dtype[np.bool_]]
U8Matrix = np.ndarray[Any, np.dtype[np.uint8]]


def unpack(packed: U8Matrix) -> BoolMatrix:
    """Packed filters (n, bytes) as a boolean matrix (n, bits)."""
    return np.unpackbits(packed, axis=1, bitorder="big").astype(bool)


@dataclass(frozen=True, slots=True)
class Distinct:
    """The distinct non-null filters of one column and which record holds which."""

    packed: U8Matrix  # (u, bytes)
    code: np.ndarray[Any, np.dtype[np.int64]]  # per record: index into ``packed``, -1 when null
    count: np.ndarray[Any, np.dtype[np.int64]]  # records per distinct filter


def distinct(packed: U8Matrix, null: np.ndarray[Any, np.dtype[np.bool_]]) -> Distinct:
    keep = np.flatnonzero(~null)
    rows = np.ascontiguousarray(packed[keep])
    width = rows.shape[1]
    void = rows.view(np.dtype((np.void, width))).ravel()
    _, first, inverse, count = np.unique(
        void, return_index=True, return_inverse=True, return_counts=True
    )
    code = np.full(packed.shape[0], -1, dtype=np.int64)
    code[keep] = inverse.ravel()
    return Distinct(rows[first], code, count.astype(np.int64))


@dataclass(frozen=True, slots=True)
class Debalanced:
    """Balanced filters turned back into unbalanced ones (up to an unknown column order)."""

    bits: BoolMatrix  # (n, pairs found)
    kept: np.ndarray[Any, np.dtype[np.intp]]  # the balanced column behind each column of bits
    pairs: int  # complementary column pairs found
    columns: int  # columns of the balanced filter
    constant_pairs: int  # pairs dropped because every filter has the same bit there


def debalance(balanced: BoolMatrix) -> Debalanced:
    """Undo balancing (Schnell & Borgs) without the key.

    A balanced filter is ``perm(f || not f)`` under one keyed permutation for every record, so
    over all records each original position shows up as two columns that are exact complements.
    Pair every column with its complement (hashing the columns), then keep the member of each
    pair that is set in fewer filters: original positions are set in well under half of the
    filters (name filters are about a quarter full), their complements in well over half. A
    position set in more than half of the filters is kept the wrong way round (the attack loses
    it; it does not know which those are).
    """
    n, width = balanced.shape
    cols = np.packbits(balanced, axis=0).T  # (width, ceil(n / 8))
    comp = np.packbits(~balanced, axis=0).T
    by_content: dict[bytes, list[int]] = {}
    for j in range(width):
        by_content.setdefault(cols[j].tobytes(), []).append(j)
    used = np.zeros(width, dtype=bool)
    density = balanced.sum(axis=0)
    keep: list[int] = []
    constant = 0
    for j in range(width):
        if used[j]:
            continue
        partners = [i for i in by_content.get(comp[j].tobytes(), ()) if not used[i] and i != j]
        if not partners:
            continue
        i = partners[0]
        used[i] = used[j] = True
        if density[j] in (0, n):
            constant += 1
            continue
        keep.append(j if density[j] <= density[i] else i)
    kept = np.array(keep, dtype=np.intp)
    return Debalanced(balanced[:, kept], kept, len(keep) + constant, width, constant)


def popcount_rows(bits: BoolMatrix) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray(bits.sum(axis=1), dtype=np.float32)


def dice(a: BoolMatrix, b: BoolMatrix) -> np.ndarray[Any, np.dtype[np.float32]]:
    """All-pairs Dice coefficients of two sets of filters (one BLAS product)."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    both = fa @ fb.T
    total = popcount_rows(a)[:, None] + popcount_rows(b)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, 2 * both / total, 0.0)
    return out.astype(np.float32)
