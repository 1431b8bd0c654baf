"""Mutual TLS on a real hub on loopback (SQLite and PostgreSQL): client certificates
registered to agencies, tokens that count only over a connection from the caller's own
agency, revocation, and every refusal audited. Certificates are made here with
``cryptography``: a CA for the hub's server certificate, a CA for agencies' client
certificates, and a rogue CA nobody trusts."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from audit import store as audit_store
from audit.db import open_engine
from hub.cli import main as hub_main
from hub.config import load_config
from hub.local import serve_local
from tests.integration.hub.conftest import RunningHub, _init, stop_hub

NOW = datetime.now(UTC)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        crt, key = directory / f"{name}.crt", directory / f"{name}.key"
        crt.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return crt, key


def _issue(
    name: str, issuer: Issued | None = None, *, ca: bool = False, server: bool = False
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
    if not ca:
        usage = (
            x509.ExtendedKeyUsageOID.SERVER_AUTH
            if server
            else (x509.ExtendedKeyUsageOID.CLIENT_AUTH)
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass
class Pki:
    directory: Path
    server_ca: Path

    def client(self, name: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.server_ca))
        if name is not None:
            ctx.load_cert_chain(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        return ctx


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    server_ca = _issue("Hub server CA", ca=True)
    agency_ca = _issue("Agencies CA", ca=True)
    rogue_ca = _issue("Rogue CA", ca=True)
    server_ca.write(directory, "server-ca")
    agency_ca.write(directory, "agency-ca")
    _issue("hub.test.invalid", server_ca, server=True).write(directory, "hub")
    for name in ("ed", "police", "unregistered"):
        _issue(f"{name} connector", agency_ca).write(directory, name)
    _issue("rogue", rogue_ca).write(directory, "rogue")
    return Pki(directory, directory / "server-ca.crt")


def _call(url: str, path: str, ctx: ssl.SSLContext, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30, context=ctx) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _admin(data_dir: Path, token_file: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    base = ["admin", "--data-dir", str(data_dir), "--token-file", str(token_file), "--json"]
    code = hub_main([*base, *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _entries(data_dir: Path) -> list[dict[str, Any]]:
    engine = open_engine(load_config(data_dir).database_url())
    with engine.connect() as conn:
        docs = [json.loads(e.body) for e in audit_store.iter_entries(conn)]
    engine.dispose()
    return docs


def test_client_certificates_map_connections_to_agencies(
    database_url: str, tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "hub"
    made = _init(data_dir, database_url if "://" in database_url else "sqlite")
    config = data_dir / "hub.toml"
    d = pki.directory
    text = config.read_text()
    for key, value in (
        ("tls_certificate", d / "hub.crt"),
        ("tls_private_key", d / "hub.key"),
        ("tls_client_ca", d / "agency-ca.crt"),
    ):
        text = text.replace(f'# {key} = "', f'{key} = "{value}"\n# was "', 1)
    config.write_text(text)

    # Set-up on the server machine: agencies, their certificates, users and tokens.
    admin = tmp_path / "admin.token"
    admin.write_text(made["admin"]["token"])
    _admin(data_dir, admin, capsys, "agencies", "add", "ed-cardiff", "Cardiff ED")
    _admin(data_dir, admin, capsys, "agencies", "add", "police-sw", "South Wales Police")
    ed_cert = _admin(
        data_dir, admin, capsys, "certificates", "add", "ed-cardiff", str(d / "ed.crt")
    )
    _admin(data_dir, admin, capsys, "certificates", "add", "police-sw", str(d / "police.crt"))
    listed = _admin(data_dir, admin, capsys, "certificates", "list", "ed-cardiff")
    assert [c["fingerprint"] for c in listed["certificates"]] == [ed_cert["fingerprint"]]

    def token(name: str, role: str, agency: str | None = None) -> str:
        args = ["users", "add", name, "--role", role] + (["--agency", agency] if agency else [])
        user = _admin(data_dir, admin, capsys, *args)
        return str(_admin(data_dir, admin, capsys, "tokens", "create", user["id"])["token"])

    officer = token("Dee Officer", "data_officer", "ed-cardiff")
    auditor = token("Ann Auditor", "auditor")

    proc, url = serve_local(data_dir, tmp_path / "serve.log", tls=pki.client(None))
    running = RunningHub(data_dir, url, made["admin"]["token"], made["log_public_key"], proc)
    try:
        assert url.startswith("https://")
        status, me = _call(url, "/v1/me", pki.client("ed"), officer)
        assert status == 200 and me["agency"] == "ed-cardiff"
        assert _entries(data_dir)[-1]["auth_method"] == "bearer+mtls"
        status, _ = _call(url, "/v1/me", pki.client("police"), auditor)
        assert status == 200  # a user of no agency may work from any registered connection

        before = len(_entries(data_dir))
        refusals = [
            (pki.client("police"), officer, "registered to another agency"),
            (pki.client(None), officer, "requires a client certificate"),
            (pki.client("unregistered"), officer, "not registered"),
            (pki.client("ed"), None, "credentials"),
        ]
        for ctx, tok, message in refusals:
            status, err = _call(url, "/v1/me", ctx, tok)
            assert status == 401 and message in err["error"]["message"], err
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            _call(url, "/v1/me", pki.client("rogue"), officer)  # the TLS handshake fails
        status, _ = _call(url, "/readyz", pki.client(None))
        assert status == 200  # health checks need no certificate

        _admin(data_dir, admin, capsys, "certificates", "revoke", ed_cert["id"])
        status, err = _call(url, "/v1/me", pki.client("ed"), officer)
        assert status == 401 and "revoked" in err["error"]["message"]
        after = _entries(data_dir)[before:]
        failures = [e for e in after if e["action"] == "login-failure"]
        assert len(failures) == len(refusals) + 1
        assert all(e["outcome"] == "refused" for e in failures)
    finally:
        stop_hub(running)


def test_certificate_registration_refuses_bad_input(
    database_url: str, tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "hub"
    made = _init(data_dir, database_url if "://" in database_url else "sqlite")
    admin = tmp_path / "admin.token"
    admin.write_text(made["admin"]["token"])
    _admin(data_dir, admin, capsys, "agencies", "add", "ed-cardiff", "Cardiff ED")
    d = pki.directory
    base = ["admin", "--data-dir", str(data_dir), "--token-file", str(admin)]
    cases = [
        (d / "ed.key", "no key"),  # a private key is refused, never stored
        (d / "missing.crt", "cannot read"),
    ]
    (d / "junk.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    cases.append((d / "junk.crt", "not a readable PEM"))
    for path, message in cases:
        code = hub_main([*base, "certificates", "add", "ed-cardiff", str(path)])
        err = capsys.readouterr().err
        assert code != 0 and message in err, err
    code = hub_main([*base, "certificates", "add", "no-such-agency", str(d / "ed.crt")])
    assert code == 1 and "no agency" in capsys.readouterr().err
    _admin(data_dir, admin, capsys, "certificates", "add", "ed-cardiff", str(d / "ed.crt"))
    code = hub_main([*base, "certificates", "add", "ed-cardiff", str(d / "ed.crt")])
    assert code == 1 and "already registered" in capsys.readouterr().err
