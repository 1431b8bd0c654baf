"""The pseudonymisation recipe: tokens, hardened Bloom filters and record pseudonyms.

Input is a batch of normalised identifier columns; output is Arrow arrays. All keys are derived
from the secrets with HKDF labels (see ``docs/security.md``):

* ``pprl-hub/token/<schema_id>/<token>``: the HMAC key of one token. A token is
  HMAC-SHA256(key, lp(v1) || lp(v2) || ...) truncated to 16 bytes, where ``lp`` is a 4-byte
  big-endian length prefix and ``v1..`` are the UTF-8 input values in schema order (values of an
  ``unordered`` group sorted first). A token with any missing input is null.
* ``pprl-hub/filter/<schema_id>/<filter>``: the key choosing Bloom-filter bit positions. For each
  n-gram ``g`` of the value (padded with n-1 spaces each side) and salt ``s`` (the keyed record
  attribute, e.g. birth year, or "" when missing), block ``c`` = HMAC-SHA256(key, lp(s) || lp(g) ||
  c) gives 16 big-endian 16-bit positions (mod the filter length); as many blocks as the number of
  hashes needs. Positions are independent per n-gram (no double hashing).
* ``pprl-hub/balance/<schema_id>/<filter>``: the key of the permutation that balancing applies
  after appending the complement of the filter.
* ``pprl-hub/record-pseudonym`` (from the agency's own record-key secret): the record pseudonym,
  HMAC-SHA256(key, UTF-8 record id) truncated to 16 bytes.
* ``pprl-hub/flip/<schema_id>`` (from the agency's record-key secret), only when the schema sets
  ``[hardening] flip_probability`` p > 0: random bit flipping (BLIP). For each record, the
  keystream AES-256-CTR(key, nonce = HMAC-SHA256(key, lp(UTF-8 record id))[:16]) is read as
  big-endian 16-bit words, one per stored filter bit, filters in schema order (a missing filter
  still consumes its words); the stored bit is flipped when its word is below
  ``round(p * 65536)``. The noise differs between records, even of the same value, and between
  agencies, but re-encoding a record gives the same noise (so repeated uploads cannot be
  averaged). Tokens are not flipped.

Bits are packed most significant bit first: bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from connectors._crypto import Mac, derive_key, keyed_permutation, keystream
from connectors.encoding_schema import (
    FLIP_RESOLUTION,
    EncodingSchema,
    FieldRef,
    FilterSpec,
    TokenSpec,
)
from connectors.transforms import transformer

TOKEN_BYTES = 16
PSEUDONYM_BYTES = 16
_CACHE_LIMIT = 20_000
#: n-gram positions are small; the (salt, n-gram) vocabulary is a few hundred thousand at most.
_GRAM_CACHE_LIMIT = 200_000
#: Distinct values encoded per NumPy pass (bounds the bit matrix to a few MB).
_MATRIX_ROWS = 2048
#: Records flipped per NumPy pass (bounds the keystream to tens of MB).
_FLIP_ROWS = 2048

Columns = Mapping[str, Sequence[str | None]]


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """One batch of encoded records, column by column."""

    pseudonyms: pa.Array
    tokens: dict[str, pa.Array]
    filters: dict[str, pa.Array]


class _Memo:
    """A bounded memo of a function of one string (values repeat a lot in real exports)."""

    __slots__ = ("_fn", "_memo")

    def __init__(self, fn: Callable[[str], object]) -> None:
        self._fn = fn
        self._memo: dict[str, object] = {}

    def column(self, values: Sequence[str | None]) -> list[Any]:
        memo, fn = self._memo, self._fn
        if len(memo) >= _CACHE_LIMIT:
            memo.clear()
        out: list[Any] = []
        for v in values:
            if v is None:
                out.append(None)
                continue
            r = memo.get(v, _MISSING)
            if r is _MISSING:
                r = memo[v] = fn(v)
            out.append(r)
        return out


_MISSING = object()


def _lp_text(value: str | None) -> bytes | None:
    return None if value is None else _lp(value.encode("utf-8"))


class _TokenEncoder:
    def __init__(self, spec: TokenSpec, key: bytes) -> None:
        self.spec = spec
        self._mac = Mac(key)
        self._sorted = [i for i, ref in enumerate(spec.inputs) if ref in spec.unordered]

    def encode(
        self, texts: Mapping[FieldRef, list[str | None]], lps: Mapping[FieldRef, list[Any]]
    ) -> list[bytes | None]:
        digest = self._mac.digest
        if not self._sorted:
            columns = [lps[ref] for ref in self.spec.inputs]
            return [
                None if None in parts else digest(b"".join(parts))[:TOKEN_BYTES]
                for parts in zip(*columns, strict=True)
            ]
        out: list[bytes | None] = []
        for values in zip(*(texts[ref] for ref in self.spec.inputs), strict=True):
            if None in values:
                out.append(None)
                continue
            row = list(values)
            group = sorted(row[i] for i in self._sorted)
            for i, v in zip(self._sorted, group, strict=True):
                row[i] = v
            out.append(digest(b"".join(_lp(v.encode("utf-8")) for v in row))[:TOKEN_BYTES])
        return out


class _FilterEncoder:
    def __init__(self, spec: FilterSpec, key: bytes, perm_key: bytes | None) -> None:
        self.spec = spec
        self._mac = Mac(key)
        self._mask = spec.bits - 1
        self._blocks = (spec.hashes + 15) // 16
        self._pad = " " * (spec.ngram - 1)
        self._multi = spec.input.field == "other_names"
        bits = spec.bits
        if perm_key is not None:
            # Balancing: output bit j is input bit perm[j] of (filter || complement). Setting bit p
            # of the filter sets output bit inv[p] and clears output bit inv[p + bits]; the
            # template is the balanced encoding of an empty filter.
            perm = np.asarray(keyed_permutation(perm_key, 2 * bits), dtype=np.intp)
            self._inv: npt.NDArray[np.intp] | None = np.argsort(perm)
            self._template = np.zeros(2 * bits, dtype=np.uint8)
            self._template[self._inv[bits:]] = 1
        else:
            self._inv = None
            self._template = np.zeros(bits, dtype=np.uint8)
        self.width = self._template.size // 8
        self._gram_cache: dict[str, dict[str, bytes]] = {}
        self._value_cache: dict[tuple[str, str], bytes | None] = {}

    def ngrams(self, value: str) -> list[str]:
        """The n-grams of one value (each alias separately for other_names)."""
        n, pad = self.spec.ngram, self._pad
        if not self._multi:
            padded = f"{pad}{value}{pad}"
            return [padded[i : i + n] for i in range(len(padded) - n + 1)]
        grams: list[str] = []
        for part in value.split("|"):
            padded = f"{pad}{part}{pad}"
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
        return grams

    def _gram_block(self, salt: bytes, gram: str) -> bytes:
        """The keyed hash output of one n-gram: ``hashes`` 16-bit positions, big-endian."""
        prefix = salt + _lp(gram.encode("utf-8"))
        return b"".join(self._mac.digest(prefix + bytes([c])) for c in range(self._blocks))[
            : 2 * self.spec.hashes
        ]

    def _raw_positions(self, salt: str, value: str) -> bytes:
        """The big-endian 16-bit positions (before masking) that one value sets."""
        cache = self._gram_cache.get(salt)
        if cache is None:
            cache = self._gram_cache[salt] = {}
        blocks = []
        for gram in self.ngrams(value):
            block = cache.get(gram)
            if block is None:
                block = cache[gram] = self._gram_block(_lp(salt.encode("utf-8")), gram)
            blocks.append(block)
        return b"".join(blocks)

    def _encode_many(self, pairs: list[tuple[str, str]]) -> list[bytes | None]:
        """Encode distinct (salt, value) pairs at once: one NumPy pass for the whole list."""
        if sum(len(c) for c in self._gram_cache.values()) >= _GRAM_CACHE_LIMIT:
            self._gram_cache.clear()
        raws = [self._raw_positions(salt, value) for salt, value in pairs]
        counts = np.fromiter((len(r) // 2 for r in raws), dtype=np.intp, count=len(raws))
        positions = np.frombuffer(b"".join(raws), dtype=">u2").astype(np.intp) & self._mask
        rows = np.repeat(np.arange(len(raws), dtype=np.intp), counts)
        matrix = np.tile(self._template, (len(raws), 1))
        if self._inv is not None:
            matrix[rows, self._inv[positions]] = 1
            matrix[rows, self._inv[positions + self.spec.bits]] = 0
        else:
            matrix[rows, positions] = 1
        packed = np.packbits(matrix, axis=1, bitorder="big")
        return [packed[i].tobytes() if counts[i] else None for i in range(len(raws))]

    def encode(self, values: Sequence[str | None], salts: Sequence[str]) -> pa.Array:
        cache = self._value_cache
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        keys = [(s, v) if v else None for v, s in zip(values, salts, strict=True)]
        misses = list(dict.fromkeys(k for k in keys if k is not None and k not in cache))
        for start in range(0, len(misses), _MATRIX_ROWS):
            chunk = misses[start : start + _MATRIX_ROWS]
            cache.update(zip(chunk, self._encode_many(chunk), strict=True))
        return pa.array(
            [cache[k] if k is not None else None for k in keys], type=pa.binary(self.width)
        )


class _Flipper:
    """Random bit flipping of stored filters, keyed per record (see the module docstring)."""

    def __init__(self, key: bytes, widths: Sequence[tuple[str, int]], probability: float) -> None:
        self._key = key
        self._mac = Mac(key)
        self._threshold = round(probability * FLIP_RESOLUTION)
        self._widths = list(widths)
        self._bits = 8 * sum(w for _, w in widths)

    def _masks(self, record_ids: Sequence[str]) -> npt.NDArray[np.uint8]:
        """Per record, the packed flip mask of every filter, concatenated in schema order."""
        stream = b"".join(
            keystream(self._key, self._mac.digest(_lp(r.encode("utf-8")))[:16], 2 * self._bits)
            for r in record_ids
        )
        words = np.frombuffer(stream, dtype=">u2").reshape(len(record_ids), self._bits)
        return np.packbits(words < self._threshold, axis=1, bitorder="big")

    def apply(self, filters: dict[str, pa.Array], record_ids: Sequence[str]) -> dict[str, pa.Array]:
        n = len(record_ids)
        # missing filters stay missing: their (zero) slots are flipped but never read
        stored = {
            name: np.frombuffer(
                filters[name].fill_null(bytes(width)).buffers()[1], np.uint8, count=n * width
            )
            .reshape(n, width)
            .copy()
            for name, width in self._widths
        }
        for start in range(0, n, _FLIP_ROWS):
            masks = self._masks(record_ids[start : start + _FLIP_ROWS])
            offset = 0
            for name, width in self._widths:
                stored[name][start : start + _FLIP_ROWS] ^= masks[:, offset : offset + width]
                offset += width
        return {
            name: pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width),
                n,
                [filters[name].buffers()[0], pa.py_buffer(stored[name].tobytes())],
                null_count=filters[name].null_count,
            )
            for name, width in self._widths
        }


class Encoder:
    """Encodes normalised records under one schema, linkage secret and record-key secret."""

    def __init__(self, schema: EncodingSchema, linkage_secret: bytes, record_secret: bytes) -> None:
        sid = schema.schema_id
        self.schema = schema
        self._tokens = [
            _TokenEncoder(t, derive_key(linkage_secret, f"pprl-hub/token/{sid}/{t.name}"))
            for t in schema.tokens
        ]
        balance = schema.hardening.balance
        self._filters = [
            _FilterEncoder(
                f,
                derive_key(linkage_secret, f"pprl-hub/filter/{sid}/{f.name}"),
                derive_key(linkage_secret, f"pprl-hub/balance/{sid}/{f.name}") if balance else None,
            )
            for f in schema.filters
        ]
        refs: list[FieldRef] = [r for t in schema.tokens for r in t.inputs]
        refs += [f.input for f in schema.filters]
        if schema.hardening.salt is not None:
            refs.append(schema.hardening.salt)
        self._transforms = {
            ref: _Memo(transformer(ref)) for ref in dict.fromkeys(refs) if ref.transform != "none"
        }
        self._lp = {
            ref: _Memo(_lp_text)
            for ref in dict.fromkeys(r for t in schema.tokens for r in t.inputs)
        }
        self._record_mac = Mac(derive_key(record_secret, "pprl-hub/record-pseudonym"))
        flip = schema.hardening.flip_probability
        self._flipper = (
            _Flipper(
                derive_key(record_secret, f"pprl-hub/flip/{sid}"),
                [(f.name, schema.filter_bytes(f)) for f in schema.filters],
                flip,
            )
            if flip > 0
            else None
        )

    def pseudonym(self, record_id: str) -> bytes:
        """The agency's record pseudonym for one of its record ids."""
        return self._record_mac.digest(record_id.encode("utf-8"))[:PSEUDONYM_BYTES]

    def encode(self, columns: Columns, record_ids: Sequence[str]) -> EncodedBatch:
        """Encode one batch: ``columns`` maps every field the schema uses to normalised values."""
        digest = self._record_mac.digest
        pseudonyms = pa.array(
            [digest(r.encode("utf-8"))[:PSEUDONYM_BYTES] for r in record_ids],
            type=pa.binary(PSEUDONYM_BYTES),
        )
        texts: dict[FieldRef, list[str | None]] = {}
        for ref in self._lp.keys() | {f.spec.input for f in self._filters}:
            texts[ref] = self._text(ref, columns)
        lps = {ref: memo.column(texts[ref]) for ref, memo in self._lp.items()}
        tokens = {
            t.spec.name: pa.array(t.encode(texts, lps), type=pa.binary(TOKEN_BYTES))
            for t in self._tokens
        }
        salt_ref = self.schema.hardening.salt
        n = len(record_ids)
        salts = (
            [s or "" for s in self._text(salt_ref, columns)] if salt_ref is not None else [""] * n
        )
        filters = {f.spec.name: f.encode(texts[f.spec.input], salts) for f in self._filters}
        if self._flipper is not None:
            filters = self._flipper.apply(filters, record_ids)
        return EncodedBatch(pseudonyms, tokens, filters)

    def _text(self, ref: FieldRef, columns: Columns) -> list[str | None]:
        col = columns[ref.field]
        memo = self._transforms.get(ref)
        return list(col) if memo is None else memo.column(col)
