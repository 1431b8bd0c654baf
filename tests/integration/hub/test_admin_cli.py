"""`hub admin` on the server machine (SQLite and PostgreSQL), next to a running hub: every
group scripts set-up through the real API, so the same permission checks and audit entries
apply, and refusals and bad files are clear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit import store as audit_store
from audit.db import open_engine
from connectors.encoding_schema import load_encoding_schema
from hub.cli import main as hub_main
from hub.config import load_config
from tests.conftest import REPO
from tests.integration.hub.conftest import RunningHub
from tests.integration.hub.test_agreements import _dsa

SCHEMA = REPO / "config" / "encoding" / "v2.toml"


def _admin(
    hub: RunningHub, token_file: Path, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, Any, str]:
    base = ["admin", "--data-dir", str(hub.data_dir), "--token-file", str(token_file), "--json"]
    code = hub_main([*base, *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def _actions(hub: RunningHub) -> list[dict[str, Any]]:
    engine = open_engine(load_config(hub.data_dir).database_url())
    with engine.connect() as conn:
        docs = [json.loads(e.body) for e in audit_store.iter_entries(conn)]
    engine.dispose()
    return docs


def test_admin_scripts_the_whole_set_up(
    hub: RunningHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = tmp_path / "admin.token"
    admin.write_text(hub.admin_token + "\n")
    for agency, name in (("ed-cardiff", "Cardiff ED"), ("police-sw", "South Wales Police")):
        code, body, _ = _admin(hub, admin, capsys, "agencies", "add", agency, name)
        assert code == 0 and isinstance(body["audit_entry"], int)
    officer = ["users", "add", "Dee", "--role", "data_officer", "--agency", "ed-cardiff"]
    code, user, _ = _admin(hub, admin, capsys, *officer)
    assert code == 0
    code, token, _ = _admin(hub, admin, capsys, "tokens", "create", user["id"], "--days", "7")
    assert code == 0 and token["token"].startswith("pph_")

    dsa = _dsa()
    (tmp_path / "dsa.json").write_text(json.dumps(dsa))
    code, made, _ = _admin(hub, admin, capsys, "agreements", "add", str(tmp_path / "dsa.json"))
    assert code == 0 and made["version"] == 1
    revised = {k: v for k, v in dsa.items() if k != "id"} | {"retention_days": 180}
    (tmp_path / "v2.json").write_text(json.dumps(revised))
    code, made, _ = _admin(
        hub, admin, capsys, "agreements", "revise", dsa["id"], str(tmp_path / "v2.json"),
        "--based-on", "1",
    )  # fmt: skip
    assert code == 0 and made["version"] == 2
    code, shown, _ = _admin(hub, admin, capsys, "agreements", "show", dsa["id"])
    assert code == 0 and [v["version"] for v in shown["history"]] == [1, 2]
    assert shown["agreement"]["retention_days"] == 180

    code, project, _ = _admin(
        hub, admin, capsys, "projects", "add", "svd-2026", "--name", "SVD 2026",
        "--agreement", dsa["id"], "--schema", str(SCHEMA), "--key-check-value", "0123456789abcdef",
    )  # fmt: skip
    assert code == 0 and project["id"] == "svd-2026"
    code, listed, _ = _admin(hub, admin, capsys, "projects", "list")
    schema = load_encoding_schema(SCHEMA)
    assert code == 0 and listed["projects"][0]["schema_hash"] == schema.hash
    assert listed["projects"][0]["schema_id"] == schema.schema_id

    # The running hub sees what the admin command made: no state lives in either process.
    status, seen = hub.call("GET", "/v1/projects", hub.admin_token)
    assert status == 200 and [p["id"] for p in seen["projects"]] == ["svd-2026"]

    actions = [d["action"] for d in _actions(hub)]
    assert actions.count("agreement-change") == 2 and actions.count("config-change") >= 3
    assert "token-create" in actions and "user-change" in actions


def test_admin_refusals_and_bad_files_are_clear(
    hub: RunningHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = tmp_path / "admin.token"
    admin.write_text(hub.admin_token)
    code, _, _ = _admin(hub, admin, capsys, "agencies", "add", "ed-cardiff", "Cardiff ED")
    assert code == 0
    auditor = tmp_path / "auditor.token"
    auditor.write_text(hub.token_for("Ann Auditor", ["auditor"]))
    before = len(_actions(hub))

    code, _, err = _admin(hub, auditor, capsys, "agencies", "add", "police-sw", "Police")
    assert code == 1 and "403" in err and "agencies:write" in err
    refused = _actions(hub)[before:]
    assert [(d["action"], d["outcome"]) for d in refused] == [("config-change", "refused")]

    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = _admin(hub, admin, capsys, "agreements", "add", str(tmp_path / "broken.json"))
    assert code == 2 and "is not a JSON document" in err
    code, _, err = _admin(hub, admin, capsys, "agreements", "add", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    code, _, err = _admin(
        hub, admin, capsys, "projects", "add", "p1", "--name", "P", "--agreement", "none",
        "--schema", str(tmp_path / "broken.json"), "--key-check-value", "0123456789abcdef",
    )  # fmt: skip
    assert code == 2 and "encoding schema" in err
    code, _, err = _admin(
        hub, admin, capsys, "projects", "add", "p1", "--name", "P", "--agreement", "none",
        "--schema", str(SCHEMA), "--key-check-value", "0123456789abcdef",
    )  # fmt: skip
    assert code == 1 and "404" in err and "no agreement" in err
    bad_token = tmp_path / "bad.token"
    bad_token.write_text("pph_" + "x" * 43)
    code, _, err = _admin(hub, bad_token, capsys, "agencies", "list")
    assert code == 1 and "401" in err
    assert _actions(hub)[-1]["action"] == "login-failure"
