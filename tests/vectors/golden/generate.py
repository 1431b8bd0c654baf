"""Regenerate expected.json from input.csv with the fixed test keys in keys.json.

Run only when the encoding format changes on purpose (and bump the schema or format version):

    .venv/bin/python tests/vectors/golden/generate.py

The output pins every token, filter and record pseudonym of the golden input. The test
``tests/unit/connectors/test_golden.py`` compares a fresh run with it and, independently,
recomputes tokens and a filter from first principles with Python's stdlib hmac.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

import pyarrow.parquet as pq  # noqa: E402

from connectors.encoding_schema import load_encoding_schema  # noqa: E402
from connectors.keys import Key  # noqa: E402
from connectors.mapping import load_mapping  # noqa: E402
from connectors.pipeline import PseudonymiseJob, pseudonymise  # noqa: E402

REPO = HERE.parents[2]
TODAY = date(2026, 1, 1)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def golden_keys() -> tuple[Key, Key]:
    doc = json.loads((HERE / "keys.json").read_text())
    linkage = Key(
        "linkage-secret", "lk-golden", "2026-01-01T00:00:00Z", bytes.fromhex(doc["linkage_secret"])
    )
    record = Key(
        "record-key", "rk-golden", "2026-01-01T00:00:00Z", bytes.fromhex(doc["record_secret"])
    )
    return linkage, record


def encode_golden(out_dir: Path) -> dict[str, object]:
    """Run the pipeline on the golden input and return the JSON document of its output."""
    linkage, record = golden_keys()
    output = out_dir / "golden.parquet"
    keymap = out_dir / "keymap.parquet"
    job = PseudonymiseJob(
        mapping=load_mapping(REPO / "config" / "mappings" / "ae.toml"),
        schema=load_encoding_schema(REPO / "config" / "encoding" / "v1.toml"),
        linkage_key=linkage,
        record_key=record,
        input=HERE / "input.csv",
        output=output,
        agency="ae-golden",
        keymap=keymap,
        today=TODAY,
        now=NOW,
    )
    report = pseudonymise(job)
    table = pq.read_table(output)
    ids = pq.read_table(keymap).column("record_id").to_pylist()
    rows = {}
    for i, record_id in enumerate(ids):
        row = {}
        for name in table.column_names:
            value = table.column(name)[i].as_py()
            row[name] = (
                value.hex()
                if isinstance(value, bytes)
                else (value.isoformat() if hasattr(value, "isoformat") else value)
            )
        rows[record_id] = row
    return {"rejected": dict(report.rejected), "rows": rows}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        doc = encode_golden(Path(tmp))
    (HERE / "expected.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {HERE / 'expected.json'} ({len(doc['rows'])} rows)", file=sys.stderr)


if __name__ == "__main__":
    os.umask(0o077)
    main()
