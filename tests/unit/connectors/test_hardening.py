"""Random bit flipping (``[hardening] flip_probability``): the schema option, the noise recipe
of connectors/encode.py's docstring recomputed independently, and its invariants."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors._crypto import keystream
from connectors.encode import Encoder
from connectors.encoding_schema import EncodingSchema, load_encoding_schema
from tests.conftest import REPO, load_vectors

V2 = REPO / "config" / "encoding" / "v2.toml"
SHIPPED = "[hardening]\nbalance = true\n"
LINKAGE = bytes(range(32))
RECORD = bytes(range(32, 64))


def _v2_with(tmp_path: Path, extra: str) -> EncodingSchema:
    text = V2.read_text(encoding="utf-8")
    assert text.count(SHIPPED) == 1
    path = tmp_path / "v2-hardened.toml"
    path.write_text(text.replace(SHIPPED, SHIPPED + extra), encoding="utf-8")
    return load_encoding_schema(path)


@pytest.fixture(scope="module")
def flipped_v2(tmp_path_factory: pytest.TempPathFactory) -> EncodingSchema:
    return _v2_with(tmp_path_factory.mktemp("schema"), "flip_probability = 0.1\n")


def _columns(schema: EncodingSchema, n: int, family: str = "smith") -> dict[str, list[Any]]:
    values: dict[str, Any] = {
        "date_of_birth": "1990-01-02",
        "postcode": "CF10 1AA",
        "phone": "+447700900123",
        "family_name": family,
    }
    return {f: [values.get(f, "jones")] * n for f in schema.fields_used()}


def _bits(arr: Any) -> np.ndarray[Any, Any]:
    blob = b"".join(arr.to_pylist())
    return np.unpackbits(np.frombuffer(blob, dtype=np.uint8)).reshape(len(arr), -1)


@pytest.mark.parametrize("case", load_vectors("crypto/sp800-38a-ctr-aes256.json"))
def test_keystream_matches_sp800_38a(case: dict[str, Any]) -> None:
    """The keystream is AES-256-CTR: XORed with the plaintext it gives NIST's ciphertext."""
    plain = bytes.fromhex(case["plaintext"])
    stream = keystream(
        bytes.fromhex(case["key"]), bytes.fromhex(case["initial_counter"]), len(plain)
    )
    assert bytes(a ^ b for a, b in zip(plain, stream, strict=True)).hex() == case["ciphertext"]


def test_keystream_refuses_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="32-byte key"):
        keystream(bytes(16), bytes(16), 8)
    with pytest.raises(ValueError, match="16-byte nonce"):
        keystream(bytes(32), bytes(12), 8)


def test_absent_or_zero_flip_keeps_the_schema_hash(tmp_path: Path) -> None:
    """Schemas written before flipping existed keep their hash: 0 is the same as absent; any
    other probability is part of the meaning, so it changes the hash."""
    shipped = load_encoding_schema(V2)
    zero = _v2_with(tmp_path, "flip_probability = 0\n")
    flipped = _v2_with(tmp_path, "flip_probability = 0.05\n")
    assert shipped.hardening.flip_probability == 0.0
    assert zero.hash == shipped.hash
    assert "flip_probability" not in shipped.describe()["hardening"]
    assert flipped.hash != shipped.hash
    assert flipped.describe()["hardening"]["flip_probability"] == 0.05


def test_zero_flip_encodes_exactly_as_before(tmp_path: Path) -> None:
    shipped = load_encoding_schema(V2)
    zero = _v2_with(tmp_path, "flip_probability = 0.0\n")
    cols, ids = _columns(shipped, 20), [f"r{i}" for i in range(20)]
    a = Encoder(shipped, LINKAGE, RECORD).encode(cols, ids)
    b = Encoder(zero, LINKAGE, RECORD).encode(cols, ids)
    assert all(a.filters[k].equals(b.filters[k]) for k in a.filters)


def _independent_masks(schema: EncodingSchema, record_id: str, p: float) -> dict[str, bytes]:
    """The flip masks of one record, recomputed from the recipe in connectors/encode.py with
    the standard library's HMAC and HKDF and cryptography's AES."""
    prk = hmac.new(b"pprl-hub hkdf salt v1", RECORD, hashlib.sha256).digest()
    label = f"pprl-hub/flip/{schema.schema_id}".encode()
    key = hmac.new(prk, label + b"\x01", hashlib.sha256).digest()
    rid = record_id.encode()
    nonce = hmac.new(key, len(rid).to_bytes(4, "big") + rid, hashlib.sha256).digest()[:16]
    widths = [schema.filter_bytes(f) for f in schema.filters]
    total = 8 * sum(widths)
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    stream = enc.update(bytes(2 * total))
    threshold = round(p * 65536)
    flips = [int.from_bytes(stream[2 * i : 2 * i + 2], "big") < threshold for i in range(total)]
    out, at = {}, 0
    for f, width in zip(schema.filters, widths, strict=True):
        out[f.name] = np.packbits(np.array(flips[at : at + 8 * width], dtype=np.uint8)).tobytes()
        at += 8 * width
    return out


