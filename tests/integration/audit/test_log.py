"""The audit log on a real database (SQLite file and PostgreSQL): sequencing, signed
checkpoints, proofs from stored nodes, append-only enforcement, rollback refusal."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audit import store
from audit.bundle import verify_bundle
from audit.checkpoint import WitnessKey, cosign, open_checkpoint
from audit.entry import decode
from audit.errors import LogStateError, StoreError, TreeError
from audit.log import AuditLog
from audit.merkle import leaf_hash
from audit.note import SigningKey
from audit.verify import verify_consistency, verify_inclusion
from tests.integration.audit.helpers import ORIGIN, draft, new_log


def _fill(log: AuditLog, batches: list[int]) -> int:
    n = 0
    for size in batches:
        receipts = log.append([draft(n + i) for i in range(size)])
        assert [r.sequence for r in receipts] == list(range(n, n + size))
        assert {r.checkpoint_size for r in receipts} == {n + size}
        n += size
    return n


def test_append_sequences_signs_and_proves(database_url: str) -> None:
    log = new_log(database_url)
    try:
        n = _fill(log, [1, 2, 5, 13, 1, 30])
        assert log.size() == n
        head = log.latest()
        assert head is not None
        cp, _ = head
        assert cp.size == n and cp.origin == ORIGIN
        for index in range(n):
            body = log.entry_bytes(index)
            assert decode(body).sequence == index
            proof = log.inclusion_proof(index, n)
            verify_inclusion(leaf_hash(body), index, n, proof, cp.root_hash)
            verify_bundle(log.bundle(index), body, log.log_key, ORIGIN)
        sizes = [1, 3, 8, 21, 22, 52]
        roots = {s: log.checkpoint(s)[0].root_hash for s in sizes}
        for old in sizes:
            for new in sizes:
                if old <= new:
                    proof = log.consistency_proof(old, new)
                    verify_consistency(old, new, roots[old], roots[new], proof)
        with pytest.raises(TreeError):
            log.inclusion_proof(0, n + 1)
    finally:
        log.close()


def test_log_without_key_reads_but_cannot_append(database_url: str) -> None:
    key = SigningKey.generate(ORIGIN)
    new_log(database_url, key).append([draft(0)])
    reader = AuditLog.open(database_url, origin=ORIGIN, log_key=key.verifier())
    assert reader.size() == 1
    with pytest.raises(LogStateError, match="signing key"):
        reader.append([draft(1)])
    reader.close()


def test_opening_a_missing_sqlite_file_is_an_error(tmp_path: Path) -> None:
    key = SigningKey.generate(ORIGIN)
    with pytest.raises(StoreError, match="no database file"):
        AuditLog.open(tmp_path / "nope.sqlite", origin=ORIGIN, log_key=key.verifier())


@pytest.mark.parametrize("table", store.APPEND_ONLY_TABLES)
def test_update_and_delete_are_refused_by_the_database(database_url: str, table: str) -> None:
    log = new_log(database_url)
    _fill(log, [3])
    witness = WitnessKey.generate("witness.test.invalid")
    assert log.add_cosignature(
        3, cosign(log.checkpoint(3)[0], witness, 1_790_000_000), 1_790_000_000
    )
    log.close()
    engine = log.engine
    column = {
        "audit_entries": "actor",
        "audit_nodes": "hash",
        "audit_checkpoints": "note",
        "audit_cosignatures": "line",
    }[table]
    value = "'x'" if column in ("actor", "note", "line") else "NULL"
    statements = [f"UPDATE {table} SET {column} = {value}", f"DELETE FROM {table}"]
    if engine.dialect.name == "postgresql":
        statements.append(f"TRUNCATE {table}")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert store.entry_count(conn) == 3


def test_checkpoint_signed_by_another_key_is_refused(database_url: str) -> None:
    key = SigningKey.generate(ORIGIN)
    log = new_log(database_url, key)
    _fill(log, [2])
    impostor = SigningKey.generate(ORIGIN)
    with pytest.raises(LogStateError, match="size 2"):
        AuditLog(log.engine, origin=ORIGIN, log_key=impostor.verifier(), key=impostor).append(
            [draft(9)]
        )
    log.close()


def test_entries_inserted_behind_the_writer_are_refused(database_url: str) -> None:
    log = new_log(database_url)
    _fill(log, [2])
    body = (
        b'{"action":"view","actor":"x","outcome":"allowed","sequence":2,'
        b'"time":"2026-11-23T09:00:00.000000Z","v":1}'
    )
    with log.engine.begin() as conn:
        store.insert_entries(
            conn, [store.StoredEntry(2, 0, "x", None, "view", None, "allowed", body)]
        )
    with pytest.raises(LogStateError, match="not signed"):
        log.append([draft(3)])
    log.close()


def test_a_failed_batch_leaves_nothing_behind(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = new_log(database_url)
    _fill(log, [2])

    def broken(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "insert_checkpoint", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        log.append([draft(2), draft(3)])
    monkeypatch.undo()
    with log.engine.connect() as conn:
        assert store.entry_count(conn) == 2
        assert len(list(store.iter_checkpoints(conn))) == 1
    assert [r.sequence for r in log.append([draft(2)])] == [2]
    log.close()


def test_restored_database_is_refused_by_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    state = tmp_path / "keys" / "log-head.json"
    key = SigningKey.generate(ORIGIN)
    log = new_log(str(db), key, trusted_path=state)
    _fill(log, [3])
    log.close()
    backup = tmp_path / "backup.sqlite"
    shutil.copy(db, backup)
    log = new_log(str(db), key, trusted_path=state)
    _fill_from = log.size()
    log.append([draft(_fill_from + i) for i in range(4)])
    log.close()
    shutil.copy(backup, db)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    restored = new_log(str(db), key, trusted_path=state)
    with pytest.raises(LogStateError, match="rolled back"):
        restored.append([draft(3)])
    restored.close()


def test_two_writers_on_one_database_interleave_without_gaps(database_url: str) -> None:
    key = SigningKey.generate(ORIGIN)
    logs = [new_log(database_url, key) for _ in range(2)]
    errors: list[BaseException] = []

    def work(log: AuditLog, who: int) -> None:
        try:
            for i in range(15):
                log.append([draft(100 * who + i), draft(100 * who + i + 50)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with logs[0].engine.connect() as conn:
        seqs = [e.seq for e in store.iter_entries(conn)]
        assert seqs == list(range(60))
        assert len(list(store.iter_checkpoints(conn))) == 30
    head = logs[0].latest()
    assert head is not None
    cp, note = head
    assert open_checkpoint(note, key.verifier(), ORIGIN)[0] == cp
    for log in logs:
        log.close()


def test_batching_writer_groups_concurrent_submits(tmp_path: Path) -> None:
    import asyncio

    from audit.writer import BatchingWriter

    log = new_log(str(tmp_path / "hub.sqlite"))

    async def go() -> tuple[list[int], int]:
        async with BatchingWriter(log.append, max_batch=64) as writer:
            receipts = await asyncio.gather(*(writer.submit(draft(i)) for i in range(300)))
            return [r.sequence for r in receipts], writer.batches

    seqs, batches = asyncio.run(go())
    assert sorted(seqs) == list(range(300))
    assert 300 / 64 <= batches < 300  # grouped, and never more than max_batch at once
    with log.engine.connect() as conn:
        assert len(list(store.iter_checkpoints(conn))) == batches
    log.close()


def test_batching_writer_fails_a_whole_batch_and_goes_on(tmp_path: Path) -> None:
    import asyncio

    from audit.writer import BatchingWriter

    log = new_log(str(tmp_path / "hub.sqlite"))
    calls = 0

    def flaky(drafts: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreError("database is locked")
        return log.append(drafts)  # type: ignore[arg-type]

    async def go() -> tuple[list[object], list[object]]:
        async with BatchingWriter(flaky) as writer:
            first = await asyncio.gather(
                *(writer.submit(draft(i)) for i in range(5)), return_exceptions=True
            )
            second = await asyncio.gather(*(writer.submit(draft(i)) for i in range(3)))
            return list(first), list(second)

    first, second = asyncio.run(go())
    assert all(isinstance(r, StoreError) for r in first)
    assert [r.sequence for r in second] == [0, 1, 2]  # type: ignore[attr-defined]
    assert log.size() == 3
    log.close()
