"""Disclosure control for count tables: worked examples with exact outputs, the invariants
as Hypothesis properties, and a peeling attacker that must recover nothing."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Sequence
from datetime import date

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.release.disclosure import (
    DisclosureError,
    DisclosureRules,
    ProtectedTable,
    protect,
)

ALL = "<all>"  # in a test key: summed over this dimension (no test category is this string)
Key = tuple[object, ...]
Cell = tuple[Key, int]


def _table(cells: Sequence[Cell], dims: Sequence[str], types: Sequence[pa.DataType]) -> pa.Table:
    columns = {
        name: pa.array([key[i] for key, _ in cells], type_)
        for i, (name, type_) in enumerate(zip(dims, types, strict=True))
    }
    columns["count"] = pa.array([count for _, count in cells], pa.int64())
    return pa.table(columns)


def _strings(cells: Sequence[Cell], dims: Sequence[str]) -> pa.Table:
    return _table(cells, dims, [pa.string()] * len(dims))


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return [tuple(row.values()) for row in table.to_pylist()]


def _sort_key(value: object) -> tuple[bool, object]:
    return (value is None, value)


def _truth(cells: Sequence[Cell], n: int) -> tuple[list[list[object]], dict[Key, int]]:
    """Categories per dimension and the true value of every cell and every total, including
    the unpublished ones (summed over two or more dimensions), computed naively."""
    domains = [sorted({key[i] for key, _ in cells}, key=_sort_key) for i in range(n)]
    counts = dict(cells)
    truth: dict[Key, int] = {}
    for key in itertools.product(*[[*domain, ALL] for domain in domains]):
        truth[key] = sum(
            counts.get(cell, 0)
            for cell in itertools.product(*domains)
            if all(k in (ALL, c) for k, c in zip(key, cell, strict=True))
        )
    return domains, truth


def _published(
    result: ProtectedTable, dims: Sequence[str]
) -> dict[Key, tuple[int | None, str | None]]:
    """Key -> (published count, suppression) for every cell and margin row."""
    out: dict[Key, tuple[int | None, str | None]] = {}
    for row in result.cells.to_pylist():
        out[tuple(row[d] for d in dims)] = (row["count"], row["suppression"])
    for row in result.margins.to_pylist():
        over = row["total_over"]
        out[tuple(ALL if over in ("*", d) else row[d] for d in dims)] = (
            row["count"],
            row["suppression"],
        )
    return out


def _relations(domains: list[list[object]], keys: Iterable[Key]) -> list[tuple[Key, list[Key]]]:
    """Every relation of the whole table: a key with ALL somewhere equals the sum of the keys
    with a category there instead (restricted to the ``keys`` given)."""
    relations = []
    for total in keys:
        for i, position in enumerate(total):
            if position == ALL:
                items = [(*total[:i], v, *total[i + 1 :]) for v in domains[i]]
                relations.append((total, items))
    return relations


def _peeling_attack(
    domains: list[list[object]],
    truth: dict[Key, int],
    published: dict[Key, tuple[int | None, str | None]],
) -> dict[Key, int]:
    """The attacker: knows the TRUE value of every published cell and total (worst case:
    rounding ignored) and solves any relation with a single unknown, over and over, including
    relations through totals that are never published. Returns the withheld items recovered.
    """
    known = {key: truth[key] for key, (_, suppression) in published.items() if not suppression}
    relations = _relations(domains, truth.keys())
    progress = True
    while progress:
        progress = False
        for total, items in relations:
            unknown = [key for key in (total, *items) if key not in known]
            if len(unknown) != 1:
                continue
            (key,) = unknown
            if key == total:
                known[key] = sum(known[item] for item in items)
            else:
                known[key] = known[total] - sum(known[i] for i in items if i != key)
            assert known[key] == truth[key]  # the attacker's algebra is right
            progress = True
    return {key: known[key] for key, (_, s) in published.items() if s and key in known}


# --- worked examples ------------------------------------------------------------------------

TWO_BY_THREE: list[Cell] = [
    (("r1", "c1"), 3),
    (("r1", "c2"), 20),
    (("r1", "c3"), 30),
    (("r2", "c1"), 15),
    (("r2", "c2"), 12),
    (("r2", "c3"), 40),
]


def test_two_by_three_with_one_small_cell() -> None:
    """The 3 is primary; 15 (its column) and 20 (smallest in its row) are withheld to stop
    subtraction, and then 12 so that column c2 and row r2 do not have one unknown each.
    Totals come from the true counts and are rounded to 5."""
    result = protect(_strings(TWO_BY_THREE, ["row", "col"]), ["row", "col"], DisclosureRules())
    assert result.cells.column_names == ["row", "col", "count", "suppression"]
    assert _rows(result.cells) == [
        ("r1", "c1", None, "primary"),
        ("r1", "c2", None, "secondary"),
        ("r1", "c3", 30, None),
        ("r2", "c1", None, "secondary"),
        ("r2", "c2", None, "secondary"),
        ("r2", "c3", 40, None),
    ]
    assert result.margins.column_names == ["total_over", "row", "col", "count", "suppression"]
    assert _rows(result.margins) == [
        ("row", None, "c1", 20, None),  # 18
        ("row", None, "c2", 30, None),  # 32
        ("row", None, "c3", 70, None),
        ("col", "r1", None, 55, None),  # 53
        ("col", "r2", None, 65, None),  # 67
        ("*", None, None, 120, None),
    ]
    assert result.cells.schema.field("count").type == pa.int64()
    assert result.actions.to_json() == {
        "rules": {
            "min_cell": 10,
            "rounding": 5,
            "secondary_suppression": True,
            "suppress_zeros": False,
        },
        "cells": {"primary": 1, "secondary": 3, "rounded": 2},
        "totals": {"primary": 0, "secondary": 0, "rounded": 6},
    }
    json.dumps(result.actions.to_json())


def test_one_dimension_withholds_the_smallest_other_cell_first_in_category_order() -> None:
    """With only a grand total, the 3 needs one more unknown: the smallest non-zero cell,
    the first in category order on a tie (input order does not matter)."""
    cells: list[Cell] = [(("d",), 40), (("c",), 20), (("b",), 20), (("a",), 3), (("e",), 0)]
    result = protect(_strings(cells, ["area"]), ["area"], DisclosureRules())
    assert _rows(result.cells) == [
        ("a", None, "primary"),
        ("b", None, "secondary"),
        ("c", 20, None),
        ("d", 40, None),
        ("e", 0, None),
    ]
    assert _rows(result.margins) == [("*", None, 85, None)]  # 83


def test_a_total_is_withheld_when_its_group_has_no_other_non_zero_cell() -> None:
    """Column c2 holds 0 and a withheld 20: no non-zero cell is left to withhold, so its
    total goes, which leaves one unknown among the column totals, and so on to a fixed point.
    Only the zero and the grand total survive."""
    cells: list[Cell] = [(("r1", "c1"), 3), (("r1", "c2"), 0), (("r2", "c1"), 15)]
    cells.append((("r2", "c2"), 20))
    result = protect(_strings(cells, ["row", "col"]), ["row", "col"], DisclosureRules())
    assert _rows(result.cells) == [
        ("r1", "c1", None, "primary"),
        ("r1", "c2", 0, None),
        ("r2", "c1", None, "secondary"),
        ("r2", "c2", None, "secondary"),
    ]
    assert _rows(result.margins) == [
        ("row", None, "c1", None, "secondary"),
        ("row", None, "c2", None, "secondary"),
        ("col", "r1", None, None, "primary"),
        ("col", "r2", None, None, "secondary"),
        ("*", None, None, 40, None),  # 38
    ]


def test_three_dimensions_are_protected_through_unpublished_totals() -> None:
    """The total of the a0 slice is never published, but it equals the grand total minus the
    a1 slice (27 + 0 over d2), so the withheld 9 for (a0, b1) would follow by subtraction.
    The whole-table check withholds the margin (a1, *, c0) = 27 as well."""
    counts = [0, 0, 7, 2, 11, 0, 16, 0]
    keys = itertools.product(["a0", "a1"], ["b0", "b1"], ["c0", "c1"])
    cells: list[Cell] = [(key, c) for key, c in zip(keys, counts, strict=True) if c]
    dims = ["d0", "d1", "d2"]
    result = protect(_strings(cells, dims), dims, DisclosureRules())
    assert [row[-1] for row in _rows(result.cells)] == [
        None,  # a0 b0 c0 = 0 (missing from the input)
        None,
        "primary",  # 7
        "primary",  # 2
        "secondary",  # 11
        None,
        "secondary",  # 16
        None,
    ]
    assert _rows(result.margins) == [
        ("d0", None, "b0", "c0", None, "secondary"),
        ("d0", None, "b0", "c1", 0, None),
        ("d0", None, "b1", "c0", 25, None),  # 23
        ("d0", None, "b1", "c1", None, "primary"),
        ("d1", "a0", None, "c0", None, "primary"),
        ("d1", "a0", None, "c1", None, "primary"),
        ("d1", "a1", None, "c0", None, "secondary"),  # 27: the unpublished-total check
        ("d1", "a1", None, "c1", 0, None),
        ("d2", "a0", "b0", None, 0, None),
        ("d2", "a0", "b1", None, None, "primary"),
        ("d2", "a1", "b0", None, None, "secondary"),
        ("d2", "a1", "b1", None, None, "secondary"),
        ("*", None, None, None, 35, None),  # 36
    ]
    domains, truth = _truth(cells, 3)
    assert _peeling_attack(domains, truth, _published(result, dims)) == {}


@pytest.mark.parametrize(
    ("rounding", "counts", "expected"),
    [
        (5, [10, 12, 13, 15, 17, 18, 1000], [10, 10, 15, 15, 15, 20, 1000]),
        (10, [10, 14, 15, 25, 26], [10, 10, 20, 30, 30]),
        (3, [10, 11, 12], [9, 12, 12]),
        (1, [10, 11, 12], [10, 11, 12]),
    ],
)
def test_rounding_is_to_the_nearest_multiple_halves_up(
    rounding: int, counts: list[int], expected: list[int]
) -> None:
    """Half-way values round up; everything else to the nearest multiple."""
    cells: list[Cell] = [((f"k{i:02}",), c) for i, c in enumerate(counts)]
    rules = DisclosureRules(rounding=rounding, secondary_suppression=False)
    result = protect(_strings(cells, ["k"]), ["k"], rules)
    assert result.cells.column("count").to_pylist() == expected
    assert result.actions.rounded_cells == (len(counts) if rounding > 1 else 0)


def test_a_positive_count_is_never_published_as_zero() -> None:
    """With a threshold below rounding/2, a 1 or 2 would round to 0; it is published as the
    rounding base instead, so 0 always means a true zero."""
    cells: list[Cell] = [(("a",), 0), (("b",), 1), (("c",), 2), (("d",), 3)]
    rules = DisclosureRules(min_cell=1, rounding=5)
    result = protect(_strings(cells, ["k"]), ["k"], rules)
    assert result.cells.column("count").to_pylist() == [0, 5, 5, 5]
    assert result.margins.column("count").to_pylist() == [5]


def test_zeros_are_published_unless_suppress_zeros() -> None:
    """A zero (given or missing from the input) is published as 0 by default; with
    suppress_zeros it is withheld as primary like a small count, and the relation rules
    then apply to it."""
    cells: list[Cell] = [(("a", "x"), 0), (("a", "y"), 50), (("b", "x"), 20)]  # (b, y) = 0
    table = _strings(cells, ["p", "q"])
    default = protect(table, ["p", "q"], DisclosureRules())
    assert _rows(default.cells) == [
        ("a", "x", 0, None),
        ("a", "y", 50, None),
        ("b", "x", 20, None),
        ("b", "y", 0, None),
    ]
    zeros = protect(table, ["p", "q"], DisclosureRules(suppress_zeros=True))
    assert [row[2:] for row in _rows(zeros.cells)] == [
        (None, "primary"),
        (None, "secondary"),
        (None, "secondary"),
        (None, "primary"),
    ]


_OPEN = DisclosureRules(min_cell=0, rounding=1)


def test_null_categories_sort_last_and_stay_null() -> None:
    """A null category is a category of its own, last in order, null in the output; in
    the margins ``total_over`` tells it apart from a summed-out dimension."""
    cells: list[Cell] = [((None, 2), 20), (("x", 1), 30), ((None, 1), 40), (("x", 2), 50)]
    result = protect(_table(cells, ["s", "n"], [pa.string(), pa.int32()]), ["s", "n"], _OPEN)
    assert _rows(result.cells) == [
        ("x", 1, 30, None),
        ("x", 2, 50, None),
        (None, 1, 40, None),
        (None, 2, 20, None),
    ]
    assert result.cells.schema.field("n").type == pa.int32()
    assert _rows(result.margins) == [
        ("s", None, 1, 70, None),
        ("s", None, 2, 70, None),
        ("n", "x", None, 80, None),
        ("n", None, None, 60, None),
        ("*", None, None, 140, None),
    ]


def test_date_and_integer_categories_keep_their_types() -> None:
    """Dates and integers are sorted as such and come back with their Arrow types."""
    cells: list[Cell] = [((date(2024, 2, 1), 10), 5), ((date(2024, 1, 1), 9), 7)]
    types = [pa.date32(), pa.int16()]
    result = protect(_table(cells, ["month", "code"], types), ["month", "code"], _OPEN)
    assert _rows(result.cells) == [
        (date(2024, 1, 1), 9, 7, None),
        (date(2024, 1, 1), 10, 0, None),
        (date(2024, 2, 1), 9, 0, None),
        (date(2024, 2, 1), 10, 5, None),
    ]
    assert result.cells.schema.types[:2] == types
    assert result.margins.schema.types[1:3] == types


def test_without_secondary_suppression_only_small_counts_are_withheld() -> None:
    """secondary_suppression=False applies primary suppression and rounding only."""
    rules = DisclosureRules(secondary_suppression=False)
    result = protect(_strings(TWO_BY_THREE, ["row", "col"]), ["row", "col"], rules)
    assert result.cells.column("suppression").to_pylist() == ["primary"] + [None] * 5
    assert (result.actions.primary_cells, result.actions.secondary_cells) == (1, 0)


def test_the_attacker_recovers_what_primary_suppression_alone_leaves() -> None:
    """A check on the attacker itself: without secondary suppression the 3 comes straight
    back from its row total."""
    dims = ["row", "col"]
    rules = DisclosureRules(secondary_suppression=False)
    result = protect(_strings(TWO_BY_THREE, dims), dims, rules)
    domains, truth = _truth(TWO_BY_THREE, 2)
    assert _peeling_attack(domains, truth, _published(result, dims)) == {("r1", "c1"): 3}


def test_for_publication_hides_which_suppression_was_primary() -> None:
    """The publication view labels every withheld value ``suppressed``."""
    result = protect(_strings(TWO_BY_THREE, ["row", "col"]), ["row", "col"], DisclosureRules())
    public = result.for_publication()
    assert public.cells.column("suppression").to_pylist() == [
        "suppressed",
        "suppressed",
        None,
        "suppressed",
        "suppressed",
        None,
    ]
    assert public.cells.column("count").equals(result.cells.column("count"))
    assert public.margins.column("suppression").null_count == public.margins.num_rows


def test_a_custom_count_column_name() -> None:
    """The count column may have another name; the output keeps it."""
    table = pa.table({"k": ["a", "b"], "n": pa.array([12, 30], pa.uint8())})
    result = protect(table, ["k"], DisclosureRules(), count="n")
    assert result.cells.column_names == ["k", "n", "suppression"]
    assert result.cells.column("n").to_pylist() == [10, 30]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_cell": -1}, "min_cell must be 0 or more"),
        ({"rounding": 0}, "rounding must be 1 or more"),
        ({"min_cell": 2.5}, "min_cell must be an integer"),
        ({"rounding": True}, "rounding must be an integer"),
        ({"suppress_zeros": "no"}, "suppress_zeros must be true or false"),
    ],
)
def test_rules_are_validated(kwargs: dict[str, object], message: str) -> None:
    """Bad rules are refused when the rules are made, with a message naming the setting."""
    with pytest.raises(DisclosureError, match=message):
        DisclosureRules(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("table", "dims", "message"),
    [
        (pa.table({"k": ["a"], "count": [1]}), [], "at least one dimension"),
        (pa.table({"k": ["a"], "count": [1]}), ["k", "k"], "distinct"),
        (pa.table({"k": ["a"], "count": [1]}), ["z"], "no column 'z'"),
        (pa.table({"k": ["a"]}), ["k"], "no column 'count'"),
        (pa.table({"k": ["a"], "count": [1.0]}), ["k"], "must be integer, not double"),
        (pa.table({"k": ["a"], "count": pa.array([None], pa.int64())}), ["k"], "has nulls"),
        (pa.table({"k": ["a"], "count": [-1]}), ["k"], "negative"),
        (pa.table({"k": ["a", "a"], "count": [1, 2]}), ["k"], "more than one row"),
        (pa.table({"k": [1.5], "count": [1]}), ["k"], "dimension 'k' is double"),
        (pa.table({"total_over": ["a"], "count": [1]}), ["total_over"], "reserved"),
        (pa.table({"k": ["a"], "count": [1]}), ["k", "count"], "both the count"),
        (pa.table({"k": ["a"], "count": [1]}), "k", "not one string"),
    ],
)
def test_tables_that_cannot_be_protected_are_refused(
    table: pa.Table, dims: list[str], message: str
) -> None:
    """Each problem with the input is a DisclosureError saying what is wrong."""
    with pytest.raises(DisclosureError, match=message):
        protect(table, dims, DisclosureRules())


def test_an_empty_table_has_no_cells_and_a_zero_total() -> None:
    """No rows: no categories, no cells, and a grand total of 0."""
    empty = pa.table({"k": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
    result = protect(empty, ["k"], DisclosureRules())
    assert result.cells.num_rows == 0
    assert _rows(result.margins) == [("*", None, 0, None)]


def test_dictionary_encoded_dimensions_are_accepted() -> None:
    """A dictionary-encoded text dimension is read as text."""
    plain = pa.table({"k": ["b", "a"], "count": [30, 20]})
    encoded = plain.set_column(0, "k", plain.column("k").dictionary_encode())
    result = protect(encoded, ["k"], DisclosureRules())
    assert result.cells.equals(protect(plain, ["k"], DisclosureRules()).cells)


# --- properties -----------------------------------------------------------------------------

CATEGORIES: list[tuple[pa.DataType, list[object]]] = [
    (pa.string(), ["north", None, "east", "south"]),
    (pa.int64(), [3, 1, None, 2]),
    (pa.date32(), [date(2024, 3, 1), None, date(2023, 6, 1), date(2024, 1, 1)]),
]
SMALL_COUNTS = st.one_of(st.just(0), st.integers(1, 12), st.integers(10, 80))


@st.composite
def count_tables(draw: st.DrawFn, max_dims: int = 3) -> tuple[pa.Table, list[str], list[Cell]]:
    """A small table of 1-3 dimensions of mixed types with nulls, many small counts, and
    some zero cells missing from the input; rows in a random order."""
    n = draw(st.integers(1, max_dims))
    kinds = [CATEGORIES[draw(st.integers(0, 2))] for _ in range(n)]
    sizes = [draw(st.integers(1, 4)) for _ in range(n)]
    cells: list[Cell] = []
    for key in itertools.product(
        *(values[:size] for (_, values), size in zip(kinds, sizes, strict=True))
    ):
        count = draw(SMALL_COUNTS)
        if count or draw(st.booleans()) or not cells:
            cells.append((key, count))
    cells = draw(st.permutations(cells))
    dims = [f"d{i}" for i in range(n)]
    return _table(cells, dims, [type_ for type_, _ in kinds]), dims, cells


RULES = st.builds(
    DisclosureRules,
    min_cell=st.integers(0, 12),
    rounding=st.integers(1, 10),
    secondary_suppression=st.just(True),
    suppress_zeros=st.booleans(),
)


@given(count_tables(), RULES)
@settings(max_examples=150, deadline=None)
def test_no_published_relation_has_exactly_one_unknown(
    case: tuple[pa.Table, list[str], list[Cell]], rules: DisclosureRules
) -> None:
    """For every margin row and the cells it sums, and for the grand total and each
    dimension's margins, the number of withheld items is never exactly one."""
    table, dims, cells = case
    result = protect(table, dims, rules)
    domains, _ = _truth(cells, len(dims))
    published = _published(result, dims)
    relations = _relations(domains, [key for key in published if ALL in key])
    if len(dims) > 1:  # the grand total and each dimension's margins (not direct in 3-D)
        grand = (ALL,) * len(dims)
        for i in range(len(dims)):
            margin = [key for key in published if key.count(ALL) == 1 and key[i] == ALL]
            relations.append((grand, margin))
    checked = 0
    for total, items in relations:
        if all(key in published for key in items):
            withheld = sum(bool(published[key][1]) for key in (total, *items))
            assert withheld != 1, (total, items)
            checked += 1
    assert checked >= len(dims)


