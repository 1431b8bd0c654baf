"""audit.bundle: tlog-proof bundles against independent vectors, tampering and rejections."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.bundle import (
    MAX_PROOF_HASHES,
    ProofBundle,
    format_bundle,
    parse_bundle,
    verify_bundle,
)
from audit.checkpoint import (
    Checkpoint,
    WitnessKey,
    cosign,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from audit.errors import (
    AuditError,
    BundleError,
    MalformedProofError,
    NoteError,
    RootMismatchError,
    SignatureError,
    TreeError,
)
from audit.merkle import inclusion_proof, leaf_hash, merkle_tree_hash
from audit.note import Note, SigningKey, add_signatures, format_note, parse_note, parse_vkey
from tests.conftest import VECTORS

NOTES = VECTORS / "audit" / "notes"
NODE = json.loads((NOTES / "node-generated.json").read_text(encoding="utf-8"))
SPEC = json.loads((NOTES / "c2sp-spec-examples.json").read_text(encoding="utf-8"))
KEYS = NODE["keys"]
LOG = SigningKey(KEYS["log"]["name"], bytes.fromhex(KEYS["log"]["seed_hex"]))
W1 = WitnessKey(SigningKey(KEYS["w1"]["name"], bytes.fromhex(KEYS["w1"]["seed_hex"])))
W2 = WitnessKey(SigningKey(KEYS["w2"]["name"], bytes.fromhex(KEYS["w2"]["seed_hex"])))
ORIGIN = LOG.name
LEAVES = [x.encode() for x in NODE["tree"]["leaves"]]
WITNESSES = [W1.verifier(), W2.verifier()]
BUNDLES = NODE["bundles"]
FIRST = BUNDLES[0]


def _verify(bundle: ProofBundle, leaf: bytes, min_witnesses: int = 2) -> Checkpoint:
    return verify_bundle(bundle, leaf, LOG.verifier(), ORIGIN, WITNESSES, min_witnesses)


# --- independent known answers (generate.mjs) ------------------------------------------------


@pytest.mark.parametrize("case", BUNDLES, ids=lambda c: c["name"])
def test_node_bundles_parse_verify_and_reformat(case: dict[str, Any]) -> None:
    """Each generated bundle parses to its index, proof and extra, reformats byte for byte
    and verifies its leaf with both witnesses required."""
    bundle = parse_bundle(case["bundle"].encode())
    assert bundle.index == case["index"]
    assert [h.hex() for h in bundle.proof] == case["proof_hex"]
    assert bundle.extra == (None if case["extra_hex"] is None else bytes.fromhex(case["extra_hex"]))
    assert format_bundle(bundle) == case["bundle"]
    cp = _verify(bundle, case["leaf_data"].encode())
    assert (cp.origin, cp.size, cp.root_hash.hex()) == (ORIGIN, 7, NODE["tree"]["root_hex"])


@pytest.mark.parametrize("case", BUNDLES, ids=lambda c: c["name"])
def test_node_bundles_rebuilt_from_scratch(case: dict[str, Any]) -> None:
    """Built with our own tree, proof, signer and cosigners, each bundle is the generator's
    text byte for byte."""
    hashes = [leaf_hash(x) for x in LEAVES]
    cp = Checkpoint(ORIGIN, len(LEAVES), merkle_tree_hash(LEAVES))
    note = sign_checkpoint(cp, LOG)
    note = add_signatures(note, [cosign(cp, W1, 1_700_000_000), cosign(cp, W2, 1_700_000_060)])
    extra = None if case["extra_hex"] is None else bytes.fromhex(case["extra_hex"])
    proof = tuple(inclusion_proof(case["index"], len(LEAVES), hashes))
    assert format_bundle(ProofBundle(case["index"], proof, note, extra)) == case["bundle"]


def test_spec_proof_example_resigned() -> None:
    """The tlog-proof spec example (signatures re-made by a test key) parses to the
    published index, extra and proof, reformats exactly, and its checkpoint opens."""
    case = NODE["spec_proof_example"]
    bundle = parse_bundle(case["bundle"])
    assert bundle.index == case["index"]
    assert bundle.extra == bytes.fromhex(case["extra_hex"])
    assert bundle.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert len(bundle.proof) == case["proof_hashes"]
    assert format_bundle(bundle) == case["bundle"]
    fancylog = parse_vkey(KEYS["fancylog"]["vkey"])
    cp, _ = open_checkpoint(bundle.checkpoint, fancylog, case["origin"])
    assert cp.size == case["size"]


def test_spec_proof_example_as_published_is_malformed() -> None:
    """As printed, the example's signatures are elided with '[...]', so it does not parse."""
    with pytest.raises(BundleError, match="checkpoint"):
        parse_bundle(SPEC["proof"]["bundle_as_published"])


