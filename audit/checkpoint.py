"""Checkpoints (C2SP tlog-checkpoint v1) and Ed25519 witness cosignatures (C2SP
tlog-cosignature, ``cosignature/v1``, signature type 0x04).

A checkpoint is the text of a signed note (``audit.note``) naming one tree head of a log::

    <origin>                           the log's identity, e.g. example.org/audit-log
    <tree size>                        ASCII decimal, no leading zeros ("0" when empty)
    <root hash>                        base64 of the 32-byte RFC 6962 root at that size
    <extension lines>                  zero or more, each non-empty, opaque

Every line ends in a newline. Sizes are at most 2**63 - 1 (Go's int64). The origin must be
non-empty; the spec only recommends a schema-less URL without spaces or ``+``, so that is not
enforced. The log signs the text with its note key (``sign_checkpoint``); by convention the
key is named after the origin, which is recommended, not checked. Parsing is strict:
``parse_checkpoint(text).to_text() == text`` for every accepted ``text``.

A cosignature is a note signature by a witness, added to the log's checkpoint note. Its key
id uses type 0x04, and its signature bytes are an 8-byte big-endian POSIX timestamp ``T``
followed by Ed25519 over::

    cosignature/v1
    time <T>
    <the whole checkpoint text, extension lines included>

It states that at time ``T`` this was the largest consistent tree head of the origin the
witness had seen. A ``WitnessKey`` only cosigns; its private key text is Go's ordinary
``PRIVATE+KEY+...`` (type 0x01, as transparency-dev/witness reads it), and its verifier key
has type 0x04. A witness must not use the same Ed25519 key for anything else.

Not implemented: ML-DSA-44 cosignatures (type 0x06) and subtree cosignatures, and rejecting
cosignatures with future timestamps (the spec allows it; pass a clock to do it here).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from audit.errors import NoteError, SignatureError
from audit.merkle import HASH_SIZE
from audit.note import (
    ALG_COSIGNATURE_V1,
    COSIGNATURE_SIZE,
    MAX_TIMESTAMP,
    Note,
    NoteSignature,
    SigningKey,
    VerifierKey,
    b64decode_canonical,
    compute_key_id,
    cosignature_message,
    open_note,
    parse_note,
    sign_note,
    verified_signatures,
)

__all__ = [
    "MAX_SIZE",
    "Checkpoint",
    "WitnessKey",
    "cosign",
    "cosignature_timestamp",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_decimal",
    "sign_checkpoint",
    "verified_cosignatures",
    "verify_cosignature",
]

MAX_SIZE: Final = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL = re.compile(r"[\x00-\x1f]")


def parse_decimal(text: str) -> int | None:
    """The integer 0..2**63-1 written as ``text`` in ASCII decimal without leading zeros
    (``"0"`` for zero), or ``None``. Checkpoint sizes, proof indexes and cosignature times
    are all written this way."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_SIZE else None


