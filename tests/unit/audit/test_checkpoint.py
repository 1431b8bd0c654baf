"""audit.checkpoint: checkpoints and cosignatures against independent and spec vectors."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    WitnessKey,
    cosign,
    cosignature_timestamp,
    open_checkpoint,
    parse_checkpoint,
    parse_decimal,
    sign_checkpoint,
    verified_cosignatures,
    verify_cosignature,
)
from audit.errors import NoteError, SignatureError
from audit.note import (
    ALG_COSIGNATURE_V1,
    Note,
    NoteSignature,
    SigningKey,
    add_signatures,
    cosignature_message,
    format_note,
    open_note,
    parse_note,
    parse_signature_line,
    parse_vkey,
    sign_note,
)
from tests.conftest import VECTORS

NOTES = VECTORS / "audit" / "notes"
NODE = json.loads((NOTES / "node-generated.json").read_text(encoding="utf-8"))
SPEC = json.loads((NOTES / "c2sp-spec-examples.json").read_text(encoding="utf-8"))
KEYS = NODE["keys"]
LOG = SigningKey(KEYS["log"]["name"], bytes.fromhex(KEYS["log"]["seed_hex"]))
W1 = WitnessKey(SigningKey(KEYS["w1"]["name"], bytes.fromhex(KEYS["w1"]["seed_hex"])))
W2 = WitnessKey(SigningKey(KEYS["w2"]["name"], bytes.fromhex(KEYS["w2"]["seed_hex"])))
ORIGIN = LOG.name
CP = NODE["checkpoint"]
ROOT = bytes.fromhex(NODE["tree"]["root_hex"])


def _line(sig: NoteSignature) -> str:
    return sig.to_line() + "\n"


# --- independent known answers (generate.mjs) ------------------------------------------------


def test_node_keys_match_ours() -> None:
    """Key texts from the independent generator: the log's private and verifier keys, and
    the witnesses' type-0x04 vkeys and Go-style private key texts."""
    assert LOG.to_text() == KEYS["log"]["skey"]
    assert LOG.verifier().to_vkey() == KEYS["log"]["vkey"]
    assert LOG.public_key.hex() == KEYS["log"]["public_key_hex"]
    for w, doc in ((W1, KEYS["w1"]), (W2, KEYS["w2"])):
        assert w.verifier().to_vkey() == doc["vkey"]
        assert w.verifier().alg == ALG_COSIGNATURE_V1
        assert w.to_text() == doc["skey"]
        assert WitnessKey.from_text(doc["skey"]) == w
        assert parse_vkey(doc["vkey"]) == w.verifier()


def test_node_checkpoint_text_and_log_signature() -> None:
    """Our checkpoint text and the log's signature line are the generator's, byte for byte."""
    cp = Checkpoint(ORIGIN, NODE["tree"]["size"], ROOT)
    assert cp.to_text() == CP["text"]
    assert parse_checkpoint(CP["text"]) == cp
    note = sign_checkpoint(cp, LOG)
    assert format_note(note) == CP["text"] + "\n" + CP["log_line"]


@pytest.mark.parametrize("case", CP["cosignatures"], ids=lambda c: c["witness"])
def test_node_cosignatures(case: dict[str, Any]) -> None:
    """Our cosignature lines are the generator's, byte for byte, and verify to their time."""
    witness = {"w1": W1, "w2": W2}[case["witness"]]
    sig = cosign(parse_checkpoint(CP["text"]), witness, case["timestamp"])
    assert _line(sig) == case["line"]
    assert verify_cosignature(CP["text"], sig, witness.verifier()) == case["timestamp"]
    assert cosignature_timestamp(sig) == case["timestamp"]


def test_node_cosigned_note_opens() -> None:
    """The generator's cosigned note opens with the log key and both witnesses count."""
    cp, note = open_checkpoint(CP["note"].encode(), LOG.verifier(), ORIGIN)
    assert (cp.origin, cp.size, cp.root_hash) == (ORIGIN, 7, ROOT)
    got = verified_cosignatures(note, [W2.verifier(), W1.verifier()])
    assert got == ((W1.verifier(), 1_700_000_000), (W2.verifier(), 1_700_000_060))
    built = add_signatures(sign_checkpoint(cp, LOG), [cosign(cp, W1, 1_700_000_000)])
    built = add_signatures(built, [cosign(cp, W2, 1_700_000_060)])
    assert format_note(built) == CP["note"]


