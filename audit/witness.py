"""Witnessing and monitoring: accepting a log's newest checkpoint only if it extends the
last one accepted.

A witness (an auditor or a partner agency, with its own Ed25519 key) and a monitor both
keep the newest checkpoint they accepted in a trusted-head file of their own
(``audit.trusted``). ``accept_checkpoint`` checks a newly fetched checkpoint against it:

- the log's signature and origin must verify;
- a smaller tree than the one accepted is a rollback, the same size with another root is
  a fork, and a larger tree must come with a consistency proof that verifies;

and only then moves the trusted head forward. A witness then co-signs the checkpoint
(C2SP tlog-cosignature), which the log stores and serves beside it. Anything else raises
``InconsistentLogError`` with both checkpoints in the message, for a human to act on: a
log that rewrote its history is an incident, not a retry.

The first checkpoint a witness or monitor sees is trusted on first use; the trusted-head
file is what makes every later one accountable.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audit import trusted
from audit.checkpoint import Checkpoint, WitnessKey, cosign, open_checkpoint
from audit.errors import AuditError, InconsistentLogError
from audit.note import Note, NoteSignature, VerifierKey
from audit.verify import verify_consistency

__all__ = ["Accepted", "accept_checkpoint", "witness_checkpoint"]

ProofFn = Callable[[int, int], list[bytes]]
"""Fetches the consistency proof between two tree sizes from the log."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A checkpoint that passed, and the head that was trusted before it (None at first use)."""

    checkpoint: Checkpoint
    note: Note
    previous: trusted.TrustedHead | None


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def accept_checkpoint(
    note: Note | bytes,
    *,
    log_key: VerifierKey,
    origin: str,
    state_path: Path,
    consistency_proof: ProofFn,
) -> Accepted:
    """Check ``note`` against the trusted head in ``state_path`` and advance it (module doc)."""
    cp, opened = open_checkpoint(note, log_key, origin)
    known = trusted.load(state_path, origin)
    if known is not None:
        seen = f"size {known.size}, root {_b64(known.root)}"
        offered = f"size {cp.size}, root {_b64(cp.root_hash)}"
        if cp.size < known.size:
            raise InconsistentLogError(
                f"ROLLBACK: log {origin!r} now shows a smaller tree ({offered}) than the "
                f"checkpoint already accepted ({seen}); its history was rewritten"
            )
        if cp.size == known.size and cp.root_hash != known.root:
            raise InconsistentLogError(
                f"FORK: log {origin!r} signed two different trees of the same size: "
                f"accepted {seen}, now offered {offered}"
            )
        if cp.size > known.size:
            try:
                proof = consistency_proof(known.size, cp.size)
                verify_consistency(known.size, cp.size, known.root, cp.root_hash, proof)
            except AuditError as exc:
                raise InconsistentLogError(
                    f"INCONSISTENT: log {origin!r}'s checkpoint ({offered}) does not extend "
                    f"the one already accepted ({seen}): {exc}"
                ) from None
    trusted.advance(state_path, trusted.TrustedHead(origin, cp.size, cp.root_hash))
    return Accepted(cp, opened, known)


def witness_checkpoint(
    note: Note | bytes,
    *,
    log_key: VerifierKey,
    origin: str,
    witness_key: WitnessKey,
    state_path: Path,
    consistency_proof: ProofFn,
    timestamp: int,
) -> tuple[Accepted, NoteSignature]:
    """Accept ``note`` (see ``accept_checkpoint``) and co-sign it at ``timestamp``
    (seconds since the Unix epoch)."""
    accepted = accept_checkpoint(
        note,
        log_key=log_key,
        origin=origin,
        state_path=state_path,
        consistency_proof=consistency_proof,
    )
    return accepted, cosign(accepted.checkpoint, witness_key, timestamp)
