"""audit: the tamper-evident audit log (RFC 6962 Merkle tree).

The pure core: hashing and proof building (``audit.merkle``), proof verification
(``audit.verify``), typed entries and their canonical encoding (``audit.entry``), C2SP
signed notes, checkpoints, cosignatures and proof bundles (``audit.note``,
``audit.checkpoint``, ``audit.bundle``). Storage and the single writer (``audit.store``,
``audit.log``, ``audit.writer``), witnesses and monitors (``audit.witness``), full
verification (``audit.logcheck``) and the auditor's command line (``audit.cli``) build on
it; docs/audit.md describes the whole.
"""

from audit.entry import AuditEntry, leaf_data
from audit.errors import (
    AuditError,
    EntryError,
    MalformedProofError,
    ProofError,
    RootMismatchError,
    TreeError,
)
from audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_tree_hash,
    node_hash,
    root_from_leaf_hashes,
)
from audit.verify import root_from_inclusion_proof, verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AuditEntry",
    "AuditError",
    "EntryError",
    "MalformedProofError",
    "ProofError",
    "RootMismatchError",
    "TreeError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_data",
    "leaf_hash",
    "merkle_tree_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]
