"""Signed notes (C2SP signed-note v1) and their Ed25519 keys, signature types 0x01 and 0x04.

A signed note is UTF-8 text with no control characters other than newline (U+000A)::

    <text: one or more lines, the last ending in a newline>
    <an empty line>
    — <key name> <base64(4-byte key id || signature)>
    — <key name> <base64(...)>                      (one or more lines, each ending in a newline)

The em dash is U+2014 and is followed by one space. The note text includes its final newline
but not the empty line; it may itself contain empty lines, because the text ends at the *last*
empty line of the note. Key names are non-empty and contain no Unicode space and no ``+``.
Base64 is RFC 4648 section 4 (standard alphabet, padded).

Keys. A key is named, and identified within a note by its name and its key id::

    key id = SHA-256(key name || 0x0A || signature type || public key)[:4]

- A verifier key ("vkey") is ``<name>+<key id as 8 hex digits>+<base64(type || public key)>``.
- A private key text is Go's (golang.org/x/mod/sumdb/note)
  ``PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte Ed25519 seed)>``; anyone holding it
  can sign, so it belongs in a secret file, never in configuration or logs.

Signature types implemented (signed-note's registry):

- ``0x01`` Ed25519 (RFC 8032) over the note text.
- ``0x04`` timestamped Ed25519 cosignature (C2SP tlog-cosignature, ``cosignature/v1``): the
  signature bytes are an 8-byte big-endian POSIX timestamp ``T`` (at most 2**63 - 1)
  followed by Ed25519 over ``"cosignature/v1\\ntime <T>\\n" || note text``. Key ids use type
  0x04. Cosigning checkpoints lives in ``audit.checkpoint``; verifying is here, so that one
  ``open_note`` call can check log and witness keys together.

Verification (``verified_signatures``, ``open_note``) follows the spec: a signature line whose
(name, key id) matches no known key is ignored; a known key's signature that fails to verify
is an error (``SignatureError``), for the whole note; a note with no valid signature by a
known key is rejected by ``open_note``.

Stricter than Go's sumdb/note, in ways a Go signer never produces: base64 must be canonical
(Go ignores non-zero padding bits and skips newlines); key ids in vkeys are lowercase hex; two
signature lines by one key (same name and key id) are malformed, where Go keeps the first and
drops the rest without verifying them; and two *different* keys with the same name and key id
among the verifiers are an error. At most ``MAX_SIGNATURES`` (100, Go's limit; the spec asks
for at least 16) signature lines are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import NoteError, SignatureError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "COSIGNATURE_SIZE",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "SIGNATURE_PREFIX",
    "Note",
    "NoteSignature",
    "SigningKey",
    "VerifierKey",
    "add_signatures",
    "b64decode_canonical",
    "compute_key_id",
    "cosignature_message",
    "format_note",
    "open_note",
    "parse_note",
    "parse_signature_line",
    "parse_vkey",
    "sign_note",
    "verified_signatures",
]

ALG_ED25519: Final = 0x01
ALG_COSIGNATURE_V1: Final = 0x04
KEY_ID_SIZE: Final = 4
ED25519_SIZE: Final = 32
ED25519_SIGNATURE_SIZE: Final = 64
TIMESTAMP_SIZE: Final = 8
COSIGNATURE_SIZE: Final = TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE
MAX_SIGNATURES: Final = 100
MAX_TIMESTAMP: Final = 2**63 - 1
SIGNATURE_PREFIX: Final = "\u2014 "
"""An em dash (U+2014) and a space: how every signature line starts."""

_ALGS: Final = frozenset({ALG_ED25519, ALG_COSIGNATURE_V1})
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


# --- small pure helpers ------------------------------------------------------------------


def b64decode_canonical(text: str) -> bytes | None:
    """The bytes whose standard padded base64 is exactly ``text``, or ``None``.

    Refuses characters outside the alphabet, missing or extra padding and non-zero padding
    bits, so each byte string has one accepted spelling.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    return raw if _b64(raw) == text else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8 (it holds a lone surrogate)") from None


