"""audit.note: signed notes and keys against Go's sumdb/note vectors, round trips, rejections."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import AuditError, NoteError, SignatureError
from audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_SIGNATURES,
    SIGNATURE_PREFIX,
    Note,
    NoteSignature,
    SigningKey,
    VerifierKey,
    add_signatures,
    b64decode_canonical,
    compute_key_id,
    cosignature_message,
    format_note,
    open_note,
    parse_note,
    parse_signature_line,
    parse_vkey,
    sign_note,
    verified_signatures,
)
from tests.conftest import VECTORS

NOTES = VECTORS / "audit" / "notes"
GO = json.loads((NOTES / "go-sumdb-note.json").read_text(encoding="utf-8"))
SPEC = json.loads((NOTES / "c2sp-spec-examples.json").read_text(encoding="utf-8"))
PETER = parse_vkey(GO["peter"]["vkey"])
ENOCH = parse_vkey(GO["enoch"]["vkey"])
SEED = bytes(range(32))


def _go_insert(line: str, at: int, insert: str) -> str:
    """Go's ``s[:at] + insert + s[at:]``, which slices bytes, not characters."""
    raw = line.encode("utf-8")
    return (raw[:at] + insert.encode("utf-8") + raw[at:]).decode("utf-8")


# --- Go interoperability ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["peter", "enoch"])
def test_go_verifier_keys_parse_and_reformat(who: str) -> None:
    """Go's vkeys parse to the published name and key id, type 0x01, and reformat exactly."""
    key = parse_vkey(GO[who]["vkey"])
    assert key.name == GO[who]["name"]
    assert key.key_id.hex() == GO[who]["key_id"]
    assert key.alg == ALG_ED25519
    assert key.to_vkey() == GO[who]["vkey"]
    assert compute_key_id(key.name, key.alg, key.public_key) == key.key_id


def test_go_private_key_text_is_ours() -> None:
    """Go's private key text parses, our text for the same seed is identical, and its
    verifier key is Go's vkey."""
    key = SigningKey.from_text(GO["peter"]["skey"])
    assert key.to_text() == GO["peter"]["skey"]
    assert SigningKey(key.name, key.seed).to_text() == GO["peter"]["skey"]
    assert key.verifier() == PETER
    assert key.verifier().to_vkey() == GO["peter"]["vkey"]


def test_go_sign_produces_the_same_note() -> None:
    """Signing Go's text with Go's key gives Go's signed note byte for byte."""
    key = SigningKey.from_text(GO["peter"]["skey"])
    assert format_note(sign_note(GO["text"], key)) == GO["signed_by_peter"]


def test_go_sign_replaces_a_signature_by_the_same_key() -> None:
    """As in Go's TestSign, a new signature replaces an existing one by the same key."""
    key = SigningKey.from_text(GO["peter"]["skey"])
    stale = Note(GO["text"], (NoteSignature(key.name, key.key_id, b"BADSIGN"),))
    fresh = sign_note(GO["text"], key).signatures
    assert format_note(add_signatures(stale, fresh)) == GO["signed_by_peter"]


def test_go_open_with_one_known_key() -> None:
    """Only Peter is known: his signature verifies, Enoch's is ignored."""
    note, verified = open_note(GO["signed_by_both"].encode(), [PETER])
    assert note.text == GO["text"]
    assert verified == (PETER,)
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    assert note.signatures[1].key_id.hex() == GO["enoch"]["key_id"]


def test_go_open_with_both_keys() -> None:
    """Both keys known: both verify, in note order."""
    _, verified = open_note(GO["signed_by_both"], [ENOCH, PETER])
    assert verified == (PETER, ENOCH)


def test_go_open_with_no_known_key_fails() -> None:
    """A note with no signature by a known key is rejected (parsing alone succeeds)."""
    assert len(parse_note(GO["signed_by_both"]).signatures) == 2
    with pytest.raises(SignatureError, match="no valid signature"):
        open_note(GO["signed_by_both"], [])


