"""Comparison levels and comparisons for encoded fields, for Splink 5 on DuckDB and Spark.

The hub compares what connectors send: keyed tokens (``tok_<name>``, equal token = equal inputs)
and balanced Bloom filters (``bf_<name>``, compared by the Dice coefficient). Splink has no level
for either, so this module adds them as subclasses of Splink's public ``CustomLevel`` whose
``create_sql`` writes each engine's own SQL. Nothing is left to sqlglot translation: translating
the DuckDB form to another dialect silently turns ``::BIT`` into a cast to BOOLEAN.

Filters reach both engines in one form (:func:`linkage.inputs.filter_word_columns`): a filter
column ``bf_x`` becomes ``k`` 64-bit integer columns ``bf_x_w0 .. bf_x_w{k-1}`` and its popcount
``bf_x_n``. The popcount of the AND is then ``bit_count(l_w0 & r_w0) + ...`` on plain integers,
the same SQL on DuckDB and Spark: no per-pair cast of a BLOB to ``BIT`` in DuckDB (about ten times
slower, measured in the u estimation of a FEBRL4 run), and none of Spark's missing bitwise
operators on BINARY. Each word's popcount is cast to INTEGER (DuckDB returns TINYINT, and a sum
of them overflows).

Dice is ``2 * |a & b| / (|a| + |b|)``, computed from both popcounts (balance is not assumed); it
is NULL when either filter is NULL and when both are all-zero (no division: ``nullif`` keeps
Spark's ANSI mode from raising).
A NULL Dice makes a level's condition NULL, so the pair falls through to the next level.

Levels are Splink objects and so mutable (``configure`` sets m and u on them): build fresh ones
for each comparison rather than sharing an instance between comparisons.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from splink import ColumnExpression
from splink.comparison_level_library import CustomLevel, ElseLevel, ExactMatchLevel
from splink.comparison_library import CustomComparison
from splink.internals.dialects import SplinkDialect

from linkage.errors import SettingsError

__all__ = [
    "DEFAULT_DICE_THRESHOLDS",
    "SUPPORTED_DIALECTS",
    "AndLevel",
    "DiceLevel",
    "EncodedComparison",
    "LadderLevel",
    "NullLevel",
    "OrLevel",
    "TokenMatchLevel",
    "dice_sql",
    "filter_comparison",
    "ladder_comparison",
    "token_comparison",
]

SUPPORTED_DIALECTS = ("duckdb", "spark")
DEFAULT_DICE_THRESHOLDS = (0.9, 0.8, 0.6)
"""For balanced filters: unrelated values score about 0.5, identical ones 1.0."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _dialect_name(dialect: str | SplinkDialect) -> str:
    name = dialect if isinstance(dialect, str) else str(dialect.sql_dialect_str)
    if name not in SUPPORTED_DIALECTS:
        raise SettingsError(f"unsupported SQL dialect {name!r}: use one of {SUPPORTED_DIALECTS}")
    return name


def _check_column(column: str) -> str:
    if not _IDENTIFIER.match(column):
        raise SettingsError(f"column name {column!r} is not a plain identifier")
    return column


def _sides(column: str, sql_dialect: SplinkDialect) -> tuple[str, str]:
    """The quoted ``<column>_l`` and ``<column>_r`` references, as Splink writes them."""
    expression = ColumnExpression(column, sql_dialect=sql_dialect)
    return str(expression.name_l), str(expression.name_r)


def dice_sql(column: str, words: int, sql_dialect: str | SplinkDialect) -> str:
    """The Dice coefficient of filter ``column`` on the two sides of a pair, in the engine's SQL.

    ``words`` is the filter's length in 64-bit words; with a dialect name (not a Splink dialect)
    the sides are written ``<column>_w<i>_l`` / ``_r`` unquoted, for tests and ad hoc SQL.
    """
    _dialect_name(sql_dialect)
    _check_column(column)
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise SettingsError(f"a filter needs a positive number of words, not {words!r}")

    def sides(name: str) -> tuple[str, str]:
        if isinstance(sql_dialect, str):
            return f"{name}_l", f"{name}_r"
        return _sides(name, sql_dialect)

    parts = []
    for i in range(words):
        left, right = sides(f"{column}_w{i}")
        parts.append(f"CAST(bit_count({left} & {right}) AS INTEGER)")
    n_left, n_right = sides(f"{column}_n")
    return f"(2 * ({' + '.join(parts)}) / nullif({n_left} + {n_right}, 0))"


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise SettingsError("a Dice threshold must be a number")
    if not 0.0 < threshold <= 1.0:
        raise SettingsError(f"a Dice threshold must be in (0, 1], not {threshold}")
    return float(threshold)


class NullLevel(CustomLevel):
    """Null level: on one side of the pair, every listed column is NULL."""

    def __init__(self, columns: str | Sequence[str]) -> None:
        names = (columns,) if isinstance(columns, str) else tuple(columns)
        if not names:
            raise SettingsError("a null level needs at least one column")
        self.columns = tuple(_check_column(c) for c in names)
        label = f"{' and '.join(self.columns)} NULL on a side"
        super().__init__(sql_condition=label, label_for_charts=label)
        self.is_null_level = True

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        """``a_l IS NULL OR a_r IS NULL``; with several columns, all NULL on the left or right."""
        sides = [_sides(c, sql_dialect) for c in self.columns]
        left = " AND ".join(f"{l_} IS NULL" for l_, _ in sides)
        right = " AND ".join(f"{r_} IS NULL" for _, r_ in sides)
        if len(sides) == 1:
            return f"{left} OR {right}"
        return f"({left}) OR ({right})"


