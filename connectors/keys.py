"""Key files: the project linkage secret and the agency's own record-key secret.

A key file is a small JSON document written with mode 0600::

    {"format": "pprl-hub-key", "version": 1, "kind": "linkage-secret", "key_id": "lk-…",
     "created": "2026-11-22T21:00:00Z", "secret": "<base64, 32 bytes>"}

Keys are read from a file named on the command line or by an environment variable; never from the
command line itself (it would land in shell history and process listings). A key file that group
or others can read is refused.

The key check value (KCV) is HMAC-SHA256 under a key derived for the purpose, over a fixed label,
truncated to 8 bytes. It identifies a key without revealing it, so the hub can refuse an upload
made with the wrong linkage secret while learning nothing that lets it compute tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from connectors._crypto import SECRET_BYTES, derive_key, hmac_sha256, new_secret
from connectors.errors import KeyFileError

KeyKind = Literal["linkage-secret", "record-key"]
KEY_FORMAT = "pprl-hub-key"
KEY_FORMAT_VERSION = 1
LINKAGE_KEY_ENV = "PPRL_LINKAGE_KEY_FILE"
RECORD_KEY_ENV = "PPRL_RECORD_KEY_FILE"
_KCV_LABEL = b"pprl-hub key check value v1"
_MAX_KEY_FILE = 4096
_PREFIX: dict[KeyKind, str] = {"linkage-secret": "lk", "record-key": "rk"}


@dataclass(frozen=True, slots=True, repr=False)
class Key:
    """A secret and its public description. ``repr`` never shows the secret."""

    kind: KeyKind
    key_id: str
    created: str
    secret: bytes

    def __repr__(self) -> str:
        return f"Key(kind={self.kind!r}, key_id={self.key_id!r})"

    @property
    def check_value(self) -> str:
        """The key check value, safe to publish (16 hex digits)."""
        return key_check_value(self.secret)


def key_check_value(secret: bytes) -> str:
    """HMAC of a fixed label under a derived key, truncated to 8 bytes, as hex."""
    return hmac_sha256(derive_key(secret, "pprl-hub/key-check"), _KCV_LABEL)[:8].hex()


def generate_key(kind: KeyKind, *, now: datetime | None = None) -> Key:
    """A new random key of ``kind``."""
    secret = new_secret()
    key_id = f"{_PREFIX[kind]}-{new_secret()[:8].hex()}"
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Key(kind, key_id, created, secret)


def write_key(key: Key, path: Path, *, overwrite: bool = False) -> None:
    """Write ``key`` to ``path`` with mode 0600, atomically; refuse to overwrite unless asked."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key (use --force)")
    body = json.dumps(
        {
            "format": KEY_FORMAT,
            "version": KEY_FORMAT_VERSION,
            "kind": key.kind,
            "key_id": key.key_id,
            "created": key.created,
            "secret": base64.b64encode(key.secret).decode("ascii"),
        },
        indent=2,
    ).encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror or exc}") from None


def resolve_key_path(path: Path | None, env_var: str, env: dict[str, str]) -> Path:
    """The key file from the command line, else from the environment variable that names it."""
    if path is not None:
        return path
    named = env.get(env_var)
    if not named:
        raise KeyFileError(f"no key file given: pass a file or set {env_var} to its path")
    return Path(named)


def read_key(path: Path, expected: KeyKind | None = None) -> Key:
    """Read and check a key file; every problem is a :class:`KeyFileError` naming the file."""
    try:
        st = path.stat()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"{path}: key file is readable or writable by others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
        )
    if st.st_size > _MAX_KEY_FILE:
        raise KeyFileError(f"{path}: too large to be a key file")
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise KeyFileError(f"{path}: not a pprl-hub key file (expected JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyFileError(f"{path}: not a pprl-hub key file")
    if doc.get("version") != KEY_FORMAT_VERSION:
        raise KeyFileError(f"{path}: unsupported key file version {doc.get('version')!r}")
    kind = doc.get("kind")
    if kind not in _PREFIX:
        raise KeyFileError(f"{path}: unknown key kind")
    if expected is not None and kind != expected:
        raise KeyFileError(f"{path}: this is a {kind} file, but a {expected} is needed here")
    try:
        secret = base64.b64decode(str(doc.get("secret", "")), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: the secret is not valid base64") from None
    if len(secret) != SECRET_BYTES:
        raise KeyFileError(
            f"{path}: the secret is {len(secret)} bytes; a key must be {SECRET_BYTES} bytes"
        )
    key_id, created = doc.get("key_id"), doc.get("created")
    if not isinstance(key_id, str) or not isinstance(created, str):
        raise KeyFileError(f"{path}: key_id and created must be strings")
    return Key(kind, key_id, created, secret)
