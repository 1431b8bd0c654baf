"""Encryption at rest: master key files, data-key wrapping and the segmented file format."""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import cipher
from hub.cipher import (
    CipherError,
    MasterKey,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    iter_decrypted,
    new_data_key,
    open_decrypted,
    unwrap_data_key,
    wrap_data_key,
    wrapped_key_id,
)

CTX = b"dataset-version:42"
SEG = 64
HEADER = 25
SEALED = SEG + 16
KEY = bytes(range(32))
FAILED = "cannot decrypt: wrong key or context, or the file is damaged or truncated"
UNWRAP_FAILED = "cannot unwrap the data key"


def enc(data: bytes, key: bytes = KEY, context: bytes = CTX, segment_size: int = SEG) -> bytes:
    """Encrypt ``data`` in memory."""
    out = io.BytesIO()
    encrypt_stream(key, io.BytesIO(data), out, context=context, segment_size=segment_size)
    return out.getvalue()


def dec(blob: bytes, key: bytes = KEY, context: bytes = CTX) -> bytes:
    """Decrypt ``blob`` in memory."""
    out = io.BytesIO()
    decrypt_stream(key, io.BytesIO(blob), out, context=context)
    return out.getvalue()


def payload(n: int) -> bytes:
    """``n`` deterministic, non-repeating-looking bytes."""
    return hashlib.shake_256(b"payload").digest(n) if n else b""


# --- streams -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 5 * SEG + 17, 1000])
def test_round_trip_sizes(size: int) -> None:
    """Empty, one-byte, one-segment, exact-multiple, multi-segment and odd sizes round-trip, and
    the reported sizes and SHA-256 match the documented layout."""
    data = payload(size)
    src, out, back = io.BytesIO(data), io.BytesIO(), io.BytesIO()
    info = encrypt_stream(KEY, src, out, context=CTX, segment_size=SEG)
    blob = out.getvalue()
    segments = size // SEG + 1
    assert len(blob) == info.ciphertext_bytes == HEADER + size + 16 * segments
    assert info.plaintext_bytes == size
    assert info.sha256_of_plaintext == hashlib.sha256(data).hexdigest()
    dinfo = decrypt_stream(KEY, io.BytesIO(blob), back, context=CTX)
    assert back.getvalue() == data
    assert (dinfo.plaintext_bytes, dinfo.ciphertext_bytes, dinfo.sha256_of_plaintext) == (
        info.plaintext_bytes,
        info.ciphertext_bytes,
        info.sha256_of_plaintext,
    )


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=1500), segment_size=st.integers(16, 300))
def test_round_trip_property(data: bytes, segment_size: int) -> None:
    """Any plaintext round-trips under any allowed segment size."""
    assert dec(enc(data, segment_size=segment_size)) == data


def test_default_segment_size_round_trip() -> None:
    """The default (1 MiB) segment size works for a small input and is recorded in the header."""
    blob = enc(b"hello", segment_size=cipher.DEFAULT_SEGMENT_SIZE)
    assert struct.unpack(">I", blob[5:9])[0] == 1 << 20
    assert dec(blob) == b"hello"