@pytest.mark.parametrize("case", GO["bad_vkeys"], ids=lambda c: c["name"])
def test_go_bad_verifier_keys(case: dict[str, str]) -> None:
    """Go's refused vkeys (a key of the wrong length, an unknown type) are refused."""
    with pytest.raises(NoteError):
        parse_vkey(case["vkey"])


@pytest.mark.parametrize("text", [GO["peter"]["vkey"], GO["peter"]["skey"]], ids=["vkey", "skey"])
def test_go_key_text_manglings(text: str) -> None:
    """As in Go's TestNewVerifier and TestNewSigner: every proper substring and every
    one-character increment of a key text is refused."""
    parse = parse_vkey if text == GO["peter"]["vkey"] else SigningKey.from_text
    bad = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)}
    bad |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    bad.discard(text)
    for mangled in sorted(bad):
        with pytest.raises(NoteError):
            parse(mangled)


@pytest.mark.parametrize("case", GO["malformed_notes"], ids=lambda c: c["name"])
def test_go_malformed_notes(case: dict[str, str]) -> None:
    """Go's malformed notes are malformed here too."""
    data = bytes.fromhex(case["note_hex"]) if "note_hex" in case else case["note"].encode()
    with pytest.raises(NoteError):
        open_note(data, [PETER])


def test_go_invalid_signature_by_known_key() -> None:
    """A known key's corrupted signature rejects the whole note (Go's invalid-signature case)."""
    line = _go_insert(GO["peter"]["sig_line"], 60, "ABCD")
    with pytest.raises(SignatureError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(GO["text"] + "\n" + line, [PETER])


def test_invalid_signature_by_known_key_fails_even_if_another_verifies() -> None:
    """Enoch's corrupted line fails the note although Peter's is valid."""
    enoch = _go_insert(GO["enoch"]["sig_line"], 60, "ABCD")
    data = GO["text"] + "\n" + GO["peter"]["sig_line"] + enoch
    assert open_note(data, [PETER])[1] == (PETER,)  # Enoch unknown: ignored
    with pytest.raises(SignatureError):
        open_note(data, [PETER, ENOCH])


def test_duplicate_signature_lines_are_malformed() -> None:
    """Two lines by one key are refused (Go keeps the first and drops the rest unverified)."""
    line = GO["peter"]["sig_line"]
    with pytest.raises(NoteError, match="same key"):
        parse_note(GO["text"] + "\n" + line + line)
    other = parse_signature_line(line.rstrip("\n"))
    other = NoteSignature(other.name, other.key_id, b"\x00" * 64)
    with pytest.raises(NoteError, match="same key"):
        parse_note(GO["text"] + "\n" + line + other.to_line() + "\n")


def test_too_many_signatures() -> None:
    """At most MAX_SIGNATURES signature lines, like Go's limit of 100."""
    lines = [NoteSignature(f"k{i}", b"\x00\x00\x00\x01", b"s").to_line() for i in range(101)]
    with pytest.raises(NoteError, match="more than"):
        parse_note(GO["text"] + "\n" + "\n".join(lines) + "\n")
    ok = parse_note(GO["text"] + "\n" + "\n".join(lines[:MAX_SIGNATURES]) + "\n")
    assert len(ok.signatures) == MAX_SIGNATURES


# --- the signed-note spec's example ------------------------------------------------------


def test_spec_example_parses() -> None:
    """The signed-note spec's example: text up to the last empty line, one signature."""
    case = SPEC["signed_note"]
    note = parse_note(case["note"])
    assert note.text == case["text"]
    want = [(s["name"], s["key_id"], s["signature_bytes"]) for s in case["signatures"]]
    assert [(s.name, s.key_id.hex(), len(s.signature)) for s in note.signatures] == want
    assert format_note(note) == case["note"]


# --- round trips and properties ------------------------------------------------------------

lines = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30)
texts = st.lists(lines, min_size=1, max_size=5).map(lambda ls: "\n".join(ls) + "\n")
names = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="+"),
    min_size=1,
    max_size=20,
).filter(lambda s: not any(c.isspace() for c in s))