def test_node_checkpoint_with_extension_line() -> None:
    """Extension lines are kept and are part of both the log's and the cosigned message."""
    case = NODE["checkpoint_with_extension"]
    cp, note = open_checkpoint(case["note"], LOG.verifier(), ORIGIN)
    assert cp.extensions == (case["extension"],)
    assert cp.to_text() == case["text"]
    built = add_signatures(sign_checkpoint(cp, LOG), [cosign(cp, W1, 1_700_000_000)])
    assert format_note(built) == case["note"]
    assert verified_cosignatures(note, [W1.verifier()]) == ((W1.verifier(), 1_700_000_000),)
    bare = dataclasses.replace(cp, extensions=())
    with pytest.raises(SignatureError):
        verify_cosignature(bare, note.signatures[1], W1.verifier())


# --- spec examples (format only: their keys are not published) ------------------------------


def test_spec_checkpoint_example() -> None:
    """The tlog-checkpoint example parses to its origin, size and root, and reformats."""
    case = SPEC["checkpoint"]
    note = parse_note(case["note"])
    cp = parse_checkpoint(note.text)
    assert (cp.origin, cp.size, cp.root_hash.hex()) == (
        case["origin"],
        case["size"],
        case["root_hash"],
    )
    assert cp.to_text() == note.text
    assert [s.key_id.hex() for s in note.signatures] == [s["key_id"] for s in case["signatures"]]


def test_spec_cosignature_example_timestamp() -> None:
    """The tlog-cosignature example's witness line holds the timestamp that the spec's
    signed-message example shows, big-endian, after the key id."""
    case = SPEC["cosigned_checkpoint"]
    note = parse_note(case["note"])
    sig = note.signatures[1]
    assert (sig.name, sig.key_id.hex()) == (case["witness"]["name"], case["witness"]["key_id"])
    assert cosignature_timestamp(sig) == case["witness"]["timestamp"]
    message = cosignature_message(cosignature_timestamp(sig), note.text.encode())
    assert message == case["signed_message_for_timestamp"].encode()


def test_spec_witness_exchange() -> None:
    """The tlog-witness example: a checkpoint with two log signatures plus a response of
    three cosignature lines concatenates into one well-formed note."""
    case = SPEC["witness_exchange"]
    lines = [parse_signature_line(x) for x in case["response"].splitlines()]
    note = add_signatures(parse_note(case["request_checkpoint"]), lines)
    assert [s.key_id.hex() for s in note.signatures] == case["key_ids"]
    assert parse_note(format_note(note)) == note
    assert parse_checkpoint(note.text).size == 20852163


# --- round trips ---------------------------------------------------------------------------

line_text = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)
checkpoints = st.builds(
    Checkpoint,
    origin=line_text,
    size=st.integers(0, MAX_SIZE),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line_text, max_size=3).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(checkpoints)
def test_checkpoint_text_round_trip(cp: Checkpoint) -> None:
    """parse_checkpoint inverts to_text for every valid checkpoint."""
    assert parse_checkpoint(cp.to_text()) == cp


@settings(max_examples=30, deadline=None)
@given(checkpoints, st.integers(0, 2**63 - 1))
def test_sign_open_and_cosign_round_trip(cp: Checkpoint, timestamp: int) -> None:
    """Any checkpoint signed by the log opens; any cosignature verifies to its timestamp."""
    note = sign_checkpoint(cp, LOG)
    assert open_checkpoint(format_note(note), LOG.verifier(), cp.origin) == (cp, note)
    sig = cosign(note, W1, timestamp)
    assert verify_cosignature(note, sig, W1.verifier()) == timestamp