def test_short_reads_are_handled() -> None:
    """A source whose ``read`` returns a few bytes at a time still yields full segments."""

    class Trickle(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            return super().read(min(5, n) if n is not None and n >= 0 else 5)

    data = payload(300)
    out = io.BytesIO()
    encrypt_stream(KEY, Trickle(data), out, context=CTX, segment_size=SEG)
    assert len(out.getvalue()) == HEADER + 300 + 16 * 5
    back = io.BytesIO()
    decrypt_stream(KEY, Trickle(out.getvalue()), back, context=CTX)
    assert back.getvalue() == data


def test_encryption_is_randomised() -> None:
    """Two encryptions of the same plaintext under the same key differ (fresh salt)."""
    assert enc(b"same") != enc(b"same")


def test_format_matches_documentation() -> None:
    """An independent decryption that follows the module docstring recovers the plaintext."""
    data = payload(150)
    blob = enc(data)
    magic, version, segment_size, salt = struct.unpack(">4sBI16s", blob[:HEADER])
    assert (magic, version, segment_size) == (b"PPHE", 1, SEG)
    okm = HKDF(hashes.SHA256(), 39, salt, b"pprl-hub segment key" + CTX).derive(KEY)
    aead, prefix, body = AESGCM(okm[:32]), okm[32:], blob[HEADER:]
    sealed = [body[i : i + SEALED] for i in range(0, len(body), SEALED)]
    plain = b"".join(
        aead.decrypt(prefix + struct.pack(">IB", i, i == len(sealed) - 1), seg, blob[:HEADER])
        for i, seg in enumerate(sealed)
    )
    assert plain == data


@pytest.mark.parametrize("delta", [0x01, 0x80])
def test_every_single_byte_modification_fails(delta: int) -> None:
    """Changing any one byte of a three-segment file, header included, is detected."""
    blob = enc(payload(150))
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= delta
        with pytest.raises(CipherError):
            dec(bytes(bad))


def test_truncation_at_segment_boundaries_fails() -> None:
    """Cutting the file after the header or after any whole segment is detected."""
    blob = enc(payload(3 * SEG))  # three full segments and an empty last one
    boundaries = [HEADER + k * SEALED for k in range(4)]
    assert boundaries[-1] + 16 == len(blob)
    for cut in boundaries:
        with pytest.raises(CipherError, match=FAILED):
            dec(blob[:cut])


def test_every_truncation_fails() -> None:
    """Every proper prefix of the file, mid-segment and mid-header included, is rejected."""
    blob = enc(payload(150))
    for cut in range(len(blob)):
        with pytest.raises(CipherError):
            dec(blob[:cut])


def test_swapping_segments_fails() -> None:
    """Exchanging two full segments is detected (the counter is in the nonce)."""
    blob = enc(payload(150))
    first = blob[HEADER : HEADER + SEALED]
    second = blob[HEADER + SEALED : HEADER + 2 * SEALED]
    swapped = blob[:HEADER] + second + first + blob[HEADER + 2 * SEALED :]
    with pytest.raises(CipherError, match=FAILED):
        dec(swapped)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda blob: b"\x00", id="one-byte"),
        pytest.param(lambda blob: os.urandom(100), id="garbage"),
        pytest.param(lambda blob: blob[HEADER : HEADER + SEALED], id="copy-of-first-segment"),
        pytest.param(lambda blob: blob[-(150 - 2 * SEG + 16) :], id="copy-of-last-segment"),
    ],
)
def test_appending_fails(extra: Callable[[bytes], bytes]) -> None:
    """Anything after the last segment, even a valid segment of the same file, is rejected."""
    blob = enc(payload(150))
    with pytest.raises(CipherError, match=FAILED):
        dec(blob + extra(blob))


def test_wrong_key_and_wrong_context_fail_alike() -> None:
    """Another data key or another context gives the same uninformative error."""
    blob = enc(payload(100))
    with pytest.raises(CipherError) as wrong_key:
        dec(blob, key=new_data_key())
    with pytest.raises(CipherError) as wrong_context:
        dec(blob, context=b"dataset-version:43")
    assert str(wrong_key.value) == str(wrong_context.value) == FAILED


def test_not_an_encrypted_file() -> None:
    """Input without the magic number is named as such (the header is not secret)."""
    with pytest.raises(CipherError, match="not a pprl-hub encrypted file"):
        dec(b"PAR1 not encrypted at all")
    with pytest.raises(CipherError, match="not a pprl-hub encrypted file"):
        dec(b"")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": bytes(16)}, "32 bytes"),
        ({"context": b""}, "context is required"),
        ({"segment_size": 8}, "segment size"),
        ({"segment_size": (1 << 26) + 1}, "segment size"),
    ],
)
def test_programming_errors_are_value_errors(kwargs: dict[str, object], message: str) -> None:
    """A short key, an empty context or an out-of-range segment size is a ValueError."""
    with pytest.raises(ValueError, match=message):
        enc(b"x", **kwargs)  # type: ignore[arg-type]


def test_new_data_key() -> None:
    """Data keys are 32 random bytes."""
    keys = {new_data_key() for _ in range(10)}
    assert len(keys) == 10 and all(len(k) == 32 for k in keys)


# --- files -------------------------------------------------------------------------------------


