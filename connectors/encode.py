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

Bits are packed most significant bit first: bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from connectors._crypto import Mac, derive_key, keyed_permutation
from connectors.encoding_schema import EncodingSchema, FilterSpec, TokenSpec
from connectors.transforms import transformer

TOKEN_BYTES = 16
PSEUDONYM_BYTES = 16
_CACHE_LIMIT = 500_000

Columns = Mapping[str, Sequence[str | None]]


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """One batch of encoded records, column by column."""

    pseudonyms: pa.Array
    tokens: dict[str, pa.Array]
    filters: dict[str, pa.Array]


class _TokenEncoder:
    def __init__(self, spec: TokenSpec, key: bytes) -> None:
        self.spec = spec
        self._mac = Mac(key)
        self._fns = [(ref.field, transformer(ref)) for ref in spec.inputs]
        self._sorted = [i for i, ref in enumerate(spec.inputs) if ref in spec.unordered]

    def encode(self, columns: Columns, n: int) -> list[bytes | None]:
        cols = [columns[field] for field, _ in self._fns]
        fns = [fn for _, fn in self._fns]
        digest = self._mac.digest
        out: list[bytes | None] = []
        for row in range(n):
            values: list[str] = []
            for col, fn in zip(cols, fns, strict=True):
                raw = col[row]
                value = fn(raw) if raw is not None else None
                if value is None:
                    break
                values.append(value)
            else:
                if self._sorted:
                    group = sorted(values[i] for i in self._sorted)
                    for i, v in zip(self._sorted, group, strict=True):
                        values[i] = v
                message = b"".join(_lp(v.encode("utf-8")) for v in values)
                out.append(digest(message)[:TOKEN_BYTES])
                continue
            out.append(None)
        return out


class _FilterEncoder:
    def __init__(self, spec: FilterSpec, key: bytes, perm_key: bytes | None) -> None:
        self.spec = spec
        self._mac = Mac(key)
        self._fn = transformer(spec.input)
        self._mask = spec.bits - 1
        self._blocks = (spec.hashes + 15) // 16
        self._pad = " " * (spec.ngram - 1)
        self._multi = spec.input.field == "other_names"
        self._perm: npt.NDArray[np.intp] | None = (
            np.asarray(keyed_permutation(perm_key, 2 * spec.bits), dtype=np.intp)
            if perm_key is not None
            else None
        )
        self._gram_cache: dict[tuple[str, str], bytes] = {}
        self._value_cache: dict[tuple[str, str], npt.NDArray[np.uint16]] = {}

    def ngrams(self, value: str) -> list[str]:
        """The n-grams of one value (each alias separately for other_names)."""
        parts = value.split("|") if self._multi else [value]
        n = self.spec.ngram
        grams: list[str] = []
        for part in parts:
            padded = f"{self._pad}{part}{self._pad}"
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
        return grams

    def _gram_block(self, salt: bytes, gram: str) -> bytes:
        """The keyed hash output of one n-gram: ``hashes`` 16-bit positions, big-endian."""
        prefix = salt + _lp(gram.encode("utf-8"))
        return b"".join(self._mac.digest(prefix + bytes([c])) for c in range(self._blocks))[
            : 2 * self.spec.hashes
        ]

    def positions(self, salt: str, value: str) -> npt.NDArray[np.uint16]:
        """Every bit position the value sets (with repeats), memoised per (salt, value)."""
        key = (salt, value)
        cached = self._value_cache.get(key)
        if cached is not None:
            return cached
        gram_cache = self._gram_cache
        salt_lp = _lp(salt.encode("utf-8"))
        blocks = []
        for gram in self.ngrams(value):
            gkey = (salt, gram)
            block = gram_cache.get(gkey)
            if block is None:
                if len(gram_cache) >= _CACHE_LIMIT:
                    gram_cache.clear()
                block = gram_cache[gkey] = self._gram_block(salt_lp, gram)
            blocks.append(block)
        result = np.frombuffer(b"".join(blocks), dtype=">u2").astype(np.uint16) & np.uint16(
            self._mask
        )
        if len(self._value_cache) >= _CACHE_LIMIT:
            self._value_cache.clear()
        self._value_cache[key] = result
        return result

    def encode(self, columns: Columns, salts: Sequence[str], n: int) -> pa.Array:
        col = columns[self.spec.input.field]
        bits = self.spec.bits
        rows: list[int] = []
        chunks: list[npt.NDArray[np.uint16]] = []
        valid = np.zeros(n, dtype=bool)
        for row in range(n):
            raw = col[row]
            value = self._fn(raw) if raw is not None else None
            if not value:
                continue
            pos = self.positions(salts[row], value)
            if pos.size == 0:
                continue
            valid[row] = True
            rows.append(row)
            chunks.append(pos)
        matrix = np.zeros((n, bits), dtype=np.uint8)
        if chunks:
            lengths = np.fromiter((c.size for c in chunks), dtype=np.intp, count=len(chunks))
            matrix[np.repeat(np.asarray(rows, dtype=np.intp), lengths), np.concatenate(chunks)] = 1
        if self._perm is not None:
            matrix = np.concatenate([matrix, 1 - matrix], axis=1)[:, self._perm]
            matrix[~valid] = 0
        packed = np.packbits(matrix, axis=1, bitorder="big")
        width = packed.shape[1]
        null_count = int(n - valid.sum())
        validity = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
        return pa.Array.from_buffers(
            pa.binary(width), n, [validity, pa.py_buffer(packed.tobytes())], null_count
        )


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
        salt = schema.hardening.salt
        self._salt: tuple[str, Callable[[str], str | None]] | None = (
            (salt.field, transformer(salt)) if salt is not None else None
        )
        self._record_mac = Mac(derive_key(record_secret, "pprl-hub/record-pseudonym"))

    def pseudonym(self, record_id: str) -> bytes:
        """The agency's record pseudonym for one of its record ids."""
        return self._record_mac.digest(record_id.encode("utf-8"))[:PSEUDONYM_BYTES]

    def salts(self, columns: Columns, n: int) -> list[str]:
        """The filter salt of each row ("" when the salt field is missing)."""
        if self._salt is None:
            return [""] * n
        field, fn = self._salt
        col = columns[field]
        return [(fn(v) or "") if v is not None else "" for v in col[:n]]

    def encode(self, columns: Columns, record_ids: Sequence[str]) -> EncodedBatch:
        """Encode one batch: ``columns`` maps every field the schema uses to normalised values."""
        n = len(record_ids)
        pseudonyms = pa.array([self.pseudonym(r) for r in record_ids], type=pa.binary(16))
        tokens = {
            t.spec.name: pa.array(t.encode(columns, n), type=pa.binary(TOKEN_BYTES))
            for t in self._tokens
        }
        salts = self.salts(columns, n)
        filters = {f.spec.name: f.encode(columns, salts, n) for f in self._filters}
        return EncodedBatch(pseudonyms, tokens, filters)
