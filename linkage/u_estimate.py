"""u probabilities for a model plan, from the encoded tables themselves (pure Arrow and NumPy).

u is the probability of each comparison level among pairs of records that are not the same
person; almost every pair of records is such a pair, so u is the level's frequency among all
pairs. Splink estimates it by comparing a random sample of pairs, comparison by comparison. For
encoded data that is both slow (one pass over the sample per comparison) and blind to rare
levels: two random records almost never share a name-and-date-of-birth token (u around 1e-7), so
a sample of millions of pairs sees none and Splink falls back to a default.

Here each ladder's token levels are counted **exactly**: joining the two datasets on a token
gives every pair that agrees on it, and the pairs that also agree on an earlier level of the
ladder are taken out (a pair falls into the first level that holds). Dice levels, which hold for
a sizeable share of pairs, are estimated from one seeded random sample of pairs in which each
filter's Dice is computed once, with NumPy popcounts. Levels never seen get half a pair (so u is
never zero). The null level (every column of the ladder missing on a side) has no u.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from linkage.lsh import filter_bytes
from linkage.model import Agree, AllOf, Condition, Ladder, ModelPlan, Similar

#: Above this many agreeing pairs a token level is estimated from the sample instead.
MAX_JOIN_PAIRS = 20_000_000


@dataclass(frozen=True, slots=True)
class UEstimate:
    """u per non-null level (ladder order, else last) for each ladder, and how it was found."""

    u: dict[str, list[float]]
    pairs: int
    sampled_pairs: int


def _index_table(table: pa.Table, column: str) -> pa.Table:
    values = table.column(column)
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    keep = pc.is_valid(values)
    return pa.table({"k": values, "i": rows}).filter(keep)


def join_size(left: pa.Table, right: pa.Table, column: str) -> int:
    """How many (left, right) pairs agree on ``column`` (NULLs agree with nothing)."""
    left = left.select([column]).filter(pc.is_valid(left.column(column)))
    right = right.select([column]).filter(pc.is_valid(right.column(column)))
    counts_l = left.group_by(column).aggregate([([], "count_all")])
    counts_r = right.group_by(column).aggregate([([], "count_all")])
    joined = counts_l.join(counts_r, column, join_type="inner", right_suffix="_r")
    if joined.num_rows == 0:
        return 0
    a = joined.column("count_all").to_numpy().astype(np.float64)
    b = joined.column("count_all_r").to_numpy().astype(np.float64)
    return int(np.dot(a, b))


def _agreeing_pairs(
    left: pa.Table, right: pa.Table, column: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row indices of every (left, right) pair whose ``column`` values are equal and not null."""
    a = _index_table(left.select([column]), column)
    b = _index_table(right.select([column]), column)
    joined = a.join(b, "k", join_type="inner", left_suffix="_l", right_suffix="_r")
    return (
        joined.column("i_l").to_numpy().astype(np.int64),
        joined.column("i_r").to_numpy().astype(np.int64),
    )