def _check_no_controls(text: str, what: str) -> None:
    if _CONTROL.search(text):
        raise NoteError(f"{what} contains a control character other than newline")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise NoteError("a key name must be a non-empty string")
    if "+" in name or any(c.isspace() or c < " " for c in name):
        raise NoteError(f"key name {name!r} contains a space, a control character or '+'")
    _utf8(name, "key name")
    return name


def _check_bytes(what: str, value: object, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise NoteError(f"{what} must be {size} bytes")


def _check_alg(alg: object) -> None:
    if isinstance(alg, bool) or not isinstance(alg, int) or alg not in _ALGS:
        raise NoteError(f"unsupported signature type {alg!r} (only 0x01 and 0x04)")


def compute_key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || alg || public_key)[:4], the id of a key within a note."""
    digest = hashlib.sha256(_utf8(name, "key name") + b"\n" + bytes([alg]) + public_key)
    return digest.digest()[:KEY_ID_SIZE]


def cosignature_message(timestamp: int, text: bytes) -> bytes:
    """What a type-0x04 cosignature signs: ``cosignature/v1\\ntime <timestamp>\\n`` || text."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key that can check one key's signatures: ``name``, 4-byte ``key_id``,
    signature type ``alg`` (0x01 or 0x04) and the 32-byte Ed25519 ``public_key``.

    ``key_id`` must be the one computed from the other three (``compute_key_id``), as Go requires;
    build one with ``from_public_key`` or ``parse_vkey``.
    """

    name: str
    key_id: bytes
    alg: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_alg(self.alg)
        _check_bytes("an Ed25519 public key", self.public_key, ED25519_SIZE)
        _check_bytes("a key id", self.key_id, KEY_ID_SIZE)
        if self.key_id != compute_key_id(self.name, self.alg, self.public_key):
            raise NoteError(f"key id {self.key_id.hex()} does not match key {self.name!r}")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes, alg: int = ALG_ED25519) -> VerifierKey:
        """The verifier for ``public_key`` under ``name`` and signature type ``alg``."""
        _check_name(name)
        _check_alg(alg)
        _check_bytes("an Ed25519 public key", public_key, ED25519_SIZE)
        return cls(name, compute_key_id(name, alg, public_key), alg, public_key)

    def to_vkey(self) -> str:
        """``<name>+<key id hex>+<base64(alg || public key)>``."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([self.alg]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key id) is this key's over ``message``.

        For type 0x04, ``signature`` is timestamp || Ed25519 signature and the Ed25519
        message is ``cosignature_message(timestamp, message)``. Never raises.
        """
        if self.alg == ALG_COSIGNATURE_V1:
            if len(signature) != COSIGNATURE_SIZE:
                return False
            timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
            if timestamp > MAX_TIMESTAMP:
                return False
            message = cosignature_message(timestamp, message)
            signature = signature[TIMESTAMP_SIZE:]
        return _ed25519_verify(self.public_key, message, signature)


def parse_vkey(text: str) -> VerifierKey:
    """The verifier key written as ``<name>+<key id hex>+<base64(alg || public key)>``.

    Raises ``NoteError`` for anything else: another shape, uppercase or short hex, bad or
    non-canonical base64, a signature type other than 0x01 and 0x04, a public key that is
    not 32 bytes, or a key id that does not match the name and key.
    """
    name, plus1, rest = text.partition("+")
    hex_id, plus2, key64 = rest.partition("+")
    if not plus1 or not plus2 or not _KEY_ID_HEX.fullmatch(hex_id):
        raise NoteError("a verifier key is <name>+<8 lowercase hex digits>+<base64 key>")
    raw = b64decode_canonical(key64)
    if raw is None or len(raw) != 1 + ED25519_SIZE:
        raise NoteError("a verifier key's key is base64 of a type byte and 32 bytes")
    key = VerifierKey.from_public_key(name, raw[1:], raw[0])
    if key.key_id.hex() != hex_id:
        raise NoteError(f"verifier key {name!r}: key id {hex_id} does not match the key")
    return key


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A named Ed25519 private key that signs notes with type 0x01.

    Holds the 32-byte RFC 8032 ``seed`` (the private key, left out of ``repr``). Make one
    with ``generate``, from a seed, or with ``from_text`` from Go's private key text.
    """

    name: str
    seed: bytes = field(repr=False)
    _private: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    public_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_bytes("an Ed25519 seed", self.seed, ED25519_SIZE)
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        object.__setattr__(self, "_private", private)
        object.__setattr__(self, "public_key", private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A new random key named ``name`` (the operating system's CSPRNG)."""
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_text(cls, text: str) -> SigningKey:
        """The key in Go's ``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>``.

        The key id must match the key derived from the seed. Error messages never quote
        ``text``, which is secret.
        """
        if not text.startswith(_PRIVATE_PREFIX):
            raise NoteError("a private key text starts with PRIVATE+KEY+")
        name, plus1, rest = text[len(_PRIVATE_PREFIX) :].partition("+")
        hex_id, plus2, key64 = rest.partition("+")
        if not plus1 or not plus2 or not _KEY_ID_HEX.fullmatch(hex_id):
            raise NoteError("a private key text is PRIVATE+KEY+<name>+<key id>+<base64 key>")
        raw = b64decode_canonical(key64)
        if raw is None or len(raw) != 1 + ED25519_SIZE or raw[0] != ALG_ED25519:
            raise NoteError("a private key is base64 of 0x01 and a 32-byte Ed25519 seed")
        key = cls(name, raw[1:])
        if key.key_id.hex() != hex_id:
            raise NoteError("the private key text's key id does not match its key")
        return key

    @property
    def key_id(self) -> bytes:
        """The type-0x01 key id of this key."""
        return compute_key_id(self.name, ALG_ED25519, self.public_key)

    def to_text(self) -> str:
        """Go's private key text; the inverse of ``from_text``. Secret."""
        seed64 = _b64(bytes([ALG_ED25519]) + self.seed)
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id.hex()}+{seed64}"

    def verifier(self) -> VerifierKey:
        """The type-0x01 verifier key for this key."""
        return VerifierKey.from_public_key(self.name, self.public_key, ALG_ED25519)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self._private.sign(message)


# --- notes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key ``name``, 4-byte ``key_id`` and ``signature``, the bytes
    after the key id (for type 0x04, timestamp || Ed25519 signature)."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_bytes("a key id", self.key_id, KEY_ID_SIZE)
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteError("a signature must be non-empty bytes")

    def to_line(self) -> str:
        """``— <name> <base64(key id || signature)>``, without the newline."""
        return f"{SIGNATURE_PREFIX}{self.name} {_b64(self.key_id + self.signature)}"


def parse_signature_line(line: str) -> NoteSignature:
    """The signature on one line (without its newline); ``NoteError`` if malformed."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("a signature line starts with an em dash (U+2014) and a space")
    name, space, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    raw = b64decode_canonical(sig64) if space else None
    if raw is None or len(raw) <= KEY_ID_SIZE:
        raise NoteError("a signature line is '— <name> <base64 of key id and signature>'")
    return NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def _check_text(text: object) -> str:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("a note's text must be a string ending in a newline")
    _utf8(text, "note text")
    _check_no_controls(text, "note text")
    return text


@dataclass(frozen=True, slots=True)
class Note:
    """A note: its ``text`` (ending in a newline) and one or more ``signatures``, at most
    ``MAX_SIGNATURES`` and at most one per key (name and key id)."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text)
        sigs: object = self.signatures
        if not isinstance(sigs, tuple) or not all(isinstance(s, NoteSignature) for s in sigs):
            raise NoteError("a note's signatures must be a tuple of NoteSignature")
        if not 1 <= len(sigs) <= MAX_SIGNATURES:
            raise NoteError(f"a note has 1 to {MAX_SIGNATURES} signatures, not {len(sigs)}")
        keys = {(s.name, s.key_id) for s in self.signatures}
        if len(keys) != len(sigs):
            raise NoteError("a note has two signature lines by the same key")


def _as_text(data: bytes | str) -> str:
    if isinstance(data, str):
        _utf8(data, "note")
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a note must be valid UTF-8") from None


def parse_note(data: bytes | str) -> Note:
    """The note encoded as ``data`` (see the module docstring); ``NoteError`` otherwise.

    Parsing checks only the format; no signature is verified (see ``open_note``).
    """
    text = _as_text(data)
    _check_no_controls(text, "note")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("a note has no empty line before its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a note must end with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note has more than {MAX_SIGNATURES} signatures")
    return Note(body, tuple(parse_signature_line(line) for line in lines))


def format_note(note: Note) -> str:
    """The encoding of ``note``: text, an empty line, one line per signature."""
    return note.text + "\n" + "".join(sig.to_line() + "\n" for sig in note.signatures)


def sign_note(text: str, key: SigningKey) -> Note:
    """``text`` signed by ``key`` (type 0x01)."""
    message = _utf8(_check_text(text), "note text")
    return Note(text, (NoteSignature(key.name, key.key_id, key.sign(message)),))


def add_signatures(note: Note, signatures: Iterable[NoteSignature]) -> Note:
    """``note`` with ``signatures`` appended, after its own. As in Go's ``note.Sign``, a new
    signature replaces an existing one by the same key (name and key id). Nothing is
    verified here."""
    new = tuple(signatures)
    replaced = {(s.name, s.key_id) for s in new}
    kept = tuple(s for s in note.signatures if (s.name, s.key_id) not in replaced)
    return Note(note.text, kept + new)


def _index(verifiers: Iterable[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    index: dict[tuple[str, bytes], VerifierKey] = {}
    for v in verifiers:
        if not isinstance(v, VerifierKey):
            raise NoteError(f"a verifier must be a VerifierKey, not {type(v).__name__}")
        seen = index.setdefault((v.name, v.key_id), v)
        if seen != v:
            raise SignatureError(f"ambiguous key {v.name}+{v.key_id.hex()}: two public keys")
    return index


def verified_signatures(note: Note, verifiers: Iterable[VerifierKey]) -> tuple[VerifierKey, ...]:
    """The known keys (``verifiers``) whose signatures on ``note`` verify, in note order.

    Signature lines by unknown keys are ignored. A known key's signature that does not
    verify raises ``SignatureError``; so do two different verifiers with one name and key
    id. An empty result means no known key signed; ``open_note`` rejects that.
    """
    index = _index(verifiers)
    message = _utf8(note.text, "note text")
    verified = []
    for sig in note.signatures:
        known = index.get((sig.name, sig.key_id))
        if known is None:
            continue
        if not known.verify(message, sig.signature):
            raise SignatureError(f"invalid signature for key {sig.name}+{sig.key_id.hex()}")
        verified.append(known)
    return tuple(verified)


def open_note(
    data: bytes | str | Note, verifiers: Iterable[VerifierKey]
) -> tuple[Note, tuple[VerifierKey, ...]]:
    """Parse ``data`` (unless it is a ``Note`` already) and verify it against ``verifiers``.

    Returns the note and the known keys that signed it (at least one). Raises ``NoteError``
    if malformed, ``SignatureError`` if a known key's signature fails or no known key signed.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    verified = verified_signatures(note, verifiers)
    if not verified:
        raise SignatureError("the note has no valid signature by a known key")
    return note, verified
