"""The audit log: sequencing, tree integration and checkpoint signing in one transaction.

``AuditLog.append(drafts)`` is the single writer. In one database transaction, holding
the log's write lock (``audit.db.write_lock``), it

1. checks that the stored log is what it last signed: the newest checkpoint is signed by
   this log's key, covers every stored entry, its root is the fold of the stored
   frontier nodes, and it is consistent with the newest checkpoint the trusted-head file
   remembers (so a restored or truncated database is refused, not re-signed);
2. gives the drafts the next sequence numbers, encodes them canonically and appends
   their leaf hashes to the tree (storing every node the appends complete);
3. signs a checkpoint for the new size and stores it;

then commits, and only then returns receipts: an entry is acknowledged once it is
durable (SQLite WAL with ``synchronous=FULL``; PostgreSQL's default fsync), and every
committed batch carries its own signed checkpoint, so a stored entry that no checkpoint
covers is evidence of tampering, never a normal state. A batch is all or nothing.

Several processes may hold an ``AuditLog`` on one database: the write lock serialises
them, and each re-reads the head inside the lock. Reads (proofs, checkpoints, entries)
need no key; a read-only ``AuditLog`` has ``key=None`` and refuses to append.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from audit import store, trusted
from audit.bundle import ProofBundle
from audit.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit.db import immediate_options, open_engine, write_lock
from audit.entry import AuditEntry, encode, with_sequence
from audit.errors import AuditError, LogStateError, StoreError, TreeError
from audit.frontier import Frontier, Node
from audit.merkle import (
    EMPTY_ROOT,
    consistency_ranges,
    fold_subtrees,
    inclusion_ranges,
    leaf_hash,
    perfect_subtrees,
)
from audit.note import (
    Note,
    NoteSignature,
    SigningKey,
    VerifierKey,
    format_note,
    parse_note,
    parse_signature_line,
)
from audit.verify import verify_consistency

__all__ = ["AuditLog", "PendingAppend", "Receipt", "stored_fields"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the writer returns for a durable entry: its sequence number (leaf index), its
    leaf hash and the size of the signed checkpoint that first covers it."""

    sequence: int
    leaf_hash: bytes
    checkpoint_size: int


def stored_fields(entry: AuditEntry, body: bytes) -> store.StoredEntry:
    """The ``audit_entries`` row for a sequenced entry and its canonical bytes."""
    if entry.sequence is None:
        raise TreeError("an entry must be sequenced before it is stored")
    return store.StoredEntry(
        seq=entry.sequence,
        time_us=store.time_to_us(entry.time),
        actor=entry.actor,
        agency=entry.agency,
        action=entry.action,
        dsa_id=entry.dsa_id,
        outcome=entry.outcome,
        body=body,
    )


def _subtree_hash(conn: Connection, start: int, end: int) -> bytes:
    coords = perfect_subtrees(start, end)
    found = store.node_hashes(conn, coords)
    missing = [c for c in coords if c not in found]
    if missing:
        raise LogStateError(f"tree nodes {missing} are missing from the database")
    return fold_subtrees([found[c] for c in coords])


