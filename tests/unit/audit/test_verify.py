"""audit.verify: properties over random trees, and the typed error for each failure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import (
    EMPTY_ROOT,
    AuditError,
    MalformedProofError,
    RootMismatchError,
    TreeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


@st.composite
def trees(draw: st.DrawFn, min_size: int = 1, max_size: int = 70) -> list[bytes]:
    """Leaf hashes of a random tree with distinct entries (equal leaves make some
    "wrong index" claims true, so they are excluded)."""
    entries = draw(
        st.lists(st.binary(max_size=12), min_size=min_size, max_size=max_size, unique=True)
    )
    return [leaf_hash(e) for e in entries]


def _flip(value: bytes, bit: int) -> bytes:
    raw = bytearray(value)
    raw[bit // 8] ^= 1 << (bit % 8)
    return bytes(raw)


@settings(max_examples=60, deadline=None)
@given(trees())
def test_every_inclusion_proof_verifies(hashes: list[bytes]) -> None:
    """For a random tree of up to 70 leaves, every leaf's proof verifies against the root."""
    n, root = len(hashes), root_from_leaf_hashes(hashes)
    for i in range(n):
        verify_inclusion(hashes[i], i, n, inclusion_proof(i, n, hashes), root)


@settings(max_examples=25, deadline=None)
@given(trees(max_size=40))
def test_every_consistency_proof_verifies(hashes: list[bytes]) -> None:
    """For a random tree of up to 40 leaves, every pair 0 <= m <= n is provably consistent."""
    roots = [root_from_leaf_hashes(hashes[:n]) for n in range(len(hashes) + 1)]
    for n in range(len(hashes) + 1):
        for m in range(n + 1):
            verify_consistency(m, n, roots[m], roots[n], consistency_proof(m, n, hashes))


@settings(max_examples=300, deadline=None)
@given(trees(min_size=2), st.data())
def test_any_change_to_an_inclusion_claim_fails(hashes: list[bytes], data: st.DataObject) -> None:
    """One flipped bit in the leaf, the root or a proof element, an element added or removed,
    another index, or a size doubled, halved or not above the index: all raise."""
    n = len(hashes)
    i = data.draw(st.integers(0, n - 1), label="index")
    proof, root, leaf = inclusion_proof(i, n, hashes), root_from_leaf_hashes(hashes), hashes[i]
    bit = data.draw(st.integers(0, 255), label="bit")
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="other index")
    pos = data.draw(st.integers(0, len(proof)), label="position")
    bad = [
        (_flip(leaf, bit), i, n, proof, root),
        (leaf, i, n, proof, _flip(root, bit)),
        (leaf, i, n, [*proof[:pos], extra, *proof[pos:]], root),
        (leaf, other, n, proof, root),
        (leaf, i, n * 2, proof, root),
        (leaf, i, n // 2, proof, root),
        (leaf, i, i, proof, root),
    ]
    if proof:
        k = pos % len(proof)
        bad.append((leaf, i, n, [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]], root))
        bad.append((leaf, i, n, proof[:k] + proof[k + 1 :], root))
    for args in bad:
        with pytest.raises(AuditError):
            verify_inclusion(*args)


@settings(max_examples=300, deadline=None)
@given(trees(min_size=2, max_size=40), st.data())
def test_any_change_to_a_consistency_claim_fails(hashes: list[bytes], data: st.DataObject) -> None:
    """For 0 < m < n: one flipped bit in a root or a proof element, an element added or
    removed, swapped roots or sizes, or m +/- 1: all raise."""
    n = len(hashes)
    m = data.draw(st.integers(1, n - 1), label="old size")
    proof = consistency_proof(m, n, hashes)
    r1, r2 = root_from_leaf_hashes(hashes[:m]), root_from_leaf_hashes(hashes)
    bit = data.draw(st.integers(0, 255), label="bit")
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    pos = data.draw(st.integers(0, len(proof)), label="position")
    k = pos % len(proof)
    bad = [
        (m, n, _flip(r1, bit), r2, proof),
        (m, n, r1, _flip(r2, bit), proof),
        (m, n, r1, r2, [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]),
        (m, n, r1, r2, [*proof[:pos], extra, *proof[pos:]]),
        (m, n, r1, r2, proof[:k] + proof[k + 1 :]),
        (m, n, r2, r1, proof),
        (n, m, r1, r2, proof),
        (m - 1, n, r1, r2, proof),
        (m + 1, n, r1, r2, proof),
    ]
    for args in bad:
        with pytest.raises(AuditError):
            verify_consistency(*args)


