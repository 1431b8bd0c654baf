"""u probabilities from the encoded tables (linkage.u_estimate) against brute force over all pairs.

The reference compares every cross-dataset pair: Dice from 0/1 bit matrices multiplied together
(no popcount, no words), tokens by Python equality, levels by first hit. It shares no code with
the module under test.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest

from linkage import u_estimate
from linkage.inputs import filter_word_columns
from linkage.model import Agree, AllOf, AnyOf, Condition, Ladder, ModelPlan, Similar
from linkage.u_estimate import (
    _Sample,
    baselines_of,
    comparable_pairs,
    concatenated_similarity,
    configure_u,
    dice_matrix,
    estimate_u,
    join_size,
    random_pair_dice,
    token_agreement,
)

FILTER_BYTES = 16  # 128 bits: two words
TOKEN_BYTES = 16


# --- data ---------------------------------------------------------------------------------------


def balanced_bits(
    rng: np.random.Generator, count: int, length: int = FILTER_BYTES * 8
) -> np.ndarray:
    """``count`` random 0/1 rows with exactly half their bits set."""
    order = np.argsort(rng.random((count, length)), axis=1)
    bits = np.zeros((count, length), dtype=np.uint8)
    np.put_along_axis(bits, order[:, : length // 2], 1, axis=1)
    return bits


def moved(row: np.ndarray, pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``row`` with ``pairs`` set bits moved to unset positions (Dice 1 - pairs / (L / 2))."""
    out = row.copy()
    ones, zeros = np.flatnonzero(out == 1), np.flatnonzero(out == 0)
    out[rng.choice(ones, pairs, replace=False)] = 0
    out[rng.choice(zeros, pairs, replace=False)] = 1
    return out


def token_column(values: Sequence[int | None]) -> pa.Array:
    """Tokens as the connector writes them: fixed-size binary, null where missing."""
    return pa.array(
        [None if v is None else int(v).to_bytes(TOKEN_BYTES, "big") for v in values],
        pa.binary(TOKEN_BYTES),
    )


