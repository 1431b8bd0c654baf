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
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "EntryError",
    "MalformedProofError",
    "ProofError",
    "RootMismatchError",
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
