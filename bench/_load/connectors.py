"""The connector clients: the first load process, one thread per client.

Each client uploads, again and again until the deadline, one of its agency's encoded files
(chosen with a seeded RNG) with the connector's own upload code (``connectors.upload``: open,
chunks, commit), through a ``HubClient`` that times every request. A client's 1st,
(R+1)th, (2R+1)th, ... multi-chunk upload (R: ``resume_every``) is cut off after a random
number of chunks, by raising from the progress callback, and run again by a fresh
client, which must resume the session from ``<file>.upload.json`` and send only the missing
chunks. Every commit answered 2xx is an acknowledged upload: its dataset version id, rows,
size, SHA-256 and audit entry are kept for the checks.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from bench._load.data import Encoded
from bench._load.recording import Recorder, upload_kind, wait_until
from bench._load.setup import PROJECT


class _Interrupted(Exception):
    """Raised from the progress callback to cut an upload off after some chunks."""


def _timed_client(url: str, token: str, rec: Recorder) -> Any:
    """The connector's ``HubClient``, timing each call and counting every retry (a transient
    failure: connection error, timeout, 429 or 5xx) and every non-2xx answer as an error."""
    from connectors.upload import HubClient, UploadError

    class TimedClient(HubClient):
        def __init__(self) -> None:
            self.kind = "open"
            super().__init__(url, token, timeout=60.0, sleep=self._retry_sleep)

        def _retry_sleep(self, seconds: float) -> None:
            rec.error(self.kind, "transient failure, retried by the connector")
            time.sleep(seconds)

        def call(
            self,
            method: str,
            path: str,
            *,
            body: Any = None,
            data: bytes | None = None,
            headers: dict[str, str] | None = None,
        ) -> tuple[int, Any]:
            self.kind = upload_kind(method, path)
            before = self.requests
            started = time.perf_counter()
            try:
                status, doc = super().call(method, path, body=body, data=data, headers=headers)
            except UploadError as exc:
                rec.error(self.kind, f"{method} {path}: {exc}")
                raise
            finally:
                rec.latency[self.kind].append(time.perf_counter() - started)
                rec.requests += self.requests - before
            if status >= 300:
                rec.error(self.kind, f"{method} {path}: HTTP {status} {json.dumps(doc)[:200]}")
            return status, doc

    return TimedClient()


def _connector_client(
    n: int, spec: dict[str, Any], deadline: float, rec: Recorder, acked: list[dict[str, Any]]
) -> None:
    from connectors.upload import UploadError, upload

    client_spec = spec["connectors"][n]
    files = [Encoded(**f) for f in client_spec["files"]]
    rng = random.Random(spec["seed"] * 1000 + n)
    url, token = spec["url"], client_spec["token"]
    multichunk = 0
    while time.perf_counter() < deadline:
        f = rng.choice(files)
        path = Path(f.path)
        resume = f.chunks > 1 and multichunk % spec["resume_every"] == 0
        multichunk += f.chunks > 1
        cut = rng.randint(1, f.chunks - 1) if resume else 0
        started = time.perf_counter()
        try:
            if resume:

                def interrupt(sent: int, total: int, cut: int = cut) -> None:
                    if sent >= cut:
                        raise _Interrupted

                with contextlib.suppress(_Interrupted):
                    upload(_timed_client(url, token, rec), PROJECT, path, progress=interrupt)
                    rec.error("resume", f"{path.name}: the upload was not interrupted")
            result = upload(_timed_client(url, token, rec), PROJECT, path)
        except UploadError as exc:
            rec.error("upload", f"{path.name}: {exc}")
            continue
        seconds = time.perf_counter() - started
        rec.latency["upload"].append(seconds)
        if resume and result.chunks_sent != f.chunks - cut:
            rec.error(
                "resume",
                f"{path.name}: resumed after {cut} of {f.chunks} chunks but sent "
                f"{result.chunks_sent}",
            )
        if result.rows != f.rows:
            rec.error("commit", f"{path.name}: acknowledged {result.rows} rows, sent {f.rows}")
        acked.append({
            "version": result.dataset_version, "agency": f.agency, "rows": f.rows,
            "size": f.size, "sha256": f.sha256, "audit_entry": result.audit_entry,
            "chunks": f.chunks, "resumed": resume, "seconds": seconds,
        })  # fmt: skip


def connectors_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Run every connector client for ``spec["seconds"]`` from ``spec["start_at"]``: the
    merged recorder (``rec``, as plain data), the acknowledged uploads (``acked``) and the
    wall seconds from the start to the last client's last answer (``elapsed``)."""
    n = len(spec["connectors"])
    recs = [Recorder() for _ in range(n)]
    acked: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    wait_until(spec["start_at"])
    started = time.perf_counter()
    deadline = started + spec["seconds"]
    threads = [
        threading.Thread(target=_connector_client, args=(i, spec, deadline, recs[i], acked[i]))
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    total = Recorder()
    for rec in recs:
        total.merge(rec)
    return {
        "rec": total.to_dict(),
        "acked": [a for part in acked for a in part],
        "elapsed": elapsed,
    }