# --- rejections ----------------------------------------------------------------------------

ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "size", ["01", "00", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1_000", "\uff11", "", "9" * 20]
)
def test_bad_sizes(size: str) -> None:
    """Sizes are ASCII decimal without sign, spaces or leading zeros, at most 2**63 - 1."""
    with pytest.raises(NoteError, match="size"):
        parse_checkpoint(f"{ORIGIN}\n{size}\n{ROOT64}\n")


def test_size_bounds() -> None:
    """2**63 - 1 is the largest size; 0 is written '0'."""
    assert parse_decimal(str(2**63 - 1)) == 2**63 - 1
    assert parse_decimal(str(2**63)) is None
    assert parse_checkpoint(f"o\n0\n{ROOT64}\n").size == 0
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, 2**63, ROOT)
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint(ORIGIN, True, ROOT)


@pytest.mark.parametrize(
    "root",
    [
        base64.b64encode(ROOT[:31]).decode(),
        base64.b64encode(ROOT + b"\x00").decode(),
        ROOT64.rstrip("="),
        ROOT64[:-2] + "J=",  # non-zero padding bits
        ROOT.hex(),
        "",
    ],
    ids=["31-bytes", "33-bytes", "no-padding", "padding-bits", "hex", "empty"],
)
def test_bad_roots(root: str) -> None:
    """The root hash is canonical base64 of exactly 32 bytes."""
    with pytest.raises(NoteError, match="root"):
        parse_checkpoint(f"{ORIGIN}\n7\n{root}\n")


@pytest.mark.parametrize(
    "text",
    [
        f"\n7\n{ROOT64}\n",
        f"{ORIGIN}\n7\n",
        f"{ORIGIN}\n7\n{ROOT64}",
        f"{ORIGIN}\n7\n{ROOT64}\n\n",
        f"{ORIGIN}\n7\n{ROOT64}\next\n\n",
        f"{ORIGIN}\r\n7\n{ROOT64}\n",
        f"{ORIGIN}\n7\r\n{ROOT64}\n",
        f"{ORIGIN}\n7\n{ROOT64}\r\n",
        f"{ORIGIN}\x00\n7\n{ROOT64}\n",
        "",
    ],
    ids=[
        "empty-origin",
        "two-lines",
        "no-final-newline",
        "empty-extension",
        "empty-last-extension",
        "cr-origin",
        "cr-size",
        "cr-root",
        "nul",
        "empty",
    ],
)
def test_malformed_checkpoint_texts(text: str) -> None:
    """Three non-empty lines at least, each ending in a newline; no control characters."""
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_checkpoint_constructor_validates() -> None:
    """Origin and extension lines are non-empty single lines; the root is 32 bytes."""
    bads: list[dict[str, Any]] = [
        {"origin": ""},
        {"origin": "a\nb"},
        {"root_hash": ROOT[:31]},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
        {"extensions": ["x"]},
    ]
    for bad in bads:
        with pytest.raises(NoteError):
            Checkpoint(**{"origin": ORIGIN, "size": 1, "root_hash": ROOT, **bad})


def test_open_checkpoint_wrong_origin() -> None:
    """A checkpoint validly signed by the log key but for another origin is refused."""
    note = sign_checkpoint(Checkpoint("example.org/other-log", 7, ROOT), LOG)
    assert open_checkpoint(note, LOG.verifier())[0].origin == "example.org/other-log"
    with pytest.raises(SignatureError, match="origin"):
        open_checkpoint(note, LOG.verifier(), ORIGIN)


def test_open_checkpoint_needs_the_log_key() -> None:
    """Signed by another key, or only cosigned, a checkpoint does not open."""
    cp = Checkpoint(ORIGIN, 7, ROOT)
    other = SigningKey(ORIGIN, bytes(32))
    with pytest.raises(SignatureError):
        open_checkpoint(sign_checkpoint(cp, other), LOG.verifier(), ORIGIN)
    only_witnesses = Note(cp.to_text(), (cosign(cp, W1, 1),))
    with pytest.raises(SignatureError):
        open_checkpoint(only_witnesses, LOG.verifier(), ORIGIN)


