"""Tests for LSH band keys over Bloom filters in linkage.lsh."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import InputMismatchError, SettingsError
from linkage.lsh import (
    MAX_KEY_BITS,
    band_column_names,
    band_key_columns,
    band_keys,
    band_positions,
    candidate_probability,
    choose_bands_within_budget,
)

NAME_BITS = 1024


def balanced_matrix(rng: np.random.Generator, rows: int, length: int = NAME_BITS) -> np.ndarray:
    """``rows`` random bit vectors (uint8 0/1) with exactly half their bits set."""
    order = np.argsort(rng.random((rows, length)), axis=1)
    bits = np.zeros((rows, length), dtype=np.uint8)
    np.put_along_axis(bits, order[:, : length // 2], 1, axis=1)
    return bits


def moved(bits: np.ndarray, pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Each row with ``pairs`` set bits moved to unset positions: Hamming distance 2 * pairs."""
    out = bits.copy()
    for row in out:  # test data only; the code under test is vectorised
        ones, zeros = np.flatnonzero(row == 1), np.flatnonzero(row == 0)
        row[rng.choice(ones, pairs, replace=False)] = 0
        row[rng.choice(zeros, pairs, replace=False)] = 1
    return out


def as_filters(bits: np.ndarray, nulls: set[int] | frozenset[int] = frozenset()) -> pa.Array:
    """A fixed_size_binary column from a 0/1 matrix, with the given rows null."""
    packed = np.packbits(bits, axis=1)
    values = [None if i in nulls else row.tobytes() for i, row in enumerate(packed)]
    return pa.array(values, pa.binary(packed.shape[1]))


def key_matrix(keys: list[pa.Array]) -> np.ndarray:
    """Band keys as an (n, bands) int64 matrix (no nulls expected)."""
    return np.stack([k.to_numpy() for k in keys], axis=1)


def test_positions_are_pinned_for_a_seed() -> None:
    """Seed 0 gives the same positions on every NumPy version (raw PCG64 output, stable argsort)."""
    assert band_positions(64, 2, 4, 0).tolist() == [[11, 3, 20, 13], [28, 49, 47, 44]]


@given(st.integers(0, 2**32), st.integers(1, 8), st.integers(1, 20))
@settings(max_examples=30, deadline=None)
def test_positions_are_distinct_within_a_band_and_in_range(seed: int, bands: int, r: int) -> None:
    """Every band samples r distinct positions inside the filter."""
    positions = band_positions(256, bands, r, seed)
    assert positions.shape == (bands, r)
    assert all(len(set(row)) == r for row in positions.tolist())
    assert positions.min() >= 0 and positions.max() < 256


def test_keys_are_deterministic_for_a_seed_and_change_with_it() -> None:
    """The same seed gives the same keys; another seed samples other bits."""
    filters = as_filters(balanced_matrix(np.random.default_rng(1), 50))
    first = key_matrix(band_keys(filters, 4, 16, seed=99))
    assert np.array_equal(first, key_matrix(band_keys(filters, 4, 16, seed=99)))
    assert not np.array_equal(first, key_matrix(band_keys(filters, 4, 16, seed=100)))


def test_key_is_band_index_above_the_sampled_bits() -> None:
    """key = band << r | bits at the band's positions, first position most significant."""
    bits = balanced_matrix(np.random.default_rng(2), 20)
    bands, r, seed = 5, 12, 3
    keys = key_matrix(band_keys(as_filters(bits), bands, r, seed))
    positions = band_positions(NAME_BITS, bands, r, seed)
    for j in range(bands):
        expected = [int("".join(str(b) for b in row[positions[j]]), 2) for row in bits]
        assert (keys[:, j] >> r).tolist() == [j] * len(bits)
        assert (keys[:, j] & ((1 << r) - 1)).tolist() == expected


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**16))
@settings(max_examples=50, deadline=None)
def test_identical_filters_share_every_band_key(filter_: bytes, seed: int) -> None:
    """Two records with the same filter agree on every band."""
    keys = key_matrix(band_keys(pa.array([filter_, filter_], pa.binary(32)), 6, 10, seed))
    assert np.array_equal(keys[0], keys[1])


def test_nulls_stay_null() -> None:
    """A null filter gives a null key in every band; other rows are unaffected."""
    bits = balanced_matrix(np.random.default_rng(3), 4)
    with_nulls = band_keys(as_filters(bits, {1, 3}), 3, 8, 0)
    without = band_keys(as_filters(bits), 3, 8, 0)
    for keyed, plain in zip(with_nulls, without, strict=True):
        assert keyed.null_count == 2
        assert keyed.to_pylist()[0::2] == plain.to_pylist()[0::2]
        assert keyed.to_pylist()[1::2] == [None, None]


def test_sliced_and_chunked_columns_are_read_at_their_offset() -> None:
    """Keys of a slice or a chunked column equal the keys of the same rows of the whole column."""
    filters = as_filters(balanced_matrix(np.random.default_rng(4), 10))
    whole = key_matrix(band_keys(filters, 3, 9, 1))
    assert np.array_equal(key_matrix(band_keys(filters.slice(4, 3), 3, 9, 1)), whole[4:7])
    chunked = pa.chunked_array([filters.slice(0, 5), filters.slice(5)])
    assert np.array_equal(key_matrix(band_keys(chunked, 3, 9, 1)), whole)