def test_file_round_trip_and_no_plaintext_marker(tmp_path: Path) -> None:
    """encrypt_file writes no known plaintext marker; every reader gets the plaintext back."""
    marker = b"NHS-943-476-5919-SMITH"
    data = marker * 200 + payload(77)
    src, dst, out = tmp_path / "d.parquet", tmp_path / "d.parquet.enc", tmp_path / "out"
    src.write_bytes(data)
    info = encrypt_file(KEY, src, dst, context=CTX, segment_size=SEG)
    blob = dst.read_bytes()
    assert marker not in blob and marker[:8] not in blob
    assert info.ciphertext_bytes == len(blob)
    assert open_decrypted(KEY, dst, context=CTX) == data
    chunks = list(iter_decrypted(KEY, dst, context=CTX))
    assert b"".join(chunks) == data and all(0 < len(c) <= SEG for c in chunks)
    dinfo = decrypt_file(KEY, dst, out, context=CTX)
    assert out.read_bytes() == data and dinfo.sha256_of_plaintext == info.sha256_of_plaintext
    assert out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet", "d.parquet.enc", "out"]


def test_encrypt_file_default_segment_size(tmp_path: Path) -> None:
    """encrypt_file with the default segment size round-trips through open_decrypted."""
    src, dst = tmp_path / "a", tmp_path / "a.enc"
    src.write_bytes(payload(5000))
    encrypt_file(KEY, src, dst, context=CTX)
    assert open_decrypted(KEY, dst, context=CTX) == payload(5000)


