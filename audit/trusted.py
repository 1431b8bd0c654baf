"""A small file that remembers the latest checkpoint someone has accepted.

The log's writer, a witness and a monitor each keep one: the size and root of the
newest checkpoint they signed, co-signed or verified. Anything they see later must be
consistent with it; a smaller size or a different root at the same size means the log
was rolled back or forked. The file lives outside the database, so restoring an old
database (or truncating it) cannot also rewind what they remember.

Writes are atomic (temporary file, fsync, rename, fsync of the directory) and only ever
move forward: ``advance`` refuses a smaller size, and a concurrent writer is excluded
with an advisory lock on a ``.lock`` file beside it.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from audit.errors import LogStateError, StoreError
from audit.merkle import HASH_SIZE

__all__ = ["TrustedHead", "advance", "load"]


@dataclass(frozen=True, slots=True)
class TrustedHead:
    """The newest checkpoint accepted for ``origin``: its tree size and root hash."""

    origin: str
    size: int
    root: bytes

    def to_json(self) -> str:
        return json.dumps(
            {
                "origin": self.origin,
                "size": self.size,
                "root": base64.b64encode(self.root).decode("ascii"),
            },
            sort_keys=True,
        )


def _parse(text: str, path: Path) -> TrustedHead:
    try:
        doc = json.loads(text)
        origin, size, root_b64 = doc["origin"], doc["size"], doc["root"]
        root = base64.b64decode(root_b64, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise StoreError(f"{path} is not a trusted-checkpoint file") from None
    if (
        not isinstance(origin, str)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or size < 0
        or len(root) != HASH_SIZE
    ):
        raise StoreError(f"{path} is not a trusted-checkpoint file")
    return TrustedHead(origin, size, root)


def load(path: Path, origin: str) -> TrustedHead | None:
    """The head stored at ``path`` for ``origin``; ``None`` if there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    head = _parse(text, path)
    if head.origin != origin:
        raise StoreError(f"{path} is for log {head.origin!r}, not {origin!r}")
    return head


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def advance(path: Path, head: TrustedHead) -> TrustedHead:
    """Record ``head`` unless the file already holds a newer one; return what is stored.

    The caller must already have checked that ``head`` is consistent with what ``load``
    returned. Raises ``LogStateError`` if the stored head has the same size and a
    different root (a fork), which the caller's check should have caught.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        current = load(path, head.origin)
        if current is not None:
            if current.size > head.size:
                return current
            if current.size == head.size:
                if current.root != head.root:
                    raise LogStateError(
                        f"{path} holds a different root for size {head.size}: the log forked"
                    )
                return current
        _write_atomic(path, head.to_json() + "\n")
        return head
