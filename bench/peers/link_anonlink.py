"""Encode two plaintext files into CLKs with clkhash and link them with anonlink, timed
(runs inside ``bench/.peers-venv``).

Usage::

    bench/.peers-venv/bin/python bench/peers/link_anonlink.py --a plain_a.parquet \\
        --b plain_b.parquet --profile synthetic --out pairs.parquet --workers 2 --seed 1

1. **Encode.** Both sides become 1024-bit CLKs with :func:`clkhash.clk.generate_clks`
   (``max_workers=--workers``; clkhash uses one process below 10,000 records; data validation
   on, its default) under the profile's linkage schema,
   ``bench/peers/clkhash-{synthetic,febrl}-v3.json``. Missing values are empty strings (the
   schemas' ``missingValue`` sentinel). The secret is derived from ``--seed``, so runs repeat.
2. **Candidates.** :func:`anonlink.candidate_generation.find_candidate_pairs` with the Dice
   coefficient over **all** pairs (no blocking), keeping pairs at or above the profile's floor
   (``FLOORS``: 0.7 synthetic, 0.6 FEBRL; reported as ``floor``). The all-pairs grid is cut
   into chunks by :func:`anonlink.concurrency.split_to_chunks` and the chunks are run by
   :func:`anonlink.concurrency.process_chunk` (which calls ``find_candidate_pairs``) on a pool
   of ``--workers`` forked processes, anonlink having no pool of its own; the chunks' pairs are
   merged back into anonlink's order (similarity descending, then record indices).
3. **Solve.** :func:`anonlink.solving.greedy_solve`: greedy 1:1 matching in descending
   similarity. Greedy at a threshold ``t`` equals greedy at the floor restricted to pairs with
   similarity at least ``t``, so this one run serves every threshold at or above the floor.
   Being 1:1, it keeps at most one pair per record: where a person has several records on
   each side (the synthetic data), most true pairs cannot be found.

Each greedily matched pair is written with its Dice similarity. ``--solver none`` (not part of
the harness's contract) skips step 3 and writes every candidate pair instead: thresholding
alone, many-to-many, for comparison. The default decision threshold
is 0.7 (anonlink's usual). ``seconds.total`` runs from just after the inputs are read to just
after the pairs are written and includes encoding; ``seconds.link`` is everything after
encoding. ``comparisons`` is the number of Dice coefficients computed (``|A| x |B|``) and
``comparisons_per_second`` divides it by ``seconds.candidates`` (which includes anonlink's
merging of the candidate pairs and, with more than one worker, the pool).

Standard library, pyarrow, numpy, clkhash and anonlink only: never the project's packages.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from array import array
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _linkpeer
import numpy as np
import pyarrow as pa
from anonlink.candidate_generation import find_candidate_pairs
from anonlink.concurrency import process_chunk, split_to_chunks
from anonlink.similarities import dice_coefficient
from anonlink.solving import greedy_solve
from bitarray import bitarray
from clkhash import clk, schema
from clkhash.schema import Schema

SYSTEM = "clkhash+anonlink"
DEFAULT_THRESHOLD = 0.7
#: Lowest similarity kept by candidate generation, per profile (and so the lowest threshold a
#: sweep can use). Pairs of different people already score about 0.5 to 0.55 (CLKs about half
#: full), and anonlink handles every candidate pair in Python while merging and solving (about
#: 10 microseconds each), so the floor keeps non-matching candidates to a few million: on the
#: synthetic data 100,000 x 70,000 records give about 20 million pairs at 0.65 (five minutes)
#: and about 1.5 million at 0.7; FEBRL4's 5,000 x 5,000 give about 260,000 at 0.6.
FLOORS = {"synthetic": 0.7, "febrl": 0.6}
#: clkhash forces one encoding process below this many records.
CLKHASH_CHUNK = 10_000
#: Chunks per worker for candidate generation (more than one evens out the load).
CHUNKS_PER_WORKER = 4
SCHEMA_DIR = Path(__file__).resolve().parent
SOLVERS = ("greedy", "none")

Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]

# Set in the parent before the pool forks, so the workers inherit the CLKs without pickling.
_DATASETS: tuple[list[bitarray], list[bitarray]] = ([], [])


def load_schema(profile: str) -> Schema:
    """The clkhash linkage schema (v3) for the profile."""
    with (SCHEMA_DIR / f"clkhash-{profile}-v3.json").open(encoding="utf-8") as fh:
        return schema.from_json_file(fh)


def pii_rows(table: pa.Table, linkage_schema: Schema) -> list[tuple[str, ...]]:
    """The table's rows as strings in the schema's field order (missing values as "")."""
    names = [f.identifier for f in linkage_schema.fields]
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise SystemExit(f"input lacks the schema's columns {missing}")
    columns = [table.column(n).fill_null("").to_pylist() for n in names]
    return list(zip(*columns, strict=True))


def clk_secret(seed: int) -> str:
    """A repeatable 256-bit secret for the run (clkhash derives its keys from it)."""
    return hashlib.sha256(f"bench clkhash secret {seed}".encode()).hexdigest()


def encode(
    rows: list[tuple[str, ...]], linkage_schema: Schema, secret: str, workers: int
) -> list[bitarray]:
    """CLKs for one side's rows (clkhash validates every value against the schema)."""
    return clk.generate_clks(rows, linkage_schema, secret, validate=True, max_workers=workers)


