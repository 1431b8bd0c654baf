"""What the linkage peers (``bench/peers/link_*.py``) share: arguments, input, output, timing.

Every peer reads two Parquet files of normalised plaintext identifiers (all string columns, null
for missing, ``record_id`` unique per side), writes the pairs it scored as Parquet
(``record_a``, ``record_b``: string; ``score``: float64) and prints one JSON object as the last
line of stdout. Progress goes to stderr.

Only the standard library and pyarrow are used, so the module runs in the project's ``.venv`` and
in ``bench/.peers-venv`` alike. The peers import it as a sibling module (``import _linkpeer``):
Python puts the script's own directory first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PROFILES = ("synthetic", "febrl")
PAIRS_SCHEMA = pa.schema(
    [("record_a", pa.string()), ("record_b", pa.string()), ("score", pa.float64())]
)


def log(message: str) -> None:
    """Write one progress line to stderr (stdout is kept for the result line)."""
    print(f"[{Path(sys.argv[0]).stem}] {message}", file=sys.stderr, flush=True)


def make_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every linkage peer takes (the harness's input contract)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--a", type=Path, required=True, help="side A plaintext (Parquet)")
    p.add_argument("--b", type=Path, required=True, help="side B plaintext (Parquet)")
    p.add_argument("--profile", choices=PROFILES, required=True, help="dataset layout")
    p.add_argument("--out", type=Path, required=True, help="scored pairs (Parquet)")
    p.add_argument("--workers", type=int, default=1, help="processes/threads")
    p.add_argument("--seed", type=int, default=1, help="seed for any random sampling")
    return p


def parse_args(
    description: str, parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """Parse the command line with ``parser`` (default: :func:`make_parser`) and check it."""
    p = parser or make_parser(description)
    args = p.parse_args()
    if args.workers < 1:
        p.error("--workers must be at least 1")
    return args


def read_plain(path: Path) -> pa.Table:
    """Read one side's plaintext and check the columns every profile relies on."""
    table = pq.read_table(path)
    if "record_id" not in table.column_names:
        raise SystemExit(f"{path}: no record_id column")
    for field in table.schema:
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            raise SystemExit(f"{path}: column {field.name} is {field.type}, expected strings")
    return table


def write_pairs(
    out: Path, record_a: pa.Array | Sequence[str], record_b: pa.Array | Sequence[str], score: Any
) -> int:
    """Write the scored pairs in the output contract's schema; returns the number of pairs."""
    table = pa.Table.from_arrays(
        [
            pa.array(record_a, type=pa.string()),
            pa.array(record_b, type=pa.string()),
            pa.array(score, type=pa.float64()),
        ],
        schema=PAIRS_SCHEMA,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows


class Stages:
    """Wall-clock seconds per named stage, plus the total since the object was made."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name`` (added to any earlier time of that name)."""
        log(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + spent
            log(f"{name}: {spent:.2f} s")

    def report(self) -> dict[str, float]:
        """The stage times and ``total`` (seconds since construction), rounded to ms."""
        total = time.perf_counter() - self._start
        return {"total": round(total, 3), **{k: round(v, 3) for k, v in self.seconds.items()}}


def print_result(
    system: str,
    default_threshold: float,
    seconds: dict[str, float],
    pairs: int,
    versions: dict[str, str],
    **extra: Any,
) -> None:
    """Print the peer's result object as the last line of stdout."""
    doc: dict[str, Any] = {
        "system": system,
        "default_threshold": default_threshold,
        "seconds": seconds,
        "pairs": pairs,
        "versions": versions,
    }
    doc.update(extra)
    print(json.dumps(doc), flush=True)


# --- all-pairs Dice kernel timings (kernel_anonlink.py, ../_kernel_ours.py) -------------------


def kernel_parser(description: str) -> argparse.ArgumentParser:
    """``--n`` (filters per side) and ``--repeat`` (timed runs, best kept)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n", type=int, default=2000, help="random filters per side")
    p.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    return p


def report_kernel(system: str, run: Any, n: int, bits: int, repeat: int) -> None:
    """Time ``run()`` (all ``n x n`` pairs) ``repeat`` times and print the kernel's JSON line
    ``{"system", "pairs_per_second", "n", "bits", "seconds"}`` for the best run."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    line = {"system": system, "pairs_per_second": n * n / best, "n": n, "bits": bits}
    print(json.dumps({**line, "seconds": best}), flush=True)
