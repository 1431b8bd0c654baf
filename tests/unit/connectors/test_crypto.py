"""The connector's cryptographic recipes against published vectors and independent references."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors._crypto import Mac, derive_key, hkdf_sha256, hmac_sha256, keyed_permutation
from tests.conftest import load_vectors


def _naive_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


@pytest.mark.parametrize("case", load_vectors("crypto/rfc4231-hmac-sha256.json"))
def test_hmac_matches_rfc4231(case: dict[str, Any]) -> None:
    """Both HMAC implementations give RFC 4231's outputs (truncated where the RFC truncates)."""
    key, data, want = (bytes.fromhex(case[k]) for k in ("key", "data", "mac"))
    assert Mac(key).digest(data)[: len(want)] == want
    assert hmac_sha256(key, data)[: len(want)] == want
    assert hmac.new(key, data, hashlib.sha256).digest()[: len(want)] == want


@pytest.mark.parametrize("case", load_vectors("crypto/rfc5869-hkdf-sha256.json"))
def test_hkdf_matches_rfc5869(case: dict[str, Any]) -> None:
    """HKDF-SHA256 gives RFC 5869's output keying material; so does a naive reference."""
    ikm, salt, info, okm = (bytes.fromhex(case[k]) for k in ("ikm", "salt", "info", "okm"))
    assert hkdf_sha256(ikm, salt=salt or None, info=info, length=case["length"]) == okm
    assert _naive_hkdf(ikm, salt, info, case["length"]) == okm


@settings(max_examples=200)
@given(key=st.binary(min_size=0, max_size=200), data=st.binary(max_size=300))
def test_fast_mac_equals_reference(key: bytes, data: bytes) -> None:
    """The precomputed-state HMAC equals cryptography's HMAC for any key and message."""
    assert Mac(key).digest(data) == hmac_sha256(key, data)


def test_derive_key_separates_labels_and_checks_size() -> None:
    """Different labels give different keys; a secret that is not 32 bytes is refused."""
    secret = bytes(range(32))
    assert derive_key(secret, "a") != derive_key(secret, "b")
    assert derive_key(secret, "a") == _naive_hkdf(secret, b"pprl-hub hkdf salt v1", b"a", 32)
    with pytest.raises(ValueError, match="32 bytes"):
        derive_key(secret[:16], "a")


@settings(max_examples=50)
@given(key=st.binary(min_size=1, max_size=64), n=st.integers(min_value=1, max_value=3000))
def test_keyed_permutation_is_a_permutation(key: bytes, n: int) -> None:
    """A keyed permutation contains every index exactly once and is repeatable."""
    perm = keyed_permutation(key, n)
    assert sorted(perm) == list(range(n))
    assert keyed_permutation(key, n) == perm


def test_keyed_permutation_depends_on_key() -> None:
    """Two keys give different permutations of the same size."""
    assert keyed_permutation(b"k1", 1024) != keyed_permutation(b"k2", 1024)
