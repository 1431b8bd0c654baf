"""Stable entity ids across linkage runs.

Clustering names each entity by a hash of its smallest member, which changes when a new
record sorts below the old smallest. Analysts and agencies following an entity across runs
need the id to stay put when the same records are linked again, so a new run carries ids
forward from the previous one:

1. every (new entity, previous entity) pair that shares records is counted;
2. pairs are taken largest overlap first (ties: smaller new id, then smaller previous id), and
   each previous id goes to at most one new entity and each new entity takes at most one id;
3. a new entity that got no previous id keeps its clustering id, unless that id was a
   previous entity's (a split: the other part took it), in which case it gets a fresh id
   derived from ``salt`` (the run id) and its clustering id.

So an entity whose records are unchanged keeps its id; a merged entity keeps the id of the
part it shares most records with; a split entity's largest part keeps the id.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from linkage.clustering import ENTITY_SCHEMA

__all__ = ["carry_forward"]


def _fresh(salt: str, entity: str) -> str:
    return "e-" + hashlib.sha256(f"{salt}\x1f{entity}".encode()).hexdigest()[:20]


def carry_forward(previous: pa.Table | None, current: pa.Table, *, salt: str) -> pa.Table:
    """``current`` entities (``entity_id, dataset, record``) with ids carried forward from
    ``previous`` (same columns; None for a project's first run)."""
    if previous is None or previous.num_rows == 0 or current.num_rows == 0:
        return current
    joined = current.join(
        previous.rename_columns(["previous_id", "dataset", "record"]),
        keys=["dataset", "record"],
        join_type="inner",
    )
    overlaps = (
        joined.group_by(["entity_id", "previous_id"])
        .aggregate([("record", "count")])
        .sort_by(
            [
                ("record_count", "descending"),
                ("entity_id", "ascending"),
                ("previous_id", "ascending"),
            ]
        )
    )
    renamed: dict[str, str] = {}
    taken: set[str] = set()
    for new, old in zip(
        overlaps.column("entity_id").to_pylist(),
        overlaps.column("previous_id").to_pylist(),
        strict=True,
    ):
        if new in renamed or old in taken:
            continue
        renamed[new] = old
        taken.add(old)
    earlier = set(pc.unique(previous.column("entity_id")).to_pylist())
    ids = current.column("entity_id").to_pylist()
    out = [renamed[e] if e in renamed else (_fresh(salt, e) if e in earlier else e) for e in ids]
    table = pa.table(
        {
            "entity_id": pa.array(out, pa.string()),
            "dataset": current.column("dataset"),
            "record": current.column("record"),
        },
        ENTITY_SCHEMA,
    )
    return table.sort_by(
        [("entity_id", "ascending"), ("dataset", "ascending"), ("record", "ascending")]
    )