@settings(max_examples=100, deadline=None)
@given(texts, names)
def test_sign_format_parse_open_round_trip(text: str, name: str) -> None:
    """Any text signed by any validly named key formats, parses back equal and verifies."""
    key = SigningKey(name, SEED)
    note = sign_note(text, key)
    encoded = format_note(note)
    assert parse_note(encoded) == note
    assert parse_note(encoded.encode("utf-8")) == note
    assert open_note(encoded, [key.verifier()]) == (note, (key.verifier(),))
    assert parse_vkey(key.verifier().to_vkey()) == key.verifier()
    assert SigningKey.from_text(key.to_text()) == key


SIGNED_BY_BOTH = GO["signed_by_both"].encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_change_fails(data: st.DataObject) -> None:
    """Changing any one byte of a note signed by two required keys either raises or leaves
    at least one of them without a verified signature (a changed name or key id makes a
    line unknown, and unknown lines are ignored)."""
    i = data.draw(st.integers(0, len(SIGNED_BY_BOTH) - 1), label="position")
    b = data.draw(st.integers(0, 255).filter(lambda v: v != SIGNED_BY_BOTH[i]), label="byte")
    mutated = SIGNED_BY_BOTH[:i] + bytes([b]) + SIGNED_BY_BOTH[i + 1 :]
    try:
        _, verified = open_note(mutated, [PETER, ENOCH])
    except AuditError:
        return
    assert verified != (PETER, ENOCH)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_byte_change_to_a_singly_signed_note_raises(data: st.DataObject) -> None:
    """With one signature, by the only required key, every one-byte change raises."""
    signed = GO["signed_by_peter"].encode("utf-8")
    i = data.draw(st.integers(0, len(signed) - 1), label="position")
    b = data.draw(st.integers(0, 255).filter(lambda v: v != signed[i]), label="byte")
    with pytest.raises(AuditError):
        open_note(signed[:i] + bytes([b]) + signed[i + 1 :], [PETER])


# --- rejections ----------------------------------------------------------------------------

PETER_B64 = GO["peter"]["sig_line"].split(" ")[2].rstrip("\n")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(GO["text"].replace("\n", "\r\n") + "\n" + GO["peter"]["sig_line"], id="crlf"),
        pytest.param(GO["signed_by_peter"].replace("\n", "\r\n"), id="crlf-everywhere"),
        pytest.param(GO["text"] + GO["peter"]["sig_line"], id="no-empty-line"),
        pytest.param(GO["text"] + "\n" + "- PeterNeumann " + PETER_B64 + "\n", id="hyphen"),
        pytest.param(GO["text"] + "\n" + "\u2014PeterNeumann " + PETER_B64 + "\n", id="no-space"),
        pytest.param(GO["text"] + "\n— PeterNeumann  " + PETER_B64 + "\n", id="two-spaces"),
        pytest.param(GO["text"] + "\n— PeterNeumann " + PETER_B64[:-1] + "\n", id="no-padding"),
        pytest.param(GO["text"] + "\n— PeterNeumann " + PETER_B64 + "=\n", id="extra-padding"),
        pytest.param(GO["text"] + "\n— PeterNeumann " + PETER_B64[:-2] + "N=\n", id="padding-bits"),
        pytest.param(GO["text"] + "\n— PeterNeumann " + "x08g*" + PETER_B64[5:] + "\n", id="b64"),
        pytest.param(GO["text"] + "\n— PeterNeumann AAAAAA==\n", id="key-id-only"),
        pytest.param(GO["text"] + "\n— Peter+Neumann " + PETER_B64 + "\n", id="plus-in-name"),
        pytest.param(GO["text"] + "\n—  " + PETER_B64 + "\n", id="empty-name"),
        pytest.param(GO["text"] + "\n— Peter\u3000N " + PETER_B64 + "\n", id="ideographic-space"),
        pytest.param(GO["signed_by_peter"] + "\n", id="trailing-empty-line"),
        pytest.param("\n" + GO["peter"]["sig_line"], id="empty-text"),
        pytest.param(GO["text"] + "\t\n\n" + GO["peter"]["sig_line"], id="tab"),
        pytest.param(GO["signed_by_peter"][:-1] + "\x00\n", id="nul"),
        pytest.param(GO["signed_by_peter"].encode()[:-3] + b"\xc0\xaf\n", id="overlong-utf8"),
        pytest.param(GO["text"] + "\ud800\n\n" + GO["peter"]["sig_line"], id="lone-surrogate"),
    ],
)
def test_malformed_notes_are_refused(data: str | bytes) -> None:
    """Each malformed encoding raises NoteError before any signature is checked."""
    with pytest.raises(NoteError):
        parse_note(data)


