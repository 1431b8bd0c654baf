"""The whole scenario on a real hub on loopback, on SQLite and on PostgreSQL: synthetic A&E and
police exports -> two connectors -> two uploads -> a linkage run on a worker -> an extract
request -> refused when its requester tries to approve it -> approvals -> download -> rows
that match the synthetic truth as well as the linkage allows, with only permitted fields and
no plaintext identifier -> a manifest and proof bundle that verify offline -> an audit log
that verifies and shows every step.

It drives ``hub.demo.run`` (what ``make demo`` runs) and adds checks against the live hub."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from sqlalchemy import MetaData, select

from audit import store as audit_store
from audit.db import open_engine
from audit.logcheck import check_log
from audit.note import parse_vkey
from audit.sources import DatabaseSource
from hub.client import HubAPI, HubAPIError
from hub.demo import ORIGIN, PROJECT, Hub, run
from hub.manifest import ManifestError, Release, verify_release

IDENTIFIER_COLUMNS = {
    "ae_attendances.csv": (
        "forename", "surname", "nhs_no", "postcode", "address_line", "tel", "email", "dob",
    ),
    "police_incidents.csv": (
        "FirstName", "LastName", "Aliases", "DateOfBirth", "PNCId", "NHSNumber",
        "HomePostcode", "HomeAddress", "ContactPhone", "Email",
    ),
}  # fmt: skip


def _identifiers(exports: Path) -> set[bytes]:
    values: set[bytes] = set()
    for name, columns in IDENTIFIER_COLUMNS.items():
        with (exports / name).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                for column in columns:
                    value = (row.get(column) or "").strip()
                    if len(value) >= 7:
                        values.add(value.encode())
    return values


def _database_dump(url: str) -> bytes:
    """Every row of every table, as bytes (the database file of SQLite or a dump of
    PostgreSQL: either way, what the database holds)."""
    engine = open_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    parts: list[bytes] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    engine.dispose()
    return b"\x00".join(parts)


def _extra_checks(found: dict[str, Any]) -> Any:
    def check(hub: Hub, link_run: dict[str, Any]) -> None:
        analyst = hub.api("analyst")
        ae, police = hub.agencies["ae"], hub.agencies["police"]
        base = {"run": link_run["id"], "justification": "test"}
        # refused at once: a field the agreement does not give, a pseudonym include for an
        # aggregate, a run of another project
        for spec, status in (
            ({**base, "kind": "records", "attributes": {ae: ["dob"]}}, 403),
            ({**base, "kind": "records", "attributes": {ae: ["da_flag"]}, "format": "xls"}, 400),
            ({**base, "run": "run_none", "kind": "records", "attributes": {ae: ["da_flag"]}}, 404),
        ):
            with pytest.raises(HubAPIError) as refused:
                analyst.call("POST", f"/v1/projects/{PROJECT}/extracts", spec)
            assert refused.value.status == status, refused.value
        # a requester who is also an approver still cannot decide on their own request
        admin = HubAPI(hub.url, hub.made["admin"]["token"])
        user = admin.call("POST", "/v1/users", {"name": "Dual", "roles": ["analyst", "approver"]})
        dual_token = admin.call("POST", f"/v1/users/{user['id']}/tokens", {})["token"]
        dual = HubAPI(hub.url, dual_token)
        spec = {**base, "kind": "records", "attributes": {ae: ["da_flag"]}}
        request = dual.call("POST", f"/v1/projects/{PROJECT}/extracts", spec)
        with pytest.raises(HubAPIError) as own:
            dual.call(
                "POST",
                f"/v1/extracts/{request['id']}/decisions",
                {"decision": "approve", "capacity": "governance"},
            )
        assert own.value.status == 403 and "own request" in own.value.message
        # one person cannot fill two capacities
        governance = hub.api("governance")
        governance.call(
            "POST",
            f"/v1/extracts/{request['id']}/decisions",
            {"decision": "approve", "capacity": "governance"},
        )
        # an approver of another agency cannot approve for A&E
        with pytest.raises(HubAPIError) as other:
            hub.api("approver-police").call(
                "POST",
                f"/v1/extracts/{request['id']}/decisions",
                {"decision": "approve", "capacity": f"agency:{ae}"},
            )
        assert other.value.status == 403
        # a refusal needs a reason and ends the request
        with pytest.raises(HubAPIError):
            hub.api("approver-ae").call(
                "POST",
                f"/v1/extracts/{request['id']}/decisions",
                {"decision": "refuse", "capacity": f"agency:{ae}"},
            )
        refused_doc = hub.api("approver-ae").call(
            "POST",
            f"/v1/extracts/{request['id']}/decisions",
            {"decision": "refuse", "capacity": f"agency:{ae}", "reason": "not needed"},
        )
        assert refused_doc["status"] == "refused"
        # only the requester may download a release
        released = analyst.call("GET", f"/v1/projects/{PROJECT}/extracts")["extracts"][0]
        with pytest.raises(HubAPIError) as not_theirs:
            dual.call("GET", f"/v1/extracts/{released['id']}/manifest")
        assert not_theirs.value.status in (403, 404)
        found["police"] = police
        found["run"] = link_run

    return check


def test_scenario_end_to_end(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    console = Console(record=True, width=140)
    found: dict[str, Any] = {}
    pg = database_url if "://" in database_url else None
    summary = run(out, 600, 11, console, database_url=pg, also=_extra_checks(found))
    text = console.export_text()

    # linkage quality against the synthetic truth, and the audit log
    assert summary["precision"] >= 0.95 and summary["recall"] >= 0.95, summary
    assert summary["audit_verified"] and summary["extract_rows"] > 50
    assert "the analyst tries to approve it: refused (403" in text

    # the extract: only permitted fields, no plaintext identifier
    records = out / "extracts" / "records"
    table = pq.read_table(records / "records.parquet")
    assert table.column_names == [
        "entity",
        "agency",
        "record_pseudonym",
        "arrival_datetime",
        "assault_method",
        "location_type",
        "offence_code",
        "role",
    ]
    identifiers = _identifiers(out / "exports")
    assert len(identifiers) > 500
    released = b"".join(p.read_bytes() for p in (out / "extracts").rglob("*") if p.is_file())
    assert [v for v in identifiers if v in released] == []
    # fresh entity ids: nothing like the run's entity ids
    assert all(e.startswith("x-") for e in table.column("entity").to_pylist())

    # the manifest and its proof bundle verify offline; any tampering is caught
    release = Release.from_json(json.loads((records / "manifest.json").read_text()))
    log_key = parse_vkey((out / "auditor" / "log.pub").read_text().strip())
    release_key = parse_vkey((out / "hub" / "keys" / "release.key.pub").read_text().strip())
    body = verify_release(
        release, release_key=release_key, log_key=log_key, origin=ORIGIN, files_dir=records
    )
    assert body["fields"] == table.column_names[3:] and body["files"][0]["rows"] == table.num_rows
    tampered = records / "records.parquet"
    tampered.write_bytes(tampered.read_bytes() + b"x")
    with pytest.raises(ManifestError, match="SHA-256"):
        verify_release(
            release, release_key=release_key, log_key=log_key, origin=ORIGIN, files_dir=records
        )
    forged = Release(release.manifest.replace('"kind":"records"', '"kind":"aggregate"'),
                     release.entry, release.bundle)  # fmt: skip
    with pytest.raises(ManifestError, match="signature"):
        verify_release(forged, release_key=release_key, log_key=log_key, origin=ORIGIN)

    # the aggregate: small cells suppressed, the rest rounded to 5, and no published total
    # with exactly one withheld cell under it (secondary suppression)
    aggregate = out / "extracts" / "aggregate"
    cells = pq.read_table(aggregate / "cells.parquet").to_pylist()
    margins = pq.read_table(aggregate / "margins.parquet").to_pylist()
    published = [c["count"] for c in cells if c["count"] is not None]
    assert all(c % 5 == 0 for c in published)
    assert all(c["suppression"] in (None, "suppressed") for c in cells)
    assert any(c["suppression"] == "suppressed" for c in cells)
    dims = ("assault_method", "location_type")
    for margin in margins:
        if margin["count"] is None or margin["total_over"] == "*":
            continue
        kept = [d for d in dims if d != margin["total_over"]]
        under = [c for c in cells if all(c[d] == margin[d] for d in kept)]
        assert sum(c["count"] is None for c in under) != 1, margin

    # the whole hub state holds no plaintext identifier (database, data directory, logs)
    url = pg or f"sqlite:///{out / 'hub' / 'hub.sqlite'}"
    state = [_database_dump(url)]
    state += [
        p.read_bytes()
        for p in (out / "hub").rglob("*")
        if p.is_file() and "keys" not in p.relative_to(out / "hub").parts
    ]
    state.append((out / "hub-serve.log").read_bytes())
    assert [v for v in identifiers if any(v in blob for blob in state)] == []

    # the audit log verifies offline and shows every step
    engine = open_engine(url)
    report = check_log(DatabaseSource(engine), log_key, ORIGIN)
    with engine.connect() as conn:
        docs = [json.loads(e.body) for e in audit_store.iter_entries(conn)]
    engine.dispose()
    assert report.ok, report.problem
    steps = {(d["action"], d["outcome"]) for d in docs}
    for step in (
        ("upload", "allowed"),
        ("link-run", "allowed"),
        ("extract-request", "allowed"),
        ("extract-request", "refused"),
        ("approve", "allowed"),
        ("approve", "refused"),
        ("refuse", "allowed"),
        ("extract-build", "allowed"),
        ("download", "allowed"),
    ):
        assert step in steps, step
    builds = [d for d in docs if d["action"] == "extract-build"]
    assert all(len(d["approvers"]) >= 2 and d["output_hash"] for d in builds)
    assert found["run"]["result"]["links"] > 0
