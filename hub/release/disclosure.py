"""Statistical disclosure control for tables of counts (ONS/NHS-style small-number rules).

Input is a table of counts: one row per cell, one or more dimension columns (strings,
integers, dates or booleans; a null is a category of its own, sorted last and kept null in
the output) and an integer count column. A combination of categories with no row is a cell
with a count of zero, so the table is first completed to the full cross-product of the
categories seen in each dimension. What is published:

- every cell, and the **margins**: for each dimension, the totals over that dimension for
  every combination of the others (for two dimensions: row and column totals), plus the
  grand total. Totals are computed from the true counts, never from published ones, so a
  published table need not add up; that is deliberate (ONS convention).

The rules (``DisclosureRules``), applied to cells and totals alike:

1. **Primary suppression.** A count with ``0 < count < min_cell`` is withheld (null). A
   zero is published as 0: a true zero is structural or genuine information, and hiding it
   protects no one (one of the options in ONS guidance). ``suppress_zeros=True`` withholds
   zeros too, for tables where "nobody" is itself disclosive.
2. **Rounding.** Every other count is rounded to the nearest multiple of ``rounding``,
   halves rounded up (so 12 -> 10, 13 -> 15 with base 5). A positive count that would round
   to 0 (only possible when ``min_cell < rounding / 2``) is published as ``rounding``
   instead, so that a published 0 always means a true zero.
3. **Secondary suppression** (``secondary_suppression=True``). Each published total and the
   items it sums (a margin and its cells; the grand total and the margins of one dimension)
   is a linear relation. If exactly one item of a relation is withheld and the rest are
   published, a reader gets it by subtraction. So, repeatedly until nothing changes: in any
   relation with exactly one withheld item, also withhold the smallest non-zero published
   cell of that relation (ties: first in dimension order); if there is none, withhold the
   relation's total instead. Each new suppression can create new singletons elsewhere, hence
   the fixed point. With three or more dimensions, tables that are not published (totals over
   two dimensions at once) still tie the published margins together; a final check solves
   every relation of the whole table, unpublished totals included, one unknown at a time
   ("peeling"), and if that recovers a withheld value it withholds the smallest non-zero
   published item the solution used, then repeats the whole procedure.

What this does and does not promise. After ``protect`` no withheld value can be worked out
exactly by repeatedly solving a relation of the table with a single unknown, even by a
reader who knows the true (unrounded) value of everything published; with rounding on top, the
published values are not exact either. This is a greedy, hypercube-lite heuristic: it is not
optimal (it may withhold more than needed) and it gives no guarantee against interval
attacks, where a reader bounds a withheld cell using non-negativity and linear programming
over the whole table (for example, two withheld cells in a row whose total is 12 each lie in
0..12), nor against differencing two overlapping releases. Those need a protection-level
method (tau-ARGUS and similar) and a release policy.

The ``suppression`` column says ``primary`` or ``secondary`` for the hub's own records. Do not
release it as is: "primary" tells a reader that the value lies in 1..min_cell-1.
``ProtectedTable.for_publication`` gives the same tables with one label, ``suppressed``.
Likewise ``DisclosureActions`` (counts of each kind) is for the extract's manifest, not for
the reader of the table.

Limits: the completed table may have at most ``MAX_CELLS`` cells (the secondary search is
plain Python over every cell and total). A table with no rows has no cells and a grand
total of 0 (withheld with ``suppress_zeros``).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "MAX_CELLS",
    "DisclosureActions",
    "DisclosureError",
    "DisclosureRules",
    "ProtectedTable",
    "protect",
]

MAX_CELLS: Final = 100_000
"""The largest completed table (product of the category counts) ``protect`` accepts."""

PRIMARY: Final = "primary"
SECONDARY: Final = "secondary"
_RESERVED: Final = frozenset({"suppression", "total_over"})
_ALL: Final = -1  # in a key: summed over this dimension

Key = tuple[int, ...]
"""A cell (category index per dimension) or a total (``_ALL`` where summed over)."""


class DisclosureError(ValueError):
    """Invalid disclosure rules, or a table ``protect`` cannot protect as given."""


@dataclass(frozen=True, slots=True)
class DisclosureRules:
    """How counts are protected (module docstring for what each rule does)."""

    min_cell: int = 10
    rounding: int = 5
    secondary_suppression: bool = True
    suppress_zeros: bool = False

    def __post_init__(self) -> None:
        for name in ("min_cell", "rounding"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise DisclosureError(f"{name} must be an integer, not {value!r}")
        for name in ("secondary_suppression", "suppress_zeros"):
            if not isinstance(getattr(self, name), bool):
                raise DisclosureError(f"{name} must be true or false")
        if self.min_cell < 0:
            raise DisclosureError(f"min_cell must be 0 or more, not {self.min_cell}")
        if self.rounding < 1:
            raise DisclosureError(f"rounding must be 1 or more, not {self.rounding}")

    def to_json(self) -> dict[str, object]:
        return {
            "min_cell": self.min_cell,
            "rounding": self.rounding,
            "secondary_suppression": self.secondary_suppression,
            "suppress_zeros": self.suppress_zeros,
        }


@dataclass(frozen=True, slots=True)
class DisclosureActions:
    """What ``protect`` did, for an extract's manifest.

    ``rounded_*`` counts the published values that were rounded (every published value when
    ``rounding > 1``), not how many changed: that would tell a reader how many are exact.
    """

    rules: DisclosureRules
    primary_cells: int
    secondary_cells: int
    rounded_cells: int
    primary_totals: int
    secondary_totals: int
    rounded_totals: int

    def to_json(self) -> dict[str, object]:
        return {
            "rules": self.rules.to_json(),
            "cells": {
                "primary": self.primary_cells,
                "secondary": self.secondary_cells,
                "rounded": self.rounded_cells,
            },
            "totals": {
                "primary": self.primary_totals,
                "secondary": self.secondary_totals,
                "rounded": self.rounded_totals,
            },
        }


@dataclass(frozen=True, slots=True)
class ProtectedTable:
    """The protected cells and margins, sorted by dimension values (nulls last).

    ``cells``: the dimension columns, ``count`` (int64, null when withheld) and
    ``suppression`` (null, ``primary`` or ``secondary``). ``margins``: ``total_over`` (the
    dimension summed over, ``*`` for the grand total), the dimension columns (null where summed
    over), ``count`` and ``suppression``; one dimension's totals after another, in the order
    of ``dimensions``, then the grand total.
    """

    cells: pa.Table
    margins: pa.Table
    actions: DisclosureActions

    def for_publication(self) -> ProtectedTable:
        """The same tables with every withheld value labelled ``suppressed``."""
        return replace(self, cells=_one_label(self.cells), margins=_one_label(self.margins))


def _one_label(table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("suppression")
    withheld = pc.is_valid(table.column(index))
    labels = pc.if_else(withheld, pa.scalar("suppressed"), pa.scalar(None, pa.string()))
    return table.set_column(index, "suppression", labels)


def protect(
    table: pa.Table,
    dimensions: Sequence[str],
    rules: DisclosureRules,
    count: str = "count",
) -> ProtectedTable:
    """Apply ``rules`` to the counts in ``table`` (module docstring for the rules).

    Raises ``DisclosureError`` when a column is missing or of the wrong type, a count is
    null or negative, a cell has more than one row, or the completed table would have more
    than ``MAX_CELLS`` cells.
    """
    if isinstance(dimensions, str):
        raise DisclosureError("dimensions must be a list of column names, not one string")
    categories, cube = _complete(table, list(dimensions), count)
    values = _true_totals(cube)
    status = {key: PRIMARY for key, value in values.items() if _is_primary(value, rules)}
    if rules.secondary_suppression and cube.size > 0:
        _secondary(cube.shape, values, status)
    published = {
        key: None if key in status else _round(value, rules.rounding)
        for key, value in values.items()
    }
    cells = [key for key in values if _ALL not in key]
    totals = [key for key in values if _ALL in key]
    rounded = rules.rounding > 1

    def tally(keys: list[Key], label: str) -> int:
        return sum(status.get(key) == label for key in keys)

    actions = DisclosureActions(
        rules=rules,
        primary_cells=tally(cells, PRIMARY),
        secondary_cells=tally(cells, SECONDARY),
        rounded_cells=sum(key not in status for key in cells) if rounded else 0,
        primary_totals=tally(totals, PRIMARY),
        secondary_totals=tally(totals, SECONDARY),
        rounded_totals=sum(key not in status for key in totals) if rounded else 0,
    )
    columns = {name: values_ for name, values_ in zip(dimensions, categories, strict=True)}
    return ProtectedTable(
        cells=_output(columns, cells, published, status, count),
        margins=_output(columns, totals, published, status, count, total_over=True),
        actions=actions,
    )


# --- input ----------------------------------------------------------------------------------


def _complete(
    table: pa.Table, dims: list[str], count: str
) -> tuple[list[pa.Array], npt.NDArray[np.int64]]:
    """Sorted categories per dimension, and the counts as a dense array over all of them."""
    if not dims:
        raise DisclosureError("name at least one dimension")
    if len(set(dims)) != len(dims):
        raise DisclosureError("dimensions must be distinct")
    for name in [*dims, count]:
        if name not in table.column_names:
            raise DisclosureError(f"the table has no column {name!r}")
        if name in _RESERVED:
            raise DisclosureError(f"{name!r} is reserved for the output; rename the column")
    if count in dims:
        raise DisclosureError(f"{count!r} cannot be both the count and a dimension")
    counts = table.column(count)
    if not pa.types.is_integer(counts.type):
        raise DisclosureError(f"count column {count!r} must be integer, not {counts.type}")
    if counts.null_count:
        raise DisclosureError(f"count column {count!r} has nulls")
    try:
        numbers = pc.cast(counts, pa.int64()).to_numpy()
    except pa.ArrowInvalid as exc:
        raise DisclosureError(f"count column {count!r} does not fit in int64") from exc
    if (numbers < 0).any():
        raise DisclosureError(f"count column {count!r} has negative counts")

    categories: list[pa.Array] = []
    indices: list[npt.NDArray[np.int64]] = []
    for name in dims:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not _is_category_type(column.type):
            raise DisclosureError(
                f"dimension {name!r} is {column.type}; use strings, integers, dates or "
                "booleans (generalise timestamps to dates first)"
            )
        unique = pc.unique(column)
        unique = unique.take(pc.array_sort_indices(unique, null_placement="at_end"))
        categories.append(unique)
        indices.append(pc.index_in(column, value_set=unique).to_numpy(zero_copy_only=False))
    shape = tuple(len(c) for c in categories)
    if int(np.prod(shape)) > MAX_CELLS:
        raise DisclosureError(
            f"the completed table would have {int(np.prod(shape))} cells; at most {MAX_CELLS}"
        )
    cube = np.zeros(shape, dtype=np.int64)
    if table.num_rows:
        flat = np.ravel_multi_index(tuple(i.astype(np.int64) for i in indices), shape)
        if np.unique(flat).size != flat.size:
            raise DisclosureError("the table has more than one row for the same cell")
        cube.flat[flat] = numbers
    return categories, cube


def _is_category_type(type_: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_date(type_)
        or pa.types.is_boolean(type_)
    )


def _true_totals(cube: npt.NDArray[np.int64]) -> dict[Key, int]:
    """True value of every published item: cells, margins (for 2+ dimensions), grand total."""
    values = {tuple(int(i) for i in key): int(v) for key, v in np.ndenumerate(cube)}
    if cube.ndim > 1:
        for k in range(cube.ndim):
            for rest, v in np.ndenumerate(cube.sum(axis=k)):
                values[(*rest[:k], _ALL, *rest[k:])] = int(v)
    values[(_ALL,) * cube.ndim] = int(cube.sum())
    return values


# --- the rules ------------------------------------------------------------------------------


def _is_primary(value: int, rules: DisclosureRules) -> bool:
    return 0 < value < rules.min_cell or (value == 0 and rules.suppress_zeros)


def _round(value: int, base: int) -> int:
    """Nearest multiple of ``base``, halves up; a positive value never becomes 0."""
    rounded = (2 * value + base) // (2 * base) * base
    return base if rounded == 0 and value > 0 else rounded


Relation = tuple[Key, tuple[Key, ...]]
"""A total and the items that sum to it."""


def _relations(shape: tuple[int, ...]) -> list[Relation]:
    """Every published relation: each margin and its cells, the grand total and each
    dimension's margins (for one dimension the grand total is the only margin)."""
    n = len(shape)
    relations: list[Relation] = []
    for k in range(n):
        for total in itertools.product(*_ranges(shape, k)):
            relations.append((total, _children(total, k, shape[k])))
    if n > 1:
        grand = (_ALL,) * n
        for k in range(n):
            relations.append((grand, tuple(itertools.product(*_ranges(shape, k)))))
    return relations


