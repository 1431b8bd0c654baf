"""Hub load test: concurrent connectors uploading and analysts polling a real hub on loopback.

Usage (from the repository root, in the project's venv)::

    .venv/bin/python bench/load.py [--seconds 60] [--connectors 16] [--analysts 32]
                                   [--auditors 2] [--agencies 4] [--analyst-users 8]
                                   [--sizes 300,800,1500,3000] [--chunk-kib 256]
                                   [--postgres postgresql://USER:PW@127.0.0.1/postgres]
    .venv/bin/python bench/load.py --quick     # what tests/integration/hub/test_load_quick.py runs

``--quick`` is 2 agencies, 4 connectors, 8 analysts, 1 auditor for 8 s (about 25 s a store).
For each store (SQLite unless ``--no-sqlite``; PostgreSQL with ``--postgres ADMIN_URL`` on a
fresh database it makes and drops, or on the empty database ``--database-url`` names):

1. ``hub init`` and ``hub serve`` on a loopback port (plain HTTP with bearer tokens; no mutual
   TLS), with ``limits.max_chunk_bytes`` set to ``--chunk-kib`` so that files of a few thousand
   rows go up in several chunks. Through the real API the administrator registers
   ``--agencies`` agencies, one agreement in force between all of them (each may upload its
   layout's attribute fields), one project, a data officer and token per agency,
   ``--analyst-users`` analysts and an auditor.
2. For ``--seconds``, at once:
   - ``--connectors`` connector clients (threads of one process; client ``c`` uploads for
     agency ``c mod agencies`` with its data officer's token, so several clients upload for
     one agency at the same time) each upload, again and again, one of its agency's encoded
     files (the connector's real output for prefixes of a synthetic export, one file per
     ``--sizes`` entry) with the connector's own upload code (``connectors.upload``): open,
     chunks, commit. Every ``--resume-every``-th multi-chunk upload of a client (its first,
     then every fourth by default) is interrupted after a random number of chunks and run
     again by a fresh client, which resumes the session from ``<file>.upload.json`` and must
     send only the missing chunks. Every commit answered 2xx is an acknowledged upload: its
     dataset version id, rows, SHA-256 and audit entry are kept;
   - ``--analysts`` analyst clients (asyncio + aiohttp, one connection each, tokens of the
     analyst users in turn) poll what an analyst reads: ``/v1/me``, projects, the project's
     datasets, runs and extracts, agreements, one agreement, agencies;
   - ``--auditors`` auditor clients monitor the log as ``audit monitor`` would: the newest
     checkpoint (signature checked), one entry's canonical bytes and its inclusion proof
     (checked against the checkpoint's root), and a consistency proof from the previous
     checkpoint they saw (checked).
   Every request's latency is recorded by kind; an error is any non-2xx answer (none is
   expected in this workload), a connection failure, a timeout, a retry the connector made
   after a transient failure, or a proof or answer that does not check.
3. The hub is stopped with SIGTERM (it must exit 0), started again, and an analyst lists the
   project's datasets; it is stopped again. Then "nothing lost" is checked: every acknowledged
   version is listed with its rows and SHA-256, its stored file decrypts (with its wrapped key
   and the master key) to bytes with that SHA-256 and row count, and its commit's audit entry
   names it. ``audit verify --db`` checks the whole log offline, and the log grew by at least
   as many entries as the load phase made requests (every access is audited).

Progress and a table go to stderr; the last line of stdout is the JSON result. The exit status
is 1 if anything was lost, any error occurred, the log does not verify, an access was not
audited, the hub logged an error, or it did not stop cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import csv
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_DIR, REPO_DIR, load_average, log, machine_info, print_result_line
from bench._hubsetup import (
    ORIGIN,
    add_agreement_project,
    db_url,
    fresh_postgres,
    init_hub,
    keygen,
    pseudonymise,
    serve_hub,
    stop_hub,
    user_token,
    verify_log,
)

PROJECT = "load"
AGREEMENT = "dsa-load"
#: (layout, export written by ``connectors.synth``, mapping under config/mappings/)
LAYOUTS = (
    ("ae", "ae_attendances.csv", "ae.toml"),
    ("police", "police_incidents.csv", "police.toml"),
)
ANALYST_PATHS = (
    "/v1/me",
    "/v1/projects",
    f"/v1/projects/{PROJECT}/datasets",
    f"/v1/projects/{PROJECT}/runs",
    f"/v1/projects/{PROJECT}/extracts",
    "/v1/agreements",
    f"/v1/agreements/{AGREEMENT}",
    "/v1/agencies",
)
AUDIT_KINDS = ("checkpoint", "entry", "inclusion", "consistency")
_MAX_ERROR_SAMPLES = 20


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoded file an agency's connector uploads."""

    agency: str
    path: str
    rows: int
    size: int
    sha256: str
    chunks: int


