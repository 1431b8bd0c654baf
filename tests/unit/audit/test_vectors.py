"""audit.merkle and audit.verify against the published RFC 6962 vectors and their faults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audit import (
    AuditError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_tree_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import VECTORS
from tests.unit.audit import naive

REFERENCE = json.loads((VECTORS / "audit" / "rfc6962-reference.json").read_text())
LEAVES = [bytes.fromhex(x) for x in REFERENCE["leaves"]]
ROOTS = [bytes.fromhex(x) for x in REFERENCE["roots"]]


def _hashes(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _fault_vectors(kind: str) -> list[Any]:
    params = []
    for path in sorted((VECTORS / "audit" / kind).glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["fault"] == path.stem
        params += [pytest.param(c, id=f"{path.stem}:{c['name']}") for c in doc["cases"]]
    return params


INCLUSION = _fault_vectors("inclusion")
CONSISTENCY = _fault_vectors("consistency")


def test_vector_files_cover_every_fault() -> None:
    """The generated vectors exist and hold many failing cases per published proof."""
    assert sum(p.values[0]["want"] == "error" for p in INCLUSION) >= 60
    assert sum(p.values[0]["want"] == "error" for p in CONSISTENCY) >= 80


@pytest.mark.parametrize("size", range(9))
def test_roots_match_published_and_naive(size: int) -> None:
    """The root of the first n reference leaves is the published one, by both trees."""
    assert naive.mth(LEAVES[:size]) == ROOTS[size]
    assert merkle_tree_hash(LEAVES[:size]) == ROOTS[size]


@pytest.mark.parametrize("case", REFERENCE["inclusion"], ids=lambda c: c["name"])
def test_inclusion_proofs_match_published(case: dict[str, Any]) -> None:
    """PATH for each published (index, size) is the published one, by both trees; it verifies."""
    i, n, want = case["leaf_index"], case["tree_size"], _hashes(case["proof"])
    assert naive.path(i, LEAVES[:n]) == want
    hashes = [leaf_hash(x) for x in LEAVES]
    assert inclusion_proof(i, n, hashes) == want
    assert root_from_inclusion_proof(hashes[i], i, n, want) == ROOTS[n]
    verify_inclusion(hashes[i], i, n, want, ROOTS[n])


@pytest.mark.parametrize("case", REFERENCE["consistency"], ids=lambda c: c["name"])
def test_consistency_proofs_match_published(case: dict[str, Any]) -> None:
    """PROOF for each published (size1, size2) is the published one, by both trees; it verifies."""
    m, n, want = case["size1"], case["size2"], _hashes(case["proof"])
    assert (naive.proof(m, LEAVES[:n]) if m != n else []) == want
    assert consistency_proof(m, n, [leaf_hash(x) for x in LEAVES]) == want
    verify_consistency(m, n, ROOTS[m], ROOTS[n], want)


@pytest.mark.parametrize("case", INCLUSION)
def test_inclusion_fault_vectors(case: dict[str, Any]) -> None:
    """Happy paths verify; every injected fault raises an AuditError (never returns)."""
    args = (
        bytes.fromhex(case["leaf_hash"]),
        case["leaf_index"],
        case["tree_size"],
        _hashes(case["proof"]),
        bytes.fromhex(case["root"]),
    )
    if case["want"] == "ok":
        verify_inclusion(*args)
    else:
        with pytest.raises(AuditError):
            verify_inclusion(*args)


@pytest.mark.parametrize("case", CONSISTENCY)
def test_consistency_fault_vectors(case: dict[str, Any]) -> None:
    """Happy paths verify; every injected fault raises an AuditError (never returns)."""
    args = (
        case["size1"],
        case["size2"],
        bytes.fromhex(case["root1"]),
        bytes.fromhex(case["root2"]),
        _hashes(case["proof"]),
    )
    if case["want"] == "ok":
        verify_consistency(*args)
    else:
        with pytest.raises(AuditError):
            verify_consistency(*args)