@pytest.mark.parametrize("similarity", [0.6, 0.8, 0.9])
def test_candidate_rate_follows_the_s_curve(similarity: float) -> None:
    """Over many random balanced pairs, the share with a common band key matches the S-curve."""
    rng = np.random.default_rng(int(similarity * 100))
    pairs, bands, r = 1500, 8, 12
    left = balanced_matrix(rng, pairs)
    moves = round((1 - similarity) * NAME_BITS / 2)
    right = moved(left, moves, rng)
    keys_l = key_matrix(band_keys(as_filters(left), bands, r, seed=5))
    keys_r = key_matrix(band_keys(as_filters(right), bands, r, seed=5))
    rate = float(np.mean((keys_l == keys_r).any(axis=1)))
    expected = candidate_probability(1 - 2 * moves / NAME_BITS, bands, r)
    standard_error = np.sqrt(expected * (1 - expected) / pairs)
    assert abs(rate - expected) < 4 * standard_error + 0.01


def test_candidate_probability_edges_and_monotonicity() -> None:
    """1 at similarity 1, 0 at similarity 0, increasing in between and in the number of bands."""
    assert candidate_probability(1.0, 8, 12) == 1.0
    assert candidate_probability(0.0, 8, 12) == 0.0
    curve = [candidate_probability(s, 8, 12) for s in np.linspace(0, 1, 21)]
    assert curve == sorted(curve)
    assert candidate_probability(0.8, 16, 12) > candidate_probability(0.8, 8, 12)


def test_band_key_columns_are_named_per_filter_and_band() -> None:
    """Columns are lsh_<filter>_<band>, int64."""
    filters = as_filters(balanced_matrix(np.random.default_rng(6), 3))
    columns = band_key_columns("given_name", filters, 3, 8, 0)
    assert list(columns) == band_column_names("given_name", 3)
    assert list(columns) == ["lsh_given_name_0", "lsh_given_name_1", "lsh_given_name_2"]
    assert all(c.type == pa.int64() for c in columns.values())


@pytest.mark.parametrize(("bands", "r"), [(0, 8), (4, 0), (2, 63), (1, 64), (8, 2000)], ids=str)
def test_impossible_schemes_are_refused(bands: int, r: int) -> None:
    """Schemes that overflow a 63-bit key or sample more bits than the filter has are refused."""
    with pytest.raises(SettingsError):
        band_keys(pa.array([bytes(128)], pa.binary(128)), bands, r, 0)


def test_non_filter_columns_are_refused() -> None:
    """Only fixed_size_binary columns are filters."""
    with pytest.raises(InputMismatchError):
        band_keys(pa.array([b"ab"], pa.binary()), 2, 4, 0)


# --- choosing a scheme within a budget of unrelated candidates ---------------------------------


def on_grid(values: np.ndarray) -> np.ndarray:
    """Similarities rounded up to multiples of 1/512, where the chooser's histogram is exact."""
    return np.ceil(np.asarray(values) * 512) / 512


def false_rate(unrelated: np.ndarray, bands: int, r: int) -> float:
    """The expected share of unrelated pairs made candidates: the mean of the S-curve over them."""
    s = np.asarray(unrelated, dtype=np.float64)
    return float(np.mean(1.0 - (1.0 - s**r) ** bands))


def schemes(max_bands: int) -> list[tuple[int, int]]:
    """Every (bands, bits) scheme whose key fits 63 bits."""
    return [
        (b, r)
        for b in range(1, max_bands + 1)
        for r in range(1, MAX_KEY_BITS + 1)
        if r + (b - 1).bit_length() <= MAX_KEY_BITS
    ]


