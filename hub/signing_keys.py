"""Reading the hub's Ed25519 signing keys (the audit log's, the release manifests') from
their 0600 files outside the database, with the same checks for both."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from audit.errors import AuditError
from audit.note import SigningKey
from hub.errors import ConfigError

__all__ = ["read_signing_key"]


def read_signing_key(path: Path, name: str, what: str) -> SigningKey:
    """The signing key in ``path``, which must be readable by its owner only and be named
    ``name``; ``ConfigError`` naming ``what`` otherwise."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by other users: chmod 600 it")
    try:
        key = SigningKey.from_text(text)
    except AuditError:
        raise ConfigError(f"{path} is not a {what}") from None
    if key.name != name:
        raise ConfigError(f"{path} is the {what} of {key.name!r}, not {name!r}")
    return key
