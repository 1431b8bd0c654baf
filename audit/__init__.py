"""audit: the tamper-evident audit log (RFC 6962 Merkle tree).

So far the pure core: hashing and proof building (``audit.merkle``), proof
verification (``audit.verify``), typed entries and their canonical encoding
(``audit.entry``; ``encode`` and ``decode`` stay there) and the error types
(``audit.errors``). The command line in ``audit.cli`` is still a placeholder.
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
