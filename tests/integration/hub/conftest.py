"""A real hub on loopback: ``hub init`` in a temporary data directory (SQLite or a fresh
PostgreSQL database), then ``hub serve`` as a subprocess, stopped after the test."""

from __future__ import annotations

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

import pytest

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
