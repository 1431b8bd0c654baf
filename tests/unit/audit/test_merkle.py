"""audit.merkle: hashing and proof building, checked against the naive reference tree."""

from __future__ import annotations

import hashlib
import time

import pytest

from audit import (
    EMPTY_ROOT,
    TreeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_tree_hash,
    node_hash,
    root_from_leaf_hashes,
)
from tests.unit.audit import naive

ENTRIES = [f"entry {i}".encode() for i in range(70)]
HASHES = [leaf_hash(e) for e in ENTRIES]


def test_hash_prefixes() -> None:
    """Leaves hash as SHA-256(0x00 || data), nodes as SHA-256(0x01 || left || right)."""
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == merkle_tree_hash([])


def test_roots_match_naive_for_every_size() -> None:
    """The O(n) root equals the recursive MTH for every size 0..70."""
    for n in range(len(ENTRIES) + 1):
        assert merkle_tree_hash(ENTRIES[:n]) == naive.mth(ENTRIES[:n])
        assert root_from_leaf_hashes(HASHES[:n]) == naive.mth(ENTRIES[:n])


def test_inclusion_proofs_match_naive_for_every_index() -> None:
    """inclusion_proof equals the recursive PATH for every index of every size 1..70."""
    for n in range(1, len(ENTRIES) + 1):
        for i in range(n):
            assert inclusion_proof(i, n, HASHES) == naive.path(i, ENTRIES[:n]), (i, n)


def test_consistency_proofs_match_naive_for_every_pair() -> None:
    """consistency_proof equals the recursive PROOF for every 0 < m < n <= 40; empty otherwise."""
    for n in range(41):
        assert consistency_proof(0, n, HASHES) == []
        assert consistency_proof(n, n, HASHES) == []
        for m in range(1, n):
            assert consistency_proof(m, n, HASHES) == naive.proof(m, ENTRIES[:n]), (m, n)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (6, 5), (-1, 5), (0, -1), (0, 71)])
def test_inclusion_proof_rejects_bad_index_or_size(index: int, size: int) -> None:
    """An index outside [0, size) or a size beyond the leaves given is a TreeError."""
    with pytest.raises(TreeError):
        inclusion_proof(index, size, HASHES)


@pytest.mark.parametrize(("old", "new"), [(5, 4), (-1, 4), (0, 71), (70, 71)])
def test_consistency_proof_rejects_bad_sizes(old: int, new: int) -> None:
    """old > new, a negative size or a size beyond the leaves given is a TreeError."""
    with pytest.raises(TreeError):
        consistency_proof(old, new, HASHES)


def test_short_leaf_hash_is_rejected() -> None:
    """Leaf hashes that are not 32 bytes are refused rather than hashed."""
    with pytest.raises(TreeError):
        inclusion_proof(0, 2, [HASHES[0], b"short"])
    with pytest.raises(TreeError):
        root_from_leaf_hashes([b"short"])


def test_proofs_for_a_hundred_thousand_leaves_are_fast() -> None:
    """Building a root and proofs over 10^5 leaves costs O(n) hashes each, not O(n^2)."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    start = time.perf_counter()
    root = root_from_leaf_hashes(hashes)
    proof = inclusion_proof(77_777, 100_000, hashes)
    cons = consistency_proof(65_537, 100_000, hashes)
    elapsed = time.perf_counter() - start
    assert len(proof) == 17 and cons and len(root) == 32
    assert elapsed < 5.0, elapsed  # quadratic building would take minutes