@given(count_tables(), RULES)
@settings(max_examples=150, deadline=None)
def test_published_values_follow_the_rules(
    case: tuple[pa.Table, list[str], list[Cell]], rules: DisclosureRules
) -> None:
    """Every published value is a multiple of the rounding base within half of it of the
    truth (or the base itself for a positive count below half the base); every count with
    0 < count < min_cell, cell or total, is withheld as primary, and zeros too with
    suppress_zeros."""
    table, dims, cells = case
    result = protect(table, dims, rules)
    _, truth = _truth(cells, len(dims))
    for key, (count, suppression) in _published(result, dims).items():
        true = truth[key]
        if 0 < true < rules.min_cell or (true == 0 and rules.suppress_zeros):
            assert (count, suppression) == (None, "primary")
        if count is not None:
            assert count % rules.rounding == 0
            assert abs(count - true) * 2 <= rules.rounding or (
                0 < true * 2 < rules.rounding and count == rules.rounding
            )
            assert (count == 0) == (true == 0)


@given(count_tables(max_dims=2), RULES)
@settings(max_examples=150, deadline=None)
def test_a_peeling_attack_on_two_dimensional_tables_recovers_nothing(
    case: tuple[pa.Table, list[str], list[Cell]], rules: DisclosureRules
) -> None:
    """Given the true value of every published cell and total, solving relations with one
    unknown, over and over, recovers no withheld cell or total (1-D and 2-D tables)."""
    table, dims, cells = case
    domains, truth = _truth(cells, len(dims))
    published = _published(protect(table, dims, rules), dims)
    assert _peeling_attack(domains, truth, published) == {}


