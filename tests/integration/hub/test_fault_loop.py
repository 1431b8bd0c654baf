"""``bench/faults.py --quick``: real hubs on loopback SIGKILLed at random moments (uploads,
linkage runs, extract builds, audit appends, and a job whose worker dies on every attempt),
a data directory on a tmpfs that fills up, and a private PostgreSQL cluster restarted under a
running hub. After every fault: nothing the hub acknowledged is lost, nothing half-written is
visible, and the audit log verifies offline and only grows (bench/README.md, "faults").

Two bench processes run side by side (most of each one's time is spent waiting for leases,
restarts and workers): the SQLite kill loop with the disk-full scenario, and the PostgreSQL
restart on a private cluster (skipped, with the bench's reason, where ``initdb`` cannot run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

LOOP_KINDS = ("upload", "run", "extract", "audit")
ROW_KEYS = {
    "system",
    "dataset",
    "scenario",
    "rounds",
    "kills",
    "acknowledged",
    "lost",
    "half_written_visible",
    "log_verified",
    "recovery_seconds_p50",
    "recovery_seconds_max",
    "errors_seen",
}


def _bench(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "faults.py"), "--quick", "--out", str(out), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the bench stops its hubs, clusters and mounts on SIGTERM
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"bench/faults.py --quick did not finish: {err[-3000:]}")
    # 1: an invariant failed (the rows say which); anything else is the bench breaking
    assert proc.returncode in (0, 1), err[-3000:]
    doc: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    doc["stderr"] = err
    return doc


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("faults")
    loop = _bench(root / "loop", "--scenarios", "upload,run,extract,audit,poison,disk-full")
    pg = _bench(root / "pg", "--scenarios", "pg-restart", "--private-postgres")
    return {"loop": _result(loop), "pg": _result(pg)}


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["scenario"]: r for r in report["results"]}


@pytest.mark.slow
def test_the_last_line_is_the_result_object(reports: dict[str, dict[str, Any]]) -> None:
    """Each run's last stdout line is the bench's JSON object, with a row per scenario and
    the documented figures in every row that ran."""
    for report in reports.values():
        assert report["bench"] == "faults"
        assert {"cores", "cpu_model", "python"} <= report["machine"].keys()
        assert report["settings"]["quick"] is True
    rows = _rows(reports["loop"])
    assert set(rows) == {*LOOP_KINDS, "poison", "disk-full"}
    for kind in (*LOOP_KINDS, "poison"):
        assert rows[kind].keys() >= ROW_KEYS, sorted(ROW_KEYS - rows[kind].keys())
    assert "pg-restart" in _rows(reports["pg"])


@pytest.mark.slow
def test_kills_lose_nothing_acknowledged_and_show_nothing_half_written(
    reports: dict[str, dict[str, Any]],
) -> None:
    """Every kind of round ran and killed something (nearly always in the middle of its
    work), and afterwards every acknowledged upload, chunk, session, run, extract and audit
    entry was there, nothing visible was half-written, and the log verified (and had not
    shrunk) after every round."""
    rows = _rows(reports["loop"])
    # a kill is drawn from within the calibrated length of the work; a run or a build that
    # goes faster this time can end first, so not every kind's one quick round is mid-work
    assert sum(rows[kind]["mid_work_rounds"] for kind in LOOP_KINDS) >= 3
    assert rows["audit"]["mid_work_rounds"] == rows["audit"]["rounds"]
    for kind in LOOP_KINDS:
        row = rows[kind]
        assert row["rounds"] >= 1 and row["kills"] >= 1, row
        assert row["acknowledged"] >= 1, row
        assert row["lost"] == 0, (kind, reports["loop"]["loop"]["lost"])
        assert row["half_written_visible"] == 0, row
        assert row["log_verified"] is True, row
        assert row["problems"] == [], row
    loop = reports["loop"]["loop"]
    assert loop["final_log_verified"] is True and loop["final_half_written"] == []
    sizes = [r["log_size"] for r in loop["rounds"]]
    assert sizes == sorted(sizes) and all(r["log_verified"] for r in loop["rounds"])


@pytest.mark.slow
def test_a_killed_upload_resumes_and_a_killed_job_is_taken_over(
    reports: dict[str, dict[str, Any]],
) -> None:
    """The clients saw the kills (dropped or refused connections), yet every killed upload
    was resumed and committed and every killed run and extract build finished: recovery
    took seconds (the lease is 3 s), not the recovery timeout."""
    rows = _rows(reports["loop"])
    assert sum(rows["audit"]["errors_seen"].values()) >= 1
    if rows["upload"]["mid_work_rounds"]:
        assert sum(rows["upload"]["errors_seen"].values()) >= 1
    for kind in LOOP_KINDS:
        assert rows[kind]["recovery_seconds_max"] < 120, rows[kind]


@pytest.mark.slow
def test_a_job_whose_worker_always_dies_ends_failed_and_audited(
    reports: dict[str, dict[str, Any]],
) -> None:
    """A run or extract whose worker is SIGKILLed on every attempt ends ``failed`` with an
    audit entry saying so once its attempts are used up."""
    row = _rows(reports["loop"])["poison"]
    assert row["rounds"] >= 1 and row["kills"] >= 3
    assert row["lost"] == 0, reports["loop"]["loop"]["lost"]


@pytest.mark.slow
def test_a_full_disk_is_answered_survived_and_recovered_from(
    reports: dict[str, dict[str, Any]],
) -> None:
    """With the data directory on a full tmpfs the hub keeps running and answers every
    request with a JSON error (no dropped connection), starts again while the disk is still
    full (no crash loop), and once the disk has room again uploads work, nothing
    acknowledged is lost and the log verifies."""
    row = _rows(reports["loop"])["disk-full"]
    if row.get("skipped"):
        pytest.skip(row["skipped"])
    assert row["uploads_before_full"] >= 1
    assert row["errors_when_full"], "the disk never filled up"
    # named as what it is: the hub's storage is full (507), never a generic 500
    assert set(row["errors_when_full"]) <= {"http_507"}, row["errors_when_full"]
    assert row["hub_alive_when_full"] is True
    assert row["restart_when_full"] == "ready", row["restart_when_full"]
    assert row["upload_after_growing"] is True
    assert row["lost"] == 0 and row["half_written_visible"] == 0, row
    assert row["log_verified"] is True


@pytest.mark.slow
def test_a_postgresql_restart_is_survived_without_restarting_the_hub(
    reports: dict[str, dict[str, Any]],
) -> None:
    """PostgreSQL restarted under load on a private cluster: the API serves again within
    seconds without being restarted, the interrupted uploads and run complete, nothing
    acknowledged is lost and the log verifies."""
    row = _rows(reports["pg"])["pg-restart"]
    if row.get("skipped"):
        pytest.skip(row["skipped"])
    assert row["restarts"] == 1
    assert row["hub_restarts"] == 0, row
    assert row["standalone_worker_exits"] == 0, row  # a worker waits for the database
    # requests caught by the restart are answered 503 (try again), never 500
    assert not {k for k in row["errors_seen"] if k.startswith("http_") and k != "http_503"}, row
    assert row["recovery_seconds_max"] < 30, row
    assert row["acknowledged"] >= 1
    assert row["lost"] == 0 and row["half_written_visible"] == 0, row
    assert row["log_verified"] is True
    assert row["problems"] == [], row