def test_flipped_filters_follow_the_documented_recipe(tmp_path: Path) -> None:
    """Each stored filter is the unflipped one XOR the record's documented mask; tokens and
    pseudonyms are untouched."""
    plain = load_encoding_schema(V2)
    flipped = _v2_with(tmp_path, "flip_probability = 0.1\n")
    ids = ["a-1", "b-2", "record with spaces é"]
    cols = _columns(plain, len(ids))
    a = Encoder(plain, LINKAGE, RECORD).encode(cols, ids)
    b = Encoder(flipped, LINKAGE, RECORD).encode(cols, ids)
    assert a.pseudonyms.equals(b.pseudonyms)
    # tokens and filter keys are derived per schema id, which is the same here
    assert all(a.tokens[k].equals(b.tokens[k]) for k in a.tokens)
    for i, rid in enumerate(ids):
        masks = _independent_masks(flipped, rid, 0.1)
        for name in a.filters:
            clean = a.filters[name][i].as_py()
            stored = b.filters[name][i].as_py()
            assert bytes(x ^ y for x, y in zip(clean, masks[name], strict=True)) == stored


def test_flip_rate_noise_per_record_and_determinism(tmp_path: Path) -> None:
    """About p of the bits flip; two records of one value get different noise; the same record
    encoded again (even by another encoder) gets the same noise; another agency's record-key
    secret gives other noise."""
    p = 0.05
    plain = load_encoding_schema(V2)
    flipped = _v2_with(tmp_path, f"flip_probability = {p}\n")
    n = 400
    ids = [f"r{i}" for i in range(n)]
    cols = _columns(plain, n)
    clean = Encoder(plain, LINKAGE, RECORD).encode(cols, ids)
    noisy = Encoder(flipped, LINKAGE, RECORD).encode(cols, ids)
    again = Encoder(flipped, LINKAGE, RECORD).encode(cols, ids)
    other = Encoder(flipped, LINKAGE, bytes(32)).encode(cols, ids)
    for name in clean.filters:
        diff = _bits(clean.filters[name]) != _bits(noisy.filters[name])
        rate = diff.mean()
        sd = (p * (1 - p) / diff.size) ** 0.5
        assert abs(rate - p) < 5 * sd, (name, rate)
        assert len(set(noisy.filters[name].to_pylist())) == n
        assert noisy.filters[name].equals(again.filters[name])
        assert not noisy.filters[name].equals(other.filters[name])


def test_missing_values_stay_missing(tmp_path: Path) -> None:
    flipped = _v2_with(tmp_path, "flip_probability = 0.25\n")
    cols = _columns(flipped, 3)
    cols["family_name"] = ["smith", None, "jones"]
    batch = Encoder(flipped, LINKAGE, RECORD).encode(cols, ["x", "y", "z"])
    arr = batch.filters["family_name"]
    assert arr.null_count == 1 and arr[1].as_py() is None and arr[0].as_py() is not None


@settings(max_examples=30, deadline=None)
@given(
    a=st.text(alphabet="abcdefghijklmnopqrstuvwxyz -'", min_size=1, max_size=20),
    b=st.text(alphabet="abcdefghijklmnopqrstuvwxyz -'", min_size=1, max_size=20),
    rid=st.text(min_size=1, max_size=30),
)
def test_noise_depends_on_the_record_not_the_value(
    flipped_v2: EncodingSchema, a: str, b: str, rid: str
) -> None:
    """For one record id, the noise (stored XOR unflipped) is the same whatever the value: it
    carries nothing about the value."""
    plain, flipped = load_encoding_schema(V2), flipped_v2
    masks = []
    for value in (a, b):
        cols = _columns(plain, 1, family=value)
        clean = Encoder(plain, LINKAGE, RECORD).encode(cols, [rid]).filters["family_name"]
        noisy = Encoder(flipped, LINKAGE, RECORD).encode(cols, [rid]).filters["family_name"]
        masks.append(bytes(x ^ y for x, y in zip(clean[0].as_py(), noisy[0].as_py(), strict=True)))
    assert masks[0] == masks[1]