def unrelated_sample(seed: int, n: int = 2000) -> np.ndarray:
    """Hamming similarities of mostly unrelated pairs: a bulk near 0.5 and a tail of pairs sharing
    one of two names (near 0.75), as concatenated name filters give."""
    rng = np.random.default_rng(seed)
    bulk = rng.normal(0.5, 0.016, n)
    tail = rng.normal(0.75, 0.02, n // 50)
    return on_grid(np.clip(np.concatenate([bulk, tail]), 0, 1))


@pytest.mark.parametrize("budget", [1e-6, 1e-4, 1e-3])
def test_chosen_scheme_keeps_within_the_budget(budget: float) -> None:
    """The expected false rate of the chosen scheme, from the S-curve over the sample, is within
    the budget."""
    unrelated = unrelated_sample(1)
    scheme = choose_bands_within_budget(0.9, unrelated, budget)
    assert scheme is not None
    bands, r = scheme
    assert 1 <= bands <= 32 and r + (bands - 1).bit_length() <= MAX_KEY_BITS
    assert false_rate(unrelated, bands, r) <= budget


def test_off_grid_samples_are_bounded_from_above() -> None:
    """Similarities between the histogram's bins are counted at the bin's upper edge, so the
    expected false rate over the raw sample is still within the budget."""
    rng = np.random.default_rng(2)
    unrelated = np.clip(rng.normal(0.55, 0.05, 3000), 0, 1)
    bands, r = choose_bands_within_budget(0.85, unrelated, 1e-4) or (0, 0)
    assert bands and false_rate(unrelated, bands, r) <= 1e-4


@pytest.mark.parametrize(("similarity", "budget"), [(0.9, 1e-4), (0.8, 1e-3), (0.95, 1e-6)])
def test_chosen_scheme_has_the_best_recall_within_the_budget(
    similarity: float, budget: float
) -> None:
    """No scheme within the budget has better recall (brute force over every scheme); among
    equal recall the chosen one has fewest bands."""
    unrelated = unrelated_sample(3)
    chosen = choose_bands_within_budget(similarity, unrelated, budget, max_bands=16)
    assert chosen is not None
    assert false_rate(unrelated, *chosen) <= budget
    recall = candidate_probability(similarity, *chosen)
    # clearly within the budget (a margin for summation order): none beats the chosen scheme
    feasible = [(b, r) for b, r in schemes(16) if false_rate(unrelated, b, r) <= budget * 0.999]
    assert feasible
    for b, r in feasible:
        other = candidate_probability(similarity, b, r)
        assert other <= recall + 1e-12
        if other >= recall - 1e-12:
            assert b >= chosen[0]


def test_the_tail_of_unrelated_pairs_counts() -> None:
    """Pairs sharing one of two names (the sample's tail) collide far more often than the bulk:
    a scheme designed on the bulk alone would overshoot the budget; the chosen one does not."""
    unrelated = unrelated_sample(5)
    bulk = unrelated[unrelated < 0.65]
    on_bulk = choose_bands_within_budget(0.9, bulk, 1e-4)
    chosen = choose_bands_within_budget(0.9, unrelated, 1e-4)
    assert on_bulk is not None and chosen is not None
    assert false_rate(unrelated, *on_bulk) > 1e-4
    assert false_rate(unrelated, *chosen) <= 1e-4


def test_a_larger_budget_never_lowers_recall() -> None:
    """More unrelated candidates allowed: the same or better recall at the target."""
    unrelated = unrelated_sample(4)
    recalls = []
    for budget in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
        scheme = choose_bands_within_budget(0.9, unrelated, budget)
        assert scheme is not None
        recalls.append(candidate_probability(0.9, *scheme))
    assert recalls == sorted(recalls)
    assert recalls[-1] > recalls[0]


def test_none_when_no_scheme_keeps_within_the_budget() -> None:
    """When even one band of 63 bits makes too many unrelated candidates, there is no scheme."""
    identical = np.ones(100)  # unrelated pairs that always collide
    assert choose_bands_within_budget(0.9, identical, 0.5) is None
    mostly = on_grid(np.r_[np.full(10, 1.0), np.full(990, 0.5)])  # 1% collide in every scheme
    assert choose_bands_within_budget(0.9, mostly, 0.009) is None
    assert choose_bands_within_budget(0.9, mostly, 0.011) is not None


@pytest.mark.parametrize(
    ("similarity", "unrelated"), [(0.0, [0.5]), (1.5, [0.5]), (0.9, [])], ids=str
)
def test_choose_bands_within_budget_refuses_bad_arguments(
    similarity: float, unrelated: list[float]
) -> None:
    """A similarity outside (0, 1] or an empty sample is refused."""
    with pytest.raises(SettingsError):
        choose_bands_within_budget(similarity, unrelated, 1e-3)


@given(
    st.lists(st.integers(0, 512), min_size=1, max_size=40),
    st.integers(300, 512),
    st.floats(1e-9, 0.5),
    st.integers(1, 32),
)
@settings(max_examples=60, deadline=None)
def test_choice_is_within_budget_or_none_only_when_impossible(
    grid: list[int], target: int, budget: float, max_bands: int
) -> None:
    """For any sample, target and budget: a scheme that fits a key, within max_bands and within
    the budget, whose recall no one-band scheme beats; None exactly when the scheme with the
    fewest unrelated candidates (one band of 63 bits) exceeds the budget."""
    unrelated = np.asarray(grid) / 512
    similarity = target / 512
    chosen = choose_bands_within_budget(similarity, unrelated, budget, max_bands=max_bands)
    least = false_rate(unrelated, 1, MAX_KEY_BITS)
    if chosen is None:
        assert least > budget * (1 - 1e-9)
        return
    assert least <= budget * (1 + 1e-9)
    bands, r = chosen
    assert 1 <= bands <= max_bands and r + (bands - 1).bit_length() <= MAX_KEY_BITS
    assert false_rate(unrelated, bands, r) <= budget * (1 + 1e-9)
    recall = candidate_probability(similarity, bands, r)
    one_band = [k for k in range(1, MAX_KEY_BITS + 1) if false_rate(unrelated, 1, k) <= budget]
    assert all(candidate_probability(similarity, 1, k) <= recall * (1 + 1e-9) for k in one_band)
