"""Encode a CSV file into clkhash CLKs and time it (runs inside ``bench/.peers-venv``).

Usage::

    bench/.peers-venv/bin/python bench/peers/run_clkhash.py \\
        --schema bench/peers/clkhash-ae-v3.json --secret-file SECRET \\
        --input ae.csv --output clks.json --workers 2

The encoding is :func:`clkhash.clk.generate_clk_from_csv` (validation on, no progress bar) with
``max_workers`` set to ``--workers``; the CLKs are then written as ``{"clks": [base64, ...]}``,
the format anonlink-client's ``hash`` command writes. ``encode_seconds`` covers reading the CSV,
encoding and writing the output, the same span the connector's timing covers. clkhash itself
uses one process whenever the file has fewer than 10,000 lines (``effective_workers``).

Prints one JSON line: ``{"encode_seconds", "records", "workers", "effective_workers",
"mean_popcount", "clkhash_version"}``. Standard library and clkhash only.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from clkhash import clk, schema
from clkhash.serialization import serialize_bitarray

#: clkhash.clk.generate_clks_from_csv_as_stream forces one process below this many lines.
CLKHASH_CHUNK = 10_000


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schema", type=Path, required=True, help="clkhash linkage schema (v3 JSON)")
    p.add_argument("--secret-file", type=Path, required=True, help="file holding the secret")
    p.add_argument("--input", type=Path, required=True, help="CSV whose header matches the schema")
    p.add_argument("--output", type=Path, required=True, help="CLKs as JSON")
    p.add_argument("--workers", type=int, default=1, help="clkhash max_workers")
    return p.parse_args()


def encode(args: argparse.Namespace) -> dict[str, Any]:
    with args.schema.open(encoding="utf-8") as fh:
        linkage_schema = schema.from_json_file(fh)
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    start = time.perf_counter()
    with args.input.open(encoding="utf-8", newline="") as fh:
        clks = clk.generate_clk_from_csv(
            fh, secret, linkage_schema, progress_bar=False, max_workers=args.workers
        )
    with args.output.open("w", encoding="utf-8") as out:
        json.dump({"clks": [serialize_bitarray(c) for c in clks]}, out)
    seconds = time.perf_counter() - start
    lines = len(clks) + 1  # clkhash counts the file's lines, header included
    effective = 1 if lines < CLKHASH_CHUNK else args.workers
    return {
        "encode_seconds": seconds,
        "records": len(clks),
        "workers": args.workers,
        "effective_workers": effective,
        "mean_popcount": sum(c.count() for c in clks) / max(len(clks), 1),
        "clkhash_version": version("clkhash"),
    }


def main() -> int:
    print(json.dumps(encode(_args())), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