# --- tampering -----------------------------------------------------------------------------

BUNDLE = parse_bundle(FIRST["bundle"])
LEAF = FIRST["leaf_data"].encode()


def test_tampered_index_fails() -> None:
    """Another index, in or out of the tree, does not verify the same leaf and proof."""
    for index, error in [(4, RootMismatchError), (7, TreeError), (1, RootMismatchError)]:
        with pytest.raises(error):
            _verify(dataclasses.replace(BUNDLE, index=index), LEAF)


def test_tampered_proof_fails() -> None:
    """A changed, missing, extra or reordered proof hash fails."""
    proof = BUNDLE.proof
    flipped = (bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:])
    for bad, error in [
        (flipped, RootMismatchError),
        (proof[:-1], MalformedProofError),
        ((*proof, proof[0]), MalformedProofError),
        (proof[::-1], RootMismatchError),
    ]:
        with pytest.raises(error):
            _verify(dataclasses.replace(BUNDLE, proof=bad), LEAF)


def test_wrong_leaf_fails() -> None:
    """The bundle proves its own entry only."""
    with pytest.raises(RootMismatchError):
        _verify(BUNDLE, b"entry 4")


def test_tampered_checkpoint_fails() -> None:
    """A checkpoint with another size or root breaks the log's signature."""
    text = BUNDLE.checkpoint.text
    for other in [
        text.replace("\n7\n", "\n8\n"),
        text.replace(text.split("\n")[2], "A" * 43 + "="),
    ]:
        bad = dataclasses.replace(BUNDLE, checkpoint=Note(other, BUNDLE.checkpoint.signatures))
        with pytest.raises(SignatureError):
            _verify(bad, LEAF)


def test_checkpoint_of_another_log_fails() -> None:
    """The expected origin and log key are required."""
    with pytest.raises(SignatureError, match="origin"):
        verify_bundle(BUNDLE, LEAF, LOG.verifier(), "example.org/other-log")
    other = SigningKey(ORIGIN, bytes(32)).verifier()
    with pytest.raises(SignatureError):
        verify_bundle(BUNDLE, LEAF, other, ORIGIN)


def test_witness_quorum() -> None:
    """Valid cosignatures are counted per trusted witness; fewer than required fails."""
    assert _verify(BUNDLE, LEAF, 2).size == 7
    one = Note(BUNDLE.checkpoint.text, BUNDLE.checkpoint.signatures[:2])
    assert _verify(dataclasses.replace(BUNDLE, checkpoint=one), LEAF, 1).size == 7
    with pytest.raises(SignatureError, match="fewer than the 2 required"):
        _verify(dataclasses.replace(BUNDLE, checkpoint=one), LEAF, 2)
    with pytest.raises(SignatureError, match="fewer than the 1 required"):
        verify_bundle(BUNDLE, LEAF, LOG.verifier(), ORIGIN, [], 1)
    with pytest.raises(SignatureError):
        verify_bundle(BUNDLE, LEAF, LOG.verifier(), ORIGIN, [W1.verifier(), W1.verifier()], 2)


