"""Data sharing agreements and projects on a real hub (SQLite and PostgreSQL): versions
that are never overwritten, stale revisions refused, projects only under an agreement in
force, and the agreement id and version in the audit entries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audit import store as audit_store
from audit.db import open_engine
from hub.config import load_config
from tests.integration.hub.conftest import RunningHub

SCHEMA_HASH = "a" * 64
KCV = "0123456789abcdef"


def _dsa(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "dsa-svd-cardiff",
        "title": "Cardiff serious violence data sharing",
        "purpose": "Serious Violence Duty: find assault victims unknown to police",
        "status": "active",
        "parties": [
            {
                "agency": "ed-cardiff",
                "lawful_basis": "UK GDPR 6(1)(e), 9(2)(h)",
                "fields": ["injury_type"],
            },
            {
                "agency": "police-sw",
                "lawful_basis": "DPA 2018 Part 3 s35",
                "fields": ["offence_type"],
            },
        ],
        "retention_days": 365,
        "review_date": "2099-06-30",
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def with_agencies(hub: RunningHub) -> RunningHub:
    for agency, name in (("ed-cardiff", "Cardiff ED"), ("police-sw", "South Wales Police")):
        status, _ = hub.call("POST", "/v1/agencies", hub.admin_token, {"id": agency, "name": name})
        assert status == 201
    return hub


def test_agreement_versions_and_history(with_agencies: RunningHub) -> None:
    hub = with_agencies
    status, body = hub.call("POST", "/v1/agreements", hub.admin_token, _dsa())
    assert status == 201 and body["version"] == 1
    status, _ = hub.call("POST", "/v1/agreements", hub.admin_token, _dsa())
    assert status == 409
    revised = _dsa(status="suspended")
    revised.pop("id")
    status, body = hub.call(
        "PUT", "/v1/agreements/dsa-svd-cardiff", hub.admin_token, {**revised, "based_on": 1}
    )
    assert status == 200 and body["version"] == 2
    status, err = hub.call(
        "PUT", "/v1/agreements/dsa-svd-cardiff", hub.admin_token, {**revised, "based_on": 1}
    )
    assert status == 409 and "version 2" in err["error"]["message"]
    analyst = hub.token_for("Ana Lyst", ["analyst"])
    status, shown = hub.call("GET", "/v1/agreements/dsa-svd-cardiff", analyst)
    assert status == 200
    assert [v["version"] for v in shown["history"]] == [1, 2]
    assert [v["status"] for v in shown["history"]] == ["active", "suspended"]
    status, listed = hub.call("GET", "/v1/agreements", analyst)
    assert [a["version"] for a in listed["agreements"]] == [2]
    status, _ = hub.call("POST", "/v1/agreements", analyst, _dsa(id="dsa-other"))
    assert status == 403

    engine = open_engine(load_config(hub.data_dir).database_url())
    with pytest.raises(DBAPIError, match="never changed"), engine.begin() as conn:
        conn.execute(text("UPDATE agreement_versions SET status = 'active'"))
    with engine.connect() as conn:
        entries = [json.loads(e.body) for e in audit_store.iter_entries(conn)]
    engine.dispose()
    changes = [
        e for e in entries if e["action"] == "agreement-change" and e["outcome"] == "allowed"
    ]
    assert [(e["dsa_id"], e["dsa_version"]) for e in changes] == [
        ("dsa-svd-cardiff", 1),
        ("dsa-svd-cardiff", 2),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parties": [{"agency": "ed-cardiff", "lawful_basis": "x"}]}, "at least two"),
        ({"status": "signed"}, "status"),
        ({"review_date": "soon"}, "review_date"),
        ({"retention_days": 0}, "retention_days"),
        ({"disclosure": {"min_cell": -1}}, "min_cell"),
        (
            {
                "parties": [
                    {"agency": "ed-cardiff", "lawful_basis": "x"},
                    {"agency": "nobody", "lawful_basis": "y"},
                ]
            },
            "unknown agencies",
        ),
        ({"colour": "blue"}, "unknown fields"),
    ],
)
def test_bad_agreements_are_refused(
    with_agencies: RunningHub, change: dict[str, Any], message: str
) -> None:
    hub = with_agencies
    status, err = hub.call("POST", "/v1/agreements", hub.admin_token, _dsa(**change))
    assert status == 400 and message in err["error"]["message"]
    status, listed = hub.call("GET", "/v1/agreements", hub.admin_token)
    assert listed["agreements"] == []


def test_projects_need_an_agreement_in_force(with_agencies: RunningHub) -> None:
    hub = with_agencies
    project = {
        "id": "cardiff-2026",
        "name": "Cardiff 2026",
        "agreement": "dsa-svd-cardiff",
        "schema_id": "pprl-person",
        "schema_hash": SCHEMA_HASH,
        "key_check_value": KCV,
    }
    status, _ = hub.call("POST", "/v1/projects", hub.admin_token, project)
    assert status == 404
    hub.call("POST", "/v1/agreements", hub.admin_token, _dsa(status="draft"))
    status, err = hub.call("POST", "/v1/projects", hub.admin_token, project)
    assert status == 409 and "not in force" in err["error"]["message"]
    revised = _dsa()
    revised.pop("id")
    hub.call("PUT", "/v1/agreements/dsa-svd-cardiff", hub.admin_token, {**revised, "based_on": 1})
    status, err = hub.call(
        "POST", "/v1/projects", hub.admin_token, {**project, "key_check_value": "XYZ"}
    )
    assert status == 400 and "key_check_value" in err["error"]["message"]
    status, _ = hub.call("POST", "/v1/projects", hub.admin_token, project)
    assert status == 201
    officer = hub.token_for("Dee", ["data_officer"], agency="ed-cardiff")
    status, listed = hub.call("GET", "/v1/projects", officer)
    assert status == 200 and listed["projects"][0]["key_check_value"] == KCV