class TokenMatchLevel(ExactMatchLevel):
    """The two tokens are equal (so the token's inputs were equal), optionally TF-adjusted.

    With ``tf_adjustment`` Splink scales this level's weight by how common the token value is
    (``tf_adjustment_column`` = the column, weight 1.0), as ``ExactMatchLevel`` does.
    """

    def __init__(self, column: str, tf_adjustment: bool = False) -> None:
        self.column = _check_column(column)
        super().__init__(column, term_frequency_adjustments=tf_adjustment)

    @property
    def columns(self) -> tuple[str, ...]:
        """The encoded columns the level reads."""
        return (self.column,)

    def create_label_for_charts(self) -> str:
        """Chart label."""
        return f"{self.column} agrees"


class DiceLevel(CustomLevel):
    """Dice of the filters in ``column`` (``words`` 64-bit words long) is at least ``threshold``."""

    def __init__(self, column: str, threshold: float, words: int, label: str | None = None) -> None:
        self.column = _check_column(column)
        self.threshold = _check_threshold(threshold)
        self.words = words
        text = label if label is not None else f"Dice({column}) >= {self.threshold}"
        # sql_condition is descriptive only: create_sql writes the SQL per dialect
        super().__init__(sql_condition=text, label_for_charts=text)

    @property
    def columns(self) -> tuple[str, ...]:
        """The input column that is NULL exactly when the filter is (its popcount)."""
        return (f"{self.column}_n",)

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        """``<dice> >= threshold`` in the dialect's own SQL."""
        return f"{dice_sql(self.column, self.words, sql_dialect)} >= {self.threshold!r}"


class _JoinedLevel(CustomLevel):
    """Two or more token, Dice or joined levels combined by ``_JOINER`` (AND or OR).

    Splink's ``And``/``Or`` join each part's ``create_sql`` output the same way (so our
    dialect-specific SQL survives); these classes add the ``columns`` a ladder's null level
    needs.
    """

    _JOINER = "AND"

    def __init__(
        self, *levels: TokenMatchLevel | DiceLevel | _JoinedLevel, label: str | None = None
    ) -> None:
        if len(levels) < 2:
            raise SettingsError(f"an {self._JOINER} level needs at least two levels")
        self.levels = levels
        text = label or f" {self._JOINER} ".join(f"({p.create_label_for_charts()})" for p in levels)
        super().__init__(sql_condition=text, label_for_charts=text)

    @property
    def columns(self) -> tuple[str, ...]:
        """The encoded columns the level reads."""
        return _unique(c for p in self.levels for c in p.columns)

    def _part_sql(self, part: TokenMatchLevel | DiceLevel | _JoinedLevel, dialect: Any) -> str:
        return f"({part.create_sql(dialect)})"

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        """The parts' conditions, each parenthesised, joined by the level's joiner."""
        return f" {self._JOINER} ".join(self._part_sql(p, sql_dialect) for p in self.levels)


class AndLevel(_JoinedLevel):
    """All of the given levels hold (e.g. both name filters Dice >= 0.9)."""

    _JOINER = "AND"

    @classmethod
    def all_dice(cls, columns: Sequence[str], threshold: float, words: int) -> AndLevel:
        """Every filter in ``columns`` (each ``words`` long) has Dice at least ``threshold``."""
        return cls(*(DiceLevel(c, threshold, words) for c in columns))


class OrLevel(_JoinedLevel):
    """At least one of the given levels holds (e.g. same landline, or same address); a part
    whose SQL is NULL (a missing value) counts as false."""

    _JOINER = "OR"

    def _part_sql(self, part: TokenMatchLevel | DiceLevel | _JoinedLevel, dialect: Any) -> str:
        return f"coalesce(({part.create_sql(dialect)}), false)"


LadderLevel = TokenMatchLevel | DiceLevel | AndLevel | OrLevel
"""A non-null, non-else level of a comparison, strongest first."""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class EncodedComparison(CustomComparison):
    """Splink's ``CustomComparison``, keeping its description (Splink 5.0.0 drops it)."""

    def create_description(self) -> str:
        """The description given, else the output column name."""
        return str(self._description or self._output_column_name)


def ladder_comparison(
    name: str, levels: Sequence[LadderLevel], description: str | None = None
) -> EncodedComparison:
    """Null level, then ``levels`` in order, then else; the output column is ``gamma_<name>``.

    The null level holds only when every column read by any level is NULL on one side.
    """
    _check_column(name)
    if not levels:
        raise SettingsError(f"comparison {name!r} needs at least one level")
    columns = _unique(c for level in levels for c in level.columns)
    return EncodedComparison(
        comparison_levels=[NullLevel(columns), *levels, ElseLevel()],
        output_column_name=name,
        comparison_description=description or name,
    )


def token_comparison(
    column: str, *, tf_adjustment: bool = False, name: str | None = None
) -> EncodedComparison:
    """Levels: token NULL on a side / tokens agree / else."""
    return ladder_comparison(name or column, [TokenMatchLevel(column, tf_adjustment)])


def filter_comparison(
    column: str,
    words: int,
    thresholds: Sequence[float] = DEFAULT_DICE_THRESHOLDS,
    *,
    name: str | None = None,
) -> EncodedComparison:
    """Levels: filter NULL on a side / Dice >= each threshold in turn / else."""
    checked = [_check_threshold(t) for t in thresholds]
    if not checked:
        raise SettingsError("a filter comparison needs at least one threshold")
    if any(a <= b for a, b in itertools.pairwise(checked)):
        raise SettingsError(f"Dice thresholds must be strictly descending, not {checked}")
    return ladder_comparison(name or column, [DiceLevel(column, t, words) for t in checked])
