"""The auditor's command line against a real database (SQLite and PostgreSQL) and an
export: verify, tamper detection naming the entry, monitor and witness refusing a
rolled-back log, wrong keys, proofs, export, show."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from audit.cli import main
from audit.db import open_engine
from audit.log import AuditLog
from audit.note import SigningKey
from tests.integration.audit.helpers import ORIGIN, draft

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    code, out, _ = run(capsys, "keygen", "--name", ORIGIN, "--out", str(tmp_path / "log.key"))
    assert code == EXIT_OK and "+" in out
    code, _, _ = run(
        capsys, "keygen", "--witness", "--name", "witness.a", "--out", str(tmp_path / "w.key")
    )
    assert code == EXIT_OK
    return {
        "key": tmp_path / "log.key",
        "pub": tmp_path / "log.key.pub",
        "wkey": tmp_path / "w.key",
        "wpub": tmp_path / "w.key.pub",
    }


def _log(db: str, key_file: Path, trusted: Path | None = None) -> AuditLog:
    key = SigningKey.from_text(key_file.read_text().strip())
    return AuditLog.open(
        db, origin=key.name, log_key=key.verifier(), key=key, trusted_path=trusted, create=True
    )


def _fill(db: str, key_file: Path, batches: list[int], start: int = 0, **kw: object) -> int:
    log = _log(db, key_file)
    n = start
    for size in batches:
        log.append([draft(n + i, **kw) for i in range(size)])
        n += size
    log.close()
    return n


def test_keygen_writes_private_key_0600_and_refuses_to_overwrite(
    keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stat.S_IMODE(keys["key"].stat().st_mode) == 0o600
    assert keys["pub"].read_text().startswith(ORIGIN + "+")
    assert "PRIVATE+KEY" in keys["key"].read_text()
    code, _, err = run(capsys, "keygen", "--name", ORIGIN, "--out", str(keys["key"]))
    assert code == EXIT_USAGE and "already exists" in err


def test_verify_passes_on_an_honest_log(
    database_url: str, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    n = _fill(database_url, keys["key"], [1, 4, 10, 3])
    code, out, _ = run(
        capsys, "verify", "--db", database_url, "--log-key", str(keys["pub"]), "--json"
    )
    report = json.loads(out)
    assert code == EXIT_OK and report["ok"]
    assert report["entries"] == n and report["checkpoints"] == 4
    assert report["consistency_proofs"] == 3 and report["nodes_checked"] > n


def test_verify_with_the_wrong_log_key_fails(
    database_url: str, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(database_url, keys["key"], [3])
    other = SigningKey.generate(ORIGIN).verifier().to_vkey()
    code, _, err = run(capsys, "verify", "--db", database_url, "--log-key", other)
    assert code == EXIT_FAILED
    assert "checkpoint at size 3" in err


def test_checkpoint_forged_with_another_key_is_rejected(
    database_url: str, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from audit.checkpoint import Checkpoint, sign_checkpoint
    from audit.note import format_note
    from audit.store import insert_checkpoint

    _fill(database_url, keys["key"], [3])
    log = _log(database_url, keys["key"])
    root = log.checkpoint(3)[0].root_hash
    forged = sign_checkpoint(Checkpoint(ORIGIN, 2, root), SigningKey.generate(ORIGIN))
    with log.engine.begin() as conn:  # INSERT is allowed: the table is append-only
        insert_checkpoint(conn, 2, format_note(forged), 0)
    log.close()
    code, _, err = run(capsys, "verify", "--db", database_url, "--log-key", str(keys["pub"]))
    assert code == EXIT_FAILED and "checkpoint at size 2" in err


def _alter_entry_underneath(db: str, seq: int) -> None:
    """Change entry ``seq``'s resource to another valid, canonical value, bypassing the
    append-only triggers the way an attacker holding the database files would."""
    old = f'"resource":"dataset/{seq}"'.encode()
    new = f'"resource":"dataset/{str(seq)[::-1]}"'.encode()
    assert len(old) == len(new) and old != new
    if "://" not in db:  # edit the SQLite file's bytes in place
        path = Path(db)
        data = path.read_bytes()
        assert data.count(old) == 1
        path.write_bytes(data.replace(old, new))
        return
    engine = open_engine(db)
    with engine.begin() as conn:
        body = conn.execute(text(f"SELECT body FROM audit_entries WHERE seq = {seq}")).scalar_one()
        conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        conn.execute(
            text("UPDATE audit_entries SET body = :b WHERE seq = :s"),
            {"b": bytes(body).replace(old, new), "s": seq},
        )
        conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
    engine.dispose()


def test_entry_edited_underneath_is_named_by_verify(
    database_url: str, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(database_url, keys["key"], [5, 20, 5])
    _alter_entry_underneath(database_url, 17)
    code, out, _ = run(
        capsys, "verify", "--db", database_url, "--log-key", str(keys["pub"]), "--json"
    )
    report = json.loads(out)
    assert code == EXIT_FAILED and not report["ok"]
    assert report["problem"]["entry"] == 17
    assert "entry 17 was altered" in report["problem"]["message"]


def test_rolled_back_log_is_caught_by_monitor_and_refused_by_witness(
    tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "hub.sqlite")
    pub, monitor_state, witness_state = str(keys["pub"]), tmp_path / "mon.json", tmp_path / "w.json"
    _fill(db, keys["key"], [4, 4])
    shutil.copy(db, tmp_path / "old.sqlite")
    _fill(db, keys["key"], [4, 4], start=8)
    for args in (
        ("monitor", "--db", db, "--log-key", pub, "--state", str(monitor_state)),
        (
            "witness",
            "--db",
            db,
            "--log-key",
            pub,
            "--key",
            str(keys["wkey"]),
            "--state",
            str(witness_state),
        ),
    ):
        code, _, err = run(capsys, *args)
        assert code == EXIT_OK, err
    code, out, _ = run(
        capsys, "verify", "--db", db, "--log-key", pub, "--witness-key", str(keys["wpub"]), "--json"
    )
    assert json.loads(out)["cosignatures_verified"] == 1

    # The operator restores the old database (size 8) and appends different entries;
    # whoever holds the key signs new checkpoints over the rewritten history.
    shutil.copy(tmp_path / "old.sqlite", db)
    for suffix in ("-wal", "-shm"):  # a restore replaces the whole database, WAL included
        Path(db + suffix).unlink(missing_ok=True)
    code, _, err = run(
        capsys, "monitor", "--db", db, "--log-key", pub, "--state", str(monitor_state)
    )
    assert code == EXIT_FAILED and "ROLLBACK" in err
    _fill(db, keys["key"], [6, 6], start=8, actor="rewriter")
    code, _, err = run(
        capsys, "monitor", "--db", db, "--log-key", pub, "--state", str(monitor_state)
    )
    assert code == EXIT_FAILED and "INCONSISTENT" in err
    code, _, err = run(
        capsys,
        "witness",
        "--db",
        db,
        "--log-key",
        pub,
        "--key",
        str(keys["wkey"]),
        "--state",
        str(witness_state),
    )
    assert code == EXIT_FAILED and "REFUSED TO CO-SIGN" in err and "INCONSISTENT" in err
    # The rewritten log is internally consistent, so only those who remembered notice.
    code, _, err = run(capsys, "verify", "--db", db, "--log-key", pub)
    assert code == EXIT_OK, err


def test_monitor_advances_and_requires_witnesses(
    database_url: str, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub, state = str(keys["pub"]), str(tmp_path / "mon.json")
    _fill(database_url, keys["key"], [3])
    monitor = ("monitor", "--db", database_url, "--log-key", pub, "--state", state, "--json")
    code, out, _ = run(capsys, *monitor)
    assert code == EXIT_OK and json.loads(out)["previous_size"] is None
    _fill(database_url, keys["key"], [2], start=3)
    code, out, _ = run(capsys, *monitor)
    assert code == EXIT_OK and json.loads(out) | {"root": ""} == {
        "ok": True,
        "size": 5,
        "root": "",
        "previous_size": 3,
        "cosignatures_verified": 0,
    }
    code, _, err = run(capsys, *monitor, "--witness-key", str(keys["wpub"]), "--min-witnesses", "1")
    assert code == EXIT_FAILED and "1 required" in err
    code, _, err = run(
        capsys,
        "witness",
        "--db",
        database_url,
        "--log-key",
        pub,
        "--key",
        str(keys["wkey"]),
        "--state",
        str(tmp_path / "w.json"),
    )
    assert code == EXIT_OK, err
    code, _, err = run(capsys, *monitor, "--witness-key", str(keys["wpub"]), "--min-witnesses", "1")
    assert code == EXIT_OK, err


def test_export_verifies_offline_and_detects_edits(
    database_url: str, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = str(keys["pub"])
    _fill(database_url, keys["key"], [2, 7, 1])
    out_dir = tmp_path / "export"
    code, _, err = run(capsys, "export", str(out_dir), "--db", database_url, "--log-key", pub)
    assert code == EXIT_OK, err
    code, _, err = run(capsys, "export", str(out_dir), "--db", database_url, "--log-key", pub)
    assert code == EXIT_USAGE and "already exists" in err
    code, out, _ = run(capsys, "verify", "--export", str(out_dir), "--log-key", pub, "--json")
    report = json.loads(out)
    assert code == EXIT_OK and report["entries"] == 10 and report["consistency_proofs"] == 2

    entries = out_dir / "entries.jsonl"
    entries.write_bytes(entries.read_bytes().replace(b'"dataset/4"', b'"dataset/5"'))
    code, _, err = run(capsys, "verify", "--export", str(out_dir), "--log-key", pub)
    assert code == EXIT_FAILED and "SHA-256" in err
    manifest = json.loads((out_dir / "MANIFEST.json").read_text())  # the forger fixes it
    import hashlib

    manifest["files"]["entries.jsonl"] = hashlib.sha256(entries.read_bytes()).hexdigest()
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest))
    code, out, _ = run(capsys, "verify", "--export", str(out_dir), "--log-key", pub, "--json")
    problem = json.loads(out)["problem"]
    assert code == EXIT_FAILED and problem["checkpoint"] == 9 and problem["entry"] == 2


def test_prove_and_check_proof(
    database_url: str, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = str(keys["pub"])
    _fill(database_url, keys["key"], [3, 9])
    bundle = tmp_path / "e7.tlog-proof"
    code, _, err = run(
        capsys, "prove", "7", "--db", database_url, "--log-key", pub, "--out", str(bundle)
    )
    assert code == EXIT_OK, err
    assert bundle.read_text().startswith("c2sp.org/tlog-proof@v1\nindex 7\n")
    entry = Path(str(bundle) + ".entry")
    code, out, err = run(
        capsys, "check-proof", str(bundle), "--entry", str(entry), "--log-key", pub
    )
    assert code == EXIT_OK and "entry 7" in out, err
    entry.write_bytes(entry.read_bytes().replace(b"dataset/7", b"dataset/8"))
    code, _, err = run(capsys, "check-proof", str(bundle), "--entry", str(entry), "--log-key", pub)
    assert code == EXIT_FAILED
    code, _, err = run(capsys, "prove", "12", "--db", database_url, "--log-key", pub)
    assert code == EXIT_FAILED and "12" in err


def test_show_filters(
    database_url: str, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(database_url, keys["key"], [24])
    base = ("show", "--db", database_url, "--json")
    code, out, _ = run(capsys, *base, "--action", "download")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == EXIT_OK and [r["sequence"] for r in rows] == [1, 5, 9, 13, 17, 21]
    code, out, _ = run(capsys, *base, "--agency", "police", "--since", "2026-11-23T09:00:10Z")
    assert [json.loads(x)["sequence"] for x in out.splitlines()] == [12, 15, 18, 21]
    code, out, _ = run(capsys, *base, "--outcome", "refused")
    assert out == ""
    code, _, err = run(capsys, *base, "--since", "yesterday")
    assert code == EXIT_USAGE and "ISO 8601" in err
    code, out, err = run(capsys, "show", "--db", database_url, "--limit", "2")
    assert code == EXIT_OK and len(out.splitlines()) == 2 and "(2 entries)" in err


def test_usage_errors_change_nothing(
    tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.sqlite")
    code, _, err = run(capsys, "verify", "--db", missing, "--log-key", str(keys["pub"]))
    assert code == EXIT_USAGE and "no database file" in err
    assert not Path(missing).exists()
    code, _, err = run(capsys, "verify", "--db", missing)
    assert code == EXIT_USAGE and "--log-key" in err
    code, _, err = run(capsys, "verify", "--db", missing, "--log-key", "not a key")
    assert code == EXIT_USAGE
    hub = ("verify", "--hub", "http://127.0.0.1:1", "--log-key", str(keys["pub"]))
    code, _, err = run(capsys, *hub)
    assert code == EXIT_USAGE and "auditor's token" in err
    token = tmp_path / "token"
    token.write_text("pph_" + "x" * 43)
    code, _, err = run(capsys, *hub, "--token-file", str(token))
    assert code == EXIT_USAGE and "cannot reach the hub" in err