@dataclass(frozen=True, slots=True)
class Prepared:
    """What ``prepare`` made: files and attribute fields by agency, one file's metadata."""

    files: dict[str, list[Encoded]]
    fields: dict[str, list[str]]
    meta: dict[str, Any]


# --- data ----------------------------------------------------------------------------------


def _mapping_for(agency: str, mapping: str, out: Path) -> Path:
    """The layout's mapping with its ``[source] agency`` set to ``agency``."""
    text = (REPO_DIR / "config" / "mappings" / mapping).read_text(encoding="utf-8")
    text, n = re.subn(r'(?m)^agency = "[^"]*"$', f'agency = "{agency}"', text, count=1)
    if n != 1:
        raise RuntimeError(f"no agency line in config/mappings/{mapping}")
    path = out / f"{agency}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _csv_prefix(source: Path, rows: int, dest: Path) -> None:
    with source.open(newline="", encoding="utf-8") as f, dest.open("w", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g)
        for n, row in enumerate(reader):
            if n > rows:
                break
            writer.writerow(row)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(
    out: Path, agencies: int, sizes: Sequence[int], seed: int, chunk_bytes: int
) -> Prepared:
    """Synthetic exports, keys and each agency's encoded files (one per size), all made with
    the connector's own code."""
    import pyarrow.parquet as pq

    from connectors.synth import synthesise

    for sub in ("keys", "exports", "mappings", "encoded"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    keygen(out / "keys" / "project.key")
    people = int(max(sizes) / 0.4) + 500  # police rows are about 46% of people, A&E 63%
    files: dict[str, list[Encoded]] = {}
    fields: dict[str, list[str]] = {}
    meta: dict[str, Any] = {}
    for i in range(agencies):
        layout, export, mapping = LAYOUTS[i % len(LAYOUTS)]
        pair = i // len(LAYOUTS)
        agency = f"{layout}-load-{pair + 1}"
        exports = out / "exports" / f"seed{seed + pair}"
        if not (exports / export).exists():
            synthesise(people, seed + pair, exports)
        record_key = out / "keys" / f"{agency}-record.key"
        keygen(record_key, record_key=True)
        agency_mapping = _mapping_for(agency, mapping, out / "mappings")
        files[agency] = []
        for size in sizes:
            prefix = out / "exports" / f"{agency}-{size}.csv"
            _csv_prefix(exports / export, size, prefix)
            path = out / "encoded" / f"{agency}-{size}.parquet"
            pseudonymise(
                agency_mapping, out / "keys" / "project.key", record_key, prefix, path,
                "--workers", "1",
            )  # fmt: skip
            meta = json.loads(pq.read_metadata(path).metadata[b"pprl"])
            fields[agency] = [a["name"] for a in meta["attributes"]]
            nbytes = path.stat().st_size
            files[agency].append(
                Encoded(
                    agency=agency,
                    path=str(path),
                    rows=int(meta["row_count"]),
                    size=nbytes,
                    sha256=_sha256(path),
                    chunks=-(-nbytes // chunk_bytes),
                )
            )
    return Prepared(files, fields, meta)


# --- recording -----------------------------------------------------------------------------


@dataclass(slots=True)
class Recorder:
    """Latencies by request kind, errors, and the number of HTTP requests sent (one thread
    or one event loop each; merged afterwards)."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    requests: int = 0

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < _MAX_ERROR_SAMPLES:
            self.samples.append(f"{kind}: {what}"[:300])

    def merge(self, other: Recorder) -> None:
        for kind, values in other.latency.items():
            self.latency[kind].extend(values)
        for kind, n in other.errors.items():
            self.errors[kind] += n
        self.samples.extend(other.samples[: max(0, _MAX_ERROR_SAMPLES - len(self.samples))])
        self.requests += other.requests

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": dict(self.latency),
            "errors": dict(self.errors),
            "samples": self.samples,
            "requests": self.requests,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Recorder:
        rec = cls()
        for kind, values in doc["latency"].items():
            rec.latency[kind].extend(values)
        for kind, n in doc["errors"].items():
            rec.errors[kind] += n
        rec.samples = list(doc["samples"])
        rec.requests = int(doc["requests"])
        return rec


def _wait_until(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))


# --- connectors (one process, a thread per client) -----------------------------------------


def _upload_kind(method: str, path: str) -> str:
    if path.endswith("/commit"):
        return "commit"
    if "/chunks/" in path:
        return "chunk"
    return "open" if method == "POST" else "status"


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
            self.kind = _upload_kind(method, path)
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
    """Run every connector client for ``spec["seconds"]`` from ``spec["start_at"]``."""
    n = len(spec["connectors"])
    recs = [Recorder() for _ in range(n)]
    acked: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    _wait_until(spec["start_at"])
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


# --- analysts and auditors (one process, one event loop) -----------------------------------


async def _get(
    session: Any, url: str, kind: str, rec: Recorder, label: str | None = None
) -> tuple[int, bytes, Any] | None:
    """One GET: (status, body, headers) if it answered 2xx, else None (an error is recorded)."""
    import aiohttp

    started = time.perf_counter()
    rec.requests += 1
    try:
        async with session.get(url) as response:
            body = await response.read()
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, TimeoutError) as exc:
        rec.latency[kind].append(time.perf_counter() - started)
        rec.error(kind, f"{label or url}: {type(exc).__name__} {exc}")
        return None
    seconds = time.perf_counter() - started
    rec.latency[kind].append(seconds)
    if label is not None:
        rec.latency[label].append(seconds)
    if status >= 300:
        rec.error(kind, f"{label or url}: HTTP {status} {body[:200]!r}")
        return None
    return status, body, headers


def _session(token: str) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1),
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def _analyst(n: int, spec: dict[str, Any], deadline: float, rec: Recorder) -> None:
    tokens = spec["analyst_tokens"]
    async with _session(tokens[n % len(tokens)]) as session:
        i = n
        while time.perf_counter() < deadline:
            path = ANALYST_PATHS[i % len(ANALYST_PATHS)]
            await _get(session, spec["url"] + path, "poll", rec, f"GET {path}")
            i += 1


async def _auditor(n: int, spec: dict[str, Any], deadline: float, rec: Recorder) -> None:
    from audit.checkpoint import open_checkpoint
    from audit.errors import AuditError
    from audit.merkle import leaf_hash
    from audit.note import parse_vkey
    from audit.verify import verify_consistency, verify_inclusion

    vkey = parse_vkey(spec["log_vkey"])
    rng = random.Random(spec["seed"] * 7919 + n)
    url = spec["url"] + "/v1/audit"
    previous: Any = None
    async with _session(spec["auditor_token"]) as session:
        while time.perf_counter() < deadline:
            got = await _get(session, url + "/checkpoint", "checkpoint", rec)
            if got is None:
                continue
            try:
                cp, _ = open_checkpoint(got[1], vkey, spec["origin"])
            except AuditError as exc:
                rec.error("checkpoint", f"does not verify: {exc}")
                continue
            index = rng.randrange(cp.size)
            entry = await _get(session, f"{url}/entries.jsonl?after={index}&limit=1", "entry", rec)
            proof = await _get(
                session, f"{url}/proofs/inclusion?index={index}&size={cp.size}", "inclusion", rec
            )
            if entry is not None and proof is not None:
                try:
                    hashes = [base64.b64decode(h) for h in json.loads(proof[1])["proof"]]
                    leaf = leaf_hash(entry[1].rstrip(b"\n"))
                    verify_inclusion(leaf, index, cp.size, hashes, cp.root_hash)
                except (AuditError, ValueError, KeyError) as exc:
                    rec.error("inclusion", f"entry {index} in {cp.size}: {exc}")
            if previous is not None and previous.size < cp.size:
                old, new = previous.size, cp.size
                got = await _get(
                    session, f"{url}/proofs/consistency?old={old}&new={new}", "consistency", rec
                )
                if got is not None:
                    try:
                        hashes = [base64.b64decode(h) for h in json.loads(got[1])["proof"]]
                        verify_consistency(old, new, previous.root_hash, cp.root_hash, hashes)
                    except (AuditError, ValueError, KeyError) as exc:
                        rec.error("consistency", f"{old} -> {new}: {exc}")
            if previous is None or cp.size > previous.size:
                previous = cp


async def _pollers(spec: dict[str, Any]) -> tuple[Recorder, float]:
    rec = Recorder()
    started = time.perf_counter()
    deadline = started + spec["seconds"]
    await asyncio.gather(
        *(_analyst(n, spec, deadline, rec) for n in range(spec["analysts"])),
        *(_auditor(n, spec, deadline, rec) for n in range(spec["auditors"])),
    )
    return rec, time.perf_counter() - started


def pollers_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Run every analyst and auditor client for ``spec["seconds"]`` from ``spec["start_at"]``."""
    _wait_until(spec["start_at"])
    rec, elapsed = asyncio.run(_pollers(spec))
    return {"rec": rec.to_dict(), "elapsed": elapsed}


# --- after the load: nothing lost ----------------------------------------------------------


def _tree_size(url: str, token: str) -> int:
    """The newest checkpoint's tree size (``GET /v1/audit/checkpoint``; itself audited)."""
    req = urllib.request.Request(url + "/v1/audit/checkpoint")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as response:
        return int(response.headers["X-Tree-Size"])


def check_api(url: str, token: str, acked: Sequence[dict[str, Any]]) -> set[str]:
    """Versions an analyst sees listed, live, with the acknowledged rows and SHA-256."""
    req = urllib.request.Request(f"{url}/v1/projects/{PROJECT}/datasets")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as response:
        listed = {d["id"]: d for d in json.loads(response.read())["datasets"]}
    return {
        a["version"]
        for a in acked
        if (d := listed.get(a["version"])) is not None
        and (d["rows"], d["sha256"], d["agency"], d["erased"])
        == (a["rows"], a["sha256"], a["agency"], False)
    }


def check_store(data_dir: Path, acked: Sequence[dict[str, Any]]) -> set[str]:
    """Versions whose stored file decrypts (wrapped key from the database, master key from
    the data directory) to bytes with the acknowledged SHA-256 and row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy import select

    from audit.db import open_engine
    from hub.cipher import MasterKey
    from hub.datastore import DataStore
    from hub.store.schema import dataset_versions

    store = DataStore(data_dir, MasterKey.load(data_dir / "keys" / "master.key"))
    engine = open_engine(db_url(data_dir))
    try:
        with engine.connect() as conn:
            wrapped = dict(
                conn.execute(select(dataset_versions.c.id, dataset_versions.c.wrapped_key)).all()
            )
    finally:
        engine.dispose()
    intact = set()
    for a in acked:
        version = a["version"]
        if wrapped.get(version) is None:
            continue
        try:
            plain = store.read_dataset(version, store.data_key(bytes(wrapped[version]), version))
        except Exception as exc:  # noqa: BLE001 - any failure to read back counts as lost
            log(f"  {version}: cannot be read back: {type(exc).__name__}: {exc}")
            continue
        rows = pq.read_metadata(pa.BufferReader(plain)).num_rows
        if hashlib.sha256(plain).hexdigest() == a["sha256"] and rows == a["rows"]:
            intact.add(version)
    return intact


def check_entries(data_dir: Path, acked: Sequence[dict[str, Any]]) -> set[str]:
    """Versions whose commit's audit entry (the sequence number the hub answered with) is
    in the log, allowed, and names the version."""
    from audit import store as audit_store
    from audit.db import open_engine
    from audit.entry import decode

    wanted = {a["audit_entry"]: a["version"] for a in acked if a["audit_entry"] is not None}
    found = set()
    engine = open_engine(db_url(data_dir))
    try:
        with engine.connect() as conn:
            for row in audit_store.iter_entries(conn):
                version = wanted.get(row.seq)
                if version is None:
                    continue
                entry = decode(row.body)
                if entry.resource == f"dataset/{version}" and entry.outcome == "allowed":
                    found.add(version)
    finally:
        engine.dispose()
    return found


@dataclass(slots=True)
class ServerLog:
    """What the hub's JSON log says about the load phase."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    warnings: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)


def server_log(path: Path, start: int, end: int) -> ServerLog:
    """From the hub's JSON log between two byte offsets: server-side latencies (the access
    log's ``duration_ms``) by kind, the number of warning and error lines, and the first
    error lines (path, event and the exception's last line)."""
    with path.open("rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", "replace")
    out = ServerLog()
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        level = doc.get("level")
        out.warnings += level == "warning"
        if level in ("error", "critical", "exception"):
            out.errors += 1
            if len(out.samples) < 5:
                last = (doc.get("exception") or "").strip().splitlines()[-1:] or [""]
                out.samples.append(f"{doc.get('path')}: {doc.get('event')}: {last[0]}"[:400])
        if doc.get("logger") == "aiohttp.access" and "duration_ms" in doc:
            method, route = doc.get("method", ""), doc.get("path", "")
            if route.startswith("/v1/uploads/") or route.endswith("/uploads"):
                kind = _upload_kind(method, route)
            elif route.startswith("/v1/audit/"):
                kind = "audit"
            else:
                kind = "poll"
            out.latency[kind].append(doc["duration_ms"] / 1000)
    return out


# --- one store -----------------------------------------------------------------------------


def _ms(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if q == 0.5:
        return round(1000 * statistics.median(ordered), 2)
    return round(1000 * ordered[int(q * (len(ordered) - 1))], 2)


def _pcts(prefix: str, values: Sequence[float]) -> dict[str, Any]:
    return {f"{prefix}_p50_ms": _ms(values, 0.5), f"{prefix}_p99_ms": _ms(values, 0.99)}


def _set_chunk_size(data_dir: Path, chunk_bytes: int) -> None:
    config = data_dir / "hub.toml"
    text, n = re.subn(
        r"(?m)^max_chunk_bytes = \d+$",
        f"max_chunk_bytes = {chunk_bytes}",
        config.read_text(encoding="utf-8"),
    )
    if n != 1:
        raise RuntimeError("no limits.max_chunk_bytes line in hub.toml")
    config.write_text(text, encoding="utf-8")


def _link_files(files: Iterable[Encoded], into: Path) -> list[Encoded]:
    """Each connector client gets its own names for its agency's files, so the resumable
    upload state (``<file>.upload.json``) is its own."""
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        dest = into / Path(f.path).name
        os.link(f.path, dest)
        out.append(Encoded(**{**asdict(f), "path": str(dest)}))
    return out


def _set_up(url: str, admin: str, prepared: Prepared, analyst_users: int) -> dict[str, Any]:
    """The administrator's set-up through the API; the users' tokens."""
    agencies = list(prepared.files)
    add_agreement_project(
        url, admin, agreement=AGREEMENT, project=PROJECT,
        parties=[(a, prepared.fields[a]) for a in agencies], meta=prepared.meta,
    )  # fmt: skip
    return {
        "officers": {
            a: user_token(url, admin, f"{a} data officer", ["data_officer"], a) for a in agencies
        },
        "analysts": [
            user_token(url, admin, f"analyst {i + 1}", ["analyst"]) for i in range(analyst_users)
        ],
        "auditor": user_token(url, admin, "auditor", ["auditor"]),
    }


def _spec(
    args: argparse.Namespace,
    url: str,
    tokens: dict[str, Any],
    prepared: Prepared,
    clients_dir: Path,
    log_vkey: str,
) -> dict[str, Any]:
    """Everything the two load processes need (plain data: it crosses a process boundary)."""
    agencies = list(prepared.files)
    connectors = []
    for c in range(args.connectors):
        agency = agencies[c % len(agencies)]
        files = _link_files(prepared.files[agency], clients_dir / f"c{c}")
        connectors.append(
            {"token": tokens["officers"][agency], "files": [asdict(f) for f in files]}
        )
    return {
        "url": url,
        "seed": args.seed,
        "seconds": args.seconds,
        "resume_every": args.resume_every,
        "connectors": connectors,
        "analysts": args.analysts,
        "analyst_tokens": tokens["analysts"],
        "auditors": args.auditors,
        "auditor_token": tokens["auditor"],
        "log_vkey": log_vkey,
        "origin": ORIGIN,
    }


def _run_load(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The connectors' process and the pollers' process, started together."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        spec = {**spec, "start_at": time.time() + 3.0}  # both processes imported and waiting
        uploads = pool.submit(connectors_phase, spec)
        polls = pool.submit(pollers_phase, spec)
        return uploads.result(), polls.result()


def measure(
    system: str, args: argparse.Namespace, prepared: Prepared, out: Path, database: str | None
) -> dict[str, Any]:
    """One store: a fresh hub, the load, then the checks; the result row."""
    data_dir = out / system
    made = init_hub(data_dir, database)
    _set_chunk_size(data_dir, args.chunk_kib * 1024)
    log_path = data_dir.parent / f"{data_dir.name}-serve.log"
    proc, url = serve_hub(data_dir)
    exit_codes = []
    try:
        tokens = _set_up(url, made["admin"]["token"], prepared, args.analyst_users)
        spec = _spec(args, url, tokens, prepared, out / "clients" / system, made["log_public_key"])
        size_before = _tree_size(url, tokens["auditor"])
        log_start = log_path.stat().st_size
        log(
            f"{system}: {args.connectors} connectors, {args.analysts} analysts, "
            f"{args.auditors} auditors for {args.seconds:g} s"
        )
        uploads, polls = _run_load(spec)
        log_end = log_path.stat().st_size
        size_after = _tree_size(url, tokens["auditor"])
    finally:
        exit_codes.append(stop_hub(proc))
    acked: list[dict[str, Any]] = uploads["acked"]
    log(f"{system}: {len(acked)} uploads acknowledged; restarting the hub to list them")
    proc, url = serve_hub(data_dir)
    try:
        present = check_api(url, tokens["analysts"][0], acked)
    finally:
        exit_codes.append(stop_hub(proc))
    log(f"{system}: reading the store and the audit log")
    intact = check_store(data_dir, acked)
    entries_ok = check_entries(data_dir, acked)
    report = verify_log(data_dir, made["log_public_key"])
    server = server_log(log_path, log_start, log_end)
    up = Recorder.from_dict(uploads["rec"])
    po = Recorder.from_dict(polls["rec"])
    kept = present & intact & entries_ok
    result = {
        "system": system,
        "dataset": f"synthetic-encoded sizes={','.join(map(str, args.sizes))}",
        "seconds": args.seconds,
        "agencies": len(prepared.files),
        "connectors": args.connectors,
        "analysts": args.analysts,
        "analyst_users": args.analyst_users,
        "auditors": args.auditors,
        "chunk_kib": args.chunk_kib,
        **_upload_figures(acked, up, uploads["elapsed"]),
        **_poll_figures(po, polls["elapsed"]),
        "requests": up.requests + po.requests,
        "requests_per_s": round(
            (up.requests + po.requests) / max(uploads["elapsed"], polls["elapsed"]), 1
        ),
        **{
            figure: value
            for kind in ("chunk", "commit", "poll", "audit")
            for figure, value in _pcts(f"server_{kind}", server.latency.get(kind, [])).items()
        },
        "errors": sum(up.errors.values()) + sum(po.errors.values()),
        "errors_by_kind": {**dict(up.errors), **dict(po.errors)},
        "error_samples": (up.samples + po.samples)[:_MAX_ERROR_SAMPLES],
        "hub_log_warnings": server.warnings,
        "hub_log_errors": server.errors,
        "hub_log_error_samples": server.samples,
        "hub_exit_codes": exit_codes,
        "uploads_present": len(present),
        "uploads_intact": len(intact),
        "upload_entries_present": len(entries_ok),
        "lost": sum(1 for a in acked if a["version"] not in kept),
        "audit_entries_load": size_after - size_before - 1,  # less the first request's own
        "audit_entries": report.get("entries"),
        "log_verified": bool(report["ok"]),
        "by_request": _by_request(po),
    }
    result["passed"] = passed(result)
    return result


def _upload_figures(
    acked: Sequence[dict[str, Any]], up: Recorder, seconds: float
) -> dict[str, Any]:
    rows = sum(a["rows"] for a in acked)
    mb = sum(a["size"] for a in acked) / 1e6
    return {
        "uploads_acknowledged": len(acked),
        "uploads_resumed": sum(1 for a in acked if a["resumed"]),
        "uploads_multichunk": sum(1 for a in acked if a["chunks"] > 1),
        "chunks_sent": len(up.latency.get("chunk", [])),
        "upload_records": rows,
        "upload_mb": round(mb, 2),
        "uploads_per_s": round(len(acked) / seconds, 2),
        "upload_records_per_s": round(rows / seconds, 1),
        "upload_mb_per_s": round(mb / seconds, 2),
        **_pcts("upload", up.latency.get("upload", [])),
        **{
            figure: value
            for kind in ("open", "chunk", "commit")
            for figure, value in _pcts(kind, up.latency.get(kind, [])).items()
        },
    }


def _poll_figures(po: Recorder, seconds: float) -> dict[str, Any]:
    polls = po.latency.get("poll", [])
    audit = [x for kind in AUDIT_KINDS for x in po.latency.get(kind, [])]
    return {
        "poll_requests": len(polls),
        "poll_requests_per_s": round(len(polls) / seconds, 1),
        **_pcts("poll", polls),
        "audit_requests": len(audit),
        "audit_requests_per_s": round(len(audit) / seconds, 1),
        **_pcts("audit", audit),
    }


def _by_request(po: Recorder) -> dict[str, dict[str, Any]]:
    return {
        label: {"requests": len(values), "p50_ms": _ms(values, 0.5), "p99_ms": _ms(values, 0.99)}
        for label, values in sorted(po.latency.items())
        if label.startswith("GET ")
    }


def passed(r: dict[str, Any]) -> bool:
    """The run's verdict: nothing lost, no error, every access audited, the log verifies."""
    return (
        r["lost"] == 0
        and r["errors"] == 0
        and r["hub_log_errors"] == 0
        and (r["connectors"] == 0 or r["uploads_acknowledged"] > 0)
        and r["uploads_present"] == r["uploads_acknowledged"]
        and r["audit_entries_load"] >= r["requests"]
        and r["log_verified"]
        and all(code == 0 for code in r["hub_exit_codes"])
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    return str(value)


def _table(results: Sequence[dict[str, Any]]) -> str:
    columns = (
        ("store", "system"), ("uploads", "uploads_acknowledged"), ("present", "uploads_present"),
        ("lost", "lost"), ("rec/s", "upload_records_per_s"), ("up p50 ms", "upload_p50_ms"),
        ("up p99 ms", "upload_p99_ms"), ("chunk p99", "chunk_p99_ms"),
        ("commit p99", "commit_p99_ms"), ("poll/s", "poll_requests_per_s"),
        ("poll p50", "poll_p50_ms"), ("poll p99", "poll_p99_ms"), ("errors", "errors"),
        ("requests", "requests"), ("entries", "audit_entries_load"),
        ("verified", "log_verified"),
    )  # fmt: skip
    rows = [[head for head, _ in columns]]
    rows += [[_cell(r[key]) for _, key in columns] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = zip(row, widths, strict=True)
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))
        )
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("--sizes must be positive row counts, e.g. 300,1500")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI size: 2 agencies, 4 connectors, 8 analysts, 1 auditor, 8 s, sizes 200,600,1500",
    )
    parser.add_argument("--seconds", type=float, help="length of the load phase (60; quick 8)")
    parser.add_argument("--connectors", type=int, help="concurrent connector clients (16; quick 4)")
    parser.add_argument("--analysts", type=int, help="concurrent analyst pollers (32; quick 8)")
    parser.add_argument("--auditors", type=int, help="concurrent auditor monitors (2; quick 1)")
    parser.add_argument("--agencies", type=int, help="agencies uploading (4; quick 2)")
    parser.add_argument("--analyst-users", type=int, default=8, help="analyst accounts (8)")
    parser.add_argument(
        "--sizes", type=_sizes, help="rows per encoded file (300,800,1500,3000; quick 200,600,1500)"
    )
    parser.add_argument("--chunk-kib", type=int, default=256, help="the hub's chunk size (256)")
    parser.add_argument(
        "--resume-every", type=int, default=4, help="interrupt every Nth multi-chunk upload (4)"
    )
    parser.add_argument("--seed", type=int, default=1, help="synthetic data and choices (1)")
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="also run on a fresh database made on this PostgreSQL server",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="run the PostgreSQL row on this existing, empty database instead",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL row")
    parser.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out" / "load")
    args = parser.parse_args(argv)
    defaults = (
        {"seconds": 8.0, "connectors": 4, "analysts": 8, "auditors": 1, "agencies": 2,
         "sizes": [200, 600, 1500]}
        if args.quick
        else {"seconds": 60.0, "connectors": 16, "analysts": 32, "auditors": 2, "agencies": 4,
              "sizes": [300, 800, 1500, 3000]}
    )  # fmt: skip
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.no_sqlite and not (args.postgres or args.database_url):
        parser.error("--no-sqlite needs --postgres or --database-url")
    if min(args.agencies, args.analyst_users, args.chunk_kib, args.resume_every) < 1:
        parser.error("--agencies, --analyst-users, --chunk-kib, --resume-every must be >= 1")
    if min(args.connectors, args.analysts, args.auditors) < 0:
        parser.error("--connectors, --analysts and --auditors cannot be negative")

    machine = {**machine_info(), "load_average_before": load_average()}
    out: Path = args.out_dir
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ.setdefault("PYTHONPATH", str(REPO_DIR))
    log(f"encoding files of {', '.join(map(str, args.sizes))} rows for {args.agencies} agencies")
    (out / "data").mkdir()
    with (out / "data" / "connector.log").open("w") as sink, contextlib.redirect_stdout(sink):
        prepared = prepare(
            out / "data", args.agencies, args.sizes, args.seed, args.chunk_kib * 1024
        )
    results = []
    if not args.no_sqlite:
        results.append(measure("ours-sqlite", args, prepared, out, None))
    if args.database_url:
        results.append(measure("ours-postgresql", args, prepared, out, args.database_url))
    elif args.postgres:
        with fresh_postgres(args.postgres, "pprl_load") as url:
            results.append(measure("ours-postgresql", args, prepared, out, url))
    print(file=sys.stderr)
    print(_table(results), file=sys.stderr)
    for r in results:
        if not r["passed"]:
            log(f"{r['system']}: FAILED: errors {r['errors']} {r['errors_by_kind']}, lost "
                f"{r['lost']}, hub log errors {r['hub_log_errors']}, exit codes "
                f"{r['hub_exit_codes']}, log verified {r['log_verified']}, entries "
                f"{r['audit_entries_load']} for {r['requests']} requests")  # fmt: skip
            for sample in r["error_samples"][:5] + r["hub_log_error_samples"]:
                log(f"  {sample}")
    machine["load_average_after"] = load_average()
    print_result_line("load", machine, results)
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
