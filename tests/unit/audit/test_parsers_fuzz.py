"""Fuzzing the offline verifier's parsers: arbitrary input is refused with an AuditError.

An auditor runs the verifier on bundles, notes, keys and entries that arrive from outside (a
release's manifest, a hub's API). Whatever the bytes, the verifier must either accept them or
raise the package's one error root, never crash with another exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.bundle import ProofBundle, format_bundle, parse_bundle
from audit.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from audit.entry import decode
from audit.errors import AuditError
from audit.merkle import inclusion_proof, leaf_hash, merkle_tree_hash
from audit.note import SigningKey, parse_note, parse_signature_line, parse_vkey
from audit.verify import verify_consistency, verify_inclusion

KEY = SigningKey("fuzz.example/log", bytes(range(32)))
LEAVES = [f"entry {i}".encode() for i in range(7)]
PROOF = tuple(inclusion_proof(3, len(LEAVES), [leaf_hash(x) for x in LEAVES]))
CHECKPOINT = Checkpoint("fuzz.example/log", len(LEAVES), merkle_tree_hash(LEAVES))


def _valid_bundle() -> str:
    note = sign_checkpoint(CHECKPOINT, KEY)
    return format_bundle(ProofBundle(3, PROOF, note, None))


BUNDLE = _valid_bundle()
NOTE = BUNDLE.partition("\n\n")[2]


def _only_audit_errors(parse: Callable[[Any], object], data: Any) -> None:
    with contextlib.suppress(AuditError):
        parse(data)


texty = st.one_of(st.binary(max_size=600), st.text(max_size=600))


def _mutations(base: str) -> st.SearchStrategy[str]:
    """``base`` with a few characters replaced, inserted or deleted."""

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        text = base
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(text)))
            op = draw(st.sampled_from(("replace", "insert", "delete")))
            ch = draw(st.characters(codec="utf-8"))
            if op == "replace" and i < len(text):
                text = text[:i] + ch + text[i + 1 :]
            elif op == "insert":
                text = text[:i] + ch + text[i:]
            else:
                text = text[:i] + text[i + 1 :]
        return text

    return mutate()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(texty)
def test_random_input_to_every_parser(data: bytes | str) -> None:
    """Random bytes or text given to any parser raise AuditError or parse."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    _only_audit_errors(parse_bundle, data)
    _only_audit_errors(parse_note, data)
    _only_audit_errors(parse_checkpoint, text)
    _only_audit_errors(parse_vkey, text)
    _only_audit_errors(parse_signature_line, text)
    _only_audit_errors(decode, data if isinstance(data, bytes) else data.encode("utf-8"))


@settings(max_examples=300)
@given(_mutations(BUNDLE))
def test_mutated_bundles(text: str) -> None:
    """A valid bundle with characters replaced, inserted or removed parses or raises BundleError
    (an AuditError); if it still parses, a mutation of the proof or index fails verification."""
    try:
        bundle = parse_bundle(text)
    except AuditError:
        return
    try:
        verify_inclusion(
            leaf_hash(LEAVES[3]), bundle.index, CHECKPOINT.size, bundle.proof, CHECKPOINT.root_hash
        )
    except AuditError:
        assert (bundle.index, bundle.proof) != (3, PROOF)


@settings(max_examples=200)
@given(_mutations(NOTE))
def test_mutated_checkpoint_notes(text: str) -> None:
    """A mutated signed checkpoint parses or raises an AuditError, never anything else."""
    _only_audit_errors(parse_note, text)


@settings(max_examples=300)
@given(
    st.integers(-3, 40),
    st.integers(-3, 40),
    st.lists(st.binary(min_size=0, max_size=40), max_size=8),
    st.binary(min_size=0, max_size=40),
    st.binary(min_size=0, max_size=40),
)
def test_random_proofs(a: int, b: int, proof: list[bytes], r1: bytes, r2: bytes) -> None:
    """Arbitrary sizes, indices, hashes and proofs are refused with AuditError, never crash."""
    _only_audit_errors(lambda _: verify_inclusion(r1, a, b, proof, r2), None)
    _only_audit_errors(lambda _: verify_consistency(a, b, r1, r2, proof), None)
