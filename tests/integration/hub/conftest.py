"""A real hub on loopback: ``hub init`` in a temporary data directory (SQLite or a fresh
PostgreSQL database), then ``hub serve`` as a subprocess, stopped after the test."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from connectors import demo as connector_demo
from hub.demo import PROJECT, Hub, set_up, upload_both
from hub.local import serve_local
from tests.conftest import REPO

HUB = [sys.executable, "-m", "hub.cli"]
ORIGIN = "hub.test.invalid/audit"


@dataclass
class RunningHub:
    data_dir: Path
    url: str
    admin_token: str
    log_vkey: str
    process: subprocess.Popen[bytes]

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            payload, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        is_json = kind.startswith("application/json")
        return status, json.loads(payload) if is_json else payload.decode()

    def token_for(self, name: str, roles: list[str], agency: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "roles": roles}
        if agency:
            body["agency"] = agency
        status, user = self.call("POST", "/v1/users", self.admin_token, body)
        assert status == 201, user
        status, tok = self.call("POST", f"/v1/users/{user['id']}/tokens", self.admin_token, {})
        assert status == 201, tok
        return str(tok["token"])


def _init(data_dir: Path, database: str) -> dict[str, Any]:
    args = [*HUB, "init", "--data-dir", str(data_dir), "--origin", ORIGIN, "--json"]
    if "://" in database:
        args += ["--database-url", database]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    made: dict[str, Any] = json.loads(done.stdout)
    return made


def start_hub(data_dir: Path, made: dict[str, Any]) -> RunningHub:
    proc, url = serve_local(data_dir, data_dir.parent / "hub-serve.log")
    return RunningHub(data_dir, url, made["admin"]["token"], made["log_public_key"], proc)


def stop_hub(hub: RunningHub, sig: int = signal.SIGTERM) -> None:
    if hub.process.poll() is None:
        hub.process.send_signal(sig)
        try:
            hub.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait()


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[RunningHub]:
    data_dir = tmp_path / "hub"
    made = _init(data_dir, database_url if "://" in database_url else "sqlite")
    running = start_hub(data_dir, made)
    try:
        yield running
    finally:
        stop_hub(running)


@dataclass
class Prepared:
    hub: Hub
    data_dir: Path
    out: Path


def quick_lease(data_dir: Path) -> None:
    config = data_dir / "hub.toml"
    text = config.read_text()
    text = text.replace("lease_seconds = 60", "lease_seconds = 3")
    text = text.replace("heartbeat_seconds = 5", "heartbeat_seconds = 1")
    config.write_text(text)


@pytest.fixture
def prepared(database_url: str, tmp_path: Path) -> Iterator[Prepared]:
    """A hub (API only, no workers) with both agencies' uploads in the project."""
    out = tmp_path / "scenario"
    console = Console(file=io.StringIO(), width=120)
    connector_demo.run(out, 600, 5, console)
    encoded = {a: out / "encoded" / f"{a}.parquet" for a in ("ae", "police")}
    meta = {a: json.loads(pq.read_metadata(p).metadata[b"pprl"]) for a, p in encoded.items()}
    made = _init(out / "hub", database_url if "://" in database_url else "sqlite")
    quick_lease(out / "hub")
    proc, url = serve_local(out / "hub", out / "hub-serve.log", workers=0)
    try:
        hub = set_up(url, made, meta, console)
        upload_both(hub, encoded, console)
        yield Prepared(hub, out / "hub", out)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def start_worker(p: Prepared, log: str) -> subprocess.Popen[bytes]:
    """A ``hub worker`` process for the prepared hub, logging to a file."""
    with (p.out / log).open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--data-dir", str(p.data_dir)],
            stdout=sink,
            stderr=sink,
            cwd=REPO,
        )


__all__ = ["PROJECT", "Prepared", "RunningHub", "prepared", "start_worker"]