def _proof(conn: Connection, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    coords = [c for a, b in ranges for c in perfect_subtrees(a, b)]
    found = store.node_hashes(conn, coords)
    missing = [c for c in coords if c not in found]
    if missing:
        raise LogStateError(f"tree nodes {missing} are missing from the database")
    return [fold_subtrees([found[c] for c in perfect_subtrees(a, b)]) for a, b in ranges]


def stored_root(conn: Connection, size: int) -> bytes:
    """MTH of the first ``size`` leaves, from the stored frontier nodes."""
    return EMPTY_ROOT if size == 0 else _subtree_hash(conn, 0, size)


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """Entries appended inside a caller's transaction, not yet committed."""

    receipts: list[Receipt]
    head: trusted.TrustedHead


class AuditLog:
    """The log in one database. ``key`` (the log's signing key) is needed only to append."""

    def __init__(
        self,
        engine: Engine,
        *,
        origin: str,
        log_key: VerifierKey,
        key: SigningKey | None = None,
        trusted_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if key is not None and key.verifier() != log_key:
            raise LogStateError("the signing key does not match the log's public key")
        self.engine = engine
        self.origin = origin
        self.log_key = log_key
        self._key = key
        self._trusted_path = trusted_path
        self._clock = clock
        self._trusted: trusted.TrustedHead | None = None

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        origin: str,
        log_key: VerifierKey,
        key: SigningKey | None = None,
        trusted_path: Path | None = None,
        create: bool = False,
    ) -> AuditLog:
        """Open the log in the database at ``target`` (path or URL); with ``create``,
        make the database (SQLite) and the log's tables if they are missing."""
        engine = open_engine(target, create=create)
        try:
            with engine.begin() as conn:
                if create:
                    store.create_schema(conn)
                else:
                    store.check_schema(conn)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the audit log: {exc}") from None
        return cls(engine, origin=origin, log_key=log_key, key=key, trusted_path=trusted_path)

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------

    def append(self, drafts: Sequence[AuditEntry]) -> list[Receipt]:
        """Sequence, store and sign ``drafts`` in one transaction; see the module doc."""
        key = self._checked_drafts(drafts)
        if not drafts:
            return []
        try:
            connection = self.engine.connect().execution_options(**immediate_options())
            with connection as conn, conn.begin():
                receipts, head = self._append_locked(conn, drafts, key)
        except IntegrityError as exc:
            raise LogStateError(f"another writer stored the same sequence numbers: {exc}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"the audit log could not be written: {exc}") from None
        self._remember(head)
        return receipts

    def append_in(self, conn: Connection, drafts: Sequence[AuditEntry]) -> PendingAppend:
        """Append ``drafts`` inside the caller's open transaction on ``conn``, so that an
        action and its audit entries commit (or roll back) together. On SQLite the
        transaction must have begun with ``audit.db.immediate_options()``. Nothing is
        acknowledged until the caller commits and then calls ``committed``."""
        key = self._checked_drafts(drafts)
        if not drafts:
            raise TreeError("nothing to append")
        receipts, head = self._append_locked(conn, drafts, key)
        return PendingAppend(receipts, head)

    def committed(self, pending: PendingAppend) -> list[Receipt]:
        """Record that the transaction holding ``pending`` committed; its receipts."""
        self._remember(pending.head)
        return pending.receipts

    def _checked_drafts(self, drafts: Sequence[AuditEntry]) -> SigningKey:
        if self._key is None:
            raise LogStateError("this log was opened without its signing key: it cannot append")
        for draft in drafts:
            if draft.sequence is not None:
                raise TreeError("drafts must not carry a sequence number: the writer assigns it")
        return self._key

    def _append_locked(
        self, conn: Connection, drafts: Sequence[AuditEntry], key: SigningKey
    ) -> tuple[list[Receipt], trusted.TrustedHead]:
        write_lock(conn)
        frontier = self._checked_frontier(conn)
        start = frontier.size
        rows: list[store.StoredEntry] = []
        made: list[Node] = []
        leaves: list[bytes] = []
        for offset, draft in enumerate(drafts):
            entry = with_sequence(draft, start + offset)
            body = encode(entry)
            leaf = leaf_hash(body)
            leaves.append(leaf)
            rows.append(stored_fields(entry, body))
            made.extend(frontier.append(leaf))
        size = frontier.size
        checkpoint = Checkpoint(origin=self.origin, size=size, root_hash=frontier.root())
        note = sign_checkpoint(checkpoint, key)
        store.insert_entries(conn, rows)
        store.insert_nodes(conn, made)
        store.insert_checkpoint(conn, size, format_note(note), int(self._clock() * 1_000_000))
        receipts = [Receipt(start + i, leaf, size) for i, leaf in enumerate(leaves)]
        return receipts, trusted.TrustedHead(self.origin, size, checkpoint.root_hash)

    def _checked_frontier(self, conn: Connection) -> Frontier:
        """The stored frontier, after checking the stored head (module doc, step 1)."""
        latest = store.latest_checkpoint(conn)
        count = store.entry_count(conn)
        if latest is None:
            if count:
                raise LogStateError(f"{count} entries are stored but no checkpoint signs them")
            head = trusted.TrustedHead(self.origin, 0, EMPTY_ROOT)
            self._check_against_trusted(conn, head)
            return Frontier()
        cp = self._open_stored(latest)
        if cp.size != count:
            raise LogStateError(
                f"the newest checkpoint covers {cp.size} entries but {count} are stored: "
                f"entries {cp.size}..{count - 1} are not signed"
                if count > cp.size
                else f"the newest checkpoint covers {cp.size} entries but only {count} are stored"
            )
        coords = Frontier.coordinates(cp.size)
        found = store.node_hashes(conn, coords)
        if len(found) != len(coords):
            raise LogStateError("tree nodes on the right edge of the tree are missing")
        frontier = Frontier(cp.size, [found[c] for c in coords])
        if frontier.root() != cp.root_hash:
            raise LogStateError(
                f"the stored tree does not match the signed checkpoint at size {cp.size}"
            )
        self._check_against_trusted(conn, trusted.TrustedHead(self.origin, cp.size, cp.root_hash))
        return frontier

    def _open_stored(self, stored: store.StoredCheckpoint) -> Checkpoint:
        try:
            cp, _ = open_checkpoint(stored.note.encode("utf-8"), self.log_key, self.origin)
        except AuditError as exc:
            raise LogStateError(f"stored checkpoint at size {stored.size}: {exc}") from None
        if cp.size != stored.size:
            raise LogStateError(f"stored checkpoint row {stored.size} holds size {cp.size}")
        return cp

    def _known_head(self) -> trusted.TrustedHead | None:
        if self._trusted_path is None:
            return self._trusted
        on_disk = trusted.load(self._trusted_path, self.origin)
        if self._trusted is None or (on_disk is not None and on_disk.size > self._trusted.size):
            return on_disk
        return self._trusted

    def _check_against_trusted(self, conn: Connection, head: trusted.TrustedHead) -> None:
        known = self._known_head()
        if known is None or known == head:
            return
        if known.size > head.size:
            raise LogStateError(
                f"the database holds {head.size} entries but this log signed a checkpoint "
                f"at size {known.size}: the database was rolled back or truncated"
            )
        if known.size == head.size:
            raise LogStateError(
                f"the database's tree at size {head.size} differs from the signed one"
            )
        try:
            proof = _proof(conn, consistency_ranges(known.size, head.size))
            verify_consistency(known.size, head.size, known.root, head.root, proof)
        except AuditError as exc:
            raise LogStateError(
                f"the database's checkpoint at size {head.size} is not consistent with the "
                f"one signed at size {known.size}: {exc}"
            ) from None

    def _remember(self, head: trusted.TrustedHead) -> None:
        self._trusted = head
        if self._trusted_path is not None:
            trusted.advance(self._trusted_path, head)

    # -- reading -------------------------------------------------------------------
    # Each ``*_in`` method works on a connection the caller holds (the hub passes its
    # async connection's sync side through ``run_sync``); the others open their own.

    def size(self) -> int:
        """The number of stored entries."""
        with self.engine.connect() as conn:
            return store.entry_count(conn)

    def latest(self) -> tuple[Checkpoint, Note] | None:
        """The newest checkpoint, its signature verified, with any stored cosignatures."""
        with self.engine.connect() as conn:
            return self.latest_in(conn)

    def latest_in(self, conn: Connection) -> tuple[Checkpoint, Note] | None:
        stored = store.latest_checkpoint(conn)
        return None if stored is None else self._with_cosignatures(conn, stored)

    def checkpoint(self, size: int) -> tuple[Checkpoint, Note]:
        """The checkpoint at exactly ``size``, with its cosignatures."""
        with self.engine.connect() as conn:
            return self.checkpoint_in(conn, size)

    def checkpoint_in(self, conn: Connection, size: int) -> tuple[Checkpoint, Note]:
        stored = store.checkpoint_at(conn, size)
        if stored is None:
            raise TreeError(f"no checkpoint was signed at size {size}")
        return self._with_cosignatures(conn, stored)

    def _with_cosignatures(
        self, conn: Connection, stored: store.StoredCheckpoint
    ) -> tuple[Checkpoint, Note]:
        cp = self._open_stored(stored)
        note = parse_note(stored.note.encode("utf-8"))
        extra = [parse_signature_line(c.line) for c in store.iter_cosignatures(conn, stored.size)]
        return cp, Note(note.text, (*note.signatures, *extra))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) from the stored nodes; ``size`` must not exceed the log."""
        with self.engine.connect() as conn:
            return self.inclusion_proof_in(conn, index, size)

    def inclusion_proof_in(self, conn: Connection, index: int, size: int) -> list[bytes]:
        self._check_size(conn, size)
        return _proof(conn, inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[new_size]) from the stored nodes."""
        with self.engine.connect() as conn:
            return self.consistency_proof_in(conn, old_size, new_size)

    def consistency_proof_in(self, conn: Connection, old_size: int, new_size: int) -> list[bytes]:
        self._check_size(conn, new_size)
        return _proof(conn, consistency_ranges(old_size, new_size))

    @staticmethod
    def _check_size(conn: Connection, size: int) -> None:
        count = store.entry_count(conn)
        if size > count:
            raise TreeError(f"the log has {count} entries, not {size}")

    def entry_bytes(self, index: int) -> bytes:
        with self.engine.connect() as conn:
            return self.entry_bytes_in(conn, index)

    @staticmethod
    def entry_bytes_in(conn: Connection, index: int) -> bytes:
        where = store.EntryFilter(min_seq=index, max_seq=index + 1)
        rows = list(store.iter_entries(conn, where))
        if not rows:
            raise TreeError(f"the log has no entry {index}")
        return rows[0].body

    def bundle(self, index: int, size: int | None = None) -> ProofBundle:
        """An offline-verifiable proof (C2SP tlog-proof) that entry ``index`` is in the log,
        against the checkpoint at ``size`` (default: the newest), with its cosignatures."""
        with self.engine.connect() as conn:
            return self.bundle_in(conn, index, size)

    def bundle_in(self, conn: Connection, index: int, size: int | None = None) -> ProofBundle:
        if size is None:
            head = self.latest_in(conn)
            if head is None:
                raise TreeError("the log is empty")
            cp, note = head
        else:
            cp, note = self.checkpoint_in(conn, size)
        proof = self.inclusion_proof_in(conn, index, cp.size)
        return ProofBundle(index=index, proof=tuple(proof), checkpoint=note)

    def add_cosignature(self, size: int, signature: NoteSignature, timestamp: int) -> bool:
        """Store a witness's cosignature line for the checkpoint at ``size`` (the caller
        has verified it). Returns False if that witness key already cosigned it."""
        try:
            with self.engine.begin() as conn:
                self.add_cosignature_in(conn, size, signature, timestamp)
        except IntegrityError:
            return False
        return True

    def add_cosignature_in(
        self, conn: Connection, size: int, signature: NoteSignature, timestamp: int
    ) -> None:
        """``add_cosignature`` in the caller's transaction; a repeat raises IntegrityError."""
        if store.checkpoint_at(conn, size) is None:
            raise TreeError(f"no checkpoint was signed at size {size}")
        row = store.StoredCosignature(
            size=size,
            witness=signature.name,
            key_id=signature.key_id,
            line=signature.to_line(),
            timestamp=timestamp,
            received_us=int(self._clock() * 1_000_000),
        )
        store.insert_cosignature(conn, row)
