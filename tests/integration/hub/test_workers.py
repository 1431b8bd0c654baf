"""Job workers as separate processes against a real hub (SQLite and PostgreSQL): a worker
SIGKILLed in the middle of a linkage run leaves no partial result and another worker takes
the job over once its lease runs out; several workers never run one job twice; claims race
safely at the database."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from audit.db import open_engine
from audit.logcheck import check_log
from audit.note import parse_vkey
from audit.sources import DatabaseSource
from hub.cipher import MasterKey
from hub.client import HubAPIError
from hub.config import load_config
from hub.datastore import DataStore
from hub.demo import PROJECT
from hub.jobs import claim, enqueue, finish, write_transaction
from hub.linkjob import load_entities
from hub.store.db import migrate
from hub.store.schema import jobs, run_results
from tests.integration.hub.conftest import ORIGIN, Prepared, start_worker

WORKER = [sys.executable, "-m", "hub.cli", "worker", "--data-dir"]


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _count(p: Prepared, query: Any) -> int:
    engine = open_engine(load_config(p.data_dir).database_url())
    with engine.connect() as conn:
        n = int(conn.execute(query).scalar() or 0)
    engine.dispose()
    return n


def test_sigkilled_worker_leaves_nothing_and_another_takes_over(prepared: Prepared) -> None:
    p = prepared
    analyst = p.hub.api("analyst")
    run = analyst.start_run(PROJECT)["run"]
    first = start_worker(p, "worker-1.log")
    try:
        _wait(
            lambda: analyst.call("GET", f"/v1/runs/{run}")["job"]["stage"] == "linking",
            60,
            "the run to reach its linking stage",
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    doc = analyst.call("GET", f"/v1/runs/{run}")
    assert doc["job"]["status"] == "running" and "result" not in doc  # nothing half-written
    assert _count(p, select(func.count()).select_from(run_results)) == 0

    second = start_worker(p, "worker-2.log")
    try:
        done = analyst.wait_run(run, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert done["job"]["status"] == "succeeded" and done["job"]["attempts"] == 2
    assert done["result"]["links"] > 0
    assert _count(p, select(func.count()).select_from(run_results)) == 1
    config = load_config(p.data_dir)
    engine = open_engine(config.database_url())
    log_key = parse_vkey(p.hub.made["log_public_key"])
    report = check_log(DatabaseSource(engine), log_key, ORIGIN)
    engine.dispose()
    assert report.ok, report.problem


def test_two_workers_two_runs_no_job_twice(prepared: Prepared) -> None:
    p = prepared
    analyst = p.hub.api("analyst")
    runs = [analyst.start_run(PROJECT)["run"] for _ in range(2)]
    workers = [start_worker(p, f"worker-{i}.log") for i in range(2)]
    try:
        done = [analyst.wait_run(r, timeout=180) for r in runs]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=30)
    assert all(d["job"]["status"] == "succeeded" and d["job"]["attempts"] == 1 for d in done)
    assert _count(p, select(func.count()).select_from(run_results)) == 2

    # a later run over the same uploads keeps every entity's id (stable entity ids)
    third = analyst.start_run(PROJECT)["run"]
    worker = start_worker(p, "worker-3.log")
    try:
        latest = analyst.wait_run(third, timeout=180)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert latest["result"]["previous_run"] in runs
    before = _entities(p, latest["result"]["previous_run"])
    after = _entities(p, third)
    assert after == before and len(after) > 100


def _entities(p: Prepared, run: str) -> dict[tuple[str, str], str]:
    config = load_config(p.data_dir)
    engine = open_engine(config.database_url())
    with engine.connect() as conn:
        result = conn.execute(select(run_results).where(run_results.c.run_id == run)).one()
    engine.dispose()
    store = DataStore(config.data_dir, MasterKey.load(config.path(config.keys.master_key)))
    table = load_entities(store, result)
    return {
        (d, r): e
        for e, d, r in zip(
            *(table.column(c).to_pylist() for c in ("entity_id", "dataset", "record")),
            strict=True,
        )
    }


def test_claims_race_safely(database_url: str, tmp_path: Path) -> None:
    """Eight threads, each with its own engine, drain 40 jobs: every job is claimed exactly
    once and finished exactly once."""
    url = database_url if "://" in database_url else f"sqlite:///{database_url}"
    migrate(url, create=True)
    engine = open_engine(url)
    with write_transaction(engine) as conn:
        for i in range(40):
            enqueue(conn, kind="link", project_id="p", subject_id=f"s{i}", created_by="u",
                    now_us=i)  # fmt: skip
    engine.dispose()
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(name: str) -> None:
        own = open_engine(url)
        try:
            while True:
                job = claim(own, worker=name, now_us=10**15, lease_us=10**12)
                if job is None:
                    return
                with lock:
                    claimed.append(job.id)
                with write_transaction(own) as conn:
                    finish(conn, job.id, name, 10**15, status="succeeded")
        finally:
            own.dispose()

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 40 and max(Counter(claimed).values()) == 1
    engine = open_engine(url)
    with engine.connect() as conn:
        statuses = Counter(conn.execute(select(jobs.c.status)).scalars().all())
    engine.dispose()
    assert statuses == {"succeeded": 40}


def test_a_job_whose_worker_died_on_its_last_attempt_is_handed_over_to_be_failed(
    database_url: str, tmp_path: Path
) -> None:
    """A lost worker's job goes back to the queue while it has attempts left; after its last
    attempt the next claim hands it over with ``failing`` set (not run again, attempts
    unchanged), to one worker only, and a worker that dies while failing it leaves it to the
    next. Jobs of other kinds are left to their own workers."""
    url = database_url if "://" in database_url else f"sqlite:///{database_url}"
    migrate(url, create=True)
    engine = open_engine(url)
    lease = 10
    with write_transaction(engine) as conn:
        job_id = enqueue(conn, kind="extract", project_id="p", subject_id="r", created_by="u",
                         now_us=0, max_attempts=2)  # fmt: skip
    first = claim(engine, worker="w1", now_us=100, lease_us=lease)
    assert first is not None and first.attempts == 1 and first.failing is None
    # w1 dies: after the lease, w2 gets the job back for its second (last) attempt
    assert claim(engine, worker="w2", now_us=105, lease_us=lease) is None  # lease not over
    second = claim(engine, worker="w2", now_us=200, lease_us=lease)
    assert second is not None and second.attempts == 2 and second.failing is None
    # w2 dies too: a worker of another kind leaves it alone; an extract worker fails it
    assert claim(engine, worker="w3", now_us=300, lease_us=lease, kinds=("link",)) is None
    third = claim(engine, worker="w3", now_us=300, lease_us=lease)
    assert third is not None and third.id == job_id and third.failing
    assert third.attempts == 2
    assert claim(engine, worker="w4", now_us=305, lease_us=lease) is None  # held by w3
    # w3 dies while failing it: the next claim hands it over again
    fourth = claim(engine, worker="w4", now_us=400, lease_us=lease)
    assert fourth is not None and fourth.id == job_id and fourth.failing
    with write_transaction(engine) as conn:
        finish(conn, job_id, "w4", 401, status="failed", error=fourth.failing)
    assert claim(engine, worker="w5", now_us=10**6, lease_us=lease) is None
    with engine.connect() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
    engine.dispose()
    assert (row.status, row.attempts, row.worker) == ("failed", 2, "w4")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_spark_engine_by_configuration(prepared: Prepared) -> None:
    """``workers.engine = "spark"`` links on a local Spark session (Java 17)."""
    p = prepared
    config = p.data_dir / "hub.toml"
    text = config.read_text().replace('engine = "duckdb"', 'engine = "spark"')
    config.write_text(text.replace('spark_master = "local[2]"', 'spark_master = "local[1]"'))
    analyst = p.hub.api("analyst")
    run = analyst.start_run(PROJECT)["run"]
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "worker", "--data-dir", str(p.data_dir), "--once"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = analyst.call("GET", f"/v1/runs/{run}")
    assert doc["job"]["status"] == "succeeded", doc["job"]
    assert doc["diagnostics"]["engine"] == "spark" and doc["result"]["links"] > 100


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cancelled_run_is_never_run(prepared: Prepared) -> None:
    p = prepared
    analyst = p.hub.api("analyst")
    run = analyst.start_run(PROJECT)["run"]
    assert analyst.call("POST", f"/v1/runs/{run}/cancel", {})["status"] == "cancelled"
    with pytest.raises(HubAPIError) as again:
        analyst.call("POST", f"/v1/runs/{run}/cancel", {})
    assert again.value.status == 409
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "worker", "--data-dir", str(p.data_dir), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "ran 0 jobs" in done.stderr, done.stderr[-2000:]
    doc = analyst.call("GET", f"/v1/runs/{run}")
    assert doc["job"]["status"] == "cancelled" and "result" not in doc


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cancelling_a_running_run_stores_nothing(prepared: Prepared) -> None:
    p = prepared
    analyst = p.hub.api("analyst")
    run = analyst.start_run(PROJECT)["run"]
    worker = start_worker(p, "worker.log")
    try:
        _wait(
            lambda: analyst.call("GET", f"/v1/runs/{run}")["job"]["stage"] == "linking",
            60,
            "the run to start linking",
        )
        assert analyst.call("POST", f"/v1/runs/{run}/cancel", {})["status"] == "cancelling"
        doc = _wait(
            lambda: (
                (d := analyst.call("GET", f"/v1/runs/{run}"))["job"]["status"] != "running" and d
            ),
            120,
            "the worker to stop the run",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert doc["job"]["status"] == "cancelled" and "result" not in doc
    assert _count(p, select(func.count()).select_from(run_results)) == 0
