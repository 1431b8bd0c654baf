"""``bench/load.py --quick``: a real hub under concurrent uploads and polling loses nothing.

One run per store (SQLite; PostgreSQL on a fresh database from ``tests/conftest.py``): four
connector clients upload, eight analysts and an auditor poll for about eight seconds; then the
hub is stopped, restarted and checked (bench/README.md, "load"). Each run takes about 25 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REPO, _postgres_admin_url

ANALYST_PATHS = {
    "GET /v1/me",
    "GET /v1/projects",
    "GET /v1/projects/load/datasets",
    "GET /v1/projects/load/runs",
    "GET /v1/projects/load/extracts",
    "GET /v1/agreements",
    "GET /v1/agreements/dsa-load",
    "GET /v1/agencies",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, Any], str]:
    """Exit status, the one result row and stderr of a quick run on one store (PostgreSQL: the
    bench makes a fresh database on the test server and drops it afterwards)."""
    out = tmp_path_factory.mktemp(f"load-{request.param}")
    args = [sys.executable, str(REPO / "bench" / "load.py"), "--quick", "--out-dir", str(out)]
    if request.param == "postgresql":
        args += ["--postgres", _postgres_admin_url(), "--no-sqlite"]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.stdout.strip(), done.stderr[-3000:]
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    assert doc["bench"] == "load"
    assert len(doc["results"]) == 1
    row: dict[str, Any] = doc["results"][0]
    assert row["system"] == f"ours-{request.param}"
    return done.returncode, row, done.stderr


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_and_every_access_is_audited(
    run: tuple[int, dict[str, Any], str],
) -> None:
    """Every acknowledged upload is listed after a restart, decrypts to the bytes sent and has
    its audit entry; no request failed; the log verifies offline and holds an entry for every
    request of the load phase; the hub stopped cleanly both times; the bench exits 0."""
    code, r, stderr = run
    assert r["errors"] == 0, (r["errors_by_kind"], r["error_samples"])
    assert r["lost"] == 0
    assert r["uploads_acknowledged"] > 0
    assert r["uploads_present"] == r["uploads_acknowledged"]
    assert r["uploads_intact"] == r["uploads_acknowledged"]
    assert r["upload_entries_present"] == r["uploads_acknowledged"]
    assert r["log_verified"] is True
    assert r["audit_entries_load"] >= r["requests"] > 0
    assert r["audit_entries"] > r["audit_entries_load"]
    assert r["hub_exit_codes"] == [0, 0]
    assert r["hub_log_errors"] == 0
    assert r["passed"] is True
    assert code == 0, stderr[-3000:]


@pytest.mark.slow
def test_the_load_exercised_every_kind_of_request(run: tuple[int, dict[str, Any], str]) -> None:
    """Multi-chunk and resumed uploads happened, every analyst endpoint and the auditor's
    proofs were polled, and each kind has latency figures."""
    _, r, _ = run
    assert r["uploads_multichunk"] > 0
    assert r["uploads_resumed"] > 0
    assert r["chunks_sent"] > r["uploads_acknowledged"]
    assert r["upload_records"] > 0 and r["upload_records_per_s"] > 0
    assert set(r["by_request"]) == ANALYST_PATHS
    assert r["poll_requests"] > 0 and r["audit_requests"] > 0
    for kind in ("upload", "open", "chunk", "commit", "poll", "audit"):
        assert 0 < r[f"{kind}_p50_ms"] <= r[f"{kind}_p99_ms"], kind
