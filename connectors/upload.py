"""Uploading an encoded file to the hub: the connector's only network I/O.

``upload(client, project, path)`` opens an upload session (size and SHA-256 of the file),
sends each chunk with its SHA-256, and commits. It survives interruptions:

- a failed request (connection refused or reset, a timeout, a 5xx or 429) is retried with
  exponential backoff and jitter, up to ``retries`` times;
- the session id is remembered in ``<file>.upload.json`` beside the file, so running the
  same upload again asks the hub which chunks it already holds and sends only the rest
  (the state is ignored if the file changed since, or the hub no longer knows the session);
- sending a chunk or a commit twice is harmless (the hub answers the same), so a retry after
  a lost response cannot duplicate anything.

What is sent is only the encoded file, never the keymap or the keys; the token is read from a
file and sent only in the ``Authorization`` header.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.errors import ConnectorError

__all__ = ["HubClient", "UploadError", "UploadResult", "upload"]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class UploadError(ConnectorError):
    """The hub refused the upload, or could not be reached after every retry."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class UploadResult:
    dataset_version: str
    rows: int
    chunks_sent: int
    chunks_total: int
    audit_entry: int | None


class HubClient:
    """A small JSON-over-HTTP client with retries; ``sleep`` is injectable for tests."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retries: int = 6,
        backoff: float = 0.5,
        timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UploadError("--hub must be an http:// or https:// URL")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._retries = retries
        self._backoff = backoff
        self._timeout = timeout
        self._sleep = sleep
        self.requests = 0

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send a request, retrying transient failures; returns (status, parsed JSON)."""
        payload = (
            data if data is not None else (None if body is None else json.dumps(body).encode())
        )
        all_headers = {"Authorization": f"Bearer {self._token}", **(headers or {})}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        for attempt in range(self._retries + 1):
            request = urllib.request.Request(
                self.base_url + path, data=payload, method=method, headers=all_headers
            )
            self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                doc = _json(exc.read())
                if exc.code not in _RETRY_STATUSES or attempt == self._retries:
                    return exc.code, doc
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self._retries:
                    raise UploadError(f"cannot reach the hub at {self.base_url}: {exc}") from None
            self._sleep(self._backoff * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _message(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return str(doc["error"].get("message", "refused"))
    return "refused"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".upload.json")


def _load_state(path: Path, project: str, size: int, sha256: str) -> str | None:
    try:
        state = json.loads(_state_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    same = (state.get("project"), state.get("size"), state.get("sha256")) == (project, size, sha256)
    session = state.get("session")
    return session if same and isinstance(session, str) else None


def _save_state(path: Path, project: str, size: int, sha256: str, session: str) -> None:
    tmp = _state_path(path).with_suffix(".tmp")
    doc = {"project": project, "size": size, "sha256": sha256, "session": session}
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, _state_path(path))


def upload(
    client: HubClient,
    project: str,
    path: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> UploadResult:
    """Upload ``path`` into ``project`` (see the module docstring); ``progress(sent, total)``
    is called after each chunk."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UploadError(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise UploadError(f"{path} is empty")
    sha256 = _sha256(path)
    session = _load_state(path, project, size, sha256)
    info: Any = None
    if session is not None:
        status, info = client.call("GET", f"/v1/uploads/{session}")
        if status != 200 or info.get("status") not in ("open", "committed"):
            session = None
    if session is None:
        status, info = client.call(
            "POST", f"/v1/projects/{project}/uploads", body={"size": size, "sha256": sha256}
        )
        if status != 201:
            raise UploadError(f"the hub refused the upload ({status}): {_message(info)}")
        session = str(info["id"])
        _save_state(path, project, size, sha256, session)
        info = {**info, "received": [], "status": "open"}
    chunk_size, total = int(info["chunk_size"]), int(info["chunk_count"])
    have = set(info.get("received", []))
    sent = 0
    with path.open("rb") as f:
        for index in range(total):
            if index in have or info.get("status") == "committed":
                continue
            f.seek(index * chunk_size)
            chunk = f.read(chunk_size)
            status, doc = client.call(
                "PUT",
                f"/v1/uploads/{session}/chunks/{index}",
                data=chunk,
                headers={
                    "X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest(),
                    "Content-Type": "application/octet-stream",
                },
            )
            if status != 200:
                raise UploadError(f"chunk {index} was refused ({status}): {_message(doc)}")
            sent += 1
            if progress is not None:
                progress(len(have) + sent, total)
    status, doc = client.call("POST", f"/v1/uploads/{session}/commit")
    if status not in (200, 201):
        _state_path(path).unlink(missing_ok=True)
        raise UploadError(f"the hub refused the file ({status}): {_message(doc)}")
    _state_path(path).unlink(missing_ok=True)
    return UploadResult(
        dataset_version=str(doc["id"]),
        rows=int(doc["rows"]),
        chunks_sent=sent,
        chunks_total=total,
        audit_entry=doc.get("audit_entry"),
    )
