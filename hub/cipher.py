"""Encryption at rest for the data directory: envelope encryption with AES-256-GCM.

The only module in ``hub`` that imports ``cryptography.hazmat``. Three layers:

* **Master key** (:class:`MasterKey`): 32 random bytes in a file of their own, mode 0600, outside
  the database. The file is one line, ``pprl-hub-master-key v1 <64 lowercase hex digits>``, with
  an optional final newline. :attr:`MasterKey.key_id` (SHA-256 over a fixed label and the key,
  first 8 bytes, hex) names the key without revealing it.
* **Data keys** (:func:`new_data_key`): 32 random bytes per file, stored only wrapped by the
  master key. Deleting the wrapped key crypto-shreds the file. A wrapped key is 69 bytes::

      version (1, = 1) || master key id (8) || nonce (12, random) || AES-256-GCM ct + tag (48)

  with associated data ``version || master key id || context``, so it unwraps only under the same
  master key and context (e.g. ``b"dataset-version:42"``) and cannot be moved to another record.
* **Files** (:func:`encrypt_stream`): a segmented AEAD after Tink's streaming AEAD and the STREAM
  construction (Hoang, Reyhanitabar, Rogaway and Vizar, 2015); no file is ever held in memory::

      header    = b"PPHE" || version (1, = 1) || segment size (u32 BE) || salt (16, random)
      subkey (32) || prefix (7) = HKDF-SHA256(data key, salt, b"pprl-hub segment key" || context)
      segment i = AES-256-GCM(subkey, nonce = prefix || i (u32 BE) || last (1 byte, 0 or 1),
                              plaintext chunk, associated data = header)

  Every segment but the last holds exactly ``segment size`` plaintext bytes; the last holds fewer
  (possibly none) and alone has the last flag. Truncation leaves no last segment, appending puts
  data after it and reordering breaks the counter, so each fails. Overhead: 25 bytes for the
  header and 16 per segment, counting the last one (so ``n // size + 1`` segments).

Authentication failures collapse to one :class:`CipherError` message that does not say which check
failed. Streaming decryption releases a segment only once it authenticates, but truncation shows
only at the end: output is untrusted until the call returns (:func:`decrypt_file` renames it into
place only then; :func:`iter_decrypted` raises after its last chunk).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import secrets
import stat
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
MAGIC = b"PPHE"
FILE_VERSION = 1
WRAP_VERSION = 1
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 1 << 26  # bounds what a (tampered) header can make the reader allocate
_HEADER = struct.Struct(">4sBI16s")
_TAG, _NONCE, _PREFIX, _ID = 16, 12, 7, 8
_WRAPPED_BYTES = 1 + _ID + _NONCE + KEY_BYTES + _TAG
_KEY_ID_LABEL = b"pprl-hub master key id v1"
_SEGMENT_LABEL = b"pprl-hub segment key"
_KEY_FILE_PREFIX = b"pprl-hub-master-key v1 "
_KEY_FILE = re.compile(re.escape(_KEY_FILE_PREFIX) + rb"([0-9a-f]{64})\n?")
_UNWRAP_FAILED = "cannot unwrap the data key"
_DECRYPT_FAILED = "cannot decrypt: wrong key or context, or the file is damaged or truncated"
_T = TypeVar("_T")


class CipherError(Exception):
    """A master key file is unusable, or unwrapping or decryption failed.

    ``hub.errors`` wraps it at the hub's edge. Every authentication failure (wrong key, wrong
    context, a modified, truncated, reordered or extended ciphertext) carries one message.
    """


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MasterKey:
    """The hub's 256-bit master key. ``repr`` shows only the key id; equality is identity."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError("a master key is 32 bytes")

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """16 hex digits naming this key; safe to store and log."""
        return _key_id(self.secret).hex()

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random master key from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> MasterKey:
        """Read a key file; refuse anything but a regular file, mode 0600 or stricter, in format."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise CipherError(f"{path}: cannot read master key file: {exc.strerror}") from None
        try:
            st = os.fstat(fd)  # of the file opened, not of whatever the path names later
            if not stat.S_ISREG(st.st_mode):
                raise CipherError(f"{path}: master key file is not a regular file")
            if st.st_mode & 0o077:
                raise CipherError(
                    f"{path}: master key file is accessible by group or others "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
                )
            body = os.read(fd, len(_KEY_FILE_PREFIX) + 2 * KEY_BYTES + 2)
        finally:
            os.close(fd)
        match = _KEY_FILE.fullmatch(body)
        if match is None:
            raise CipherError(f"{path}: not a pprl-hub master key file (or not 32 bytes)")
        return cls(bytes.fromhex(match.group(1).decode("ascii")))

    def save(self, path: Path) -> None:
        """Create ``path`` with mode 0600 and write the key; never overwrite an existing file."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CipherError(f"{path}: already exists; refusing to overwrite a key") from None
        except OSError as exc:
            raise CipherError(f"{path}: cannot create master key file: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o600)  # exactly 0600, whatever the umask
                fh.write(_KEY_FILE_PREFIX + self.secret.hex().encode("ascii") + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            _fsync_dir(path.parent)
        except BaseException:
            path.unlink(missing_ok=True)
            raise


def _key_id(secret: bytes) -> bytes:
    return hashlib.sha256(_KEY_ID_LABEL + secret).digest()[:_ID]


def _check(context: bytes, *data_keys: bytes) -> None:
    if any(len(key) != KEY_BYTES for key in data_keys):
        raise ValueError("a data key is 32 bytes")
    if not context:
        raise ValueError("a context is required (e.g. b'dataset-version:<id>')")


def new_data_key() -> bytes:
    """A fresh 256-bit data key for one file."""
    return secrets.token_bytes(KEY_BYTES)


def wrap_data_key(master: MasterKey, data_key: bytes, *, context: bytes) -> bytes:
    """Encrypt ``data_key`` under ``master``, bound to ``context`` (see the module docstring)."""
    _check(context, data_key)
    head = bytes([WRAP_VERSION]) + _key_id(master.secret)
    nonce = secrets.token_bytes(_NONCE)
    return head + nonce + AESGCM(master.secret).encrypt(nonce, data_key, head + context)


def unwrap_data_key(master: MasterKey, wrapped: bytes, *, context: bytes) -> bytes:
    """The data key in ``wrapped``; any mismatch or modification is one :class:`CipherError`."""
    _check(context)
    head = bytes([WRAP_VERSION]) + _key_id(master.secret)
    if len(wrapped) != _WRAPPED_BYTES or not hmac.compare_digest(wrapped[: len(head)], head):
        raise CipherError(_UNWRAP_FAILED)
    nonce, body = wrapped[len(head) : len(head) + _NONCE], wrapped[len(head) + _NONCE :]
    try:
        return AESGCM(master.secret).decrypt(nonce, body, head + context)
    except InvalidTag:
        raise CipherError(_UNWRAP_FAILED) from None


def wrapped_key_id(wrapped: bytes) -> str:
    """The key id of the master key that wrapped ``wrapped`` (not secret; for rotation and logs)."""
    if len(wrapped) != _WRAPPED_BYTES or wrapped[0] != WRAP_VERSION:
        raise CipherError("not a wrapped data key")
    return wrapped[1 : 1 + _ID].hex()


@dataclass(frozen=True, slots=True)
class EncryptedInfo:
    """What :func:`encrypt_stream` wrote: sizes and the plaintext's SHA-256 (hex)."""

    plaintext_bytes: int
    ciphertext_bytes: int
    sha256_of_plaintext: str


@dataclass(frozen=True, slots=True)
class DecryptedInfo:
    """What :func:`decrypt_stream` read: sizes and the plaintext's SHA-256 (hex)."""

    plaintext_bytes: int
    ciphertext_bytes: int
    sha256_of_plaintext: str


def _segment_cipher(data_key: bytes, header: bytes, context: bytes) -> tuple[AESGCM, bytes]:
    _check(context, data_key)
    salt = header[-16:]
    info = _SEGMENT_LABEL + context
    okm = HKDF(hashes.SHA256(), KEY_BYTES + _PREFIX, salt, info).derive(data_key)
    return AESGCM(okm[:KEY_BYTES]), okm[KEY_BYTES:]


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index > 0xFFFFFFFF:
        raise CipherError("too many segments: use a larger segment size")
    return prefix + struct.pack(">IB", index, last)


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of stream (``read`` may return short counts)."""
    parts, got = [], 0
    while got < n:
        part = src.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def encrypt_stream(
    data_key: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    context: bytes,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> EncryptedInfo:
    """Encrypt ``src`` to ``dst`` segment by segment, under a fresh random salt."""
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment size must be {MIN_SEGMENT_SIZE}..{MAX_SEGMENT_SIZE} bytes")
    header = _HEADER.pack(MAGIC, FILE_VERSION, segment_size, secrets.token_bytes(16))
    aead, prefix = _segment_cipher(data_key, header, context)
    dst.write(header)
    digest, plain, written, index = hashlib.sha256(), 0, len(header), 0
    while True:
        chunk = _read_full(src, segment_size)
        last = len(chunk) < segment_size
        digest.update(chunk)
        sealed = aead.encrypt(_nonce(prefix, index, last), chunk, header)
        dst.write(sealed)
        plain, written, index = plain + len(chunk), written + len(sealed), index + 1
        if last:
            return EncryptedInfo(plain, written, digest.hexdigest())


def _decrypt_segments(data_key: bytes, src: BinaryIO, context: bytes) -> Iterator[bytes]:
    """Each segment's plaintext once it authenticates; raises after the last if anything is off."""
    header = _read_full(src, _HEADER.size)
    if header[: len(MAGIC)] != MAGIC:
        raise CipherError("not a pprl-hub encrypted file")
    if len(header) < _HEADER.size:
        raise CipherError(_DECRYPT_FAILED)
    _, version, segment_size, _ = _HEADER.unpack(header)
    if version != FILE_VERSION:
        raise CipherError(f"unsupported encrypted file version {version}")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise CipherError(_DECRYPT_FAILED)
    aead, prefix = _segment_cipher(data_key, header, context)
    index, last = 0, False
    while not last:
        sealed = _read_full(src, segment_size + _TAG)
        last = len(sealed) < segment_size + _TAG
        try:
            chunk = aead.decrypt(_nonce(prefix, index, last), sealed, header)
        except InvalidTag:
            raise CipherError(_DECRYPT_FAILED) from None
        index += 1
        yield chunk
    if src.read(1):
        raise CipherError(_DECRYPT_FAILED)


def decrypt_stream(
    data_key: bytes, src: BinaryIO, dst: BinaryIO, *, context: bytes
) -> DecryptedInfo:
    """Decrypt ``src`` to ``dst``; on :class:`CipherError`, discard what was written."""
    digest, plain, segments = hashlib.sha256(), 0, 0
    for chunk in _decrypt_segments(data_key, src, context):
        digest.update(chunk)
        dst.write(chunk)
        plain, segments = plain + len(chunk), segments + 1
    return DecryptedInfo(plain, _HEADER.size + plain + _TAG * segments, digest.hexdigest())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(dst_path: Path, write: Callable[[BinaryIO], _T]) -> _T:
    """Run ``write`` on a temporary file beside ``dst_path``, fsync, rename; clean up on failure."""
    fd, tmp = tempfile.mkstemp(dir=dst_path.parent, prefix=f".{dst_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(dst_path.parent)
    return result


def encrypt_file(
    data_key: bytes,
    src_path: Path,
    dst_path: Path,
    *,
    context: bytes,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> EncryptedInfo:
    """Encrypt one file to ``dst_path`` atomically (replacing it); no temporary file survives."""
    with open(src_path, "rb") as src:
        return _write_atomically(
            dst_path,
            lambda out: encrypt_stream(
                data_key, src, out, context=context, segment_size=segment_size
            ),
        )


def encrypt_bytes(
    data_key: bytes,
    data: bytes,
    dst_path: Path,
    *,
    context: bytes,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> EncryptedInfo:
    """``encrypt_file`` for bytes already in memory: no plaintext copy touches the disk."""
    return _write_atomically(
        dst_path,
        lambda out: encrypt_stream(
            data_key, io.BytesIO(data), out, context=context, segment_size=segment_size
        ),
    )


def decrypt_file(
    data_key: bytes, src_path: Path, dst_path: Path, *, context: bytes
) -> DecryptedInfo:
    """Decrypt to ``dst_path`` (mode 0600), which appears only once all of it authenticates."""
    with open(src_path, "rb") as src:
        return _write_atomically(
            dst_path, lambda out: decrypt_stream(data_key, src, out, context=context)
        )


def iter_decrypted(data_key: bytes, path: Path, *, context: bytes) -> Iterator[bytes]:
    """The plaintext of ``path`` in non-empty chunks; raises :class:`CipherError` at the end if the
    file was truncated or extended, so act on the chunks only once iteration completes."""
    with open(path, "rb") as src:
        yield from (chunk for chunk in _decrypt_segments(data_key, src, context) if chunk)


def open_decrypted(data_key: bytes, path: Path, *, context: bytes) -> bytes:
    """The whole plaintext of a small encrypted file."""
    return b"".join(iter_decrypted(data_key, path, context=context))
