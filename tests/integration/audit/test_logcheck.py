"""Full verification (``check_log``) in its chunked, multi-process form, and the checks
each entry gets: filter columns tampered to hide an entry from ``audit show``, gaps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from audit.db import open_engine
from audit.logcheck import check_log
from audit.note import SigningKey
from audit.sources import DatabaseSource
from tests.integration.audit.helpers import ORIGIN, draft, new_log


@pytest.fixture
def logged(tmp_path: Path) -> tuple[str, SigningKey]:
    key = SigningKey.generate(ORIGIN)
    db = str(tmp_path / "hub.sqlite")
    log = new_log(db, key)
    for start in range(0, 50, 10):
        log.append([draft(i) for i in range(start, start + 10)])
    log.close()
    return db, key


def _sql(db: str, *statements: str) -> None:
    """Run statements with the raw sqlite3 module, dropping the append-only triggers first
    (what someone holding the file can always do)."""
    conn = sqlite3.connect(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
def test_honest_log_verifies_in_any_chunking(
    logged: tuple[str, SigningKey], workers: int, strict: bool
) -> None:
    db, key = logged
    report = check_log(
        DatabaseSource(open_engine(db)),
        key.verifier(),
        ORIGIN,
        workers=workers,
        strict=strict,
        range_levels=2,
    )
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints, report.consistency_proofs) == (50, 5, 4)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("workers", [1, 2])
def test_filter_column_edit_is_named(
    logged: tuple[str, SigningKey], workers: int, strict: bool
) -> None:
    db, key = logged
    _sql(db, "UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 23")
    report = check_log(
        DatabaseSource(open_engine(db)),
        key.verifier(),
        ORIGIN,
        workers=workers,
        strict=strict,
        range_levels=2,
    )
    assert report.problem is not None
    assert report.problem.entry == 23
    assert "filter columns" in report.problem.message


def test_deleted_entry_is_named(logged: tuple[str, SigningKey]) -> None:
    db, key = logged
    _sql(db, "DELETE FROM audit_entries WHERE seq = 31")
    report = check_log(
        DatabaseSource(open_engine(db)), key.verifier(), ORIGIN, workers=2, range_levels=2
    )
    assert report.problem is not None and report.problem.entry == 31
    assert "missing" in report.problem.message


def test_truncated_log_is_caught_by_its_checkpoints(logged: tuple[str, SigningKey]) -> None:
    db, key = logged
    _sql(db, "DELETE FROM audit_entries WHERE seq >= 45")
    report = check_log(DatabaseSource(open_engine(db)), key.verifier(), ORIGIN)
    assert report.problem is not None and report.problem.checkpoint == 50
    assert "entries were removed" in report.problem.message


def test_tree_node_edit_is_named(logged: tuple[str, SigningKey]) -> None:
    db, key = logged
    _sql(db, "UPDATE audit_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 3")
    report = check_log(DatabaseSource(open_engine(db)), key.verifier(), ORIGIN)
    assert report.problem is not None and report.problem.kind == "node"
    assert "(2, 3)" in report.problem.message


@pytest.mark.parametrize("workers", [1, 2])
def test_export_verifies_in_chunks(
    logged: tuple[str, SigningKey], workers: int, tmp_path: Path
) -> None:
    """The row-reading path (exports and hubs): chunks checked on worker processes."""
    from audit.sources import ExportSource, write_export

    db, key = logged
    out = tmp_path / "export"
    write_export(open_engine(db), out, ORIGIN, key.verifier().to_vkey())
    source = ExportSource(out, ORIGIN)
    report = check_log(source, key.verifier(), ORIGIN, workers=workers, chunk=7)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints) == (50, 5)
