"""The hub under test and what is sent to it.

``make_data`` runs the connector part of ``make demo`` once (synthetic A&E and police exports,
keys, the two encoded files). ``init_hub`` makes a data directory with ``hub init`` (SQLite, or
a PostgreSQL database URL) and shortens the job lease (3 s, as the worker tests do) and the
upload chunk size, so that a kill lands inside a many-chunk upload and a dead worker's job is
taken over within seconds. ``World.set_up`` registers, through the running hub's API, what an
extract needs (``hub.demo.set_up``): both agencies, an agreement in force that releases record
level extracts, the project, both data officers, an analyst, an approver per agency, an
information-governance approver and an auditor.

``World.variant`` writes a distinct encoded file for each upload (the agency's file with a few
rows dropped and its declared row count adjusted), so that every acknowledged upload has its
own SHA-256 and a dataset version holding another upload's bytes would be noticed.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from bench._common import REPO_DIR
from bench._hubsetup import fresh_postgres
from hub.client import HubAPI
from hub.config import load_config
from hub.demo import set_up

__all__ = ["ORIGIN", "PROJECT", "Data", "World", "fresh_database", "init_hub", "make_data"]

ORIGIN = "faults.hub.invalid/audit"
PROJECT = "svd-demo"  # hub.demo.set_up's project
AGENCIES = ("ae", "police")


@dataclass(frozen=True, slots=True)
class Data:
    """The two agencies' encoded files (made once, uploaded in variants to every hub)."""

    root: Path
    encoded: dict[str, Path]
    meta: dict[str, dict[str, Any]]


def make_data(root: Path, people: int, seed: int) -> Data:
    from connectors import demo as connector_demo

    connector_demo.run(root, people, seed, Console(file=io.StringIO(), width=120))
    encoded = {a: root / "encoded" / f"{a}.parquet" for a in AGENCIES}
    meta = {a: json.loads(pq.read_metadata(p).metadata[b"pprl"]) for a, p in encoded.items()}
    return Data(root, encoded, meta)


@contextlib.contextmanager
def fresh_database(admin_url: str | None) -> Iterator[str | None]:
    """None (SQLite), or a new database on the server at ``admin_url``, dropped afterwards."""
    if admin_url is None:
        yield None
        return
    with fresh_postgres(admin_url, prefix="pprl_faults") as url:
        yield url


def init_hub(data_dir: Path, database_url: str | None, chunk_bytes: int) -> dict[str, Any]:
    """``hub init`` into ``data_dir`` and the fault loop's settings; what init printed."""
    args = [sys.executable, "-m", "hub.cli", "init", "--data-dir", str(data_dir)]
    args += ["--origin", ORIGIN, "--json"]
    if database_url:
        args += ["--database-url", database_url]
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO_DIR)
    if done.returncode != 0:
        raise RuntimeError(f"hub init failed: {done.stderr[-2000:]}")
    config = data_dir / "hub.toml"
    text = config.read_text(encoding="utf-8")
    for old, new in (
        ("lease_seconds = 60", "lease_seconds = 3"),
        ("heartbeat_seconds = 5", "heartbeat_seconds = 1"),
        ("max_chunk_bytes = 8388608", f"max_chunk_bytes = {chunk_bytes}"),
    ):
        if old not in text:
            raise RuntimeError(f"hub.toml no longer holds {old!r}: update bench/_faults/world.py")
        text = text.replace(old, new)
    config.write_text(text, encoding="utf-8")
    made: dict[str, Any] = json.loads(done.stdout)
    return made


@dataclass
class World:
    """One hub's data directory, its users' tokens and the files sent to it."""

    data: Data
    data_dir: Path
    made: dict[str, Any]
    #: where the files to upload are written (never on the hub's own disk)
    scratch: Path
    tokens: dict[str, str] = field(default_factory=dict)
    agencies: dict[str, str] = field(default_factory=dict)
    _tables: dict[str, pa.Table] = field(default_factory=dict)
    _variants: int = 0

    @property
    def log_vkey(self) -> str:
        return str(self.made["log_public_key"])

    def database_url(self) -> str:
        return load_config(self.data_dir).database_url()

    def set_up(self, url: str) -> None:
        hub = set_up(url, self.made, self.data.meta, Console(file=io.StringIO(), width=120))
        self.tokens, self.agencies = hub.tokens, hub.agencies

    def api(self, url: str, who: str, timeout: float = 30.0) -> HubAPI:
        return HubAPI(url, self.tokens[who], timeout=timeout)

    def variant(self, agency: str, rng: random.Random) -> Path:
        """A distinct valid encoded file of ``agency`` (a few of its rows dropped)."""
        table = self._tables.get(agency)
        if table is None:
            table = self._tables[agency] = pq.read_table(self.data.encoded[agency])
        drop = set(rng.sample(range(table.num_rows), rng.randint(1, max(1, table.num_rows // 20))))
        kept = table.take([i for i in range(table.num_rows) if i not in drop])
        meta = dict(self.data.meta[agency])
        meta["row_count"] = kept.num_rows
        self._variants += 1
        out = self.scratch / "uploads" / f"{agency}-{self._variants:04d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(out, kept.schema) as writer:
            writer.add_key_value_metadata({"pprl": json.dumps(meta)})
            writer.write_table(kept)
        return out

    def extract_spec(self, run: str) -> dict[str, Any]:
        """A record-level extract of both agencies' attributes for people linked across both."""
        ae, police = self.agencies["ae"], self.agencies["police"]
        return {
            "run": run,
            "kind": "records",
            "justification": "fault loop: an extract build interrupted by a kill",
            "attributes": {ae: ["arrival_datetime", "assault_method"], police: ["role"]},
            "generalise": {"arrival_datetime": {"date": "week"}},
            "filters": {"linked_to_all": [ae, police]},
        }

    def approvers(self, required: list[str]) -> list[tuple[str, str]]:
        """(who, capacity) for every capacity an extract request needs."""
        by_capacity = {f"agency:{agency}": f"approver-{a}" for a, agency in self.agencies.items()}
        by_capacity["governance"] = "governance"
        return [(by_capacity[c], c) for c in required]
