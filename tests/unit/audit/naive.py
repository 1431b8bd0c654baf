"""A deliberately naive RFC 6962 reference tree, written straight from the recursive
definitions in RFC 6962 section 2.1 (MTH, PATH, PROOF/SUBPROOF). No code is shared with
``audit/``: it slices lists, recomputes every subtree from scratch and is only fit for the
small trees of the tests."""

from __future__ import annotations

import hashlib


def _k(n: int) -> int:
    """The largest power of two smaller than n, by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) of raw entries."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(entries)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(entries)
    if m == n:
        return [] if b else [mth(entries)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, entries[:k], b), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def proof(m: int, entries: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m <= n."""
    return subproof(m, entries, True)