HASHES = [leaf_hash(bytes([i])) for i in range(8)]
ROOT = root_from_leaf_hashes(HASHES)
PROOF = inclusion_proof(2, 8, HASHES)


def test_inclusion_errors_are_typed() -> None:
    """Each way an inclusion claim fails raises its own subclass."""
    with pytest.raises(TreeError):
        verify_inclusion(HASHES[2], 8, 8, PROOF, ROOT)
    with pytest.raises(TreeError):
        verify_inclusion(HASHES[2], -1, 8, PROOF, ROOT)
    with pytest.raises(MalformedProofError, match="more elements"):
        verify_inclusion(HASHES[2], 2, 8, [*PROOF, ROOT], ROOT)
    with pytest.raises(MalformedProofError, match="fewer elements"):
        verify_inclusion(HASHES[2], 2, 8, PROOF[:-1], ROOT)
    with pytest.raises(MalformedProofError, match="32"):
        verify_inclusion(HASHES[2], 2, 8, [*PROOF[:-1], PROOF[-1][:31]], ROOT)
    with pytest.raises(MalformedProofError, match="root"):
        verify_inclusion(HASHES[2], 2, 8, PROOF, ROOT + b"\x00")
    with pytest.raises(RootMismatchError):
        verify_inclusion(HASHES[3], 2, 8, PROOF, ROOT)


def test_consistency_errors_are_typed() -> None:
    """Each way a consistency claim fails raises its own subclass."""
    r3, proof = root_from_leaf_hashes(HASHES[:3]), consistency_proof(3, 8, HASHES)
    with pytest.raises(TreeError):
        verify_consistency(8, 3, ROOT, r3, proof)
    with pytest.raises(MalformedProofError, match="empty"):
        verify_consistency(3, 8, r3, ROOT, [])
    with pytest.raises(MalformedProofError, match="more elements"):
        verify_consistency(3, 8, r3, ROOT, [*proof, ROOT])
    with pytest.raises(MalformedProofError, match="fewer elements"):
        verify_consistency(3, 8, r3, ROOT, proof[:-1])
    with pytest.raises(RootMismatchError):
        verify_consistency(3, 8, ROOT, ROOT, proof)


def test_trivial_consistency_cases() -> None:
    """m == n needs equal roots and no proof; m == 0 needs the empty-tree root and no proof."""
    verify_consistency(8, 8, ROOT, ROOT, [])
    verify_consistency(0, 8, EMPTY_ROOT, ROOT, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(RootMismatchError):
        verify_consistency(8, 8, ROOT, EMPTY_ROOT, [])
    with pytest.raises(RootMismatchError):
        verify_consistency(0, 8, ROOT, ROOT, [])
    with pytest.raises(MalformedProofError):
        verify_consistency(8, 8, ROOT, ROOT, [ROOT])
    with pytest.raises(MalformedProofError):
        verify_consistency(0, 8, EMPTY_ROOT, ROOT, [EMPTY_ROOT])


def test_single_leaf_tree() -> None:
    """In a one-leaf tree the root is the leaf hash and the proof is empty."""
    verify_inclusion(HASHES[0], 0, 1, [], HASHES[0])
    with pytest.raises(RootMismatchError):
        verify_inclusion(HASHES[0], 0, 1, [], HASHES[1])
    with pytest.raises(TreeError):
        verify_inclusion(HASHES[0], 0, 0, [], EMPTY_ROOT)
