"""Proof bundles (C2SP tlog-proof v1): an offline-verifiable proof that an entry is in a log.

A bundle (file extension ``.tlog-proof``) is text, one item a line, each ending in a newline::

    c2sp.org/tlog-proof@v1
    extra <base64 of opaque extra data>       (optional; omitted when there is none)
    index <leaf index, ASCII decimal, no leading zeros>
    <base64 of one 32-byte hash>              (zero or more: the RFC 6962 inclusion proof,
    ...                                        from the leaf's sibling up to the root's child)
    <an empty line>
    <the log's signed checkpoint note, verbatim, with any witness cosignatures>

``parse_bundle`` is strict: ``format_bundle(parse_bundle(data)) == data`` for every accepted
``data``. The extra data is *not* authenticated: an application that needs it (say, to rebuild
the leaf) derives the leaf data from it, so a changed ``extra`` fails as a changed leaf. An
empty ``extra`` line is refused; with no extra data the line is left out (``extra=None``).
At most 63 proof hashes are accepted, enough for any tree of at most 2**63 - 1 leaves.

``verify_bundle`` checks, in order: the log's signature and the origin (``open_checkpoint``),
the cosignatures of trusted witnesses (at least ``min_witnesses`` valid ones, each witness
counted once; a trusted witness's invalid cosignature is an error), then the inclusion proof
of the RFC 6962 leaf hash of ``leaf_data`` at ``index`` under the checkpoint's root.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from audit.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    parse_decimal,
    verified_cosignatures,
)
from audit.errors import BundleError, NoteError, SignatureError
from audit.merkle import HASH_SIZE, leaf_hash
from audit.note import Note, VerifierKey, b64decode_canonical, format_note, parse_note
from audit.verify import verify_inclusion

__all__ = [
    "HEADER",
    "MAX_PROOF_HASHES",
    "ProofBundle",
    "format_bundle",
    "parse_bundle",
    "verify_bundle",
]

HEADER: Final = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES: Final = 63
_EXTRA: Final = "extra "
_INDEX: Final = "index "


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class ProofBundle:
    """A leaf ``index``, its inclusion ``proof`` (32-byte hashes, leaf side first), the
    log's ``checkpoint`` note and optional unauthenticated ``extra`` data (non-empty)."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: Note
    extra: bytes | None = None

    def __post_init__(self) -> None:
        index: object = self.index
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_SIZE:
            raise BundleError(f"a bundle's index must be an int in 0..2**63-1, not {index!r}")
        if not isinstance(self.proof, tuple) or len(self.proof) > MAX_PROOF_HASHES:
            raise BundleError(f"a bundle's proof is a tuple of at most {MAX_PROOF_HASHES} hashes")
        for i, h in enumerate(self.proof):
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise BundleError(f"proof hash {i} is not {HASH_SIZE} bytes")
        if not isinstance(self.checkpoint, Note):
            raise BundleError("a bundle's checkpoint must be a Note")
        try:
            parse_checkpoint(self.checkpoint.text)
        except NoteError as exc:
            raise BundleError(f"the bundle's checkpoint is malformed: {exc}") from exc
        if self.extra is not None and (not isinstance(self.extra, bytes) or not self.extra):
            raise BundleError("a bundle's extra data must be non-empty bytes, or None")


def format_bundle(bundle: ProofBundle) -> str:
    """The text of ``bundle`` (see the module docstring)."""
    lines = [HEADER]
    if bundle.extra is not None:
        lines.append(_EXTRA + _b64(bundle.extra))
    lines.append(f"{_INDEX}{bundle.index}")
    lines += [_b64(h) for h in bundle.proof]
    return "".join(line + "\n" for line in lines) + "\n" + format_note(bundle.checkpoint)


def _as_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("a bundle must be valid UTF-8") from None


def _parse_hash(line: str, i: int) -> bytes:
    raw = b64decode_canonical(line)
    if raw is None or len(raw) != HASH_SIZE:
        raise BundleError(f"proof line {i} is not canonical base64 of {HASH_SIZE} bytes")
    return raw


def parse_bundle(data: bytes | str) -> ProofBundle:
    """The bundle encoded as ``data``; ``BundleError`` if anything is malformed, the
    checkpoint note included. Nothing is verified (see ``verify_bundle``)."""
    head, blank, rest = _as_text(data).partition("\n\n")
    if not blank:
        raise BundleError("a bundle has no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise BundleError(f"a bundle's first line must be {HEADER}")
    extra = None
    pos = 1
    if pos < len(lines) and lines[pos].startswith(_EXTRA):
        extra = b64decode_canonical(lines[pos][len(_EXTRA) :])
        if not extra:
            raise BundleError("a bundle's extra line is canonical base64 of non-empty data")
        pos += 1
    if pos == len(lines) or not lines[pos].startswith(_INDEX):
        raise BundleError("a bundle's index line is missing")
    index = parse_decimal(lines[pos][len(_INDEX) :])
    if index is None:
        raise BundleError("a bundle's index is decimal 0..2**63-1 without leading zeros")
    if len(lines) - pos - 1 > MAX_PROOF_HASHES:
        raise BundleError(f"a bundle has more than {MAX_PROOF_HASHES} proof hashes")
    proof = tuple(_parse_hash(line, i) for i, line in enumerate(lines[pos + 1 :]))
    try:
        checkpoint = parse_note(rest)
    except NoteError as exc:
        raise BundleError(f"the bundle's checkpoint note is malformed: {exc}") from exc
    return ProofBundle(index, proof, checkpoint, extra)


def verify_bundle(
    bundle: ProofBundle,
    leaf_data: bytes,
    log_key: VerifierKey,
    origin: str,
    witness_keys: Sequence[VerifierKey] = (),
    min_witnesses: int = 0,
) -> Checkpoint:
    """Check that ``bundle`` proves ``leaf_data`` is in the log ``origin`` signed by
    ``log_key``, cosigned by at least ``min_witnesses`` of ``witness_keys`` (type 0x04 keys);
    return the checkpoint. Raises ``SignatureError`` (signatures, origin, too few
    witnesses), ``NoteError`` (a wrong key type) or a ``TreeError``/``ProofError`` from
    ``audit.verify`` (the inclusion proof); every one is an ``AuditError``."""
    if isinstance(min_witnesses, bool) or not isinstance(min_witnesses, int) or min_witnesses < 0:
        raise BundleError(f"min_witnesses must be a non-negative int, not {min_witnesses!r}")
    checkpoint, note = open_checkpoint(bundle.checkpoint, log_key, origin)
    witnesses = verified_cosignatures(note, witness_keys)
    if len(witnesses) < min_witnesses:
        raise SignatureError(
            f"{len(witnesses)} valid witness cosignatures, fewer than the {min_witnesses} required"
        )
    verify_inclusion(
        leaf_hash(leaf_data), bundle.index, checkpoint.size, bundle.proof, checkpoint.root_hash
    )
    return checkpoint