def test_cosignature_of_another_checkpoint_fails() -> None:
    """A witness line lifted from another checkpoint is an invalid cosignature."""
    other = Checkpoint(ORIGIN, 6, merkle_tree_hash(LEAVES[:6]))
    lifted = add_signatures(BUNDLE.checkpoint, [cosign(other, W1, 1_700_000_000)])
    with pytest.raises(SignatureError, match="invalid signature"):
        _verify(dataclasses.replace(BUNDLE, checkpoint=lifted), LEAF)


def test_extra_is_not_authenticated() -> None:
    """As the spec says, extra data is not signed: changing it alone still verifies. An
    application that needs it derives the leaf from it, and then a change fails."""
    case = BUNDLES[1]
    bundle = parse_bundle(case["bundle"])
    changed = dataclasses.replace(bundle, extra=b"context for entry 9")
    assert _verify(changed, case["leaf_data"].encode()).size == 7

    def leaf_from(extra: bytes | None) -> bytes:
        assert extra is not None
        return b"entry " + extra.rsplit(b" ", 1)[1]

    assert _verify(bundle, leaf_from(bundle.extra)).size == 7
    with pytest.raises(RootMismatchError):
        _verify(changed, leaf_from(changed.extra))


BUNDLE_BYTES = FIRST["bundle"].encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_change_fails(data: st.DataObject) -> None:
    """Changing any one byte of a bundle (without extra data), with both witnesses
    required, makes parsing or verification raise."""
    i = data.draw(st.integers(0, len(BUNDLE_BYTES) - 1), label="position")
    b = data.draw(st.integers(0, 255).filter(lambda v: v != BUNDLE_BYTES[i]), label="byte")
    mutated = BUNDLE_BYTES[:i] + bytes([b]) + BUNDLE_BYTES[i + 1 :]
    with pytest.raises(AuditError):
        _verify(parse_bundle(mutated), LEAF)


# --- rejections ----------------------------------------------------------------------------

HEAD, NOTE_TEXT = str(FIRST["bundle"]).split("\n\n", 1)
LINES = HEAD.split("\n")
H0 = LINES[2]
H0_31 = base64.b64encode(bytes.fromhex(FIRST["proof_hex"][0])[:31]).decode()