def _ranges(shape: tuple[int, ...], summed: int) -> list[Iterable[int]]:
    return [(_ALL,) if i == summed else range(size) for i, size in enumerate(shape)]


def _children(total: Key, k: int, size: int) -> tuple[Key, ...]:
    return tuple((*total[:k], v, *total[k + 1 :]) for v in range(size))


def _secondary(shape: tuple[int, ...], values: dict[Key, int], status: dict[Key, str]) -> None:
    """Add secondary suppressions to ``status`` until no relation (published or, for 3+
    dimensions, through unpublished totals) gives a withheld value away."""
    relations = _relations(shape)
    containing: dict[Key, list[int]] = {}
    for index, (total, items) in enumerate(relations):
        for key in (total, *items):
            containing.setdefault(key, []).append(index)
    pending = list(range(len(relations)))
    while True:
        while pending:  # lowest-numbered relation first: deterministic
            total, items = relations[heapq.heappop(pending)]
            if sum(key in status for key in (total, *items)) != 1:
                continue
            choice = _complement(total, items, values, status)
            if choice is not None:
                status[choice] = SECONDARY
                for index in containing[choice]:
                    heapq.heappush(pending, index)
        if len(shape) < 3:
            return  # every relation of a 1- or 2-D table is published and checked above
        choice = _peel(shape, values, status)
        if choice is None:
            return
        status[choice] = SECONDARY
        pending = sorted(set(containing[choice]))


