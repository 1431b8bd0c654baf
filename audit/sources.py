"""Reading a whole log, for verification and export: from a database or an export directory.

An export directory (written by ``write_export``) holds everything needed to verify the
log offline, and nothing else:

- ``entries.jsonl``: every entry's canonical bytes, one per line, in sequence order (the
  canonical encoding is ASCII without line breaks, so a line is exactly the leaf data);
- ``checkpoints/<size>.checkpoint``: every signed checkpoint, as a C2SP signed note
  carrying the log's signature and any witnesses' cosignatures;
- ``consistency/<old>-<new>.proof``: the RFC 9162 consistency proof between each pair of
  consecutive checkpoints, one base64 hash per line (a witness or monitor that has only
  the checkpoints can check these without the entries);
- ``MANIFEST.json``: the format, origin, counts and the SHA-256 of every file above.

``audit verify --export DIR`` recomputes everything from the entries and checks the
proofs too. The manifest's hashes catch a damaged copy; the signatures are what an
altered one cannot survive.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

from audit import store
from audit.entry import decode
from audit.errors import AuditError, LogStateError, StoreError
from audit.log import stored_fields
from audit.logcheck import EntryRow, Tree
from audit.merkle import consistency_ranges, leaf_hash
from audit.note import Note, parse_note, parse_signature_line

__all__ = ["EXPORT_FORMAT", "DatabaseSource", "ExportSource", "HubSource", "write_export"]

EXPORT_FORMAT = "pprl-audit-export/1"
_CHECKPOINT_NAME = re.compile(r"(0|[1-9][0-9]*)\.checkpoint")
_COSIG_PREFIX = 8  # a cosignature's signature bytes start with an 8-byte timestamp


class DatabaseSource:
    """A log read straight from the hub's database."""

    def __init__(self, engine: Engine, description: str | None = None) -> None:
        self.engine = engine
        self.description = description or f"database {engine.url.render_as_string()}"
        with engine.connect() as conn:
            store.check_schema(conn)

    def entries(self) -> Iterator[store.StoredEntry]:
        with self.engine.connect() as conn:
            yield from store.iter_entries(conn)

    def entry_chunks(self, size: int) -> Iterator[list[EntryRow]]:
        query = (
            "SELECT seq, time_us, actor, agency, action, dsa_id, outcome, body "
            "FROM audit_entries ORDER BY seq"
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=size).exec_driver_sql(query)
            for part in result.partitions(size):
                yield [(s, t, a, g, c, d, o, bytes(b)) for s, t, a, g, c, d, o, b in part]

    def checkpoints(self) -> list[store.StoredCheckpoint]:
        with self.engine.connect() as conn:
            return list(store.iter_checkpoints(conn))

    def cosignatures(self) -> list[store.StoredCosignature]:
        with self.engine.connect() as conn:
            return list(store.iter_cosignatures(conn))

    def worker_url(self) -> str | None:
        """The URL worker processes open to read ranges themselves (holds the password:
        passed to child processes only, never printed)."""
        return self.engine.url.render_as_string(hide_password=False)

    def entry_total(self) -> int:
        with self.engine.connect() as conn:
            return store.entry_count(conn)

    def node_total(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_nodes")).scalar_one())

    def nodes_above(self, level: int) -> Iterator[tuple[int, int, bytes]]:
        query = text(
            "SELECT level, idx, hash FROM audit_nodes WHERE level > :l ORDER BY level, idx"
        )
        with self.engine.connect() as conn:
            for lv, idx, value in conn.execute(query, {"l": level}):
                yield int(lv), int(idx), bytes(value)


def _cosignature_rows(size: int, note: Note, log_name: str) -> list[store.StoredCosignature]:
    rows = []
    for sig in note.signatures:
        if sig.name == log_name:
            continue
        timestamp = int.from_bytes(sig.signature[:_COSIG_PREFIX], "big")
        line = sig.to_line()
        rows.append(store.StoredCosignature(size, sig.name, sig.key_id, line, timestamp, 0))
    return rows


class ExportSource:
    """A log read from an export directory (see the module docstring)."""

    def __init__(self, directory: Path, log_name: str) -> None:
        self.directory = directory
        self.description = f"export {directory}"
        self._log_name = log_name
        manifest = directory / "MANIFEST.json"
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{directory} is not an audit export (no MANIFEST.json)") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {manifest}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
            raise StoreError(f"{manifest} is not a {EXPORT_FORMAT} manifest")
        files = doc.get("files")
        if not isinstance(files, dict):
            raise StoreError(f"{manifest} lists no files")
        self.manifest = doc
        for name, digest in sorted(files.items()):
            path = directory / name
            if not path.resolve().is_relative_to(directory.resolve()):
                raise StoreError(f"{manifest} names a file outside the export: {name}")
            if not path.is_file():
                raise LogStateError(f"{name} is listed in the manifest but missing")
            if _sha256_file(path) != digest:
                raise LogStateError(f"{name} does not match the SHA-256 in the manifest")

    def entries(self) -> Iterator[store.StoredEntry]:
        with (self.directory / "entries.jsonl").open("rb") as f:
            for number, line in enumerate(f):
                body = line.rstrip(b"\n")
                try:
                    entry = decode(body)
                except AuditError as exc:
                    raise StoreError(f"entries.jsonl line {number + 1}: {exc}") from None
                yield stored_fields(entry, body)

    def entry_chunks(self, size: int) -> Iterator[list[EntryRow]]:
        chunk: list[EntryRow] = []
        with (self.directory / "entries.jsonl").open("rb") as f:
            for seq, line in enumerate(f):
                chunk.append((seq, None, None, None, None, None, None, line.rstrip(b"\n")))
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _notes(self) -> list[tuple[int, Note]]:
        folder = self.directory / "checkpoints"
        found: list[tuple[int, Note]] = []
        for path in folder.iterdir() if folder.is_dir() else ():
            match = _CHECKPOINT_NAME.fullmatch(path.name)
            if match is None:
                raise StoreError(f"unexpected file in checkpoints/: {path.name}")
            try:
                note = parse_note(path.read_bytes())
            except AuditError as exc:
                raise StoreError(f"checkpoints/{path.name}: {exc}") from None
            found.append((int(match.group(1)), note))
        return sorted(found, key=lambda pair: pair[0])

    def checkpoints(self) -> list[store.StoredCheckpoint]:
        out = []
        for size, note in self._notes():
            own = tuple(s for s in note.signatures if s.name == self._log_name)
            text = note.text + "\n" + "".join(s.to_line() + "\n" for s in own)
            out.append(store.StoredCheckpoint(size, text, 0))
        return out

    def cosignatures(self) -> list[store.StoredCosignature]:
        rows: list[store.StoredCosignature] = []
        for size, note in self._notes():
            rows.extend(_cosignature_rows(size, note, self._log_name))
        return rows

    def consistency_proofs(self) -> Iterator[tuple[int, int, list[bytes]]]:
        folder = self.directory / "consistency"
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            old, _, new = path.name.removesuffix(".proof").partition("-")
            try:
                hashes = [base64.b64decode(x, validate=True) for x in path.read_text().split()]
                yield int(old), int(new), hashes
            except ValueError:
                raise StoreError(f"consistency/{path.name} is not a proof file") from None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_export(engine: Engine, directory: Path, origin: str, log_vkey: str) -> dict[str, object]:
    """Write the whole log in ``engine`` to a new ``directory`` (see the module docstring).

    The directory must not exist; the export is assembled beside it and renamed into
    place, so a crash never leaves a partial export under the final name. Returns the
    manifest.
    """
    if directory.exists():
        raise StoreError(f"{directory} already exists: choose a new directory")
    staging = directory.with_name(f".{directory.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "checkpoints").mkdir(parents=True)
    (staging / "consistency").mkdir()
    source = DatabaseSource(engine)
    tree = Tree()
    with (staging / "entries.jsonl").open("wb") as f:
        for row in source.entries():
            if row.seq != tree.size:
                raise StoreError(f"entry {tree.size} is missing from the database")
            f.write(row.body + b"\n")
            tree.append(leaf_hash(row.body))
    stored = source.checkpoints()
    cosigs: dict[int, list[str]] = {}
    for c in source.cosignatures():
        cosigs.setdefault(c.size, []).append(c.line + "\n")
    previous = 0
    for cp in stored:
        if cp.size > tree.size:
            raise StoreError(f"checkpoint {cp.size} covers more entries than are stored")
        text = cp.note + "".join(cosigs.get(cp.size, []))
        (staging / "checkpoints" / f"{cp.size}.checkpoint").write_text(text, encoding="utf-8")
        if 0 < previous < cp.size:
            proof = tree.proof(consistency_ranges(previous, cp.size))
            lines = "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
            (staging / "consistency" / f"{previous}-{cp.size}.proof").write_text(lines)
        previous = cp.size
    files = {
        str(path.relative_to(staging)): _sha256_file(path)
        for path in sorted(staging.rglob("*"))
        if path.is_file()
    }
    manifest: dict[str, object] = {
        "format": EXPORT_FORMAT,
        "origin": origin,
        "log_key": log_vkey,
        "entries": tree.size,
        "checkpoints": len(stored),
        "files": files,
    }
    (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for path in [*staging.rglob("*"), staging]:
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    os.replace(staging, directory)
    return manifest


class HubSource:
    """A log read from a running hub's audit API, as an auditor (a bearer token with the
    ``auditor`` role). Entries are read up to the newest checkpoint fetched first, so a log
    that grows during verification is checked as of that checkpoint. The hub does not
    serve its tree nodes: the tree is recomputed from the entries alone."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.description = f"hub {self.base_url}"
        self._token = token
        self._timeout = timeout
        self._checkpoints: list[store.StoredCheckpoint] | None = None
        self._cosignatures: list[store.StoredCosignature] = []

    def get(self, path: str, **params: object) -> bytes:
        import urllib.error
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
        return self._send(request)

    def post(self, path: str, doc: object) -> bytes:
        import urllib.request

        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=json.dumps(doc).encode("utf-8"),
            method="POST",
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> bytes:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise StoreError(f"the hub answered {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"cannot reach the hub at {self.base_url}: {exc}") from None

    def checkpoints(self) -> list[store.StoredCheckpoint]:
        if self._checkpoints is None:
            found: list[store.StoredCheckpoint] = []
            after: int | None = 0
            while after is not None:
                page = json.loads(self.get("/v1/audit/checkpoints", after=after, limit=10_000))
                for cp in page["checkpoints"]:
                    size = int(cp["size"])
                    found.append(store.StoredCheckpoint(size, str(cp["note"]), 0))
                    for line in cp["cosignatures"]:
                        sig = parse_signature_line(str(line))
                        timestamp = int.from_bytes(sig.signature[:_COSIG_PREFIX], "big")
                        self._cosignatures.append(
                            store.StoredCosignature(
                                size, sig.name, sig.key_id, str(line), timestamp, 0
                            )
                        )
                after = page["next_after"]
            self._checkpoints = found
        return self._checkpoints

    def cosignatures(self) -> list[store.StoredCosignature]:
        self.checkpoints()
        return list(self._cosignatures)

    def entry_chunks(self, size: int) -> Iterator[list[EntryRow]]:
        cps = self.checkpoints()
        end = cps[-1].size if cps else 0
        seq = 0
        while seq < end:
            limit = min(size, 10_000, end - seq)
            body = self.get("/v1/audit/entries.jsonl", after=seq, limit=limit)
            lines = body.split(b"\n")[:-1]
            if not lines:
                raise StoreError(f"the hub returned no entries from {seq}, below size {end}")
            chunk: list[EntryRow] = []
            for line in lines:
                chunk.append((seq, None, None, None, None, None, None, line))
                seq += 1
            yield chunk

    def entries(self) -> Iterator[store.StoredEntry]:
        for chunk in self.entry_chunks(10_000):
            for row in chunk:
                try:
                    entry = decode(row[7])
                except AuditError as exc:
                    raise StoreError(f"entry {row[0]} from the hub: {exc}") from None
                yield stored_fields(entry, row[7])