def test_open_checkpoint_refuses_a_tampered_checkpoint() -> None:
    """Changing the size or root of a signed checkpoint breaks the log's signature."""
    note = parse_note(CP["note"])
    for text in [note.text.replace("\n7\n", "\n8\n"), note.text.replace(ROOT64, "A" * 43 + "=")]:
        with pytest.raises(SignatureError):
            open_checkpoint(Note(text, note.signatures), LOG.verifier(), ORIGIN)


def test_open_checkpoint_refuses_a_signed_non_checkpoint() -> None:
    """A note validly signed by the log key that is not a checkpoint is malformed."""
    note = sign_note("hello\nworld\n", LOG)
    with pytest.raises(NoteError):
        open_checkpoint(note, LOG.verifier())


def test_cosignature_over_another_checkpoint_fails() -> None:
    """A witness's cosignature on one checkpoint does not verify on another."""
    cp = parse_checkpoint(CP["text"])
    sig = cosign(cp, W1, 1_700_000_000)
    for other in [dataclasses.replace(cp, size=8), dataclasses.replace(cp, origin="x.org/log")]:
        with pytest.raises(SignatureError):
            verify_cosignature(other, sig, W1.verifier())
    with pytest.raises(SignatureError, match="not by witness"):
        verify_cosignature(cp, sig, W2.verifier())


def test_cosignature_with_changed_timestamp_fails() -> None:
    """The timestamp is signed: moving it breaks the signature; past 2**63 - 1 is invalid."""
    cp = parse_checkpoint(CP["text"])
    sig = cosign(cp, W1, 1_700_000_000)
    for t in [1_700_000_001, 0, 2**63]:
        moved = NoteSignature(sig.name, sig.key_id, t.to_bytes(8, "big") + sig.signature[8:])
        with pytest.raises(SignatureError):
            verify_cosignature(cp, moved, W1.verifier())
    with pytest.raises(NoteError):
        cosignature_timestamp(NoteSignature(sig.name, sig.key_id, sig.signature[:-1]))


def test_cosign_checks_its_inputs() -> None:
    """Only checkpoints are cosigned, at timestamps 0..2**63-1."""
    with pytest.raises(NoteError):
        cosign("not\na checkpoint\n", W1, 1)
    for t in [-1, 2**63]:
        with pytest.raises(NoteError):
            cosign(parse_checkpoint(CP["text"]), W1, t)
    assert verify_cosignature(CP["text"], cosign(CP["text"], W1, 0), W1.verifier()) == 0


def test_witness_keys_must_be_cosignature_keys() -> None:
    """A type-0x01 key is not a witness key; a plain signature by the witness's own seed and
    name is an unknown key to its type-0x04 verifier."""
    note = parse_note(CP["note"])
    with pytest.raises(NoteError, match="0x04"):
        verified_cosignatures(note, [LOG.verifier()])
    with pytest.raises(NoteError, match="0x04"):
        verify_cosignature(CP["text"], note.signatures[0], LOG.verifier())
    plain = sign_note(CP["text"], W1.key)
    assert verified_cosignatures(plain, [W1.verifier()]) == ()


def test_invalid_cosignature_by_trusted_witness_fails_the_note() -> None:
    """A trusted witness's bad cosignature is an error; an unknown witness's is ignored."""
    note = parse_note(CP["note"])
    w1 = note.signatures[1]
    bad = NoteSignature(w1.name, w1.key_id, w1.signature[:-1] + bytes([w1.signature[-1] ^ 1]))
    tampered = add_signatures(note, [bad])
    with pytest.raises(SignatureError):
        verified_cosignatures(tampered, [W1.verifier(), W2.verifier()])
    assert verified_cosignatures(tampered, [W2.verifier()]) == ((W2.verifier(), 1_700_000_060),)


def test_witness_key_generate_and_open_note() -> None:
    """A generated witness key's verifier has type 0x04 and works through open_note too."""
    w = WitnessKey.generate("w.example/1")
    note = sign_checkpoint(parse_checkpoint(CP["text"]), LOG)
    note = add_signatures(note, [cosign(note, w, 5)])
    assert open_note(format_note(note), [w.verifier()])[1] == (w.verifier(),)
    assert w.key_id != w.key.key_id
