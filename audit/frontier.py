"""The right edge of a Merkle tree: what a writer needs to append leaves.

For a tree of ``size`` leaves the frontier is the list of perfect subtrees that cover
leaves ``[0, size)`` (one per set bit of ``size``, largest first). Appending a leaf
merges equal-sized subtrees at the right edge, exactly like incrementing a binary
counter, and every merge completes one interior node that never changes again. The log
stores those nodes so that proofs are a handful of lookups, and the root of any size is
``fold_subtrees`` of its frontier.
"""

from __future__ import annotations

from collections.abc import Sequence

from audit.errors import TreeError
from audit.merkle import HASH_SIZE, fold_subtrees, node_hash, perfect_subtrees

__all__ = ["Frontier", "Node"]

Node = tuple[int, int, bytes]
"""A completed tree node: ``(level, index, hash)``; level 0 holds the leaf hashes."""


class Frontier:
    """The perfect subtrees on the right edge of a tree, updated leaf by leaf."""

    __slots__ = ("_hashes", "_levels", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """The frontier of a tree of ``size`` leaves whose right-edge subtrees (in
        ``frontier_nodes(size)`` order) have ``hashes``."""
        coords = self.coordinates(size)
        if len(hashes) != len(coords):
            raise TreeError(
                f"a tree of size {size} has {len(coords)} frontier nodes, not {len(hashes)}"
            )
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise TreeError(f"a frontier hash is {len(h)} bytes, not {HASH_SIZE}")
        self._size = size
        self._levels = [level for level, _ in coords]
        self._hashes = list(hashes)

    @staticmethod
    def coordinates(size: int) -> list[tuple[int, int]]:
        """``(level, index)`` of the frontier nodes of a tree of ``size`` leaves."""
        if size < 0:
            raise TreeError(f"tree size {size} must be non-negative")
        return perfect_subtrees(0, size) if size else []

    @property
    def size(self) -> int:
        return self._size

    def root(self) -> bytes:
        """MTH of the tree so far (the empty-tree hash for size 0)."""
        return fold_subtrees(self._hashes)

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Add one leaf; return the nodes it completes: the leaf itself, then each parent."""
        if len(leaf_hash) != HASH_SIZE:
            raise TreeError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
        level, index, value = 0, self._size, leaf_hash
        made: list[Node] = [(level, index, value)]
        while self._levels and self._levels[-1] == level:
            self._levels.pop()
            value = node_hash(self._hashes.pop(), value)
            level, index = level + 1, index >> 1
            made.append((level, index, value))
        self._levels.append(level)
        self._hashes.append(value)
        self._size += 1
        return made
