"""The hub on a real server on loopback, on SQLite and on PostgreSQL: identities and
tokens, the authorisation matrix with every refusal audited, and the audit API working
with `audit verify|monitor|witness|show|prove --hub`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from audit import store as audit_store
from audit.cli import main as audit_main
from audit.db import open_engine
from hub.config import load_config
from hub.permissions import Permission, Role, roles_granting
from hub.routes import ROUTES
from tests.integration.hub.conftest import RunningHub

ROLES = [r.value for r in Role]


def _engine(hub: RunningHub):  # type: ignore[no-untyped-def]
    return open_engine(load_config(hub.data_dir).database_url())


def _entries(hub: RunningHub) -> list[audit_store.StoredEntry]:
    engine = _engine(hub)
    with engine.connect() as conn:
        rows = list(audit_store.iter_entries(conn))
    engine.dispose()
    return rows


def test_admin_sets_up_agencies_users_and_tokens(hub: RunningHub) -> None:
    """An admin registers an agency and users; tokens work until revoked; every change
    is an audit entry whose index the response carries."""
    status, body = hub.call(
        "POST", "/v1/agencies", hub.admin_token, {"id": "ed-cardiff", "name": "Cardiff ED"}
    )
    assert status == 201 and isinstance(body["audit_entry"], int)
    status, body = hub.call(
        "POST", "/v1/agencies", hub.admin_token, {"id": "ed-cardiff", "name": "again"}
    )
    assert status == 409
    token = hub.token_for("Dee Officer", ["data_officer"], agency="ed-cardiff")
    status, me = hub.call("GET", "/v1/me", token)
    assert status == 200 and me["agency"] == "ed-cardiff" and me["roles"] == ["data_officer"]
    status, users = hub.call("GET", "/v1/users", hub.admin_token)
    assert status == 200 and {u["name"] for u in users["users"]} >= {"Dee Officer"}
    status, _ = hub.call("DELETE", f"/v1/tokens/{me['token']}", hub.admin_token)
    assert status == 200
    status, err = hub.call("GET", "/v1/me", token)
    assert status == 401 and err["error"]["code"] == "unauthenticated"
    actions = [json.loads(e.body)["action"] for e in _entries(hub)]
    assert actions.count("token-revoke") == 1 and "config-change" in actions


def test_bad_requests_get_clear_errors_and_change_nothing(hub: RunningHub) -> None:
    before = len(_entries(hub))
    cases = [
        (b"{not json", "bad_request"),
        (b"[]", "bad_request"),
        (json.dumps({"id": "x y", "name": "n"}).encode(), "bad_request"),
        (json.dumps({"id": "ok-id", "name": "n", "extra": 1}).encode(), "bad_request"),
        (json.dumps({"id": "ok-id"}).encode(), "bad_request"),
        (b"{" + b'"name":"' + b"a" * 2_000_000 + b'"}', "payload_too_large"),
    ]
    for raw, code in cases:
        status, err = hub.call("POST", "/v1/agencies", hub.admin_token, raw=raw)
        assert 400 <= status < 500 and err["error"]["code"] == code, (raw[:40], err)
    status, agencies = hub.call("GET", "/v1/agencies", hub.admin_token)
    assert agencies["agencies"] == []
    refused = [e for e in _entries(hub)[before:] if e.outcome == "refused"]
    assert len(refused) == len(cases)


def test_numbers_in_paths_and_queries_are_ascii_decimal(hub: RunningHub) -> None:
    """Digits Python's int() refuses (a superscript three, found by the API fuzz test) or
    accepts but HTTP should not (Arabic-Indic digits) are a 400, not a 500."""
    auditor = hub.token_for("Ann Auditor", ["auditor"])
    for path in (
        "/v1/audit/bundles/%C2%B3",
        "/v1/audit/bundles/%D9%A3",
        "/v1/audit/entries?after=%C2%B3",
        "/v1/audit/proofs/consistency?old=%C2%B3&new=1",
    ):
        status, err = hub.call("GET", path, auditor)
        assert status == 400 and err["error"]["code"] == "bad_request", (path, status, err)


def _request_for(route_path: str) -> str:
    """A concrete path for a route: every {placeholder} becomes a plausible missing id."""
    import re

    return re.sub(r"\{index\}", "0", re.sub(r"\{(?!index)[a-z_]+\}", "none-such", route_path))


def test_authorisation_matrix(hub: RunningHub) -> None:
    """Every endpoint x every role (and no token, a bad token, an expired token, a revoked
    token) gets exactly the declared outcome, and every refusal is audited."""
    hub.call("POST", "/v1/agencies", hub.admin_token, {"id": "police-a", "name": "Police A"})
    tokens = {
        role: (
            hub.admin_token
            if role == "admin"
            else hub.token_for(
                f"{role} user", [role], agency="police-a" if role == "data_officer" else None
            )
        )
        for role in ROLES
    }
    expired = hub.token_for("expired", ["auditor"])
    revoked = hub.token_for("revoked", ["auditor"])
    engine = _engine(hub)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE tokens SET expires_us = 1 "
                "WHERE user_id IN (SELECT id FROM users WHERE name = 'expired')"
            )
        )
        conn.execute(
            text(
                "UPDATE tokens SET revoked_us = 1 "
                "WHERE user_id IN (SELECT id FROM users WHERE name = 'revoked')"
            )
        )
    engine.dispose()
    before = len(_entries(hub))
    refusals = 0
    for route in ROUTES:
        if route.permission is Permission.PUBLIC:
            continue
        path = _request_for(route.path)
        body = {} if route.method == "POST" else None
        for who, token in [
            ("none", None),
            ("garbage", "pph_" + "x" * 43),
            ("expired", expired),
            ("revoked", revoked),
        ]:
            status, _ = hub.call(route.method, path, token, body)
            assert status == 401, (route.path, who, status)
            refusals += 1
        allowed = roles_granting(route.permission)
        for role, token in tokens.items():
            status, err = hub.call(route.method, path, token, body)
            if route.permission is Permission.AUTHENTICATED or Role(role) in allowed:
                assert status not in (401, 403), (route.path, role, err)
                if 400 <= status < 500:
                    refusals += 1
            else:
                assert status == 403, (route.path, role, status)
                refusals += 1
    after = _entries(hub)[before:]
    refused = [e for e in after if e.outcome == "refused"]
    assert len(refused) == refusals
    assert all(json.loads(e.body).get("refusal_reason") for e in refused)
    assert sum(1 for e in refused if e.action == "login-failure") == 4 * sum(
        1 for r in ROUTES if r.permission is not Permission.PUBLIC
    )


def test_audit_cli_against_a_running_hub(
    hub: RunningHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit verify --hub` passes, `audit monitor` and `audit witness` work over HTTP, the
    witness's cosignature is served beside the checkpoint, and a proof bundle verifies."""
    auditor = hub.token_for("Ann Auditor", ["auditor"])
    token_file = tmp_path / "auditor.token"
    token_file.write_text(auditor)
    log_key = tmp_path / "log.pub"
    log_key.write_text(hub.log_vkey)
    assert (
        audit_main(
            ["keygen", "--witness", "--name", "witness.test", "--out", str(tmp_path / "w.key")]
        )
        == 0
    )
    common = ["--hub", hub.url, "--token-file", str(token_file), "--log-key", str(log_key)]
    capsys.readouterr()
    assert audit_main(["verify", *common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["entries"] >= 4
    assert audit_main(["monitor", *common, "--state", str(tmp_path / "mon.json")]) == 0
    assert (
        audit_main(
            [
                "witness",
                *common,
                "--key",
                str(tmp_path / "w.key"),
                "--state",
                str(tmp_path / "w.json"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        audit_main(["verify", *common, "--witness-key", str(tmp_path / "w.key.pub"), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["cosignatures_verified"] == 1
    assert (
        audit_main(
            [
                "monitor",
                *common,
                "--state",
                str(tmp_path / "mon.json"),
                "--witness-key",
                str(tmp_path / "w.key.pub"),
            ]
        )
        == 0
    )
    assert audit_main(["prove", "1", *common, "--out", str(tmp_path / "e1.tlog-proof")]) == 0
    assert (
        audit_main(
            [
                "check-proof",
                str(tmp_path / "e1.tlog-proof"),
                "--entry",
                str(tmp_path / "e1.tlog-proof.entry"),
                "--log-key",
                str(log_key),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        audit_main(
            [
                "show",
                "--hub",
                hub.url,
                "--token-file",
                str(token_file),
                "--action",
                "audit-read",
                "--json",
            ]
        )
        == 0
    )
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert shown and all(e["action"] == "audit-read" for e in shown)


def test_readyz_refuses_an_unmigrated_database(hub: RunningHub) -> None:
    """/readyz answers ready on a migrated database and 503, naming the fix, once the
    database is behind the code's migrations."""
    status, body = hub.call("GET", "/readyz")
    assert status == 200 and body == {"status": "ready"}
    engine = _engine(hub)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    status, body = hub.call("GET", "/readyz")
    assert status == 503 and "hub migrate" in body["reason"]
