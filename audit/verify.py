"""RFC 9162 proof verification: pure functions that return nothing or raise.

``verify_inclusion`` follows RFC 9162 section 2.1.3.2 and ``verify_consistency``
section 2.1.4.2, bit for bit. Every failure raises a subclass of ``AuditError``;
nothing here returns ``False``. A proof with elements left over, or one that runs
out before the tree does, raises ``MalformedProofError``; a well-formed proof whose
root differs raises ``RootMismatchError``; an index or size out of range raises
``TreeError``. Roots are compared in constant time.

Deliberately stricter than RFC 9162 in one place: a consistency proof from size 0
requires the old root to be the empty-tree hash (RFC 9162 leaves m = 0 undefined;
transparency-dev/merkle accepts any old root there).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from audit.errors import MalformedProofError, RootMismatchError, TreeError
from audit.merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = ["root_from_inclusion_proof", "verify_consistency", "verify_inclusion"]


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise MalformedProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, element in enumerate(proof):
        _check_hash(f"proof element {i}", element)


def _same_root(what: str, computed: bytes, claimed: bytes) -> None:
    if not hmac.compare_digest(computed, claimed):
        raise RootMismatchError(f"{what} computed from the proof does not match")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` proves ``leaf_hash`` is at ``index`` under (RFC 9162 2.1.3.2).

    Raises ``TreeError`` unless 0 <= index < size, ``MalformedProofError`` when a hash
    is not 32 bytes or the proof has too many or too few elements for (index, size).
    """
    if index < 0 or size < 0:
        raise TreeError(f"index {index} and size {size} must be non-negative")
    if index >= size:
        raise TreeError(f"index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_proof(proof)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise MalformedProofError("inclusion proof has more elements than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:  # right-shift until LSB(fn) is set or fn is 0
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MalformedProofError("inclusion proof has fewer elements than the tree has levels")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with
    ``root``; return nothing, or raise a subclass of ``AuditError``."""
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    _same_root("root", computed, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` with ``old_root`` is a prefix of the tree of
    ``new_size`` with ``new_root`` (RFC 9162 2.1.4.2); return nothing, or raise."""
    if old_size < 0 or new_size < 0:
        raise TreeError(f"sizes {old_size} and {new_size} must be non-negative")
    if old_size > new_size:
        raise TreeError(f"old size {old_size} is larger than new size {new_size}")
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    _check_proof(proof)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise MalformedProofError(
                f"a consistency proof from size {old_size} to {new_size} must be empty"
            )
        if old_size == 0:
            _same_root("old root", EMPTY_ROOT, old_root)
        if old_size == new_size:
            _same_root("new root", old_root, new_root)
        return
    if not proof:
        raise MalformedProofError("consistency proof is empty")
    path = list(proof)
    # 1. If first is an exact power of 2, prepend first_hash to the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 2-3. fn = first - 1, sn = second - 1; shift both right while LSB(fn) is set.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 4. fr = sr = the first value of the path.
    fr = sr = path[0]
    # 5. Fold in each subsequent value.
    for c in path[1:]:
        if sn == 0:
            raise MalformedProofError("consistency proof has more elements than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:  # right-shift until LSB(fn) is set or fn is 0
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 6. sn must be 0, and both roots must match.
    if sn != 0:
        raise MalformedProofError("consistency proof has fewer elements than needed")
    _same_root("old root", fr, old_root)
    _same_root("new root", sr, new_root)
