"""Locality-sensitive hashing band keys over Bloom filters, for blocking without tokens.

The hub holds no keys, so it cannot compute new tokens; it can only compare what it was sent. To
bring together records that share no token (a typo in every token input) it blocks on *band keys*
computed from the filters by bit-sampling LSH for Hamming similarity:

* a scheme is ``bands`` groups of ``bits_per_band`` bit positions, drawn once from ``seed``;
* a record's key for band ``j`` is its filter's bits at band ``j``'s positions, packed into an
  integer (first sampled bit most significant), with the band index above them:
  ``key = (j << bits_per_band) | packed``, so keys of different bands never collide and can share
  one column after an unnest;
* two records are candidates when any band key agrees.

If ``s`` is the fraction of bit positions at which two filters of equal length agree (their
Hamming similarity, ``1 - hamming / length``), one band agrees with probability about ``s ** r``
and the pair becomes a candidate with probability ``1 - (1 - s ** r) ** b`` (the S-curve,
:func:`candidate_probability`). For *balanced* filters (every filter has exactly half its bits
set, as the connector writes them) the Hamming similarity equals the Dice coefficient, so the
comparison thresholds and the LSH design speak about the same number; unrelated values sit near
0.5.

Positions are reproducible across NumPy versions: they are drawn from the raw 64-bit output of
``numpy.random.PCG64(seed)`` (a bit generator's stream is stable; ``Generator`` methods are not
promised to be). For band ``j`` (in order ``0, 1, ...``) the generator yields ``length`` raw
words and the band's positions are the first ``bits_per_band`` entries of their stable argsort:
distinct positions, uniformly chosen. The positions depend on the filter length, so filters of
different lengths (names and addresses) get different positions from the same seed.

What the hub learns from band keys: nothing it does not already see. A band key is a
deterministic, keyless function of one filter and a public seed, so anything computed from keys
can be computed from the filters the hub already stores; equal keys say only that two filters
agree at the sampled positions, a coarser view of the similarity it can compute exactly. Keys
must still be protected exactly like filters (they are parts of filters): they stay in the hub's
linkage store and never appear in an extract.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from linkage.errors import InputMismatchError, SettingsError

__all__ = [
    "band_column_names",
    "band_key_columns",
    "band_key_lists",
    "band_keys",
    "band_positions",
    "candidate_probability",
    "choose_bands_within_budget",
    "filter_bytes",
]

MAX_KEY_BITS = 63
"""Band index and sampled bits must fit in a non-negative int64."""

_BLOCK_ROWS = 65_536
"""Rows per block: bounds the transposed copy to 64 Ki rows x filter bytes."""


def filter_bytes(
    filters: pa.Array | pa.ChunkedArray,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """A filter column as a read-only ``(n, bytes)`` uint8 view and an ``(n,)`` validity mask.

    Bytes of null rows are unspecified: mask them. Bits are packed most significant first, so bit
    ``p`` of a row is ``(row[p // 8] >> (7 - p % 8)) & 1``.
    """
    if isinstance(filters, pa.ChunkedArray):
        filters = filters.combine_chunks()
    if not pa.types.is_fixed_size_binary(filters.type):
        raise InputMismatchError(f"a filter column must be fixed_size_binary, not {filters.type}")
    width = filters.type.byte_width
    n = len(filters)
    valid = np.ones(n, dtype=np.bool_)
    if filters.null_count:
        valid = ~np.asarray(filters.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
    data = filters.buffers()[1]
    if data is None or n == 0:
        return np.zeros((n, width), dtype=np.uint8), valid
    flat = np.frombuffer(data, dtype=np.uint8, count=n * width, offset=filters.offset * width)
    return flat.reshape(n, width), valid


def _check_scheme(bands: int, bits_per_band: int) -> None:
    if bands < 1 or bits_per_band < 1:
        raise SettingsError("an LSH scheme needs at least one band of at least one bit")
    if bits_per_band + (bands - 1).bit_length() > MAX_KEY_BITS:
        raise SettingsError(
            f"{bands} bands of {bits_per_band} bits do not fit a 63-bit key: "
            "use fewer bits per band"
        )


def band_positions(length: int, bands: int, bits_per_band: int, seed: int) -> npt.NDArray[np.int64]:
    """The ``(bands, bits_per_band)`` positions a scheme samples from filters of ``length`` bits."""
    _check_scheme(bands, bits_per_band)
    if bits_per_band > length:
        raise SettingsError(f"cannot sample {bits_per_band} distinct bits from {length}")
    bit_generator = np.random.PCG64(seed)
    rows = [
        np.argsort(bit_generator.random_raw(length), kind="stable")[:bits_per_band]
        for _ in range(bands)
    ]
    return np.stack(rows).astype(np.int64)


def band_keys(
    filters: pa.Array | pa.ChunkedArray, bands: int, bits_per_band: int, seed: int
) -> list[pa.Array]:
    """One int64 key array per band, null where the filter is null.

    Vectorised over rows (blocks of 64 Ki rows; Python loops only over the sampled positions):
    about 3 s per million 1,024-bit filters at 32 bands of 19 bits.
    """
    matrix, valid = filter_bytes(filters)
    positions = band_positions(matrix.shape[1] * 8, bands, bits_per_band, seed)
    keys = np.empty((len(matrix), bands), dtype=np.uint64)
    for start in range(0, len(matrix), _BLOCK_ROWS):
        block = matrix[start : start + _BLOCK_ROWS]
        keys[start : start + len(block)] = _pack_bands(block, positions)
    mask = ~valid
    return [pa.array(keys[:, j].astype(np.int64), mask=mask) for j in range(bands)]


def _pack_bands(
    block: npt.NDArray[np.uint8], positions: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """``(rows, bands)`` keys ``j << r | bits`` for one block of rows, first sampled bit highest."""
    by_byte = np.ascontiguousarray(block.T)  # one contiguous row per filter byte
    out = np.empty((len(block), len(positions)), dtype=np.uint64)
    one = np.uint64(1)
    for j, band in enumerate(positions):
        packed = np.full(len(block), j, dtype=np.uint64)  # shifted up r times: j << r
        for p in band.tolist():
            packed <<= one
            packed |= (by_byte[p >> 3] >> (7 - (p & 7))) & 1
        out[:, j] = packed
    return out


def band_column_names(name: str, bands: int) -> list[str]:
    """Column names ``lsh_<name>_<band>`` for a filter's band keys."""
    return [f"lsh_{name}_{j}" for j in range(bands)]


def band_key_columns(
    name: str, filters: pa.Array | pa.ChunkedArray, bands: int, bits_per_band: int, seed: int
) -> dict[str, pa.Array]:
    """Band keys of one filter as named columns, ready to append to an encoded table."""
    keys = band_keys(filters, bands, bits_per_band, seed)
    return dict(zip(band_column_names(name, bands), keys, strict=True))


def candidate_probability(similarity: float, bands: int, bits_per_band: int) -> float:
    """``1 - (1 - s**r)**b``: the chance a pair of Hamming similarity ``s`` shares a band key."""
    if not 0.0 <= similarity <= 1.0:
        raise SettingsError("similarity must be in [0, 1]")
    _check_scheme(bands, bits_per_band)
    return float(1.0 - (1.0 - similarity**bits_per_band) ** bands)


def choose_bands_within_budget(
    similarity: float,
    unrelated: npt.ArrayLike,
    max_false_rate: float,
    *,
    max_bands: int = 32,
) -> tuple[int, int] | None:
    """The scheme with the best recall at ``similarity`` whose expected share of unrelated pairs
    made candidates stays within ``max_false_rate``.

    ``unrelated`` holds the Hamming similarities of a random sample of pairs (mostly unrelated
    records): their whole distribution matters, not its middle, because pairs that share one of
    two names sit far above the median and collide far more often. Returns None when no scheme
    keeps within the budget (LSH then adds no candidates).
    """
    if not 0.0 < similarity <= 1.0:
        raise SettingsError("similarity must be in (0, 1]")
    sims = np.asarray(unrelated, dtype=np.float64)
    if sims.size == 0:
        raise SettingsError("need a sample of unrelated similarities")
    # the sample as a histogram (bins of 1/512, each at its upper edge: an upper bound)
    counts = np.bincount(np.clip(np.ceil(sims * 512), 0, 512).astype(np.int64), minlength=513)
    levels = np.nonzero(counts)[0]
    weights = counts[levels] / sims.size
    values = levels / 512.0
    best: tuple[float, int, int] | None = None
    for r in range(1, MAX_KEY_BITS + 1):
        hit_sample = values**r
        for b in range(1, max_bands + 1):
            if r + (b - 1).bit_length() > MAX_KEY_BITS:
                break
            false_rate = float(np.dot(weights, 1.0 - (1.0 - hit_sample) ** b))
            if false_rate > max_false_rate:
                break  # more bands only add candidates
            recall = 1.0 - (1.0 - similarity**r) ** b
            if best is None or (recall, -b) > (best[0], -best[1]):
                best = (recall, b, r)
    return None if best is None else (best[1], best[2])


def band_key_lists(keys: Sequence[pa.Array], max_bucket: int | None) -> pa.ListArray:
    """The bands' keys of each row as one list (null where the filter is null), for blocking with
    one exploded rule instead of a rule per band.

    A key more than ``max_bucket`` rows share is left out: such keys come from bit patterns many
    filters have in common (a band that sampled mostly positions no n-gram sets), not from
    similar values, and would each add thousands of unrelated pairs.
    """
    if not keys:
        raise SettingsError("need at least one band")
    n, bands = len(keys[0]), len(keys)
    valid = np.asarray(keys[0].is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    matrix = np.column_stack([k.fill_null(0).to_numpy() for k in keys]).astype(np.int64)
    keep = np.repeat(valid[:, None], bands, axis=1)
    if max_bucket is not None:
        values, inverse, counts = np.unique(matrix, return_inverse=True, return_counts=True)
        keep &= counts[inverse.reshape(matrix.shape)] <= max_bucket
        del values
    lengths = keep.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = pa.array(matrix[keep], type=pa.int64())
    return pa.ListArray.from_arrays(pa.array(offsets), flat, mask=pa.array(~valid))
