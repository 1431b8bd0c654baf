"""The hub's configuration: every setting documented, the example parses, and each bad
setting is refused with a message naming it."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from hub.config import load_config, parse_config
from hub.errors import ConfigError
from tests.conftest import REPO

EXAMPLE = REPO / "config" / "hub.toml"


def _example() -> dict[str, object]:
    return tomllib.loads(EXAMPLE.read_text())


def test_every_setting_is_documented_in_the_example() -> None:
    """Each setting of each section appears in config/hub.toml, under its section, with a
    comment line above it (commented-out optional settings count)."""
    from hub.config import _SECTIONS

    lines = EXAMPLE.read_text().splitlines()
    wanted = {"hub": ["origin", "name"]}
    wanted.update({name: [f.name for f in fields(cls)] for name, cls in _SECTIONS.items()})
    for section, names in wanted.items():
        start = lines.index(f"[{section}]")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), None)
        body = lines[start + 1 : end]
        for name in names:
            at = [i for i, line in enumerate(body) if line.lstrip("# ").startswith(f"{name} =")]
            assert at, f"{section}.{name} is not documented in config/hub.toml"
            assert body[at[0] - 1].startswith("#"), f"{section}.{name} has no comment above it"


def test_example_parses(tmp_path: Path) -> None:
    config = parse_config(_example(), tmp_path)
    assert config.origin == "hub.example.gov.uk/audit"
    assert config.database_url() == f"sqlite:///{tmp_path.resolve()}/hub.sqlite"
    assert config.server.port == 8443


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("hub", "origin", "has space", "hub.origin"),
        ("hub", "colour", "red", "unknown settings"),
        ("server", "listen", "nowhere", "server.listen"),
        ("server", "tls_certificate", "a.crt", "go together"),
        ("database", "url", "mysql://x/y", "unsupported database"),
        ("database", "url", "sqlite://", "SQLite file"),
        ("limits", "max_chunk_bytes", 0, "positive integer"),
        ("limits", "max_chunk_bytes", 2**40, "cannot exceed"),
        ("logging", "level", "loud", "logging.level"),
        ("logging", "json", "yes", "true or false"),
        ("tokens", "default_lifetime_days", 1000, "cannot exceed"),
    ],
)
def test_bad_settings_are_refused(
    tmp_path: Path, section: str, key: str, value: object, message: str
) -> None:
    doc = _example()
    doc.setdefault(section, {})[key] = value  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=message):
        parse_config(doc, tmp_path)


def test_missing_config_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hub init"):
        load_config(tmp_path)


def test_password_comes_from_a_file(tmp_path: Path) -> None:
    doc = _example()
    doc["database"] = {"url": "postgresql://hub@db.internal/hub", "password_file": "pw"}
    with pytest.raises(ConfigError, match="password_file"):
        parse_config(doc, tmp_path)
    (tmp_path / "pw").write_text("s3cret\n")
    assert parse_config(doc, tmp_path).database_url() == "postgresql://hub:s3cret@db.internal/hub"
