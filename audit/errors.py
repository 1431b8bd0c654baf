"""The audit package's errors: one root, a few typed subclasses.

``AuditError`` is the only class a caller has to catch. Below it:

- ``TreeError``: a size or index that does not describe a valid tree or leaf
  (negative, index >= size, old size > new size, more leaves asked for than given).
- ``ProofError``: a proof that does not prove what it claims. Split into
  ``MalformedProofError`` (wrong number of elements, i.e. not fully consumed or
  exhausted early; or a hash that is not 32 bytes) and ``RootMismatchError``
  (well formed, but the recomputed root is not the one claimed).
- ``EntryError``: an audit entry with an invalid field, or bytes that are not the
  canonical encoding of a valid entry.
- ``StoreError``: the database cannot be opened, or does not hold a well-formed log.
- ``LogStateError``: the stored log contradicts itself or a checkpoint this log signed
  before (rolled back, truncated, tree nodes not matching the signed root); the writer
  refuses to sign anything more.
- ``NoteError``: a signed note, checkpoint, cosignature or key text that is malformed
  (``audit.note``, ``audit.checkpoint``), or a key of the wrong type for its use.
- ``SignatureError``: a note that lacks a valid signature by a key the caller requires, a
  known key whose signature does not verify, too few witness cosignatures, or a checkpoint
  from another log (wrong origin). It says that verification failed, not how to fix a forgery.
- ``BundleError``: a tlog-proof bundle (``audit.bundle``) that is malformed, including a
  malformed checkpoint inside it.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "BundleError",
    "EntryError",
    "LogStateError",
    "MalformedProofError",
    "NoteError",
    "ProofError",
    "RootMismatchError",
    "SignatureError",
    "StoreError",
    "TreeError",
]


class AuditError(Exception):
    """Root of every error raised by the audit package."""


class TreeError(AuditError):
    """A tree size or leaf index that is out of range or inconsistent."""


class ProofError(AuditError):
    """A proof that does not verify."""


class MalformedProofError(ProofError):
    """A proof with the wrong number of elements, or a hash of the wrong length."""


class RootMismatchError(ProofError):
    """A well-formed proof whose recomputed root differs from the claimed root."""


class EntryError(AuditError):
    """An audit entry that is invalid, or bytes that are not an entry's canonical encoding."""


class StoreError(AuditError):
    """The log's database cannot be opened or read, or is not an audit log."""


class LogStateError(AuditError):
    """The stored log contradicts itself or what this log signed before."""


class NoteError(AuditError):
    """A signed note, checkpoint, cosignature or key text that is malformed, or a wrong key type."""


class SignatureError(AuditError):
    """A missing or invalid signature by a required key, or a checkpoint of another log."""


class BundleError(AuditError):
    """A tlog-proof bundle that is malformed."""


class InconsistentLogError(AuditError):
    """A checkpoint that contradicts one accepted before: a smaller tree (rollback), a
    different root at the same size (fork), or a failed consistency proof. Witnesses
    refuse to co-sign it and monitors raise the alarm."""
