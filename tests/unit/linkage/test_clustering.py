"""Clustering links into entities across several datasets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.clustering import Edge, Node, cluster
from linkage.errors import SettingsError


def _groups(table: object) -> set[frozenset[Node]]:
    rows = table.to_pylist()  # type: ignore[attr-defined]
    by: dict[str, set[Node]] = {}
    for row in rows:
        by.setdefault(row["entity_id"], set()).add((row["dataset"], row["record"]))
    return {frozenset(v) for v in by.values()}


def test_three_datasets_hand_made_case() -> None:
    """A&E, police and council records of two people cluster into two entities; a loner stays."""
    ae1, ae2, ae3 = ("ae", "a1"), ("ae", "a2"), ("ae", "a3")
    po1, po2 = ("police", "p1"), ("police", "p2")
    co1, co2 = ("council", "c1"), ("council", "c2")
    links: list[Edge] = [
        (ae1, po1, 0.999), (po1, co1, 0.98), (ae1, co1, 0.97),  # person 1 in all three
        (ae2, po2, 0.995), (ae2, co2, 0.9),  # person 2 (one repeat in A&E below)
        (ae3, po2, 0.2),  # below threshold: ignored
    ]  # fmt: skip
    records = [ae1, ae2, ae3, po1, po2, co1, co2]
    entities = cluster(records, links, threshold=0.5)
    assert _groups(entities) == {
        frozenset({ae1, po1, co1}),
        frozenset({ae2, po2, co2}),
        frozenset({ae3}),
    }
    assert entities.num_rows == len(records)


def test_single_weak_link_between_households_is_cut() -> None:
    """Father and son, each well linked, chained by one doubtful link, become two entities."""
    father = [("ae", "f1"), ("police", "f2"), ("ae", "f3")]
    son = [("police", "s1"), ("ae", "s2"), ("police", "s3")]
    links: list[Edge] = [
        (father[0], father[1], 0.999), (father[2], father[1], 0.998),
        (son[0], son[1], 0.999), (son[1], son[2], 0.997),
        (father[2], son[0], 0.7),  # the false link
    ]  # fmt: skip
    assert _groups(cluster(father + son, links, threshold=0.5)) == {
        frozenset(father),
        frozenset(son),
    }


def test_strong_bridge_is_kept() -> None:
    """A bridge above the bridge threshold is evidence, not a mistake: one entity."""
    left = [("ae", "l1"), ("police", "l2")]
    right = [("ae", "r1"), ("police", "r2")]
    links: list[Edge] = [
        (left[0], left[1], 0.999), (right[0], right[1], 0.999), (left[0], right[1], 0.995),
    ]  # fmt: skip
    assert len(_groups(cluster(left + right, links, threshold=0.5, bridge_threshold=0.99))) == 1


def test_entity_ids_are_stable() -> None:
    """The same input gives the same entity ids, whatever the order of links."""
    a, b, c = ("ae", "1"), ("police", "2"), ("police", "3")
    links: list[Edge] = [(a, b, 0.9), (a, c, 0.8)]
    one = cluster([a, b, c], links, threshold=0.5)
    two = cluster([c, b, a], list(reversed(links)), threshold=0.5)
    assert one.equals(two)


def test_bad_thresholds_and_unknown_records_are_refused() -> None:
    """Thresholds must be ordered in (0, 1]; links must name known records."""
    with pytest.raises(SettingsError):
        cluster([], [], threshold=0.0)
    with pytest.raises(SettingsError):
        cluster([], [], threshold=0.9, bridge_threshold=0.5)
    with pytest.raises(SettingsError, match="not among the records"):
        cluster([("ae", "1")], [(("ae", "1"), ("police", "2"), 0.9)], threshold=0.5)


@settings(max_examples=100)
@given(
    n=st.integers(min_value=1, max_value=30),
    pairs=st.lists(
        st.tuples(st.integers(0, 29), st.integers(0, 29), st.floats(0.01, 1.0)), max_size=60
    ),
)
def test_every_record_in_exactly_one_entity(n: int, pairs: list[tuple[int, int, float]]) -> None:
    """Entities partition the records, and no entity spans records no kept link chain joins."""
    records = [("ae" if i % 2 else "police", str(i)) for i in range(n)]
    links: list[Edge] = [
        (records[a], records[b], p) for a, b, p in pairs if a < n and b < n and a != b
    ]
    table = cluster(records, links, threshold=0.5)
    assert sorted(
        zip(table.column("dataset").to_pylist(), table.column("record").to_pylist(), strict=True)
    ) == sorted(records)
    # an entity never joins records that no chain of kept links joins
    from linkage.clustering import _components

    components = {frozenset(c) for c, _ in _components(records, [e for e in links if e[2] >= 0.5])}
    for group in _groups(table):
        assert any(group <= comp for comp in components)
