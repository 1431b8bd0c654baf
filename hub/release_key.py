"""The hub's release signing key: the Ed25519 key that signs extract manifests
(``hub.manifest``), named ``<origin>/releases`` and kept, like the log's key, in a 0600 file
outside the database. ``hub init`` makes it; a data directory made before releases existed
gets one the first time the hub starts (``ensure_release_key``)."""

from __future__ import annotations

import os
from pathlib import Path

from audit.note import SigningKey
from hub.config import HubConfig
from hub.manifest import release_key_name
from hub.signing_keys import read_signing_key

__all__ = ["ensure_release_key", "write_release_key"]


def write_release_key(path: Path, origin: str) -> SigningKey:
    """Create a new release key at ``path`` (0600; refuses to overwrite) and its public
    ``.pub`` beside it."""
    key = SigningKey.generate(release_key_name(origin))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key.to_text() + "\n")
        f.flush()
        os.fsync(f.fileno())
    pub = path.with_name(path.name + ".pub")
    pub.write_text(key.verifier().to_vkey() + "\n", encoding="utf-8")
    return key


def ensure_release_key(config: HubConfig) -> SigningKey:
    """The configured release key, created first if the file does not exist yet."""
    path = config.path(config.keys.release_signing_key)
    try:
        return write_release_key(path, config.origin)
    except FileExistsError:
        pass
    return read_signing_key(path, release_key_name(config.origin), "release signing key")
