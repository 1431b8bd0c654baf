"""The invariants, checked after every recovery over everything acknowledged so far.

*Nothing acknowledged is lost*: every committed upload the hub answered is a live dataset
version holding exactly the uploaded bytes; every chunk it acknowledged is listed by its
session while the session is open; every upload session it opened exists; every run whose
start it acknowledged, and every extract it approved, has reached a terminal state (finished,
or failed with an audit entry saying so); every audit entry an answer named is in the log at
that index with the expected resource, and every audited refusal is in the log.

*Nothing half-written is visible*: every dataset version has its file and the file decrypts to
the bytes its SHA-256 names; every chunk a session lists decrypts to its hash; every finished
run's links and entities decrypt and hold the counts its result row states; every release is
downloadable through the API with each file's declared SHA-256, and its signed manifest and
audit proof verify offline (``hub.manifest.verify_release``); and the other way round, every
dataset version, run result and release the log records as stored exists.

*The log verifies*: ``audit verify --db`` (the auditor's offline verifier, a separate process)
passes, and ``audit monitor --db --state`` accepts the newest checkpoint as consistent with the
one it accepted after the previous round (so the log never shrinks or forks across kills).

Files no visible object names after the hub's start-up sweep (``leftovers``) are reported
apart: they are not visible through the API, so they break no invariant, but a sweep that
misses them would let a disk fill up.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from audit import store as audit_store
from audit.db import open_engine
from audit.note import parse_vkey
from bench._common import REPO_DIR
from bench._faults.ledger import Item, Ledger
from bench._faults.world import ORIGIN, World
from hub.cipher import CipherError, MasterKey, open_decrypted
from hub.client import HubAPIError
from hub.datastore import DataStore
from hub.linkjob import load_entities, load_links
from hub.manifest import ManifestError, Release, verify_release
from hub.store.schema import (
    dataset_versions,
    extract_outputs,
    extract_requests,
    jobs,
    linkage_runs,
    run_results,
    upload_chunks,
    upload_sessions,
)

__all__ = ["Checker", "Findings"]

_TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Findings:
    """What one check found."""

    lost: list[str] = field(default_factory=list)  # newly lost items, with the reason
    half_written: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    log_verified: bool = False
    log_consistent: bool = False
    log_problem: str | None = None
    log_size: int = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not self.half_written and self.log_verified and self.log_consistent


class Checker:
    """Checks one hub's data directory; remembers what it already verified for good."""

    def __init__(self, world: World, ledger: Ledger, state_dir: Path) -> None:
        self.world = world
        self.ledger = ledger
        self.monitor_state = state_dir / "monitor.json"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._entries: dict[int, dict[str, Any]] = {}  # the log is append-only: read once
        self._downloaded: set[str] = set()
        self.store = DataStore(
            world.data_dir, MasterKey.load(world.data_dir / "keys" / "master.key")
        )

    def check(self, url: str) -> Findings:
        found = Findings()
        verify = self._audit("verify")
        monitor = self._audit("monitor", "--state", str(self.monitor_state))
        engine = open_engine(self.world.database_url())
        try:
            with engine.connect() as conn:
                self._read_entries(conn)
                self._datasets(conn, found)
                self._sessions(conn, found)
                self._runs(conn, found)
                self._extracts(conn, found, url)
                self._entries_acknowledged(found)
                self._log_matches_state(conn, found)
                self._output_leftovers(conn, found)
        finally:
            engine.dispose()
            self._audit_log(found, verify, monitor)
        return found

    # -- helpers ----------------------------------------------------------------------

    def _lose(self, found: Findings, item: Item, why: str) -> None:
        if self.ledger.lose(item, why):
            found.lost.append(f"{item.kind} {item.key}: {why}")

    def _read_entries(self, conn: Connection) -> None:
        start = max(self._entries, default=-1) + 1
        where = audit_store.EntryFilter(min_seq=start)
        for row in audit_store.iter_entries(conn, where):
            doc = json.loads(row.body)
            self._entries[row.seq] = {
                "resource": doc.get("resource"),
                "action": doc.get("action"),
                "outcome": doc.get("outcome"),
                "auth_method": doc.get("auth_method"),
            }

    def _has_entry(self, resource: str, action: str, outcome: str) -> bool:
        return any(
            e["resource"] == resource and e["action"] == action and e["outcome"] == outcome
            for e in self._entries.values()
        )

    # -- the audit log ----------------------------------------------------------------

    def _audit(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "audit.cli", *args, "--db", self.world.database_url(),
             "--log-key", self.world.log_vkey, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_DIR,
        )  # fmt: skip

    @staticmethod
    def _outcome(proc: subprocess.Popen[str]) -> tuple[bool, dict[str, Any], str]:
        out, err = proc.communicate(timeout=300)
        try:
            doc = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            doc = {}
        return proc.returncode == 0 and bool(doc.get("ok")), doc, err.strip()[-500:]

    def _audit_log(
        self, found: Findings, verify: subprocess.Popen[str], monitor: subprocess.Popen[str]
    ) -> None:
        """The outcome of ``audit verify`` and of ``audit monitor`` (against the checkpoint it
        accepted after the previous round), started before the other checks to run beside
        them."""
        found.log_verified, doc, err = self._outcome(verify)
        found.log_size = int(doc.get("entries", 0))
        if not found.log_verified:
            found.log_problem = f"audit verify: {doc.get('problem') or err}"
        found.log_consistent, doc, err = self._outcome(monitor)
        if not found.log_consistent and found.log_problem is None:
            found.log_problem = f"audit monitor: {err}"

    def _entries_acknowledged(self, found: Findings) -> None:
        resources = {e["resource"] for e in self._entries.values()}
        for item in list(self.ledger.items.values()):
            if item.resource is None:
                continue
            if item.audit_entry is not None:
                entry = self._entries.get(item.audit_entry)
                if entry is None or entry["resource"] != item.resource:
                    self._lose(found, item, f"audit entry {item.audit_entry} is not its entry")
            elif item.resource not in resources:
                self._lose(found, item, "its audit entry is not in the log")

    def _log_matches_state(self, conn: Connection, found: Findings) -> None:
        """What the log says was stored, is: an allowed upload entry's dataset version, a
        job's allowed ``link-run`` entry's run result and ``extract-build`` entry's release
        (each entry commits in the transaction that stores its object)."""
        versions = {v for (v,) in conn.execute(select(dataset_versions.c.id))}
        results = {
            r for (r,) in conn.execute(
                select(run_results.c.run_id).where(run_results.c.status == "succeeded")
            )
        }  # fmt: skip
        releases = {r for (r,) in conn.execute(select(extract_outputs.c.request_id))}
        for seq, e in self._entries.items():
            kind, _, name = str(e["resource"]).partition("/")
            if e["outcome"] != "allowed":
                continue
            if e["action"] == "upload" and kind == "dataset" and name not in versions:
                found.half_written.append(f"entry {seq} records dataset {name}, which is absent")
            if e["auth_method"] != "job":
                continue
            if e["action"] == "link-run" and name not in results:
                found.half_written.append(f"entry {seq} records run {name}'s result: absent")
            if e["action"] == "extract-build" and name not in releases:
                found.half_written.append(f"entry {seq} records release {name}: absent")

    # -- uploads ----------------------------------------------------------------------

    def _digest(self, key: bytes, path: Path, context: str) -> str | None:
        try:
            return hashlib.sha256(open_decrypted(key, path, context=context.encode())).hexdigest()
        except (CipherError, OSError):
            return None

    def _datasets(self, conn: Connection, found: Findings) -> None:
        rows = {r.id: r for r in conn.execute(select(dataset_versions))}
        for r in rows.values():
            if r.erased_us is not None:
                continue
            path = self.store.dataset_path(r.id)
            if not path.exists():
                found.half_written.append(f"dataset version {r.id} has no file")
                continue
            digest = self._digest(self.store.data_key(r.wrapped_key, r.id), path, r.id)
            if digest != r.sha256:
                found.half_written.append(
                    f"dataset version {r.id}'s file "
                    + ("does not decrypt" if digest is None else "holds other bytes")
                )
        for item in self.ledger.of("upload"):
            row = rows.get(item.key)
            if row is None:
                self._lose(found, item, "no such dataset version")
            elif row.erased_us is not None:
                self._lose(found, item, "erased")
            elif row.sha256 != item.detail["sha256"]:
                self._lose(found, item, "the version names other bytes")
        open_sessions = {
            s
            for (s,) in conn.execute(
                select(upload_sessions.c.id).where(upload_sessions.c.status == "open")
            )
        }
        live = {i for i, r in rows.items() if r.erased_us is None}
        live |= {"dv_" + s.removeprefix("up_") for s in open_sessions}
        for path in (self.world.data_dir / "datasets").iterdir():
            if path.name.removesuffix(".pprl-enc") not in live:
                found.leftovers.append(f"datasets/{path.name}")
        for path in (self.world.data_dir / "tmp").iterdir():
            found.leftovers.append(f"tmp/{path.name}")

    def _sessions(self, conn: Connection, found: Findings) -> None:
        sessions = {r.id: r for r in conn.execute(select(upload_sessions))}
        chunks = {
            (r.session_id, r.idx): r
            for r in conn.execute(
                select(upload_chunks)
                .join(upload_sessions, upload_sessions.c.id == upload_chunks.c.session_id)
                .where(upload_sessions.c.status == "open")
            )
        }
        for (session, index), r in chunks.items():
            key = self.store.data_key(sessions[session].wrapped_key, session)
            path = self.store.chunk_path(session, index)
            if self._digest(key, path, f"{session}/{index}") != r.sha256:
                found.half_written.append(f"chunk {session}/{index} is listed but unreadable")
        for item in self.ledger.of("session"):
            if item.key not in sessions:
                self._lose(found, item, "no such upload session")
        for item in self.ledger.of("chunk"):
            session = sessions.get(item.detail["session"])
            if session is None:
                self._lose(found, item, "its session is gone")
            elif session.status == "rejected":
                self._lose(found, item, "its session was rejected")
            elif session.status == "open" and (session.id, item.detail["index"]) not in chunks:
                self._lose(found, item, "the open session does not list it")
        for folder in (self.world.data_dir / "uploads").iterdir():
            s = sessions.get(folder.name)
            if s is None or s.status != "open":
                found.leftovers.append(f"uploads/{folder.name}")

    # -- runs and extracts ------------------------------------------------------------

    def _runs(self, conn: Connection, found: Findings) -> None:
        query = select(linkage_runs.c.id, jobs.c.status, jobs.c.error).join(
            jobs, jobs.c.id == linkage_runs.c.job_id
        )
        state = {r.id: r for r in conn.execute(query)}
        results = {r.run_id: r for r in conn.execute(select(run_results))}
        for run_id, result in results.items():
            if result.status != "succeeded":
                continue
            try:
                links, entities = load_links(self.store, result), load_entities(self.store, result)
                if links.num_rows != result.links or entities.num_rows != result.records:
                    found.half_written.append(f"run {run_id}'s outputs hold other counts")
            except (CipherError, OSError, ValueError) as exc:
                found.half_written.append(f"run {run_id}'s outputs do not read: {exc}")
        for item in self.ledger.of("run"):
            run = state.get(item.key)
            if run is None:
                self._lose(found, item, "no such run")
            elif run.status not in _TERMINAL:
                self._lose(found, item, f"its job is still {run.status} after recovery")
            elif run.status == "succeeded" and item.key not in results:
                self._lose(found, item, "succeeded without a result")
            elif run.status == "failed" and not self._has_entry(
                f"run/{item.key}", "link-run", "error"
            ):
                self._lose(found, item, f"failed without an audit entry ({run.error})")

    def _extracts(self, conn: Connection, found: Findings, url: str) -> None:
        requests = {r.id: r for r in conn.execute(select(extract_requests))}
        outputs = {r.request_id: r for r in conn.execute(select(extract_outputs))}
        job_state = {r.id: r for r in conn.execute(select(jobs.c.id, jobs.c.status, jobs.c.error))}
        for request_id, output in outputs.items():
            for f in json.loads(output.files):
                context = f"{request_id}/{f['stored']}"
                key = self.store.data_key(bytes.fromhex(f["wrapped_key"]), context)
                path = self.store.output_path(request_id, f["stored"])
                if self._digest(key, path, context) != f["sha256"]:
                    found.half_written.append(f"release {request_id}: {f['name']} does not read")
            if request_id not in self._downloaded:
                problem = self._download(url, request_id)
                if problem:
                    found.half_written.append(f"release {request_id}: {problem}")
                else:
                    self._downloaded.add(request_id)
        for item in self.ledger.of("extract"):
            request = requests.get(item.key)
            if request is None:
                self._lose(found, item, "no such extract request")
                continue
            job = job_state.get(request.job_id)
            if request.status == "released":
                if item.key not in outputs:
                    self._lose(found, item, "released without a release")
            elif request.status == "failed":
                if not self._has_entry(f"extract/{item.key}", "extract-build", "error"):
                    self._lose(found, item, "failed without an audit entry")
            else:
                job_text = "no job" if job is None else f"job {job.status}: {job.error}"
                self._lose(found, item, f"still {request.status} after recovery ({job_text})")

    def _download(self, url: str, request_id: str) -> str | None:
        """Download a release as its requester and verify it offline; the problem, if any."""
        with tempfile.TemporaryDirectory() as tmp:
            try:
                self.world.api(url, "analyst").download(request_id, Path(tmp))
                release = Release.from_json(json.loads(Path(tmp, "manifest.json").read_text()))
                verify_release(
                    release,
                    release_key=parse_vkey(self.world.made["release_public_key"]),
                    log_key=parse_vkey(self.world.log_vkey),
                    origin=ORIGIN,
                    files_dir=Path(tmp),
                )
            except (HubAPIError, ManifestError, OSError, ValueError) as exc:
                return f"{type(exc).__name__}: {exc}"
        return None

    def _output_leftovers(self, conn: Connection, found: Findings) -> None:
        owners = {r for (r,) in conn.execute(select(run_results.c.run_id))}
        owners |= {r for (r,) in conn.execute(select(extract_outputs.c.request_id))}
        owners |= {
            r
            for (r,) in conn.execute(
                select(jobs.c.subject_id).where(jobs.c.status.in_(("queued", "running")))
            )
        }
        named: dict[str, set[str]] = {}
        for r in conn.execute(select(run_results).where(run_results.c.status == "succeeded")):
            named[r.run_id] = {f"{n}-{r.attempt}.pprl-enc" for n in ("links", "entities")}
        for r in conn.execute(select(extract_outputs)):
            named[r.request_id] = {f"{f['stored']}.pprl-enc" for f in json.loads(r.files)}
        for path in (self.world.data_dir / "outputs").iterdir():
            if path.name not in owners:
                found.leftovers.append(f"outputs/{path.name}")
            elif path.name in named:  # files of an attempt whose result was not stored
                found.leftovers += [
                    f"outputs/{path.name}/{f.name}"
                    for f in path.iterdir()
                    if f.name not in named[path.name]
                ]
