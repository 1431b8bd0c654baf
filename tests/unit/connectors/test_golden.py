"""Golden vectors: the encoded format of schema v1 cannot drift silently."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VECTORS
from tests.vectors.golden.generate import encode_golden

GOLDEN = VECTORS / "golden"
KEYS = json.loads((GOLDEN / "keys.json").read_text())
LINKAGE = bytes.fromhex(KEYS["linkage_secret"])
RECORD = bytes.fromhex(KEYS["record_secret"])


def _hkdf(secret: bytes, label: str) -> bytes:
    prk = hmac.new(b"pprl-hub hkdf salt v1", secret, hashlib.sha256).digest()
    return hmac.new(prk, label.encode() + b"\x01", hashlib.sha256).digest()


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _token(name: str, values: list[str]) -> str:
    key = _hkdf(LINKAGE, f"pprl-hub/token/uk-person/{name}")
    message = b"".join(_lp(v.encode()) for v in values)
    return hmac.new(key, message, hashlib.sha256).digest()[:16].hex()


def _permutation(key: bytes, n: int) -> list[int]:
    words: list[int] = []
    counter = 0
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        while True:
            if not words:
                block = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha256).digest()
                words = [int.from_bytes(block[j : j + 4], "big") for j in range(0, 32, 4)]
                counter += 1
            word = words.pop(0)
            if word < (2**32 // bound) * bound:
                break
        j = word % bound
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _balanced_filter(name: str, value: str, salt: str, bits: int, hashes: int) -> str:
    key = _hkdf(LINKAGE, f"pprl-hub/filter/uk-person/{name}")
    padded = f" {value} "
    plain = [0] * bits
    for gram in (padded[i : i + 2] for i in range(len(padded) - 1)):
        stream = b""
        for c in range((hashes + 15) // 16):
            msg = _lp(salt.encode()) + _lp(gram.encode()) + bytes([c])
            stream += hmac.new(key, msg, hashlib.sha256).digest()
        for h in range(hashes):
            plain[int.from_bytes(stream[2 * h : 2 * h + 2], "big") % bits] = 1
    full = plain + [1 - b for b in plain]
    perm = _permutation(_hkdf(LINKAGE, f"pprl-hub/balance/uk-person/{name}"), 2 * bits)
    out = [full[p] for p in perm]
    return bytes(int("".join(map(str, out[i : i + 8])), 2) for i in range(0, len(out), 8)).hex()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return encode_golden(Path(tmp_path_factory.mktemp("golden")))


def test_fresh_run_matches_expected(fresh: dict[str, Any]) -> None:
    """Encoding the golden input with the test keys reproduces expected.json exactly."""
    expected = json.loads((GOLDEN / "expected.json").read_text())
    assert fresh == expected


def test_tokens_recomputed_from_first_principles(fresh: dict[str, Any]) -> None:
    """Tokens equal HMAC-SHA256 over length-prefixed normalised inputs under HKDF keys."""
    row = fresh["rows"]["G-0001"]
    assert row["tok_nhs"] == _token("nhs", ["9434765919"])
    assert row["tok_name_dob"] == _token("name_dob", ["mary", "obrien", "1985-03-14"])
    assert row["tok_name_order_dob"] == _token("name_order_dob", ["mary", "obrien", "1985-03-14"])
    assert row["tok_phone_dob"] == _token("phone_dob", ["+442920345678", "1985-03-14"])
    assert row["tok_family_initial_dob_postcode"] == _token(
        "family_initial_dob_postcode", ["obrien", "m", "1985-03-14", "CF10 1AA"]
    )
    assert row["tok_name_yob_district"] == _token(
        "name_yob_district", ["mary", "obrien", "1985", "CF10"]
    )
    # day/month swaps: 11/03/1985 and 03/11/1985 give the same unordered date
    swapped = _token("name_dob_swapped", ["mohammed", "khan", "1985-03-11"])
    assert fresh["rows"]["G-0003"]["tok_name_dob_swapped"] == swapped


def test_missing_inputs_give_null_tokens(fresh: dict[str, Any]) -> None:
    """A token with a missing or refused input is null, never a hash of an empty string."""
    row3 = fresh["rows"]["G-0003"]  # invalid NHS number, pseudo-postcode
    assert row3["tok_nhs"] is None
    assert row3["tok_family_initial_dob_postcode"] is None
    row4 = fresh["rows"]["G-0004"]  # placeholder date of birth and phone
    assert row4["tok_name_dob"] is None
    assert row4["tok_phone_dob"] is None
    assert row4["tok_email"] is None  # placeholder email


def test_balanced_filter_recomputed_from_first_principles(fresh: dict[str, Any]) -> None:
    """A filter equals keyed bigram positions, salted by birth year, balanced and permuted."""
    row = fresh["rows"]["G-0001"]
    assert row["bf_given_name"] == _balanced_filter("given_name", "mary ann", "1985", 512, 20)
    assert row["bf_family_name"] == _balanced_filter("family_name", "obrien", "1985", 512, 20)
    ones = sum(bin(b).count("1") for b in bytes.fromhex(row["bf_given_name"]))
    assert ones == 512  # balanced: exactly half of 1024 bits


def test_record_pseudonym_recomputed(fresh: dict[str, Any]) -> None:
    """The record pseudonym is HMAC of the record id under the agency's record key."""
    key = _hkdf(RECORD, "pprl-hub/record-pseudonym")
    want = hmac.new(key, b"G-0001", hashlib.sha256).digest()[:16].hex()
    assert fresh["rows"]["G-0001"]["record_pseudonym"] == want


def test_rejections(fresh: dict[str, Any]) -> None:
    """Duplicate ids, missing ids and rows with nothing to link on are rejected and counted."""
    assert fresh["rejected"] == {
        "duplicate_record_id": 1,
        "missing_record_id": 1,
        "no_identifiers": 1,
    }
    assert "G-0007" not in fresh["rows"]
