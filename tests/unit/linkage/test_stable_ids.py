"""Entity ids carried forward between runs: unchanged entities keep theirs, merges and
splits keep the id of the largest overlap, and no two entities ever share an id."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.clustering import ENTITY_SCHEMA, cluster_table
from linkage.stable_ids import carry_forward


def _entities(groups: list[list[str]], ids: list[str] | None = None) -> pa.Table:
    rows = [
        (ids[i] if ids else f"e-{i}", member.split(":")[0], member.split(":")[1])
        for i, group in enumerate(groups)
        for member in group
    ]
    entity, dataset, record = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        {"entity_id": list(entity), "dataset": list(dataset), "record": list(record)},
        ENTITY_SCHEMA,
    )


def _by_entity(table: pa.Table) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for e, d, r in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
        out[e].add(f"{d}:{r}")
    return dict(out)


def test_unchanged_entities_keep_their_ids() -> None:
    previous = _entities([["a:1", "b:1"], ["a:2"]], ["e-old1", "e-old2"])
    current = _entities([["a:1", "b:1"], ["a:2"]], ["e-new1", "e-new2"])
    assert _by_entity(carry_forward(previous, current, salt="run2")) == {
        "e-old1": {"a:1", "b:1"},
        "e-old2": {"a:2"},
    }


def test_a_new_record_joining_keeps_the_id() -> None:
    previous = _entities([["a:5", "b:5"]], ["e-keep"])
    current = _entities([["a:0", "a:5", "b:5"], ["b:9"]], ["e-x", "e-y"])
    out = _by_entity(carry_forward(previous, current, salt="r"))
    assert out["e-keep"] == {"a:0", "a:5", "b:5"} and out["e-y"] == {"b:9"}


def test_merge_and_split_keep_the_largest_overlap() -> None:
    previous = _entities([["a:1", "a:2", "b:1"], ["b:2"]], ["e-big", "e-small"])
    merged = carry_forward(previous, _entities([["a:1", "a:2", "b:1", "b:2"]], ["e-m"]), salt="r")
    assert _by_entity(merged) == {"e-big": {"a:1", "a:2", "b:1", "b:2"}}
    # A split whose smaller part's clustering id collides with the old id gets a fresh one.
    split = carry_forward(
        previous, _entities([["a:1", "a:2"], ["b:1"]], ["e-p1", "e-big"]), salt="r"
    )
    out = _by_entity(split)
    assert out["e-big"] == {"a:1", "a:2"}
    (other,) = set(out) - {"e-big"}
    assert out[other] == {"b:1"} and other.startswith("e-") and other != "e-big"


def test_first_run_is_unchanged() -> None:
    current = _entities([["a:1"]], ["e-1"])
    assert carry_forward(None, current, salt="r") is current


members = st.lists(
    st.sampled_from([f"{d}:{r}" for d in "ab" for r in range(8)]), min_size=1, unique=True
)


def _partition(draw: st.DrawFn) -> list[list[str]]:
    pool = draw(members)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(pool) - 1)), max_size=len(pool))))
    groups, start = [], 0
    for cut in [*cuts, len(pool)]:
        if cut > start:
            groups.append(pool[start:cut])
            start = cut
    return groups


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_ids_are_unique_and_partitions_preserved(data: st.DataObject) -> None:
    previous_groups = _partition(data.draw)
    current_groups = _partition(data.draw)
    previous = _entities(previous_groups, [f"e-p{i}" for i in range(len(previous_groups))])
    records = pa.table(
        {
            "dataset": [m.split(":")[0] for g in current_groups for m in g],
            "record": [m.split(":")[1] for g in current_groups for m in g],
        }
    )
    links = pa.table(
        {
            "dataset_l": [g[0].split(":")[0] for g in current_groups for _ in g[1:]],
            "record_l": [g[0].split(":")[1] for g in current_groups for _ in g[1:]],
            "dataset_r": [m.split(":")[0] for g in current_groups for m in g[1:]],
            "record_r": [m.split(":")[1] for g in current_groups for m in g[1:]],
            "match_probability": [1.0 for g in current_groups for _ in g[1:]],
        },
        schema=pa.schema(
            [(c, pa.string()) for c in ("dataset_l", "record_l", "dataset_r", "record_r")]
            + [("match_probability", pa.float64())]
        ),
    )
    current = cluster_table(records, links, threshold=0.5, bridge_threshold=1.0)
    out = carry_forward(previous, current, salt="run")
    got = sorted(sorted(g) for g in _by_entity(out).values())
    assert got == sorted(sorted(g) for g in _by_entity(current).values())
    # an entity identical to a previous one keeps that one's id
    before = {frozenset(g): f"e-p{i}" for i, g in enumerate(previous_groups)}
    for entity, group in _by_entity(out).items():
        if frozenset(group) in before:
            assert entity == before[frozenset(group)]
