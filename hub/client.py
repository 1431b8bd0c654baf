"""A synchronous client for the hub's API: what ``hubctl``, ``make demo`` and the end-to-end
tests use. JSON in and out; errors become :class:`HubAPIError` carrying the hub's
``{"error": {"code", "message"}}``; downloads are checked against the SHA-256 the hub
declares and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["HubAPI", "HubAPIError"]


class HubAPIError(Exception):
    """The hub refused or failed a request (``status`` 0: it could not be reached)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class HubAPI:
    """One caller (a bearer token) talking to one hub."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 120.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise HubAPIError(0, "usage", "the hub URL must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._tls = tls
        self._timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, *, params: dict[str, Any] | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The raw response body and headers; ``HubAPIError`` for any error status."""
        url = self.base_url + path
        if params:
            query = {k: v for k, v in params.items() if v is not None}
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._tls) as r:
                return r.read(), dict(r.headers.items())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                error = json.loads(raw)["error"]
                code, message = str(error["code"]), str(error["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", raw[:200].decode("utf-8", "replace")
            raise HubAPIError(exc.code, code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise HubAPIError(0, "unreachable", f"cannot reach {self.base_url}: {exc}") from None

    def call(
        self, method: str, path: str, body: Any = None, *, params: dict[str, Any] | None = None
    ) -> Any:
        raw, _ = self.request(method, path, body, params=params)
        return json.loads(raw)

    # -- runs -------------------------------------------------------------------------

    def start_run(
        self, project: str, datasets: list[str] | None = None, threshold: float | None = None
    ) -> Any:
        body: dict[str, Any] = {}
        if datasets:
            body["datasets"] = datasets
        if threshold is not None:
            body["threshold"] = threshold
        return self.call("POST", f"/v1/projects/{project}/runs", body)

    def wait_run(
        self,
        run: str,
        *,
        timeout: float = 3600.0,
        interval: float = 0.5,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> Any:
        """Poll a run until its job finishes; the run (``HubAPIError`` on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.call("GET", f"/v1/runs/{run}")
            if progress is not None:
                progress(doc)
            if doc["job"]["status"] in ("succeeded", "failed", "cancelled"):
                return doc
            if time.monotonic() > deadline:
                raise HubAPIError(0, "timeout", f"run {run} did not finish in {timeout:.0f} s")
            time.sleep(interval)

    # -- extracts -----------------------------------------------------------------------

    def wait_extract(self, extract: str, *, timeout: float = 3600.0, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            doc = self.call("GET", f"/v1/extracts/{extract}")
            if doc["status"] not in ("pending", "approved"):
                return doc
            if time.monotonic() > deadline:
                raise HubAPIError(0, "timeout", f"extract {extract} was not built in time")
            time.sleep(interval)

    def download(self, extract: str, out_dir: Path) -> list[Path]:
        """The release's manifest (``manifest.json``) and files into ``out_dir``; each
        file's SHA-256 is checked against what the hub declared before it is kept."""
        out_dir.mkdir(parents=True, exist_ok=True)
        release = self.call("GET", f"/v1/extracts/{extract}/manifest")
        _atomic_write(out_dir / "manifest.json", json.dumps(release, indent=2).encode())
        doc = self.call("GET", f"/v1/extracts/{extract}")
        written = [out_dir / "manifest.json"]
        for f in doc["release"]["files"]:
            name = Path(f["name"]).name
            data, headers = self.request("GET", f"/v1/extracts/{extract}/files/{name}")
            digest = hashlib.sha256(data).hexdigest()
            if digest != f["sha256"] or headers.get("X-Content-SHA256") != digest:
                raise HubAPIError(0, "corrupt", f"{name} arrived damaged (SHA-256 differs)")
            _atomic_write(out_dir / name, data)
            written.append(out_dir / name)
        return written