def _with_head(*lines: str) -> str:
    return "\n".join(lines) + "\n\n" + NOTE_TEXT


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_with_head("c2sp.org/tlog-proof@v2", *LINES[1:]), id="wrong-header"),
        pytest.param(_with_head("C2SP.org/tlog-proof@v1", *LINES[1:]), id="header-case"),
        pytest.param(_with_head(*LINES[1:]), id="no-header"),
        pytest.param(_with_head(LINES[0], *LINES[2:]), id="no-index"),
        pytest.param(_with_head(LINES[0], "index 05", *LINES[2:]), id="index-leading-zero"),
        pytest.param(_with_head(LINES[0], "index -5", *LINES[2:]), id="index-negative"),
        pytest.param(_with_head(LINES[0], "index  5", *LINES[2:]), id="index-two-spaces"),
        pytest.param(_with_head(LINES[0], "index 5 ", *LINES[2:]), id="index-trailing-space"),
        pytest.param(_with_head(LINES[0], "Index 5", *LINES[2:]), id="index-case"),
        pytest.param(_with_head(LINES[0], "index 9223372036854775808"), id="index-too-big"),
        pytest.param(_with_head(LINES[0], "extra ", *LINES[1:]), id="empty-extra"),
        pytest.param(_with_head(LINES[0], "extra AB==", *LINES[1:]), id="extra-padding-bits"),
        pytest.param(_with_head(LINES[0], "extra QQ", *LINES[1:]), id="extra-no-padding"),
        pytest.param(_with_head(LINES[0], LINES[1], "extra QQ==", *LINES[2:]), id="extra-late"),
        pytest.param(_with_head(LINES[0], "extra QQ==", "extra QQ==", *LINES[1:]), id="2-extra"),
        pytest.param(_with_head(*LINES[:2], H0_31, *LINES[3:]), id="hash-31-bytes"),
        pytest.param(_with_head(*LINES[:2], H0.rstrip("="), *LINES[3:]), id="hash-no-padding"),
        pytest.param(_with_head(*LINES, ""), id="empty-proof-line"),
        pytest.param(_with_head(*LINES[:2], "", *LINES[2:]), id="blank-before-proof"),
        pytest.param(_with_head(*LINES[:2], *[H0] * (MAX_PROOF_HASHES + 1)), id="64-hashes"),
        pytest.param(FIRST["bundle"].replace("\n", "\r\n"), id="crlf"),
        pytest.param(_with_head(*LINES).replace(H0, H0 + "\r"), id="cr-in-proof"),
        pytest.param(HEAD + "\n" + NOTE_TEXT, id="no-empty-line"),
        pytest.param(HEAD + "\n\n", id="no-checkpoint"),
        pytest.param(HEAD + "\n\n" + NOTE_TEXT.replace("\n\n", "\n"), id="note-no-empty-line"),
        pytest.param(HEAD + "\n\nhello\n\n" + NOTE_TEXT.split("\n\n")[1], id="not-a-checkpoint"),
        pytest.param(FIRST["bundle"].encode()[:-2] + b"\xff\n", id="invalid-utf8"),
        pytest.param(FIRST["bundle"] + "\n", id="trailing-empty-line"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_bundles(data: str | bytes) -> None:
    """Each malformed bundle raises BundleError, before anything is verified."""
    with pytest.raises(BundleError):
        parse_bundle(data)


def test_a_bundle_without_proof_hashes() -> None:
    """A one-leaf tree has an empty proof: the index line is followed by the empty line."""
    cp = Checkpoint(ORIGIN, 1, leaf_hash(b"only"))
    bundle = ProofBundle(0, (), sign_checkpoint(cp, LOG))
    text = format_bundle(bundle)
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n" + ORIGIN + "\n1\n")
    assert parse_bundle(text) == bundle
    assert verify_bundle(bundle, b"only", LOG.verifier(), ORIGIN) == cp


def test_proof_bundle_constructor_validates() -> None:
    """Index range, 32-byte hashes (at most 63), a Note holding a checkpoint, non-empty extra."""
    note = BUNDLE.checkpoint
    good: dict[str, Any] = {"index": 0, "proof": (), "checkpoint": note}
    bads: list[dict[str, Any]] = [
        {"index": -1},
        {"index": 2**63},
        {"index": True},
        {"proof": (b"\x00" * 31,)},
        {"proof": [b"\x00" * 32]},
        {"proof": (b"\x00" * 32,) * 64},
        {"checkpoint": format_note(note)},
        {"checkpoint": parse_note("not a\ncheckpoint\n\n" + format_note(note).split("\n\n")[1])},
        {"extra": b""},
        {"extra": "text"},
    ]
    for bad in bads:
        with pytest.raises(BundleError):
            ProofBundle(**{**good, **bad})


def test_verify_bundle_checks_its_policy_arguments() -> None:
    """min_witnesses is a non-negative int; witness keys must be type 0x04."""
    with pytest.raises(BundleError):
        _verify(BUNDLE, LEAF, -1)
    with pytest.raises(NoteError, match="0x04"):
        verify_bundle(BUNDLE, LEAF, LOG.verifier(), ORIGIN, [LOG.verifier()])


def test_checkpoint_text_in_bundle_is_a_checkpoint() -> None:
    """The bundle's note is a checkpoint with the tree of the generator."""
    cp = parse_checkpoint(BUNDLE.checkpoint.text)
    assert cp.root_hash == merkle_tree_hash(LEAVES)
