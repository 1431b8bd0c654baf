"""After the load: nothing acknowledged lost, and every access audited.

Each check takes the acknowledged uploads (``connectors_phase``'s ``acked``) and returns the
versions that pass it: ``check_api`` through the restarted hub's API, ``check_store`` and
``check_entries`` from the data directory and the database with the hub down. ``tree_size``
reads the log's size before and after the load phase. ``Checked`` gathers what the checks found
for the result row.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import log
from bench._hubsetup import db_url
from bench._load.setup import PROJECT


@dataclass(frozen=True, slots=True)
class Checked:
    """What the checks after the load found.

    ``present``, ``intact`` and ``entries``: the acknowledged versions passing ``check_api``,
    ``check_store`` and ``check_entries``; ``tree_sizes``: the log's size (``tree_size``)
    just before and just after the load phase; ``log_report``: ``audit verify --db --json``'s
    report; ``exit_codes``: the hub's exit status after each SIGTERM."""

    present: set[str]
    intact: set[str]
    entries: set[str]
    tree_sizes: tuple[int, int]
    log_report: dict[str, Any]
    exit_codes: list[int]


def tree_size(url: str, token: str) -> int:
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
