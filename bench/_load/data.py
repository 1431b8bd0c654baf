"""Each agency's encoded files, made with the connector's own code, and each client's links.

``prepare`` writes, under its output directory: a project linkage secret and a record key per
agency (``connector keygen``), one synthetic population per pair of agencies
(``connectors.synth``), and for every ``--sizes`` entry a prefix of the agency's export encoded
by ``connector pseudonymise`` with its layout's mapping (``[source] agency`` set to the agency)
and schema v2. Agencies take the A&E and police layouts in turn: ``ae-load-1``,
``police-load-1``, ``ae-load-2``, ...
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._common import REPO_DIR
from bench._hubsetup import keygen, pseudonymise

#: (layout, export written by ``connectors.synth``, mapping under config/mappings/)
LAYOUTS = (
    ("ae", "ae_attendances.csv", "ae.toml"),
    ("police", "police_incidents.csv", "police.toml"),
)


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


def link_files(files: Iterable[Encoded], into: Path) -> list[Encoded]:
    """Each connector client gets its own names for its agency's files, so the resumable
    upload state (``<file>.upload.json``) is its own."""
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        dest = into / Path(f.path).name
        os.link(f.path, dest)
        out.append(Encoded(**{**asdict(f), "path": str(dest)}))
    return out