def _equal(
    left: pa.Table,
    right: pa.Table,
    column: str,
    i: npt.NDArray[np.int64],
    j: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Whether ``column`` is equal (both non-null) for each pair (i[k], j[k])."""
    a = left.column(column).take(pa.array(i))
    b = right.column(column).take(pa.array(j))
    return np.asarray(pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False))


class _Sample:
    """Sampled rows of one table: token values and filter words as NumPy arrays."""

    def __init__(self, table: pa.Table, rows: npt.NDArray[np.int64], plan: ModelPlan) -> None:
        picked = table.take(pa.array(rows))
        self.size = len(rows)
        self.tokens: dict[str, tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]] = {}
        self.words: dict[str, npt.NDArray[np.uint64]] = {}
        self.counts: dict[str, npt.NDArray[np.int64]] = {}
        self.valid: dict[str, npt.NDArray[np.bool_]] = {}
        for name in picked.column_names:
            if name.startswith("tok_"):
                matrix, valid = filter_bytes(picked.column(name))
                packed = np.ascontiguousarray(matrix).view(np.uint64)
                self.tokens[name] = (packed, np.asarray(valid, dtype=bool))
        for column, words in plan.filter_words:
            if f"{column}_n" not in picked.column_names:
                continue
            self.words[column] = np.column_stack(
                [
                    picked.column(f"{column}_w{k}").fill_null(0).to_numpy().view(np.uint64)
                    for k in range(words)
                ]
            )
            n = picked.column(f"{column}_n")
            self.valid[column] = np.asarray(n.is_valid().to_numpy(zero_copy_only=False))
            self.counts[column] = n.fill_null(0).to_numpy().astype(np.int64)

    def present(self, ladder: Ladder) -> npt.NDArray[np.bool_]:
        """Sampled rows on which some column of the ladder is present (not its null level)."""
        out = np.zeros(self.size, dtype=bool)
        for c in ladder.columns():
            out |= self.tokens[c][1] if c.startswith("tok_") else self.valid[c.removesuffix("_n")]
        return out


def token_agreement(left: _Sample, right: _Sample, column: str) -> npt.NDArray[np.bool_]:
    """Every left row against every right row: the token agrees (both present and equal)."""
    a, va = left.tokens[column]
    b, vb = right.tokens[column]
    equal: npt.NDArray[np.bool_] = va[:, None] & vb[None, :]
    for w in range(a.shape[1]):
        equal &= a[:, w][:, None] == b[:, w][None, :]
    return equal


def dice_matrix(left: Any, right: Any, column: str) -> npt.NDArray[np.float32]:
    """Dice of filter ``column``, every left row against every right row; NaN if one is missing.

    ``left`` and ``right`` hold ``words``, ``counts`` and ``valid`` per column (a sample of
    rows). The popcount of every AND is one matrix product of the filters' bits as 0/1 float32
    (exact: sums of at most 65,536 ones, and Dice of identical filters is exactly 1.0), so BLAS
    does the all-pairs work, several times faster than broadcast ``bitwise_count``; see
    ``bench/linkage.py``'s kernel figures against anonlink's.
    """
    dice = _bits(left.words[column]) @ _bits(right.words[column]).T  # popcounts of the ANDs
    total = (
        left.counts[column].astype(np.float32)[:, None]
        + right.counts[column].astype(np.float32)[None, :]
    )
    dice *= 2.0
    if (left.counts[column] > 0).all() and (right.counts[column] > 0).all():
        dice /= total  # the usual case: no empty filter
    else:
        np.divide(dice, total, out=dice, where=total > 0)
        dice[total == 0] = np.nan
    valid_l, valid_r = left.valid[column], right.valid[column]
    if not (valid_l.all() and valid_r.all()):
        dice[~(valid_l[:, None] & valid_r[None, :])] = np.nan
    return dice


def _bits(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.float32]:
    """Each row's bits as float32 zeros and ones."""
    return np.unpackbits(np.ascontiguousarray(words).view(np.uint8), axis=1).astype(np.float32)


def pair_dice(
    left: pa.Table,
    right: pa.Table,
    column: str,
    words: int,
    rows_l: npt.NDArray[np.int64],
    rows_r: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Dice of filter ``column`` for the pairs (rows_l[k], rows_r[k]) of two input tables (NaN
    where either filter is missing)."""

    def gather(table: pa.Table, rows: npt.NDArray[np.int64]) -> tuple[Any, Any, Any]:
        picked = table.select([f"{column}_w{k}" for k in range(words)] + [f"{column}_n"]).take(
            pa.array(rows)
        )
        matrix = np.column_stack(
            [picked.column(k).fill_null(0).to_numpy().view(np.uint64) for k in range(words)]
        )
        n = picked.column(words)
        valid = np.asarray(n.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return matrix, n.fill_null(0).to_numpy().astype(np.int64), valid

    a, na, va = gather(left, rows_l)
    b, nb, vb = gather(right, rows_r)
    both = np.bitwise_count(a & b).sum(axis=1, dtype=np.int64)
    total = na + nb
    dice = np.where(total > 0, 2.0 * both / np.maximum(total, 1), np.nan)
    dice[~(va & vb)] = np.nan
    return np.asarray(dice, dtype=np.float64)


class _PairCache:
    """Condition matrices for one sampled (left, right) block, each filter's Dice computed once."""

    def __init__(self, left: _Sample, right: _Sample) -> None:
        self.left, self.right = left, right
        self._dice: dict[str, npt.NDArray[np.float64]] = {}

    def holds(self, condition: Condition) -> npt.NDArray[np.bool_]:
        if isinstance(condition, Agree):
            return token_agreement(self.left, self.right, condition.column)
        if isinstance(condition, Similar):
            dice = self._dice.get(condition.column)
            if dice is None:
                dice = self._dice[condition.column] = np.nan_to_num(
                    dice_matrix(self.left, self.right, condition.column), nan=-1.0
                )
            return np.asarray(dice >= condition.threshold)
        parts = [self.holds(p) for p in condition.parts]
        combine = np.logical_and if isinstance(condition, AllOf) else np.logical_or
        return np.asarray(combine.reduce(parts))


def random_pair_dice(
    tables: Sequence[pa.Table], plan: ModelPlan, *, rows: int = 500, seed: int = 1
) -> dict[str, npt.NDArray[np.float64]]:
    """Each filter's Dice over random cross pairs of the first two datasets (``rows`` random
    records of each, all their pairs; NaN where a filter is missing): what unrelated records
    score, since almost every random pair is unrelated."""
    if len(tables) < 2 or not plan.filter_words:
        return {}
    rng = np.random.default_rng(seed)
    picked = [
        _Sample(t, np.sort(rng.choice(t.num_rows, size=min(rows, t.num_rows), replace=False)), plan)
        for t in tables[:2]
    ]
    return {
        column: dice_matrix(picked[0], picked[1], column).ravel().astype(np.float64)
        for column, _ in plan.filter_words
        if column in picked[0].words
    }


def baselines_of(dice: Mapping[str, npt.NDArray[np.float64]]) -> dict[str, float]:
    """The median Dice of each filter over random pairs (its unrelated-pair baseline)."""
    out: dict[str, float] = {}
    for column, values in dice.items():
        present = values[~np.isnan(values)]
        if present.size:
            out[column] = float(np.median(present))
    return out


def concatenated_similarity(
    dice: Mapping[str, npt.NDArray[np.float64]], columns: Sequence[str], plan: ModelPlan
) -> npt.NDArray[np.float64]:
    """Hamming similarity of the concatenation of ``columns`` for each sampled pair with all of
    them present. (Dice of balanced filters is the Hamming similarity of the unbalanced ones,
    and a balanced filter's Hamming similarity equals it too.)"""
    weights = np.asarray([plan.words(c) for c in columns], dtype=np.float64)
    stacked = np.vstack([dice[c] for c in columns])
    keep = ~np.isnan(stacked).any(axis=0)
    return np.asarray((weights[:, None] * stacked[:, keep]).sum(axis=0) / weights.sum())


def comparable_pairs(tables: Sequence[pa.Table], ladder: Ladder) -> int:
    """Cross-dataset pairs on which the ladder's evidence is present on both sides."""
    return sum(
        int(_present(a, ladder).sum()) * int(_present(b, ladder).sum())
        for a, b in itertools.combinations(tables, 2)
    )


def _present(table: pa.Table, ladder: Ladder) -> npt.NDArray[np.bool_]:
    """Rows on which at least one column the ladder reads is present (not the null level)."""
    out = np.zeros(table.num_rows, dtype=bool)
    for c in ladder.columns():
        out |= np.asarray(table.column(c).is_valid().to_numpy(zero_copy_only=False))
    return out


def estimate_u(
    tables: Sequence[pa.Table],
    plan: ModelPlan,
    *,
    sample_pairs: int = 1_000_000,
    seed: int = 1,
) -> UEstimate:
    """u for every ladder of ``plan`` over all cross-dataset pairs of ``tables``.

    ``tables`` are the inputs as registered (tokens, filter words and popcounts).
    """
    if len(tables) < 2:
        raise ValueError("u needs at least two datasets")
    rng = np.random.default_rng(seed)
    dataset_pairs = list(itertools.combinations(range(len(tables)), 2))
    total_pairs = sum(tables[a].num_rows * tables[b].num_rows for a, b in dataset_pairs)
    # one sample, shared by every ladder: per dataset pair, random rows of each side, all
    # their cross pairs (as Splink samples), in proportion to the dataset pair's size
    samples: list[_PairCache] = []
    for a, b in dataset_pairs:
        n_a, n_b = tables[a].num_rows, tables[b].num_rows
        want = sample_pairs * (n_a * n_b / total_pairs) if total_pairs else 0.0
        k_a = min(n_a, max(1, round((want * n_a / max(n_b, 1)) ** 0.5)))
        k_b = min(n_b, max(1, round(want / k_a)))
        if n_a and n_b:
            rows_a = np.sort(rng.choice(n_a, size=k_a, replace=False))
            rows_b = np.sort(rng.choice(n_b, size=k_b, replace=False))
            samples.append(
                _PairCache(_Sample(tables[a], rows_a, plan), _Sample(tables[b], rows_b, plan))
            )
    sampled = sum(x.left.size * x.right.size for x in samples)
    u: dict[str, list[float]] = {}
    for ladder in plan.ladders:
        u[ladder.name] = _ladder_u(tables, ladder, dataset_pairs, samples)
    return UEstimate(u=u, pairs=total_pairs, sampled_pairs=sampled)


def _ladder_u(
    tables: Sequence[pa.Table],
    ladder: Ladder,
    dataset_pairs: Sequence[tuple[int, int]],
    samples: Sequence[_PairCache],
) -> list[float]:
    n_levels = len(ladder.levels) + 1  # + else
    token_counts = np.zeros(len(ladder.tokens), dtype=np.float64)
    exact = np.ones(len(ladder.tokens), dtype=bool)
    nonnull_pairs = 0.0
    for a, b in dataset_pairs:
        left, right = tables[a], tables[b]
        nonnull_pairs += float(_present(left, ladder).sum()) * float(_present(right, ladder).sum())
        for k, column in enumerate(ladder.tokens):
            if join_size(left, right, column) > MAX_JOIN_PAIRS:
                exact[k] = False
                continue
            i, j = _agreeing_pairs(left, right, column)
            earlier = np.zeros(len(i), dtype=bool)
            for previous in ladder.tokens[:k]:
                earlier |= _equal(left, right, previous, i, j)
            token_counts[k] += float((~earlier).sum())
    # the sample: levels by first hit, over non-null pairs
    hits = np.zeros(n_levels, dtype=np.float64)
    sampled_nonnull = 0.0
    for cache in samples:
        nonnull = cache.left.present(ladder)[:, None] & cache.right.present(ladder)[None, :]
        sampled_nonnull += float(nonnull.sum())
        level = np.full(nonnull.shape, n_levels - 1, dtype=np.int64)
        undecided = nonnull.copy()
        for k, condition in enumerate(ladder.levels):
            agree = cache.holds(condition) & undecided
            level[agree] = k
            undecided &= ~agree
        hits += np.bincount(level[nonnull], minlength=n_levels)
    probabilities = np.zeros(n_levels, dtype=np.float64)
    floor = 0.5 / max(nonnull_pairs, 1.0)
    for k in range(len(ladder.tokens)):
        if exact[k]:
            probabilities[k] = max(token_counts[k] / max(nonnull_pairs, 1.0), floor)
        else:
            probabilities[k] = max(hits[k] / max(sampled_nonnull, 1.0), floor)
    tokens_share = float(probabilities[: len(ladder.tokens)].sum())
    # sample shares of the remaining levels, scaled to what the token levels leave
    rest = hits[len(ladder.tokens) :]
    rest_total = float(rest.sum())
    sample_floor = 0.5 / max(sampled_nonnull, 1.0)
    for d in range(len(rest)):
        share = rest[d] / rest_total if rest_total else 0.0
        probabilities[len(ladder.tokens) + d] = max(share * (1.0 - tokens_share), sample_floor)
    return [float(p) for p in probabilities]


def configure_u(comparisons: Sequence[Any], estimate: UEstimate) -> None:
    """Set each Splink comparison's u probabilities (by output column name) from ``estimate``."""
    for comparison in comparisons:
        name = comparison._output_column_name
        if name in estimate.u:
            comparison.configure(u_probabilities=estimate.u[name])