def _check_line(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise NoteError(f"a checkpoint's {what} must be a non-empty string")
    if _CONTROL.search(value):
        raise NoteError(f"a checkpoint's {what} contains a newline or control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"a checkpoint's {what} is not valid UTF-8") from None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed tree head: ``origin``, tree ``size``, 32-byte ``root_hash`` and opaque
    ``extensions`` (lines, without their newlines). Validated on construction."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        size: object = self.size
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
            raise NoteError(f"a checkpoint's size must be an int in 0..2**63-1, not {size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"a checkpoint's root hash must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise NoteError("a checkpoint's extensions must be a tuple of lines")
        for line in self.extensions:
            _check_line("extension line", line)

    def to_text(self) -> str:
        """The checkpoint's note text: origin, size, root hash and extensions, one a line."""
        root64 = base64.b64encode(self.root_hash).decode("ascii")
        lines = (self.origin, str(self.size), root64, *self.extensions)
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint whose text is exactly ``text``; ``NoteError`` otherwise."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteError("a checkpoint is text ending in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has at least three lines: origin, size and root hash")
    origin, size_text, root64, *extensions = lines
    size = parse_decimal(size_text)
    if size is None:
        raise NoteError("a checkpoint's size is decimal 0..2**63-1 without leading zeros")
    root = b64decode_canonical(root64)
    if root is None or len(root) != HASH_SIZE:
        raise NoteError(f"a checkpoint's root hash is canonical base64 of {HASH_SIZE} bytes")
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey) -> Note:
    """The checkpoint note signed by the log's ``key``."""
    return sign_note(checkpoint.to_text(), key)


def open_checkpoint(
    data: bytes | str | Note, log_key: VerifierKey, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """The checkpoint in the signed note ``data`` and the note, if ``log_key`` signed it.

    Other signatures are ignored (they are checked only by ``verified_cosignatures``).
    Raises ``NoteError`` if the note or the checkpoint is malformed, and ``SignatureError``
    if the log key's signature is missing or invalid or, when ``origin`` is given, the
    checkpoint's origin differs. The signature is checked before the text is read.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    open_note(note, [log_key])
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise SignatureError(f"the checkpoint is for origin {checkpoint.origin!r}, not {origin!r}")
    return checkpoint, note


# --- cosignatures --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WitnessKey:
    """A witness's Ed25519 key, which makes ``cosignature/v1`` (type 0x04) signatures only.

    ``key`` holds the name and seed; its own type-0x01 key id is not used for cosigning.
    """

    key: SigningKey

    @classmethod
    def generate(cls, name: str) -> WitnessKey:
        """A new random witness key named ``name``."""
        return cls(SigningKey.generate(name))

    @classmethod
    def from_text(cls, text: str) -> WitnessKey:
        """The witness key in Go's ``PRIVATE+KEY+...`` text (see ``SigningKey.from_text``)."""
        return cls(SigningKey.from_text(text))

    def to_text(self) -> str:
        """Go's private key text for the seed (type 0x01 key id, as Go writes it). Secret."""
        return self.key.to_text()

    @property
    def name(self) -> str:
        """The witness's key name."""
        return self.key.name

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
        return compute_key_id(self.key.name, ALG_COSIGNATURE_V1, self.key.public_key)

    def verifier(self) -> VerifierKey:
        """The type-0x04 verifier key for this witness."""
        return VerifierKey.from_public_key(self.name, self.key.public_key, ALG_COSIGNATURE_V1)


def _checkpoint_text(checkpoint: Checkpoint | Note | str) -> str:
    if isinstance(checkpoint, Checkpoint):
        return checkpoint.to_text()
    text = checkpoint.text if isinstance(checkpoint, Note) else checkpoint
    parse_checkpoint(text)
    return text


def cosign(checkpoint: Checkpoint | Note | str, key: WitnessKey, timestamp: int) -> NoteSignature:
    """The witness's cosignature, at POSIX time ``timestamp``, on a checkpoint (given as a
    ``Checkpoint``, its note or its text). Checks only that it is a well-formed checkpoint:
    verifying the log's signature and consistency is the witness's job, before this."""
    text = _checkpoint_text(checkpoint)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise NoteError("a cosignature timestamp must be an int")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"a cosignature timestamp must be in 0..2**63-1, not {timestamp}")
    signed = key.key.sign(cosignature_message(timestamp, text.encode("utf-8")))
    return NoteSignature(key.name, key.key_id, timestamp.to_bytes(8, "big") + signed)


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The timestamp in a type-0x04 signature, unverified; ``NoteError`` unless the
    signature is 72 bytes with a timestamp of at most 2**63 - 1."""
    if len(signature.signature) != COSIGNATURE_SIZE:
        raise NoteError(f"a cosignature is {COSIGNATURE_SIZE} bytes after the key id")
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise NoteError("a cosignature's timestamp exceeds 2**63 - 1")
    return timestamp


def _check_witness(key: VerifierKey) -> None:
    if not isinstance(key, VerifierKey) or key.alg != ALG_COSIGNATURE_V1:
        raise NoteError("a witness key must be a VerifierKey of type 0x04 (cosignature/v1)")


def verify_cosignature(
    checkpoint: Checkpoint | Note | str, signature: NoteSignature, witness: VerifierKey
) -> int:
    """Check that ``signature`` is ``witness``'s valid cosignature on the checkpoint and
    return its timestamp. Raises ``SignatureError`` if the signature is by another key or
    does not verify, ``NoteError`` if the checkpoint or the key type is wrong."""
    text = _checkpoint_text(checkpoint)
    _check_witness(witness)
    if (signature.name, signature.key_id) != (witness.name, witness.key_id):
        raise SignatureError(f"the signature is not by witness {witness.name}")
    if not witness.verify(text.encode("utf-8"), signature.signature):
        raise SignatureError(f"invalid cosignature by {witness.name}+{witness.key_id.hex()}")
    return cosignature_timestamp(signature)


def verified_cosignatures(
    note: Note, witnesses: Iterable[VerifierKey]
) -> tuple[tuple[VerifierKey, int], ...]:
    """The trusted ``witnesses`` (type 0x04 keys) that cosigned the checkpoint ``note``,
    each with its timestamp, in note order. Unknown signatures are ignored; a trusted
    witness's invalid cosignature raises ``SignatureError``. The log's own signature is not
    checked here (see ``open_checkpoint``)."""
    keys = list(witnesses)
    for key in keys:
        _check_witness(key)
    parse_checkpoint(note.text)
    by_key = {(s.name, s.key_id): s for s in note.signatures}
    verified = verified_signatures(note, keys)
    return tuple((k, cosignature_timestamp(by_key[(k.name, k.key_id)])) for k in verified)
