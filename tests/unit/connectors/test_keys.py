"""Key files: generation, permissions, kinds, sizes and the key check value."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from connectors.errors import KeyFileError
from connectors.keys import (
    generate_key,
    key_check_value,
    read_key,
    resolve_key_path,
    write_key,
)


def test_keygen_writes_0600_and_reads_back(tmp_path: Path) -> None:
    """A generated key is written with mode 0600 and reads back identical."""
    key = generate_key("linkage-secret")
    path = tmp_path / "project.key"
    write_key(key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    back = read_key(path, "linkage-secret")
    assert back.secret == key.secret and back.key_id == key.key_id
    assert key.key_id.startswith("lk-") and len(key.secret) == 32


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    """Writing over an existing key file needs an explicit overwrite."""
    path = tmp_path / "k"
    write_key(generate_key("record-key"), path)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key(generate_key("record-key"), path)
    write_key(generate_key("record-key"), path, overwrite=True)


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    """A key file readable by group or others is refused with the chmod to fix it."""
    path = tmp_path / "k"
    write_key(generate_key("linkage-secret"), path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key(path)


def _write_doc(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_size_secret_is_refused(tmp_path: Path, size: int) -> None:
    """A secret that is not exactly 32 bytes is refused, naming its size."""
    path = tmp_path / "k"
    doc = {
        "format": "pprl-hub-key",
        "version": 1,
        "kind": "linkage-secret",
        "key_id": "lk-x",
        "created": "2026-01-01T00:00:00Z",
        "secret": base64.b64encode(b"x" * size).decode(),
    }
    _write_doc(path, doc)
    with pytest.raises(KeyFileError, match=f"{size} bytes"):
        read_key(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"\x00\x01\x02", b'{"format": "other"}', b"[1, 2]"],
)
def test_garbage_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    """Anything that is not a pprl-hub key file gives one clear error."""
    path = tmp_path / "k"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not a pprl-hub key file"):
        read_key(path)


def test_wrong_kind_is_refused(tmp_path: Path) -> None:
    """A record key offered where the linkage secret is needed is refused."""
    path = tmp_path / "k"
    write_key(generate_key("record-key"), path)
    with pytest.raises(KeyFileError, match="record-key file, but a linkage-secret is needed"):
        read_key(path, "linkage-secret")


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    """A key path that does not exist is reported, not a traceback."""
    with pytest.raises(KeyFileError, match="cannot read key file"):
        read_key(tmp_path / "nope")


def test_key_path_from_environment(tmp_path: Path) -> None:
    """Without a path argument the key file comes from the named environment variable."""
    assert resolve_key_path(None, "K", {"K": str(tmp_path / "a")}) == tmp_path / "a"
    assert resolve_key_path(tmp_path / "b", "K", {"K": "x"}) == tmp_path / "b"
    with pytest.raises(KeyFileError, match="set K"):
        resolve_key_path(None, "K", {})


def test_key_check_value_is_stable_and_distinct() -> None:
    """The check value is 16 hex digits, fixed for a secret, different for another secret."""
    kcv = key_check_value(bytes(32))
    assert kcv == key_check_value(bytes(32)) and len(kcv) == 16
    assert kcv != key_check_value(bytes([1]) + bytes(31))


def test_repr_hides_secret() -> None:
    """A key's repr names it without printing its secret."""
    key = generate_key("linkage-secret")
    assert key.secret.hex() not in repr(key) and key.key_id in repr(key)