def test_empty_text_is_allowed_when_it_is_one_newline() -> None:
    """The text may be a single newline (one empty line): the note then starts with two."""
    key = SigningKey("k", SEED)
    note = sign_note("\n", key)
    assert format_note(note).startswith("\n\n\u2014 k ")
    assert open_note(format_note(note), [key.verifier()])[0] == note


def test_text_with_empty_lines_splits_at_the_last() -> None:
    """A text may hold empty lines; the signatures start after the last empty line."""
    key = SigningKey("k", SEED)
    text = "a\n\nb\n\n"
    encoded = format_note(sign_note(text, key))
    assert encoded.startswith("a\n\nb\n\n\n")
    assert open_note(encoded, [key.verifier()])[0].text == text


def test_signature_by_unknown_key_is_ignored() -> None:
    """Lines by keys the verifier does not know (other name, or same name with another key
    id) are ignored, even if their bytes are garbage."""
    unknown = NoteSignature("Stranger", b"\x01\x02\x03\x04", b"garbage").to_line()
    same_name = NoteSignature("PeterNeumann", b"\xc7\x4f\x20\xa4", b"garbage").to_line()
    data = GO["signed_by_peter"] + unknown + "\n" + same_name + "\n"
    note, verified = open_note(data, [PETER])
    assert verified == (PETER,)
    assert len(note.signatures) == 3


def test_wrong_key_id_is_an_unknown_key() -> None:
    """Peter's signature under another key id does not count: the note has no known signer."""
    sig = parse_note(GO["signed_by_peter"]).signatures[0]
    moved = NoteSignature(sig.name, b"\xc7\x4f\x20\xa4", sig.signature)
    with pytest.raises(SignatureError, match="no valid signature"):
        open_note(Note(GO["text"], (moved,)), [PETER])


def test_missing_required_signature() -> None:
    """A note signed only by Enoch does not open for a verifier who requires Peter."""
    data = GO["text"] + "\n" + GO["enoch"]["sig_line"]
    with pytest.raises(SignatureError):
        open_note(data, [PETER])
    assert verified_signatures(parse_note(data), [PETER]) == ()


def test_ambiguous_verifiers_are_refused() -> None:
    """Two different keys with one name and key id are refused; the same key twice is not."""
    twin = VerifierKey.__new__(VerifierKey)
    object.__setattr__(twin, "name", PETER.name)
    object.__setattr__(twin, "key_id", PETER.key_id)
    object.__setattr__(twin, "alg", PETER.alg)
    object.__setattr__(twin, "public_key", ENOCH.public_key)
    with pytest.raises(SignatureError, match="ambiguous"):
        verified_signatures(parse_note(GO["signed_by_peter"]), [PETER, twin])
    assert verified_signatures(parse_note(GO["signed_by_peter"]), [PETER, PETER]) == (PETER,)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2028b", "a\x01b"])
def test_invalid_key_names(name: str) -> None:
    """Key names are non-empty, with no Unicode space, control character or '+'."""
    with pytest.raises(NoteError):
        SigningKey(name, SEED)
    with pytest.raises(NoteError):
        NoteSignature(name, b"\x00" * 4, b"s")


