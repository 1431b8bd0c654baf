"""RFC 6962 Merkle tree hashing and proof building (RFC 6962 section 2.1, RFC 9162 section 2.1).

Pure functions over 32-byte SHA-256 hashes. Building lives here; checking lives in
``audit.verify`` so that a verifier never trusts code that also builds proofs.

Proofs are built from the full list of leaf hashes in O(n) hashes per proof: every
subtree the recursive definitions (PATH, SUBPROOF) ask for is hashed once, with a
stack of perfect subtrees, and the subtrees asked for along one proof are disjoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from audit.errors import TreeError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "consistency_ranges",
    "fold_subtrees",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "merkle_tree_hash",
    "node_hash",
    "perfect_subtrees",
    "root_from_leaf_hashes",
]

HASH_SIZE = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the hash of the empty tree is SHA-256 of the empty string."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of ``leaf_hashes[start:end]`` in ``end - start - 1`` node hashes.

    Keeps a stack of perfect subtrees (the binary decomposition of the count so far),
    then folds it right to left, which is exactly RFC 6962's left-heavy split.
    """
    if start == end:
        return EMPTY_ROOT
    stack: list[bytes] = []
    for count, i in enumerate(range(start, end), start=1):
        node = leaf_hashes[i]
        # One merge per trailing zero bit of the new count.
        c = count
        while c & 1 == 0:
            node = node_hash(stack.pop(), node)
            c >>= 1
        stack.append(node)
    root = stack.pop()
    while stack:
        root = node_hash(stack.pop(), root)
    return root


def _check_leaf_hashes(leaf_hashes: Sequence[bytes], size: int) -> None:
    if size > len(leaf_hashes):
        raise TreeError(f"tree size {size} exceeds the {len(leaf_hashes)} leaf hashes given")
    for i in range(size):
        if len(leaf_hashes[i]) != HASH_SIZE:
            raise TreeError(f"leaf hash {i} is {len(leaf_hashes[i])} bytes, not {HASH_SIZE}")


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a tree whose leaf hashes are given, in O(n)."""
    _check_leaf_hashes(leaf_hashes, len(leaf_hashes))
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def merkle_tree_hash(entries: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of raw entries (each is leaf-hashed first); RFC 6962 section 2.1."""
    hashes = [leaf_hash(e) for e in entries]
    return _subtree_root(hashes, 0, len(hashes))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose subtree hashes make up PATH(index, D[size]),
    ordered from the leaf up. Each range is one the RFC's recursion splits off, so its
    start is a multiple of the largest power of two not above its length (see
    ``perfect_subtrees``).

    Raises ``TreeError`` unless 0 <= index < size.
    """
    if index < 0 or size < 0:
        raise TreeError(f"index {index} and size {size} must be non-negative")
    if index >= size:
        raise TreeError(f"index {index} is not in a tree of size {size}")
    # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])        if m < k
    #               = PATH(m - k, D[k:n]) : MTH(D[0:k])    if m >= k
    # Walk down from the root, collecting the sibling at each level; reverse at the end.
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose subtree hashes make up PROOF(old_size, D[new_size]), in
    proof order. Empty when old_size is 0 or equals new_size.

    Raises ``TreeError`` unless 0 <= old_size <= new_size.
    """
    if old_size < 0 or new_size < 0:
        raise TreeError(f"sizes {old_size} and {new_size} must be non-negative")
    if old_size > new_size:
        raise TreeError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    # SUBPROOF(m, D[m], True) = {}; SUBPROOF(m, D[m], False) = {MTH(D[m])}
    # SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          if m <= k
    #                      = SUBPROOF(m - k, D[k:n], False) : MTH(D[0:k])   if m > k
    outer: list[tuple[int, int]] = []
    start, end, m, whole_old_tree = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            outer.append((start + k, end))
            end = start + k
        else:
            outer.append((start, start + k))
            start += k
            m -= k
            whole_old_tree = False
    head = [] if whole_old_tree else [(start, end)]
    outer.reverse()
    return head + outer


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, as ``(level, index)`` node coordinates, whose hashes fold
    (right to left) into MTH of leaves ``[start, end)``, largest first.

    Node ``(level, index)`` is the perfect subtree over leaves
    ``[index << level, (index + 1) << level)``; level 0 is the leaves. Valid for every
    range a proof asks for: ``start`` must be a multiple of the largest power of two
    not above ``end - start``, else ``TreeError``.
    """
    if not 0 <= start < end:
        raise TreeError(f"[{start}, {end}) is not a non-empty leaf range")
    width = end - start
    if start % (1 << (width.bit_length() - 1)):
        raise TreeError(f"[{start}, {end}) is not aligned to a subtree boundary")
    nodes: list[tuple[int, int]] = []
    offset = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append((level, offset >> level))
            offset += 1 << level
    return nodes


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect subtrees' hashes (``perfect_subtrees`` order):
    the smaller subtrees on the right are merged first, as RFC 6962's split does."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[size]): the audit path for leaf ``index`` in the tree of the first
    ``size`` leaf hashes (RFC 6962 section 2.1.1), ordered from the leaf up.

    Raises ``TreeError`` unless 0 <= index < size <= len(leaf_hashes).
    """
    ranges = inclusion_ranges(index, size)
    _check_leaf_hashes(leaf_hashes, size)
    return [_subtree_root(leaf_hashes, a, b) for a, b in ranges]


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 6962 section 2.1.2): the hashes that show the tree
    of the first ``old_size`` leaves is a prefix of the tree of the first ``new_size``.

    Empty when old_size is 0 or equals new_size. Raises ``TreeError`` unless
    0 <= old_size <= new_size <= len(leaf_hashes).
    """
    ranges = consistency_ranges(old_size, new_size)
    _check_leaf_hashes(leaf_hashes, new_size)
    return [_subtree_root(leaf_hashes, a, b) for a, b in ranges]