def _chunk_candidates(chunk: list[dict[str, Any]], floor: float) -> Candidates:
    """Candidate pairs at or above the floor for one chunk of the A x B comparison grid."""
    (a0, a1), (b0, b1) = chunk[0]["range"], chunk[1]["range"]
    a, b = _DATASETS
    sims, _, (rec_a, rec_b) = process_chunk(chunk, [a[a0:a1], b[b0:b1]], dice_coefficient, floor)
    return (
        np.frombuffer(sims, dtype=np.float64),
        np.frombuffer(rec_a, dtype=np.uint32),
        np.frombuffer(rec_b, dtype=np.uint32),
    )


def find_candidates(a: list[bitarray], b: list[bitarray], floor: float, workers: int) -> Candidates:
    """All pairs at or above the floor, in anonlink's order (similarity down, then indices)."""
    global _DATASETS
    if workers == 1:
        sims, _, (rec_a, rec_b) = find_candidate_pairs([a, b], dice_coefficient, floor)
        return (
            np.frombuffer(sims, dtype=np.float64),
            np.frombuffer(rec_a, dtype=np.uint32),
            np.frombuffer(rec_b, dtype=np.uint32),
        )
    aim = max(len(a) * len(b) / (workers * CHUNKS_PER_WORKER), 1.0)
    chunks = list(split_to_chunks(aim, dataset_sizes=[len(a), len(b)]))
    _DATASETS = (a, b)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.starmap(_chunk_candidates, [(c, floor) for c in chunks], chunksize=1)
    finally:
        _DATASETS = ([], [])
    sims = np.concatenate([p[0] for p in parts])
    rec_a = np.concatenate([p[1] for p in parts])
    rec_b = np.concatenate([p[2] for p in parts])
    order = np.lexsort((rec_b, rec_a, -sims))
    return sims[order], rec_a[order], rec_b[order]


def solve(candidates: Candidates, size_b: int) -> Candidates:
    """Greedy 1:1 matching; the matched pairs (similarity, A index, B index), best first."""
    sims, rec_a, rec_b = candidates
    n = len(sims)
    datasets = (array("I", bytes(4 * n)), array("I", [1]) * n)
    records = (array("I", rec_a.astype(np.uint32).tobytes()), array("I", rec_b.tobytes()))
    groups = greedy_solve((array("d", sims.tobytes()), datasets, records))
    matched_a: list[int] = []
    matched_b: list[int] = []
    for group in groups:
        ends = dict(group)  # {dataset index: record index}; two-party groups are pairs
        matched_a.append(ends[0])
        matched_b.append(ends[1])
    ma = np.asarray(matched_a, dtype=np.int64)
    mb = np.asarray(matched_b, dtype=np.int64)
    keys = rec_a.astype(np.int64) * size_b + rec_b
    by_key = np.argsort(keys, kind="stable")
    pos = by_key[np.searchsorted(keys, ma * size_b + mb, sorter=by_key)]
    order = np.argsort(-sims[pos], kind="stable")
    return sims[pos][order], ma[order], mb[order]


def write(out: Path, matches: Candidates, ids_a: Sequence[str], ids_b: Sequence[str]) -> int:
    """Write the matched pairs as record ids with their Dice similarity."""
    sims, ma, mb = matches
    ida = np.asarray(ids_a, dtype=object)
    idb = np.asarray(ids_b, dtype=object)
    return _linkpeer.write_pairs(out, ida[ma].tolist(), idb[mb].tolist(), sims)


def main() -> int:
    description = __doc__.splitlines()[0]
    parser = _linkpeer.make_parser(description)
    parser.add_argument(
        "--solver",
        choices=SOLVERS,
        default="greedy",
        help="greedy: anonlink's greedy 1:1 matches (the default); none: every candidate pair",
    )
    args = _linkpeer.parse_args(description, parser)
    table_a = _linkpeer.read_plain(args.a)
    table_b = _linkpeer.read_plain(args.b)
    _linkpeer.log(f"{table_a.num_rows:,} x {table_b.num_rows:,} records, profile {args.profile}")
    stages = _linkpeer.Stages()
    linkage_schema = load_schema(args.profile)
    secret = clk_secret(args.seed)
    floor = FLOORS[args.profile]
    with stages.stage("encode"):
        clks_a = encode(pii_rows(table_a, linkage_schema), linkage_schema, secret, args.workers)
        clks_b = encode(pii_rows(table_b, linkage_schema), linkage_schema, secret, args.workers)
    with stages.stage("candidates"):
        candidates = find_candidates(clks_a, clks_b, floor, args.workers)
    _linkpeer.log(f"{len(candidates[0]):,} candidate pairs at Dice >= {floor}")
    with stages.stage("solve"):
        matches = solve(candidates, len(clks_b)) if args.solver == "greedy" else candidates
    with stages.stage("write"):
        pairs = write(
            args.out,
            matches,
            table_a.column("record_id").to_pylist(),
            table_b.column("record_id").to_pylist(),
        )
    seconds = stages.report()
    seconds["link"] = round(seconds["total"] - seconds["encode"], 3)
    comparisons = len(clks_a) * len(clks_b)
    popcounts = [c.count() for c in clks_a[:10_000]]
    _linkpeer.print_result(
        SYSTEM,
        DEFAULT_THRESHOLD,
        seconds,
        pairs,
        {"clkhash": version("clkhash"), "anonlink": version("anonlink")},
        floor=floor,
        solver=args.solver,
        candidates=len(candidates[0]),
        comparisons=comparisons,
        comparisons_per_second=round(comparisons / max(seconds["candidates"], 1e-9)),
        records_a=len(clks_a),
        records_b=len(clks_b),
        workers=args.workers,
        encode_workers=[1 if len(c) < CLKHASH_CHUNK else args.workers for c in (clks_a, clks_b)],
        mean_popcount=round(sum(popcounts) / max(len(popcounts), 1), 1),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