def test_verifier_key_checks_its_key_id_and_type() -> None:
    """A VerifierKey's key id must match; only types 0x01 and 0x04 are supported."""
    with pytest.raises(NoteError, match="does not match"):
        VerifierKey(PETER.name, ENOCH.key_id, PETER.alg, PETER.public_key)
    with pytest.raises(NoteError, match="unsupported"):
        VerifierKey.from_public_key("k", PETER.public_key, 0x02)
    with pytest.raises(NoteError):
        VerifierKey.from_public_key("k", PETER.public_key[:31])
    upper = GO["peter"]["vkey"].replace("c74f20a3", "C74F20A3")
    with pytest.raises(NoteError):
        parse_vkey(upper)


def test_signing_key_hides_its_seed() -> None:
    """The seed is not in repr; equal seeds and names make equal keys."""
    key = SigningKey("k", SEED)
    assert SEED.hex() not in repr(key) and repr(SEED) not in repr(key)
    assert key == SigningKey("k", bytes(range(32)))
    assert key != SigningKey("k2", SEED)


def test_generated_keys_sign_and_verify() -> None:
    """A generated key's signature verifies under its verifier and not under another's."""
    a, b = SigningKey.generate("a.example/log"), SigningKey.generate("b.example/log")
    sig = a.sign(b"hi\n")
    assert a.verifier().verify(b"hi\n", sig)
    assert not a.verifier().verify(b"hi!\n", sig)
    assert not b.verifier().verify(b"hi\n", sig)
    assert not a.verifier().verify(b"hi\n", sig[:-1])


def test_note_constructor_validates() -> None:
    """A Note needs text ending in a newline without control characters, and 1..100
    signatures."""
    sig = NoteSignature("k", b"\x00" * 4, b"s")
    for bad_text in ["no newline", "cr\r\n", ""]:
        with pytest.raises(NoteError):
            Note(bad_text, (sig,))
    with pytest.raises(NoteError):
        Note("t\n", ())
    with pytest.raises(NoteError):
        Note("t\n", [sig])  # type: ignore[arg-type]
    with pytest.raises(NoteError):
        sign_note("no newline", SigningKey("k", SEED))


def test_cosignature_type_verifies_through_open_note() -> None:
    """A type-0x04 verifier checks timestamp || Ed25519(cosignature/v1 message), so log and
    witness keys can be checked in one open_note call."""
    log, witness = SigningKey("log.example", SEED), SigningKey("w.example", bytes(32))
    note = sign_note("log.example\n1\n" + "A" * 43 + "=\n", log)
    vk = VerifierKey.from_public_key(witness.name, witness.public_key, ALG_COSIGNATURE_V1)
    t = 1_700_000_000
    signed = witness.sign(cosignature_message(t, note.text.encode()))
    cosig = NoteSignature(vk.name, vk.key_id, t.to_bytes(8, "big") + signed)
    both = add_signatures(note, [cosig])
    assert open_note(format_note(both), [log.verifier(), vk])[1] == (log.verifier(), vk)
    later = NoteSignature(vk.name, vk.key_id, (t + 1).to_bytes(8, "big") + signed)
    with pytest.raises(SignatureError):
        open_note(add_signatures(note, [later]), [log.verifier(), vk])


@pytest.mark.parametrize(
    ("text", "want"),
    [("AAAA", b"\x00\x00\x00"), ("AA==", b"\x00"), ("", b""), ("AB==", None), ("AA=", None)],
)
def test_b64decode_canonical(text: str, want: Any) -> None:
    """Only the canonical padded spelling decodes."""
    assert b64decode_canonical(text) == want


def test_signature_prefix_is_an_em_dash() -> None:
    """Signature lines start with U+2014 and a space, three UTF-8 bytes and one."""
    assert SIGNATURE_PREFIX.encode("utf-8") == b"\xe2\x80\x94 "