def make_table(
    rng: np.random.Generator,
    rows: int,
    *,
    bases: np.ndarray,
    null_share: float = 0.1,
    token_vocab: tuple[int, int, int] = (12, 4, 50),
    offset_c: int = 0,
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """A registered input table (tokens tok_a/b/c, filter bf_x as words) and, for the reference,
    the filter bits and their validity.

    Each record's filter is one of ``bases`` (so unrelated records often share one), identical
    or with 4 or 12 bit pairs moved (Dice 0.9375 / 0.8125 against the base); some are all-zero.
    """
    pick = rng.integers(0, len(bases), rows)
    kind = rng.choice(4, rows, p=[0.5, 0.25, 0.2, 0.05])
    bits = np.stack(
        [
            np.zeros_like(bases[b]) if k == 3 else moved(bases[b], (0, 4, 12)[k], rng)
            for b, k in zip(pick, kind, strict=True)
        ]
    )
    valid = rng.random(rows) >= null_share
    packed = np.packbits(bits, axis=1)
    filters = pa.array(
        [row.tobytes() if ok else None for row, ok in zip(packed, valid, strict=True)],
        pa.binary(FILTER_BYTES),
    )

    def tokens(vocab: int, offset: int = 0) -> pa.Array:
        values = rng.integers(0, vocab, rows) + offset
        present = rng.random(rows) >= null_share
        return token_column([int(v) if ok else None for v, ok in zip(values, present, strict=True)])

    a, b, c = token_vocab
    table = pa.table(
        {
            "tok_a": tokens(a),
            "tok_b": tokens(b),
            "tok_c": tokens(c, offset_c),
            **filter_word_columns("bf_x", filters),
        }
    )
    return table, bits, valid


MAIN = Ladder(
    "main",
    (
        Agree("tok_a"),
        Agree("tok_b"),
        Similar("bf_x", 1.0),
        AnyOf((Similar("bf_x", 0.9), AllOf((Agree("tok_c"), Similar("bf_x", 0.6))))),
        Similar("bf_x", 0.75),
    ),
)
SOLO = Ladder("solo", (Agree("tok_c"),))
DICE = Ladder("dice", (Similar("bf_x", 0.95), Similar("bf_x", 0.8)))


def plan_of(*ladders: Ladder) -> ModelPlan:
    """A plan with these ladders over tok_a/b/c and the two-word filter bf_x."""
    return ModelPlan(
        ladders=ladders, blocking_tokens=(), training_blocks=(), filter_words=(("bf_x", 2),)
    )


def dataset(
    seed: int, sizes: Sequence[int], **kwargs: object
) -> tuple[list[pa.Table], list[np.ndarray], list[np.ndarray]]:
    """Tables sharing one vocabulary of 30 base filters, with the reference's bits and validity."""
    rng = np.random.default_rng(seed)
    bases = balanced_bits(rng, 30)
    made = [make_table(rng, n, bases=bases, **kwargs) for n in sizes]  # type: ignore[arg-type]
    return [m[0] for m in made], [m[1] for m in made], [m[2] for m in made]


# --- the brute-force reference ------------------------------------------------------------------


def reference_dice(
    bits_l: np.ndarray, valid_l: np.ndarray, bits_r: np.ndarray, valid_r: np.ndarray
) -> np.ndarray:
    """Dice of every pair from 0/1 matrices (a matrix product counts common bits); NaN where a
    filter is missing or both are all-zero."""
    common = bits_l.astype(np.float64) @ bits_r.T.astype(np.float64)
    total = bits_l.sum(axis=1)[:, None] + bits_r.sum(axis=1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(total > 0, 2 * common / total, np.nan)
    dice[~(valid_l[:, None] & valid_r[None, :])] = np.nan
    return dice


def reference_tokens(left: pa.Table, right: pa.Table, column: str) -> np.ndarray:
    """Token agreement of every pair by Python equality (None agrees with nothing)."""
    a, b = left.column(column).to_pylist(), right.column(column).to_pylist()
    return np.array([[x is not None and x == y for y in b] for x in a], dtype=bool)


def reference_levels(
    left: pa.Table,
    right: pa.Table,
    dice: np.ndarray,
    ladder: Ladder,
) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's level (first that holds; len(levels) for else) and whether it is non-null."""

    def holds(condition: Condition) -> np.ndarray:
        if isinstance(condition, Agree):
            return reference_tokens(left, right, condition.column)
        if isinstance(condition, Similar):
            return np.nan_to_num(dice, nan=-1.0) >= condition.threshold
        parts = [holds(p) for p in condition.parts]
        return (
            np.logical_and.reduce(parts)
            if isinstance(condition, AllOf)
            else np.logical_or.reduce(parts)
        )

    def present(table: pa.Table) -> np.ndarray:
        out = np.zeros(table.num_rows, dtype=bool)
        for c in ladder.columns():
            out |= np.array(table.column(c).is_valid().to_pylist(), dtype=bool)
        return out

    nonnull = present(left)[:, None] & present(right)[None, :]
    level = np.full(nonnull.shape, len(ladder.levels))
    for k in reversed(range(len(ladder.levels))):  # earlier levels overwrite later ones
        level[holds(ladder.levels[k])] = k
    return level, nonnull


def brute_force_u(
    tables: Sequence[pa.Table],
    bits: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    ladder: Ladder,
) -> np.ndarray:
    """Each level's share of all non-null cross-dataset pairs (else last)."""
    counts = np.zeros(len(ladder.levels) + 1)
    for a, b in itertools.combinations(range(len(tables)), 2):
        dice = reference_dice(bits[a], valid[a], bits[b], valid[b])
        level, nonnull = reference_levels(tables[a], tables[b], dice, ladder)
        counts += np.bincount(level[nonnull], minlength=len(counts))
    return counts / counts.sum()


# --- exact token levels -------------------------------------------------------------------------


def test_token_levels_are_exact_on_three_datasets() -> None:
    """Leading token levels equal the brute-force count over every pair, whatever the sample."""
    tables, bits, valid = dataset(1, (60, 45, 70))
    estimate = estimate_u(tables, plan_of(MAIN, SOLO), sample_pairs=1_000, seed=1)
    main = brute_force_u(tables, bits, valid, MAIN)
    assert estimate.u["main"][:2] == pytest.approx(main[:2], rel=1e-12)
    solo = brute_force_u(tables, bits, valid, SOLO)
    assert estimate.u["solo"] == pytest.approx(solo, rel=1e-12)
    assert estimate.pairs == 60 * 45 + 60 * 70 + 45 * 70
    assert 0 < estimate.sampled_pairs < estimate.pairs


def test_hand_made_token_case() -> None:
    """Two tiny datasets counted by hand: a pair agreeing on both tokens counts only at the first
    level; a record with both tokens missing is the null level, outside the denominator."""
    left = pa.table(
        {
            "tok_a": token_column([1, 1, 2, None]),
            "tok_b": token_column([7, 8, 9, None]),
        }
    )
    right = pa.table({"tok_a": token_column([1, 3, None]), "tok_b": token_column([7, 9, 8])})
    ladder = Ladder("t", (Agree("tok_a"), Agree("tok_b")))
    plan = ModelPlan(ladders=(ladder,), blocking_tokens=(), training_blocks=())
    u = estimate_u([left, right], plan, sample_pairs=1_000).u["t"]
    # non-null pairs: 3 left rows x 3 right rows = 9
    # tok_a agrees: (0,0), (1,0) -> 2; tok_b agrees but not tok_a: (1,2) and (2,1) -> 2
    assert u == pytest.approx([2 / 9, 2 / 9, 5 / 9], rel=1e-12)


def test_whole_cross_product_sample_equals_brute_force() -> None:
    """When the sample is every pair, every level (Dice, AND, OR) equals the brute force, and the
    ladder's u sums to one."""
    tables, bits, valid = dataset(2, (40, 50, 60))
    estimate = estimate_u(tables, plan_of(MAIN, DICE), sample_pairs=100_000, seed=2)
    assert estimate.sampled_pairs == estimate.pairs
    for ladder in (MAIN, DICE):
        expected = brute_force_u(tables, bits, valid, ladder)
        assert (expected > 0).all()  # every level is seen: no floor
        assert estimate.u[ladder.name] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert sum(estimate.u[ladder.name]) == pytest.approx(1.0, abs=1e-12)


def test_join_fallback_above_the_limit_samples_token_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above MAX_JOIN_PAIRS a token level is taken from the sample: with every pair sampled it is
    still the brute-force value."""
    monkeypatch.setattr(u_estimate, "MAX_JOIN_PAIRS", 0)
    tables, bits, valid = dataset(3, (30, 40))
    estimate = estimate_u(tables, plan_of(MAIN), sample_pairs=10_000)
    assert estimate.u["main"] == pytest.approx(brute_force_u(tables, bits, valid, MAIN), rel=1e-9)


def test_unseen_levels_get_half_a_pair() -> None:
    """A token no cross pair agrees on gets u = 0.5 / non-null pairs (never zero) and the rest
    what it leaves; a Dice level no sampled pair reaches gets half a sampled pair."""
    rng = np.random.default_rng(4)
    bases = balanced_bits(rng, 30)
    left = make_table(rng, 30, bases=bases, null_share=0.0, offset_c=0)[0]
    right = make_table(rng, 40, bases=bases, null_share=0.0, offset_c=1_000)[0]  # disjoint tok_c
    never = Ladder("never", (Similar("bf_x", 1.0), Similar("bf_x", 0.99)))  # 0.99: none between
    estimate = estimate_u([left, right], plan_of(SOLO, never), sample_pairs=5_000)
    floor = 0.5 / (30 * 40)
    assert estimate.u["solo"] == pytest.approx([floor, 1 - floor], rel=1e-12)
    u = estimate.u["never"]
    assert u[1] == pytest.approx(0.5 / estimate.sampled_pairs)
    assert u[0] + u[2] == pytest.approx(1.0)  # the floor is the only excess over one


# --- the sampled levels -------------------------------------------------------------------------


def test_sampled_dice_levels_are_close_to_brute_force() -> None:
    """On 1,500 x 2,000 records and a sample of 40,000 pairs (173 x 231 records), each sampled
    level is within four standard errors of the brute-force share.

    The sample is every pair of random rows of each side, so its error has row terms as well as
    a pair term: Var ~ var(row means of A)/k_a + var(row means of B)/k_b + p(1-p)/(k_a k_b)
    (the row means and p taken from the brute force itself); four of those standard errors make
    a false failure about 1 in 16,000 for this fixed seed, which passes.
    """
    tables, bits, valid = dataset(5, (1500, 2000), null_share=0.0)
    estimate = estimate_u(tables, plan_of(MAIN), sample_pairs=40_000, seed=5)
    k_a, k_b = 173, 231
    assert estimate.sampled_pairs == k_a * k_b
    dice = reference_dice(bits[0], valid[0], bits[1], valid[1])
    level, nonnull = reference_levels(tables[0], tables[1], dice, MAIN)
    assert nonnull.all()
    for k in range(len(MAIN.tokens), len(MAIN.levels) + 1):
        hit = (level == k).astype(np.float64)
        p = hit.mean()
        se = np.sqrt(
            hit.mean(axis=1).var() / k_a + hit.mean(axis=0).var() / k_b + p * (1 - p) / (k_a * k_b)
        )
        assert abs(estimate.u["main"][k] - p) <= 4 * se, (k, estimate.u["main"][k], p, se)
        assert se < 0.2 * p  # the check has teeth: errors are a small fraction of u
    assert estimate.u["main"][:2] == pytest.approx(
        [(level == k).mean() for k in range(2)], rel=1e-12
    )  # and the token levels are exact
    assert sum(estimate.u["main"]) == pytest.approx(1.0, abs=1e-12)


def test_seeds_are_reproducible() -> None:
    """The same seed gives the same estimate; another seed moves only the sampled levels."""
    tables, _, _ = dataset(6, (300, 400))
    plan = plan_of(MAIN, DICE)
    first = estimate_u(tables, plan, sample_pairs=5_000, seed=11)
    assert estimate_u(tables, plan, sample_pairs=5_000, seed=11) == first
    other = estimate_u(tables, plan, sample_pairs=5_000, seed=12)
    assert other.u["main"][:2] == first.u["main"][:2]
    assert other.u["main"][2:] != first.u["main"][2:]
    assert other.u["dice"] != first.u["dice"]


def test_estimate_needs_two_datasets() -> None:
    """One dataset has no cross-dataset pairs."""
    tables, _, _ = dataset(7, (10,))
    with pytest.raises(ValueError, match="two datasets"):
        estimate_u(tables, plan_of(MAIN))


# --- the pieces ---------------------------------------------------------------------------------


def test_join_size_counts_agreeing_pairs() -> None:
    """join_size equals the brute-force count of pairs with equal, non-null tokens."""
    tables, _, _ = dataset(8, (80, 90))
    for column in ("tok_a", "tok_b", "tok_c"):
        expected = int(reference_tokens(tables[0], tables[1], column).sum())
        assert join_size(tables[0], tables[1], column) == expected
    empty = tables[1].slice(0, 0)
    assert join_size(tables[0], empty, "tok_a") == 0


def test_comparable_pairs_counts_pairs_with_evidence_on_both_sides() -> None:
    """Pairs over every two datasets where some column of the ladder is present on each side."""
    rng = np.random.default_rng(9)
    tables = []
    for n in (20, 30, 25):
        a = [int(v) if rng.random() > 0.5 else None for v in rng.integers(0, 5, n)]
        c = [int(v) if rng.random() > 0.5 else None for v in rng.integers(0, 5, n)]
        tables.append(pa.table({"tok_a": token_column(a), "tok_c": token_column(c)}))
    ladder = Ladder("x", (Agree("tok_a"), Agree("tok_c")))

    def present(t: pa.Table) -> int:
        return sum(
            a is not None or c is not None
            for a, c in zip(t["tok_a"].to_pylist(), t["tok_c"].to_pylist(), strict=True)
        )

    expected = sum(present(x) * present(y) for x, y in itertools.combinations(tables, 2))
    assert comparable_pairs(tables, ladder) == expected
    assert comparable_pairs(tables, Ladder("a", (Agree("tok_a"),))) < expected


def test_dice_matrix_and_token_agreement_match_the_reference() -> None:
    """Over sampled rows: Dice of every pair (NaN if missing or both all-zero) and token
    agreement equal the reference."""
    tables, bits, valid = dataset(10, (35, 45))
    plan = plan_of(MAIN)
    rows_l, rows_r = np.arange(0, 35, 2), np.arange(1, 45, 3)
    left, right = _Sample(tables[0], rows_l, plan), _Sample(tables[1], rows_r, plan)
    expected = reference_dice(bits[0][rows_l], valid[0][rows_l], bits[1][rows_r], valid[1][rows_r])
    np.testing.assert_allclose(dice_matrix(left, right, "bf_x"), expected, rtol=1e-12)
    taken = [t.take(pa.array(r)) for t, r in zip(tables, (rows_l, rows_r), strict=True)]
    for column in ("tok_a", "tok_b"):
        np.testing.assert_array_equal(
            token_agreement(left, right, column), reference_tokens(*taken, column)
        )


def test_random_pair_dice_and_baselines() -> None:
    """Random pairs of unrelated balanced filters score about 0.5 (the baseline is their median);
    missing filters are NaN and do not count."""
    rng = np.random.default_rng(12)
    tables = []
    for n in (300, 400):
        bits = balanced_bits(rng, n)
        packed = np.packbits(bits, axis=1)
        values = [None if i % 10 == 0 else row.tobytes() for i, row in enumerate(packed)]
        tables.append(pa.table(filter_word_columns("bf_x", pa.array(values, pa.binary(16)))))
    dice = random_pair_dice(tables, plan_of(), rows=200, seed=1)
    assert set(dice) == {"bf_x"} and dice["bf_x"].shape == (200 * 200,)
    missing = np.isnan(dice["bf_x"]).mean()
    assert missing == pytest.approx(1 - 0.9 * 0.9, abs=0.05)
    baseline = baselines_of(dice)["bf_x"]
    assert baseline == pytest.approx(0.5, abs=0.01)
    assert baselines_of({"bf_y": np.array([np.nan, np.nan])}) == {}
    assert random_pair_dice(tables[:1], plan_of()) == {}


def test_concatenated_similarity_is_hamming_similarity_of_the_concatenation() -> None:
    """For balanced filters the word-weighted mean of each filter's Dice is the Hamming similarity
    of the concatenated filters; pairs missing either filter are dropped."""
    rng = np.random.default_rng(13)
    n = 50
    x_bits = balanced_bits(rng, n, 128)
    y_bits = balanced_bits(rng, n, 256)
    y_bits[1::2] = [moved(x, 20, rng) for x in y_bits[::2][: len(y_bits[1::2])]]  # some near pairs
    x_valid = np.ones(n, dtype=bool)
    y_valid = np.arange(n) % 7 != 0
    plan = ModelPlan(
        ladders=(),
        blocking_tokens=(),
        training_blocks=(),
        filter_words=(("bf_x", 2), ("bf_y", 4)),
    )
    dice = {
        "bf_x": reference_dice(x_bits, x_valid, x_bits, x_valid).ravel(),
        "bf_y": reference_dice(y_bits, y_valid, y_bits, y_valid).ravel(),
    }
    got = concatenated_similarity(dice, ["bf_x", "bf_y"], plan)
    both = np.hstack([x_bits, y_bits])
    hamming = 1 - (both[:, None, :] != both[None, :, :]).mean(axis=2)
    keep = (y_valid[:, None] & y_valid[None, :]).ravel()
    np.testing.assert_allclose(got, hamming.ravel()[keep], rtol=1e-12)


def test_configure_u_sets_each_comparisons_u() -> None:
    """configure_u puts each ladder's u on the Splink comparison of the same name."""
    from linkage.model import splink_comparisons

    tables, _, _ = dataset(14, (50, 60))
    plan = plan_of(MAIN, SOLO)
    estimate = estimate_u(tables, plan, sample_pairs=3_000)
    comparisons = splink_comparisons(plan)
    configure_u(comparisons, estimate)
    for comparison, name in zip(comparisons, ("main", "solo"), strict=True):
        levels = comparison.create_comparison_dict("duckdb")["comparison_levels"]
        got = [lv["u_probability"] for lv in levels if not lv.get("is_null_level")]
        assert got == pytest.approx(estimate.u[name])