def _complement(
    total: Key, items: Sequence[Key], values: dict[Key, int], status: dict[Key, str]
) -> Key | None:
    """The published item of a relation to withhold next: the smallest non-zero item, else
    the total, else a zero item (ties by key). Unpublished totals are never chosen."""
    ranked: list[tuple[int, int, Key]] = []
    for key in items:
        if key in values and key not in status:
            ranked.append((0, values[key], key) if values[key] else (2, 0, key))
    if total in values and total not in status:
        ranked.append((1, 0, total))
    return min(ranked)[2] if ranked else None


def _peel(shape: tuple[int, ...], values: dict[Key, int], status: dict[Key, str]) -> Key | None:
    """Solve the whole table's relations one unknown at a time, from what is published; if
    that recovers a withheld item, the published item to withhold to stop it, else None."""
    relations: list[tuple[Key, ...]] = []  # total first, then the items summed
    for total in itertools.product(*[(*range(size), _ALL) for size in shape]):
        for k, position in enumerate(total):
            if position == _ALL:
                relations.append((total, *_children(total, k, shape[k])))
    unknown_in: list[int] = []
    containing: dict[Key, list[int]] = {}
    for index, relation in enumerate(relations):
        unknown_in.append(sum(key not in values or key in status for key in relation))
        for key in relation:
            containing.setdefault(key, []).append(index)
    known = {key for key in values if key not in status}
    solved_by: dict[Key, int] = {}
    queue = deque(index for index, unknowns in enumerate(unknown_in) if unknowns == 1)
    while queue:
        index = queue.popleft()
        if unknown_in[index] != 1:
            continue
        key = next(key for key in relations[index] if key not in known)
        known.add(key)
        solved_by[key] = index
        if key in status:
            return _blocker(index, relations, values, status, solved_by)
        for other in containing[key]:
            unknown_in[other] -= 1
            if unknown_in[other] == 1:
                queue.append(other)
    return None


