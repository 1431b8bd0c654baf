"""Tests for LSH band keys over Bloom filters in linkage.lsh."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.errors import InputMismatchError, SettingsError
from linkage.lsh import (
    band_column_names,
    band_key_columns,
    band_keys,
    band_positions,
    candidate_probability,
    choose_bands,
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


@pytest.mark.parametrize(("similarity", "recall"), [(0.9, 0.99), (0.8, 0.95), (0.85, 0.9)])
def test_choose_bands_reaches_the_recall_with_fewest_unrelated_candidates(
    similarity: float, recall: float
) -> None:
    """The chosen scheme reaches the recall and has the fewest unrelated candidates of any."""
    bands, r = choose_bands(similarity, recall, max_bands=32)
    assert bands <= 32
    assert candidate_probability(similarity, bands, r) >= recall
    false_rate = candidate_probability(0.5, bands, r)
    feasible = [
        candidate_probability(0.5, b, k)
        for b in range(1, 33)
        for k in range(1, 58)
        if candidate_probability(similarity, b, k) >= recall
    ]  # brute force over every scheme
    assert false_rate == min(feasible)


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


@pytest.mark.parametrize(
    ("similarity", "recall", "max_bands"), [(0.5, 0.9, 8), (0.9, 1.0, 8), (0.9, 0.9, 0)]
)
def test_choose_bands_refuses_impossible_targets(
    similarity: float, recall: float, max_bands: int
) -> None:
    """A similarity at the unrelated level, a recall of 1 or no bands cannot be designed for."""
    with pytest.raises(SettingsError):
        choose_bands(similarity, recall, max_bands=max_bands)
