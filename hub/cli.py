"""``hub``: set up, migrate, run and administer the hub.

- ``hub init --data-dir D``: configuration, database, log signing key, master key and the
  first administrator's token (printed once; ``--json`` prints everything as one object).
- ``hub migrate --data-dir D``: apply pending schema migrations.
- ``hub serve --data-dir D [--listen HOST:PORT]``: run the API.
- ``hub admin --data-dir D --token-file T agencies|users|tokens ...``: the API's admin
  calls, made through the real application on a private loopback port, so they pass the
  same authentication, permission checks and audit entries as any client.

Exit status: 0 success, 1 the hub refused (4xx), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit.checkpoint import parse_decimal
from hub.config import CONFIG_NAME, HubConfig, load_config, parse_config
from hub.errors import ConfigError, HubError

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_DAY_US = 86_400 * 1_000_000


def _template(origin: str, database_url: str, password_file: str | None = None) -> str:
    """The documented example configuration (config/hub.toml) with origin and database set."""
    example = Path(__file__).resolve().parent.parent / "config" / CONFIG_NAME
    try:
        text = example.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(f"the example configuration {example} is missing") from None
    text = text.replace('origin = "hub.example.gov.uk/audit"', f"origin = {json.dumps(origin)}")
    if password_file is not None:
        text = text.replace(
            '# password_file = "/run/secrets/hub-db-password"',
            f"password_file = {json.dumps(password_file)}",
        )
    return text.replace('url = "sqlite:///hub.sqlite"', f"url = {json.dumps(database_url)}")


def cmd_init(args: argparse.Namespace) -> int:

    data_dir: Path = args.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ConfigError(f"{data_dir} is not empty: `hub init` needs a new data directory")
    database_url, password = _split_password(args.database_url)
    password_file = "keys/database.password" if password is not None else None
    text = _template(args.origin, database_url, password_file)
    existed = data_dir.exists()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return _init_in(args, data_dir, text, password, password_file)
    except BaseException:
        # All or nothing: a failed init leaves no half-made data directory behind.
        if existed:
            for child in data_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise


def _init_in(
    args: argparse.Namespace,
    data_dir: Path,
    text: str,
    password: str | None,
    password_file: str | None,
) -> int:
    import tomllib

    from audit.entry import AuditEntry
    from audit.log import AuditLog
    from audit.note import SigningKey
    from hub.auth import new_id, new_token
    from hub.cipher import MasterKey
    from hub.release_key import write_release_key
    from hub.store.db import current_revision, migrate
    from hub.store.schema import tokens, user_roles, users

    (data_dir / "keys").mkdir(mode=0o700)
    if password is not None and password_file is not None:  # parse_config reads it
        fd = os.open(data_dir / password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
    config = parse_config(tomllib.loads(text), data_dir)
    url = config.database_url()
    on_server = not config.database.url.startswith("sqlite")
    if on_server and current_revision(url) is not None:
        raise ConfigError("the database already holds a hub: give `hub init` an empty one")
    for path in (config.path(config.keys.log_signing_key), config.path(config.keys.master_key)):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data_dir / CONFIG_NAME).write_text(text, encoding="utf-8")

    log_key = SigningKey.generate(config.origin)
    log_key_path = config.path(config.keys.log_signing_key)
    fd = os.open(log_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(log_key.to_text() + "\n")
    vkey = log_key.verifier().to_vkey()
    log_key_path.with_name(log_key_path.name + ".pub").write_text(vkey + "\n", encoding="utf-8")
    master = MasterKey.generate()
    master.save(config.path(config.keys.master_key))
    release_key_path = config.path(config.keys.release_signing_key)
    release_key = write_release_key(release_key_path, config.origin)

    migrate(url, create=True)
    if config.database.url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).chmod(0o600)
    log = AuditLog.open(
        url,
        origin=config.origin,
        log_key=log_key.verifier(),
        key=log_key,
        trusted_path=config.path(config.keys.log_trusted_head),
    )
    user_id, token_id = new_id("u_"), new_id("tok_")
    token, token_hash = new_token()
    now = datetime.now(UTC)
    now_us = int(now.timestamp() * 1_000_000)
    expires_us = now_us + config.tokens.default_lifetime_days * _DAY_US
    from audit.db import immediate_options

    try:
        with log.engine.connect().execution_options(**immediate_options()) as conn, conn.begin():
            conn.execute(
                users.insert().values(
                    id=user_id,
                    name=args.admin_name,
                    agency_id=None,
                    disabled=False,
                    created_us=now_us,
                )
            )
            conn.execute(user_roles.insert().values(user_id=user_id, role="admin"))
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    user_id=user_id,
                    token_hash=token_hash,
                    label="created by hub init",
                    created_us=now_us,
                    expires_us=expires_us,
                )
            )
            common: dict[str, Any] = {"time": now, "actor": "hub-init", "outcome": "allowed"}
            pending = log.append_in(
                conn,
                [
                    AuditEntry(action="user-change", resource=f"user/{user_id}", **common),
                    AuditEntry(
                        action="token-create",
                        resource=f"token/{token_id}",
                        recipients=(user_id,),
                        **common,
                    ),
                ],
            )
        log.committed(pending)
    finally:
        log.close()

    made = {
        "data_dir": str(data_dir),
        "config": str(data_dir / CONFIG_NAME),
        "database": config.database.url,
        "origin": config.origin,
        "log_public_key": vkey,
        "log_signing_key_file": str(log_key_path),
        "master_key_file": str(config.path(config.keys.master_key)),
        "master_key_id": master.key_id,
        "release_public_key": release_key.verifier().to_vkey(),
        "release_signing_key_file": str(release_key_path),
        "admin": {"user": user_id, "token_id": token_id, "token": token, "expires_us": expires_us},
    }
    if args.json:
        print(json.dumps(made, indent=2))
    else:
        print(f"hub initialised in {data_dir}")
        print(f"  configuration     {made['config']}")
        print(f"  database          {config.database.url}")
        print(f"  audit log origin  {config.origin}")
        print(f"  log public key    {vkey}")
        print(f"  log signing key   {log_key_path} (0600)")
        print(f"  master key        {made['master_key_file']} (0600, id {master.key_id})")
        print(f"  release key       {release_key_path} (0600; signs extract manifests)")
        print(f"  administrator     {user_id}")
        print(f"  admin token       {token}")
        print("The token is shown once: store it now. Give auditors the log public key.")
    return EXIT_OK


def _split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password: secrets never go in hub.toml."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"--database-url: {exc}") from None
    if parsed.password is None:
        return url, None
    bare = parsed._replace(password=None)  # URL.set(password=None) would keep it
    return bare.render_as_string(hide_password=False), str(parsed.password)


def cmd_migrate(args: argparse.Namespace) -> int:
    from hub.store.db import migrate

    config = load_config(args.data_dir)
    before, after = migrate(config.database_url())
    print(f"database at migration {after}" + ("" if before == after else f" (was {before})"))
    return EXIT_OK


def _ssl_context(config: HubConfig) -> ssl.SSLContext | None:
    server = config.server
    if server.tls_certificate is None or server.tls_private_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(
            config.path(server.tls_certificate), config.path(server.tls_private_key)
        )
        if server.tls_client_ca is not None:
            ctx.load_verify_locations(config.path(server.tls_client_ca))
            # Optional at the TLS layer: a request without a certificate is refused by the
            # API instead, with a clear error and an audit entry (hub.auth).
            ctx.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS configuration: {exc}") from None
    return ctx


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from hub.app import create_app
    from hub.logging import ACCESS_LOG_FORMAT, AccessLogger

    config = load_config(args.data_dir)
    listen = args.listen or config.server.listen
    host, _, port = listen.rpartition(":")
    if not host or parse_decimal(port) is None:
        raise ConfigError("--listen must be HOST:PORT")
    _configure_logging(config)
    app = create_app(config)
    workers = config.workers.count if args.workers is None else args.workers
    if workers:
        from hub.supervisor import worker_supervisor

        app.cleanup_ctx.append(worker_supervisor(config.data_dir, workers))
    print(
        f"hub serving on {listen} (audit log {config.origin}, {workers} workers)",
        file=sys.stderr,
        flush=True,
    )
    web.run_app(
        app,
        host=host.strip("[]"),
        port=int(port),
        ssl_context=_ssl_context(config),
        print=None,
        access_log_class=AccessLogger,
        access_log_format=ACCESS_LOG_FORMAT,
        shutdown_timeout=10,
    )
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from hub.jobkinds import job_handlers
    from hub.worker import run_worker

    config = load_config(args.data_dir)
    _configure_logging(config)
    ran = run_worker(
        config, job_handlers(), once=args.once, poll=float(config.workers.poll_seconds)
    )
    if args.once:
        print(f"hub worker: ran {ran} jobs", file=sys.stderr)
    return EXIT_OK


def _configure_logging(config: HubConfig) -> None:
    from hub.logging import configure_logging

    configure_logging(level=config.logging.level, json=config.logging.json)


# -- admin ----------------------------------------------------------------------------


async def _admin_call(config: HubConfig, token: str, method: str, path: str, body: Any) -> Any:
    """One API call through the real application, served on a private loopback port."""
    import aiohttp
    from aiohttp import web

    from hub.app import create_app

    # The call comes from the server machine itself, on a private loopback port without
    # TLS: it stands in for the connection certificate mutual TLS would otherwise require
    # (that is how the first certificates get registered). Tokens and roles still apply.
    local = replace(config, server=replace(config.server, tls_client_ca=None))
    runner = web.AppRunner(create_app(local), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                f"http://127.0.0.1:{port}{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            doc = await response.json()
            if response.status >= 400:
                error = doc.get("error", {}) if isinstance(doc, dict) else {}
                raise _Refused(response.status, error.get("message", "refused"))
            return doc
    finally:
        await runner.cleanup()


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")


def _admin_request(args: argparse.Namespace) -> tuple[str, str, Any]:
    group, verb = args.group, args.verb
    if group == "agencies":
        if verb == "list":
            return "GET", "/v1/agencies", None
        return "POST", "/v1/agencies", {"id": args.id, "name": args.name}
    if group == "users":
        if verb == "list":
            return "GET", "/v1/users", None
        body: dict[str, Any] = {"name": args.name, "roles": args.role}
        if args.agency:
            body["agency"] = args.agency
        return "POST", "/v1/users", body
    if group == "agreements":
        if verb == "list":
            return "GET", "/v1/agreements", None
        if verb == "show":
            return "GET", f"/v1/agreements/{args.id}", None
        document = _json_file(args.file)
        if verb == "add":
            return "POST", "/v1/agreements", document
        return "PUT", f"/v1/agreements/{args.id}", {**document, "based_on": args.based_on}
    if group == "projects":
        if verb == "list":
            return "GET", "/v1/projects", None
        return "POST", "/v1/projects", _project_body(args)
    if group == "certificates":
        if verb == "list":
            return "GET", f"/v1/agencies/{args.agency}/certificates", None
        if verb == "add":
            try:
                pem = args.file.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read {args.file}: {exc}") from None
            return "POST", f"/v1/agencies/{args.agency}/certificates", {"certificate": pem}
        return "DELETE", f"/v1/certificates/{args.certificate_id}", None
    if verb == "create":
        body = {"label": args.label} if args.label else {}
        if args.days:
            body["lifetime_days"] = args.days
        return "POST", f"/v1/users/{args.user}/tokens", body
    return "DELETE", f"/v1/tokens/{args.token_id}", None


def _json_file(path: Path) -> Any:
    """A JSON document from a file (``-`` for standard input)."""
    try:
        raw = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        return json.loads(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a JSON document: {exc}") from None


def _project_body(args: argparse.Namespace) -> dict[str, Any]:
    """A project's registration: the encoding schema's id and hash come from the schema
    file the agencies' connectors use (so nobody copies a hash by hand), the key check
    value from ``connector key-check``."""
    from connectors.encoding_schema import load_encoding_schema
    from connectors.errors import ConnectorError

    try:
        schema = load_encoding_schema(args.schema)
    except ConnectorError as exc:
        raise ConfigError(f"encoding schema: {exc}") from None
    return {
        "id": args.id,
        "name": args.name,
        "agreement": args.agreement,
        "schema_id": schema.schema_id,
        "schema_hash": schema.hash,
        "key_check_value": args.key_check_value,
    }


def cmd_admin(args: argparse.Namespace) -> int:
    config = load_config(args.data_dir)
    token = (
        args.token_file.read_text(encoding="utf-8")
        if args.token_file
        else os.environ.get("HUB_TOKEN", "")
    ).strip()
    if not token:
        raise ConfigError("give an admin token with --token-file (or HUB_TOKEN)")
    method, path, body = _admin_request(args)
    try:
        doc = asyncio.run(_admin_call(config, token, method, path, body))
    except _Refused as exc:
        print(f"hub admin: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_table(doc)
    return EXIT_OK


def _print_table(doc: Any) -> None:
    rows = (
        next((v for v in doc.values() if isinstance(v, list)), None)
        if isinstance(doc, dict)
        else None
    )
    if rows is None:
        for key, value in doc.items():
            print(f"{key:<14} {value}")
        return
    if not rows:
        print("(none)")
        return
    keys = list(rows[0])
    widths = [max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(k, "")).ljust(w) for k, w in zip(keys, widths, strict=True)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="The pprl data-sharing hub.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a hub in a new data directory")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--origin", default="hub.example.gov.uk/audit", help="the audit log's origin")
    p.add_argument("--database-url", default="sqlite:///hub.sqlite", help="default: SQLite in D")
    p.add_argument("--admin-name", default="Hub administrator")
    p.add_argument("--json", action="store_true", help="print everything init made as JSON")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.add_argument("--data-dir", required=True, type=Path)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="run the API")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--listen", metavar="HOST:PORT", help="default: server.listen")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes beside the API (default: workers.count)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run linkage and extract jobs from the queue")
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--once", action="store_true", help="run queued jobs, then exit")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "admin", help="administer agencies, certificates, users, tokens, agreements, projects"
    )
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--token-file", type=Path, help="an admin's API token (default: $HUB_TOKEN)")
    p.add_argument("--json", action="store_true")
    groups = p.add_subparsers(dest="group", required=True, metavar="GROUP")
    g = groups.add_parser("agencies").add_subparsers(dest="verb", required=True)
    g.add_parser("list")
    a = g.add_parser("add")
    a.add_argument("id")
    a.add_argument("name")
    g = groups.add_parser("users").add_subparsers(dest="verb", required=True)
    g.add_parser("list")
    a = g.add_parser("add")
    a.add_argument("name")
    a.add_argument("--role", action="append", required=True, help="repeat for several roles")
    a.add_argument("--agency")
    g = groups.add_parser("tokens").add_subparsers(dest="verb", required=True)
    a = g.add_parser("create")
    a.add_argument("user")
    a.add_argument("--label")
    a.add_argument("--days", type=int)
    a = g.add_parser("revoke")
    a.add_argument("token_id")
    g = groups.add_parser("certificates").add_subparsers(dest="verb", required=True)
    a = g.add_parser("list")
    a.add_argument("agency")
    a = g.add_parser("add", help="register an agency's client certificate (mutual TLS)")
    a.add_argument("agency")
    a.add_argument("file", type=Path, help="the certificate, PEM")
    a = g.add_parser("revoke")
    a.add_argument("certificate_id")
    g = groups.add_parser("agreements").add_subparsers(dest="verb", required=True)
    g.add_parser("list")
    a = g.add_parser("show")
    a.add_argument("id")
    a = g.add_parser("add", help="register an agreement from a JSON document (with its id)")
    a.add_argument("file", type=Path, help="the agreement as JSON ('-' for standard input)")
    a = g.add_parser("revise", help="a new version: the whole document again")
    a.add_argument("id")
    a.add_argument("file", type=Path, help="the revised agreement as JSON ('-' for stdin)")
    a.add_argument("--based-on", type=int, required=True, help="the version being revised")
    g = groups.add_parser("projects").add_subparsers(dest="verb", required=True)
    g.add_parser("list")
    a = g.add_parser("add", help="register a linkage project under an agreement")
    a.add_argument("id")
    a.add_argument("--name", required=True)
    a.add_argument("--agreement", required=True, help="the agreement's id")
    a.add_argument("--schema", type=Path, required=True, help="the encoding schema (TOML)")
    a.add_argument(
        "--key-check-value", required=True, help="the linkage key's (`connector key-check`)"
    )
    p.set_defaults(func=cmd_admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HubError as exc:
        print(f"hub {args.command}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
