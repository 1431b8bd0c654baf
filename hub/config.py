"""The hub's configuration: ``hub.toml`` in the data directory, parsed once into frozen objects.

Every setting is documented in ``config/hub.toml`` (a test checks that each field below
appears there). Relative paths are relative to the data directory. Secrets are never
written inline: the database password comes from a file (``database.password_file``),
and keys live in files named here, outside the database.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from audit.checkpoint import parse_decimal
from hub.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "DatabaseConfig",
    "ExtractsConfig",
    "HubConfig",
    "KeysConfig",
    "LimitsConfig",
    "LoggingConfig",
    "ServerConfig",
    "TokensConfig",
    "WorkersConfig",
    "load_config",
    "parse_config",
]

CONFIG_NAME = "hub.toml"
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = "127.0.0.1:8443"
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    tls_client_ca: Path | None = None
    public_url: str | None = None

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite:///hub.sqlite"
    password_file: Path | None = None


@dataclass(frozen=True, slots=True)
class KeysConfig:
    log_signing_key: Path = Path("keys/log.key")
    log_trusted_head: Path = Path("keys/log-head.json")
    master_key: Path = Path("keys/master.key")
    release_signing_key: Path = Path("keys/release.key")


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_upload_bytes: int = 10 * 1024 * _MIB
    max_chunk_bytes: int = 8 * _MIB
    max_json_bytes: int = 1 * _MIB
    upload_session_hours: int = 24


@dataclass(frozen=True, slots=True)
class TokensConfig:
    default_lifetime_days: int = 90
    max_lifetime_days: int = 365


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    count: int = 1
    engine: str = "duckdb"
    engine_threads: int = 0
    spark_master: str = "local[2]"
    spark_driver_memory: str = "4g"
    lease_seconds: int = 60
    heartbeat_seconds: int = 5
    poll_seconds: int = 1
    max_attempts: int = 3


@dataclass(frozen=True, slots=True)
class ExtractsConfig:
    min_approvers: int = 2
    approval_valid_days: int = 14
    download_valid_days: int = 7


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    json: bool = True


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Everything the hub reads from ``hub.toml``, with paths resolved."""

    data_dir: Path
    origin: str
    name: str = "pprl hub"
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    keys: KeysConfig = KeysConfig()
    limits: LimitsConfig = LimitsConfig()
    tokens: TokensConfig = TokensConfig()
    workers: WorkersConfig = WorkersConfig()
    extracts: ExtractsConfig = ExtractsConfig()
    logging: LoggingConfig = LoggingConfig()

    def path(self, p: Path) -> Path:
        """``p`` resolved against the data directory."""
        return p if p.is_absolute() else self.data_dir / p

    def database_url(self) -> str:
        """The database URL with relative SQLite paths resolved and the password (if a
        password file is configured) filled in. Never log this."""
        try:
            url = make_url(self.database.url)
        except ArgumentError as exc:
            raise ConfigError(f"database.url is not a database URL: {exc}") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            db = url.database or ""
            if db in ("", ":memory:"):
                raise ConfigError("database.url must name a SQLite file")
            return f"sqlite:///{self.path(Path(db))}"
        if backend not in ("postgresql", "postgres"):
            raise ConfigError(f"database.url: unsupported database {backend!r}")
        if self.database.password_file is not None:
            secret = self.path(self.database.password_file)
            try:
                password = secret.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read database.password_file: {exc.strerror}") from None
            url = url.set(password=password)
        return url.set(drivername="postgresql").render_as_string(hide_password=False)


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "keys": KeysConfig,
    "limits": LimitsConfig,
    "tokens": TokensConfig,
    "workers": WorkersConfig,
    "extracts": ExtractsConfig,
    "logging": LoggingConfig,
}
#: integer settings that may be zero (all others must be positive)
_ZERO_OK = frozenset({"workers.count", "workers.engine_threads"})
_LEVELS = ("debug", "info", "warning", "error")


def _section(name: str, cls: type[Any], raw: object) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"[{name}] has unknown settings: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        annotation = str(known[key].type)
        if "Path" in annotation:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name}.{key} must be a non-empty path string")
            values[key] = Path(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{name}.{key} must be true or false")
            values[key] = value
        elif isinstance(default, int):
            least = 0 if f"{name}.{key}" in _ZERO_OK else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "a non-negative" if least == 0 else "a positive"
                raise ConfigError(f"{name}.{key} must be {kind} integer")
            values[key] = value
        else:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name}.{key} must be a non-empty string")
            values[key] = value
    return cls(**values)


def parse_config(doc: dict[str, Any], data_dir: Path) -> HubConfig:
    """A ``HubConfig`` from a parsed TOML document; ``ConfigError`` names the bad setting."""
    hub = doc.get("hub", {})
    if not isinstance(hub, dict):
        raise ConfigError("[hub] must be a table")
    unknown = sorted(set(doc) - {"hub", *_SECTIONS})
    if unknown:
        raise ConfigError(f"unknown sections: {', '.join(unknown)}")
    unknown = sorted(set(hub) - {"origin", "name"})
    if unknown:
        raise ConfigError(f"[hub] has unknown settings: {', '.join(unknown)}")
    origin = hub.get("origin")
    if not isinstance(origin, str) or not origin or any(c.isspace() or c == "+" for c in origin):
        raise ConfigError("hub.origin must name the audit log: no spaces and no '+'")
    name = hub.get("name", "pprl hub")
    if not isinstance(name, str) or not name:
        raise ConfigError("hub.name must be a non-empty string")
    sections = {key: _section(key, cls, doc.get(key, {})) for key, cls in _SECTIONS.items()}
    config = HubConfig(data_dir=data_dir.resolve(), origin=origin, name=name, **sections)
    _check(config)
    return config


def _check(config: HubConfig) -> None:
    server = config.server
    host, _, port = server.listen.rpartition(":")
    if not host or not 0 < (parse_decimal(port) or 0) < 65536:
        raise ConfigError("server.listen must be HOST:PORT")
    if (server.tls_certificate is None) != (server.tls_private_key is None):
        raise ConfigError("server.tls_certificate and server.tls_private_key go together")
    if server.tls_client_ca is not None and server.tls_certificate is None:
        raise ConfigError("server.tls_client_ca (mutual TLS) needs server.tls_certificate")
    if config.logging.level not in _LEVELS:
        raise ConfigError(f"logging.level must be one of {', '.join(_LEVELS)}")
    limits = config.limits
    if limits.max_chunk_bytes > limits.max_upload_bytes:
        raise ConfigError("limits.max_chunk_bytes cannot exceed limits.max_upload_bytes")
    tokens = config.tokens
    if tokens.default_lifetime_days > tokens.max_lifetime_days:
        raise ConfigError("tokens.default_lifetime_days cannot exceed tokens.max_lifetime_days")
    workers = config.workers
    if workers.engine not in ("duckdb", "spark"):
        raise ConfigError("workers.engine must be duckdb or spark")
    if workers.heartbeat_seconds * 3 > workers.lease_seconds:
        raise ConfigError("workers.lease_seconds must be at least 3 heartbeats")
    if config.extracts.min_approvers < 2:
        raise ConfigError("extracts.min_approvers must be at least 2 (two different people)")
    config.database_url()  # validates the URL (and reads the password file, if any)


def load_config(data_dir: Path) -> HubConfig:
    """Read ``hub.toml`` from ``data_dir``."""
    path = data_dir / CONFIG_NAME
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_NAME} in {data_dir}: run `hub init --data-dir {data_dir}`"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_config(doc, data_dir)