def _blocker(
    index: int,
    relations: list[tuple[Key, ...]],
    values: dict[Key, int],
    status: dict[Key, str],
    solved_by: dict[Key, int],
) -> Key:
    """The published item to withhold so that the chain of relations that solved relation
    ``index`` breaks: the smallest non-zero one the chain used (ties by key)."""
    used: set[Key] = set()
    stack, seen = [index], {index}
    while stack:
        for key in relations[stack.pop()]:
            if key in values:
                if key not in status:
                    used.add(key)
            elif solved_by[key] not in seen:  # an unpublished total, solved earlier
                seen.add(solved_by[key])
                stack.append(solved_by[key])
    if not used:
        raise AssertionError("a solved relation always rests on published items")
    return min(used, key=lambda key: (values[key] == 0, values[key], key))


# --- output ---------------------------------------------------------------------------------


def _output(
    categories: dict[str, pa.Array],
    keys: list[Key],
    published: dict[Key, int | None],
    status: dict[Key, str],
    count: str,
    *,
    total_over: bool = False,
) -> pa.Table:
    names = list(categories)
    columns: dict[str, pa.Array] = {}
    if total_over:
        columns["total_over"] = pa.array(
            [_summed_over(key, names) for key in keys], type=pa.string()
        )
    for position, (name, values) in enumerate(categories.items()):
        take = [None if key[position] == _ALL else key[position] for key in keys]
        columns[name] = values.take(pa.array(take, type=pa.int64()))
    columns[count] = pa.array([published[key] for key in keys], type=pa.int64())
    columns["suppression"] = pa.array([status.get(key) for key in keys], type=pa.string())
    return pa.table(columns)


def _summed_over(key: Key, names: list[str]) -> str:
    summed = [name for name, position in zip(names, key, strict=True) if position == _ALL]
    return summed[0] if len(summed) == 1 and len(names) > 1 else "*"
