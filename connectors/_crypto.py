"""Cryptographic primitives for pseudonymisation: the only module that imports hazmat.

Everything else in the connector calls the named recipes here (``derive_key``, ``Mac``,
``keyed_permutation``, ``keystream``, ``new_secret``):

* Per-purpose keys are derived from a 256-bit secret with HKDF-SHA256 (RFC 5869), using the fixed
  salt :data:`HKDF_SALT` and the purpose label as ``info``.
* Tokens and Bloom-filter positions are HMAC-SHA256 (RFC 2104 / RFC 4231). On the hot path HMAC is
  computed from precomputed inner and outer SHA-256 states (``hashlib``, which is OpenSSL), which is
  the standard HMAC construction; tests check it against ``cryptography``'s HMAC and RFC 4231.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: HKDF salt: fixed and public; the secret carries the entropy, the label separates purposes.
HKDF_SALT = b"pprl-hub hkdf salt v1"
SECRET_BYTES = 32
_BLOCK = 64


def new_secret() -> bytes:
    """A fresh 256-bit secret from the operating system's CSPRNG."""
    return secrets.token_bytes(SECRET_BYTES)


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) extract-and-expand."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def derive_key(secret: bytes, label: str, length: int = 32) -> bytes:
    """The key for one purpose (``label``) derived from a project or agency secret."""
    if len(secret) != SECRET_BYTES:
        raise ValueError("secret must be 32 bytes")
    return hkdf_sha256(secret, salt=HKDF_SALT, info=label.encode("utf-8"), length=length)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """One-off HMAC-SHA256 with ``cryptography`` (reference implementation for checks)."""
    mac = _hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


class Mac:
    """HMAC-SHA256 under a fixed key, fast for many short messages."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        """The 32-byte HMAC-SHA256 of ``message``."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def keyed_permutation(key: bytes, n: int) -> list[int]:
    """A permutation of ``range(n)`` determined by ``key`` (Fisher-Yates over an HMAC stream).

    Random indices are drawn by rejection sampling from 32-bit words of
    HMAC-SHA256(key, counter), so every permutation is equally likely and the result is the same on
    every platform.
    """
    if not 0 < n < 2**32:
        raise ValueError("n must be between 1 and 2**32 - 1")
    mac = Mac(key)
    words: list[int] = []
    counter = 0

    def next_word() -> int:
        nonlocal counter
        if not words:
            block = mac.digest(counter.to_bytes(8, "big"))
            counter += 1
            words.extend(int.from_bytes(block[i : i + 4], "big") for i in range(0, 32, 4))
        return words.pop(0)

    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        limit = (2**32 // bound) * bound
        while True:
            word = next_word()
            if word < limit:
                break
        j = word % bound
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    """``length`` pseudorandom bytes: AES-256-CTR under ``key`` from the 16-byte counter block
    ``nonce`` (the encryption of zeros)."""
    if len(key) != 32 or len(nonce) != 16:
        raise ValueError("keystream needs a 32-byte key and a 16-byte nonce")
    encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return encryptor.update(bytes(length)) + encryptor.finalize()