def test_encrypt_file_failure_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the source fails mid-read, no temporary file remains and the old target is intact."""
    src, dst = tmp_path / "src", tmp_path / "dst.enc"
    src.write_bytes(payload(1000))
    dst.write_bytes(b"previous version")
    real, calls = cipher._read_full, 0

    def flaky(stream: object, n: int) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk went away")
        return real(stream, n)  # type: ignore[arg-type]

    monkeypatch.setattr(cipher, "_read_full", flaky)
    with pytest.raises(OSError, match="disk went away"):
        encrypt_file(KEY, src, dst, context=CTX, segment_size=SEG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.enc", "src"]
    assert dst.read_bytes() == b"previous version"


def test_decrypt_file_of_damaged_file_writes_nothing(tmp_path: Path) -> None:
    """A truncated file yields no output file and no temporary file."""
    src, enc_path, out = tmp_path / "src", tmp_path / "src.enc", tmp_path / "out"
    src.write_bytes(payload(300))
    encrypt_file(KEY, src, enc_path, context=CTX, segment_size=SEG)
    enc_path.write_bytes(enc_path.read_bytes()[: HEADER + 2 * SEALED])
    with pytest.raises(CipherError, match=FAILED):
        decrypt_file(KEY, enc_path, out, context=CTX)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "src.enc"]


def test_iter_decrypted_raises_after_chunks_of_a_truncated_file(tmp_path: Path) -> None:
    """iter_decrypted yields authenticated chunks, then raises when the last segment is missing."""
    path = tmp_path / "f.enc"
    path.write_bytes(enc(payload(300))[: HEADER + 2 * SEALED])
    got: list[bytes] = []
    with pytest.raises(CipherError, match=FAILED):
        got.extend(iter_decrypted(KEY, path, context=CTX))
    assert b"".join(got) == payload(2 * SEG)


# --- wrapping ----------------------------------------------------------------------------------


def test_wrap_unwrap_round_trip() -> None:
    """A wrapped data key unwraps under the same master key and context; wrapping is randomised
    and records the master key id."""
    master, data_key = MasterKey.generate(), new_data_key()
    wrapped = wrap_data_key(master, data_key, context=CTX)
    assert len(wrapped) == 69 and data_key not in wrapped
    assert wrapped != wrap_data_key(master, data_key, context=CTX)
    assert unwrap_data_key(master, wrapped, context=CTX) == data_key
    assert wrapped_key_id(wrapped) == master.key_id


def test_unwrap_failures_share_one_message() -> None:
    """Another master key, another context, any modified byte or a wrong length: one message."""
    master = MasterKey.generate()
    wrapped = wrap_data_key(master, new_data_key(), context=CTX)
    attempts = [
        (MasterKey.generate(), wrapped, CTX),
        (master, wrapped, b"dataset-version:43"),
        (master, wrapped[:-1], CTX),
        (master, wrapped + b"\x00", CTX),
    ]
    for pos in range(len(wrapped)):
        bad = bytearray(wrapped)
        bad[pos] ^= 0x01
        attempts.append((master, bytes(bad), CTX))
    for key, blob, context in attempts:
        with pytest.raises(CipherError) as caught:
            unwrap_data_key(key, blob, context=context)
        assert str(caught.value) == UNWRAP_FAILED


def test_wrapped_key_id_rejects_non_wrapped_input() -> None:
    """wrapped_key_id refuses bytes that are not a wrapped key."""
    with pytest.raises(CipherError, match="not a wrapped data key"):
        wrapped_key_id(b"\x01" * 10)


# --- master key --------------------------------------------------------------------------------


def test_master_key_save_load_0600(tmp_path: Path) -> None:
    """save writes mode 0600 in the documented format; load gives the same key back."""
    master, path = MasterKey.generate(), tmp_path / "master.key"
    master.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes() == b"pprl-hub-master-key v1 " + master.secret.hex().encode() + b"\n"
    back = MasterKey.load(path)
    assert back.secret == master.secret and back.key_id == master.key_id


def test_master_key_without_final_newline_loads(tmp_path: Path) -> None:
    """The final newline is optional (secret stores often strip it)."""
    path = tmp_path / "k"
    path.write_bytes(b"pprl-hub-master-key v1 " + b"ab" * 32)
    path.chmod(0o400)
    assert MasterKey.load(path).secret == b"\xab" * 32


def test_master_key_refused_when_group_or_other_can_read(tmp_path: Path) -> None:
    """A key file with mode 0644 (or 0640) is refused."""
    path = tmp_path / "k"
    MasterKey.generate().save(path)
    for mode in (0o644, 0o640, 0o604):
        path.chmod(mode)
        with pytest.raises(CipherError, match="accessible by group or others"):
            MasterKey.load(path)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"pprl-hub-master-key v1 " + b"ab" * 31 + b"\n", id="31-bytes"),
        pytest.param(b"pprl-hub-master-key v1 " + b"ab" * 33 + b"\n", id="33-bytes"),
        pytest.param(b"pprl-hub-master-key v1 " + b"AB" * 32 + b"\n", id="upper-case"),
        pytest.param(b"pprl-hub-master-key v2 " + b"ab" * 32 + b"\n", id="version-2"),
        pytest.param(b"pprl-hub-master-key v1 " + b"ab" * 32 + b"\n\n", id="two-newlines"),
        pytest.param(b"\xab" * 32, id="raw-32-bytes"),
        pytest.param(b"", id="empty"),
    ],
)
def test_master_key_refused_when_malformed(tmp_path: Path, body: bytes) -> None:
    """Anything but exactly the documented one-line format with 32 bytes is refused."""
    path = tmp_path / "k"
    path.write_bytes(body)
    path.chmod(0o600)
    with pytest.raises(CipherError, match="not a pprl-hub master key file"):
        MasterKey.load(path)


def test_master_key_refused_when_missing_or_not_a_file(tmp_path: Path) -> None:
    """A missing path or a directory is refused with a CipherError."""
    with pytest.raises(CipherError, match="cannot read"):
        MasterKey.load(tmp_path / "absent")
    (tmp_path / "dir").mkdir(mode=0o700)
    with pytest.raises(CipherError, match="not a regular file"):
        MasterKey.load(tmp_path / "dir")


def test_master_key_save_refuses_overwrite(tmp_path: Path) -> None:
    """save never replaces an existing file, and leaves it as it was."""
    path, first = tmp_path / "k", MasterKey.generate()
    first.save(path)
    with pytest.raises(CipherError, match="already exists"):
        MasterKey.generate().save(path)
    assert MasterKey.load(path).secret == first.secret


def test_key_id_stable_distinct_and_not_the_key() -> None:
    """key_id is SHA-256(label || key)[:8] in hex: stable, different per key, secret-free repr."""
    master = MasterKey(b"\x11" * 32)
    expected = hashlib.sha256(b"pprl-hub master key id v1" + b"\x11" * 32).hexdigest()[:16]
    assert master.key_id == MasterKey(b"\x11" * 32).key_id == expected
    assert MasterKey(b"\x12" * 32).key_id != master.key_id
    assert repr(master) == f"MasterKey(key_id={expected!r})"
    assert "11" * 8 not in repr(master)


def test_master_key_must_be_32_bytes() -> None:
    """Constructing a master key from the wrong number of bytes is a ValueError."""
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"\x00" * 31)


def test_encrypt_bytes_round_trips_without_a_plaintext_file(tmp_path: Path) -> None:
    """Bytes in memory are encrypted straight to the destination (no temporary plaintext)."""
    key = cipher.new_data_key()
    dst = tmp_path / "chunk.enc"
    data = b"chunk of an upload " * 1000
    cipher.encrypt_bytes(key, data, dst, context=b"up_x/0", segment_size=256)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunk.enc"]
    assert cipher.open_decrypted(key, dst, context=b"up_x/0") == data