@given(count_tables(), RULES)
@settings(max_examples=100, deadline=None)
def test_a_peeling_attack_through_unpublished_totals_recovers_nothing(
    case: tuple[pa.Table, list[str], list[Cell]], rules: DisclosureRules
) -> None:
    """The same attack on 1-3 dimensions, using every relation of the table, including
    totals over two dimensions that are never published."""
    table, dims, cells = case
    domains, truth = _truth(cells, len(dims))
    published = _published(protect(table, dims, rules), dims)
    assert _peeling_attack(domains, truth, published) == {}


@given(count_tables(), RULES, st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_output_does_not_depend_on_input_order(
    case: tuple[pa.Table, list[str], list[Cell]], rules: DisclosureRules, rng: random.Random
) -> None:
    """The same cells in another row order give identical tables and actions, sorted by
    dimension values with nulls last."""
    table, dims, _ = case
    order = list(range(table.num_rows))
    rng.shuffle(order)
    first, second = protect(table, dims, rules), protect(table.take(order), dims, rules)
    assert first.cells.equals(second.cells)
    assert first.margins.equals(second.margins)
    assert first.actions == second.actions
    keys = [tuple(_sort_key(v) for v in row[: len(dims)]) for row in _rows(first.cells)]
    assert keys == sorted(keys)
