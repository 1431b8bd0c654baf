"""Set-up shared by the hub benchmarks (``hub.py``, ``load.py``): a real hub on loopback.

- ``init_hub`` runs ``hub init`` (SQLite in the data directory, or the PostgreSQL URL given),
  ``serve_hub`` starts ``hub serve`` on a free loopback port, ``stop_hub`` sends SIGTERM and
  waits for a clean exit;
- ``fresh_postgres`` makes an empty PostgreSQL database for one run and drops it afterwards;
- ``call`` is one authenticated JSON request (``urllib``); ``add_agreement_project`` and
  ``user_token`` do the administrator's set-up through the real API, so every step passes the
  same authentication, permission checks and audit entries as any client;
- ``keygen`` and ``pseudonymise`` run the connector's own command line in-process;
- ``verify_log`` runs ``audit verify --db --json`` on the hub's database as a separate process.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_DIR

PYTHON = str(REPO_DIR / ".venv" / "bin" / "python")
ORIGIN = "bench.hub.invalid/audit"


def call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One JSON request with a bearer token; the parsed answer (an HTTP error raises)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


def init_hub(data_dir: Path, database: str | None, origin: str = ORIGIN) -> dict[str, Any]:
    """``hub init --json`` for a new data directory; its JSON (admin token, log key...)."""
    args = [PYTHON, "-m", "hub.cli", "init", "--data-dir", str(data_dir), "--origin", origin,
            "--json"]  # fmt: skip
    if database:
        args += ["--database-url", database]
    done = subprocess.run(args, capture_output=True, text=True, check=True, cwd=REPO_DIR)
    made: dict[str, Any] = json.loads(done.stdout)
    return made


def serve_hub(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``hub serve`` (no job workers) on a free loopback port, logging beside the data
    directory; returns once ``/readyz`` answers."""
    from hub.local import serve_local

    return serve_local(data_dir, data_dir.parent / f"{data_dir.name}-serve.log")


def start_hub(
    data_dir: Path, database: str | None
) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """``init_hub`` then ``serve_hub``: (process, base URL, init JSON)."""
    made = init_hub(data_dir, database)
    proc, url = serve_hub(data_dir)
    return proc, url, made


def stop_hub(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """SIGTERM (aiohttp's graceful shutdown) and wait; the exit status (0 when clean)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


@contextlib.contextmanager
def fresh_postgres(admin_url: str, prefix: str = "pprl_bench") -> Iterator[str]:
    """A new, empty database on the server of ``admin_url`` (a role that may create
    databases); yields its URL and drops it afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_agreement_project(
    url: str,
    admin: str,
    *,
    agreement: str,
    project: str,
    parties: Sequence[tuple[str, Sequence[str]]],
    meta: dict[str, Any],
) -> None:
    """Register each party agency, an agreement in force between them (each with the
    attribute fields it may upload), and a project under it for the encoded files' schema
    and key check value (``meta``: an encoded file's ``pprl`` metadata)."""
    for agency, _ in parties:
        call(url, admin, "POST", "/v1/agencies", {"id": agency, "name": agency})
    call(url, admin, "POST", "/v1/agreements", {
        "id": agreement, "title": "bench", "purpose": "benchmark", "status": "active",
        "parties": [
            {"agency": agency, "lawful_basis": "bench", "fields": list(fields)}
            for agency, fields in parties
        ],
        "retention_days": 30, "review_date": "2099-01-01",
    })  # fmt: skip
    call(url, admin, "POST", "/v1/projects", {
        "id": project, "name": project, "agreement": agreement,
        "schema_id": meta["schema"]["id"], "schema_hash": meta["schema"]["hash"],
        "key_check_value": meta["key_check_value"],
    })  # fmt: skip


def user_token(
    url: str, admin: str, name: str, roles: Sequence[str], agency: str | None = None
) -> str:
    """Create a user with ``roles`` (of ``agency``, if given) and issue a token for them."""
    body: dict[str, Any] = {"name": name, "roles": list(roles)}
    if agency is not None:
        body["agency"] = agency
    user = call(url, admin, "POST", "/v1/users", body)
    return str(call(url, admin, "POST", f"/v1/users/{user['id']}/tokens", {})["token"])


def keygen(out: Path, *, record_key: bool = False) -> None:
    """``connector keygen`` (the project's linkage secret, or an agency's record key)."""
    from connectors.cli import main as connector

    connector(["keygen", *(["--record-key"] if record_key else []), "--out", str(out)])


def pseudonymise(
    mapping: Path, key: Path, record_key: Path, source: Path, output: Path, *workers: str
) -> None:
    """``connector pseudonymise`` with schema v2, quietly (``workers``: extra arguments such
    as ``"--workers", "1"``)."""
    from connectors.cli import main as connector

    code = connector([
        "pseudonymise", "--mapping", str(mapping),
        "--schema", str(REPO_DIR / "config/encoding/v2.toml"),
        "--key", str(key), "--record-key", str(record_key),
        "--input", str(source), "--output", str(output), "--quiet", *workers,
    ])  # fmt: skip
    if code not in (0, None):
        raise RuntimeError(f"connector pseudonymise failed ({code}) on {source}")


def db_url(data_dir: Path) -> str:
    """The hub's database URL, from its ``hub.toml``."""
    from hub.config import load_config

    return load_config(data_dir).database_url()


def verify_log(data_dir: Path, vkey: str) -> dict[str, Any]:
    """``audit verify --db --json`` on the hub's database: its report (``ok``, ``entries``,
    ``checkpoints``, ``problem``...), or ``{"ok": False, ...}`` if it printed none."""
    done = subprocess.run(
        [PYTHON, "-m", "audit.cli", "verify", "--db", db_url(data_dir), "--log-key", vkey,
         "--json"],
        capture_output=True, text=True, check=False, cwd=REPO_DIR,
    )  # fmt: skip
    try:
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "entries": None, "problem": done.stderr[-2000:]}
    report["ok"] = bool(report.get("ok")) and done.returncode == 0
    return report
