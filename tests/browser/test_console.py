"""The web console in real headless Chromium against a real hub with a finished linkage run:
approvers approve an extract request in the browser and the analyst downloads it; the
auditor filters the log and sees its integrity turn red after the database is tampered
with; a role without permission gets a 403 page; a form posted without its CSRF token is
refused. Every page visited is screenshotted (``UPDATE_SCREENSHOTS=1`` refreshes
``docs/img/``)."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Screens, sign_in
from tests.integration.hub.conftest import PROJECT, Prepared, prepared, start_worker

__all__ = ["prepared"]


def _entries(p: Prepared) -> list[dict[str, Any]]:
    db = sqlite3.connect(p.data_dir / "hub.sqlite")
    try:
        rows = db.execute("SELECT body FROM audit_entries ORDER BY seq").fetchall()
    finally:
        db.close()
    return [json.loads(body) for (body,) in rows]


def _tamper(p: Prepared, seq: int) -> None:
    """Rewrite one entry's actor, in its bytes and its filter column alike, the way someone
    holding the database file could (dropping the append-only triggers first)."""
    db = sqlite3.connect(p.data_dir / "hub.sqlite", timeout=30)
    try:
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entries'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        body, actor = db.execute(
            "SELECT body, actor FROM audit_entries WHERE seq = ?", (seq,)
        ).fetchone()
        forged = actor[:-1] + ("x" if actor[-1] != "x" else "y")
        old, new = f'"actor":"{actor}"'.encode(), f'"actor":"{forged}"'.encode()
        new_body = bytes(body).replace(old, new)
        assert new_body != bytes(body)
        db.execute(
            "UPDATE audit_entries SET body = ?, actor = ? WHERE seq = ?", (new_body, forged, seq)
        )
        db.commit()
    finally:
        db.close()


def _nav(page: Any, label: str) -> None:
    """Follow a link of the navigation bar (keyboard-reachable, like every link)."""
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=label).click()


def _finished_run_and_request(p: Prepared) -> tuple[str, str]:
    analyst = p.hub.api("analyst")
    run = analyst.start_run(PROJECT)["run"]
    done = analyst.wait_run(run, timeout=600)
    assert done["job"]["status"] == "succeeded", done["job"]
    ae, police = p.hub.agencies["ae"], p.hub.agencies["police"]
    spec = {
        "run": run,
        "kind": "records",
        "justification": "Assault victims seen at the ED who are known to police",
        "attributes": {ae: ["arrival_datetime", "assault_method"], police: ["role"]},
        "generalise": {"arrival_datetime": {"date": "week"}},
        "filters": {"linked_to_all": [ae, police]},
        "format": "csv",
    }
    request = analyst.call("POST", f"/v1/projects/{PROJECT}/extracts", spec)
    return run, str(request["id"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_console_end_to_end(
    browser: Any, prepared: Prepared, screens: Screens, tmp_path: Path
) -> None:
    """Approvals, a download, the auditor's filters and integrity check (green, then red
    after tampering), a 403 page and a CSRF refusal, all in Chromium."""
    p = prepared
    worker = start_worker(p, "worker.log")
    try:
        run, extract_id = _finished_run_and_request(p)
        _approve_in_browser(browser, p, extract_id, screens)
        released = p.hub.api("analyst").wait_extract(extract_id, timeout=600)
        assert released["status"] == "released", released
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    analyst = _analyst_downloads(browser, p, run, extract_id, screens, tmp_path)
    _forbidden_page(analyst, p, screens)
    auditor = _auditor(browser, p, screens)
    _csrf_refused(auditor, p, screens)
    _tampered_turns_red(auditor, p, screens)
    _operator_pages(browser, p, screens)
    for page in (analyst, auditor):
        assert page.errors == [], page.errors
    assert len(screens.taken) >= 15


def _approve_in_browser(browser: Any, p: Prepared, extract_id: str, screens: Screens) -> None:
    ae, police = p.hub.agencies["ae"], p.hub.agencies["police"]
    for who, capacity in (
        ("approver-ae", f"agency:{ae}"),
        ("approver-police", f"agency:{police}"),
        ("governance", "governance"),
    ):
        # the police approver's browser runs no JavaScript: the console works without it
        page = sign_in(browser, p.hub.url, p.hub.tokens[who], javascript=who != "approver-police")
        if who == "approver-ae":
            screens.take(page, "home-approver")
        _nav(page, "Approvals")
        assert page.locator(f"text={extract_id}").first.is_visible()
        if who == "approver-ae":
            # the queue shows exactly what the request would release
            body = page.inner_text("main")
            assert "arrival_datetime, assault_method" in body and "role" in body
            assert "arrival_datetime (date: week)" in body
            screens.take(page, "approvals")
        page.get_by_role("link", name="Review and decide").first.click()
        page.wait_for_url(re.compile(f"/ui/extracts/{extract_id}$"))
        if who == "approver-ae":
            assert "UK GDPR 6(1)(e)" in page.inner_text("main")  # the lawful basis relied on
            screens.take(page, "extract-decide")
        page.get_by_label("Approve as").select_option(capacity)
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(re.compile(r"\?decided="))
        assert "Your decision was recorded" in page.inner_text("main")
        if who == "governance":
            assert "approved" in page.inner_text("main")
            screens.take(page, "extract-approved")
        assert page.errors == [], page.errors
        page.context.close()
    approvals = [
        e
        for e in _entries(p)
        if e["action"] == "approve" and e.get("resource") == f"extract/{extract_id}"
    ]
    assert len(approvals) == 3
    assert all(e["outcome"] == "allowed" and e["auth_method"] == "session" for e in approvals)


def _analyst_downloads(
    browser: Any, p: Prepared, run: str, extract_id: str, screens: Screens, tmp_path: Path
) -> Any:
    page = sign_in(browser, p.hub.url, p.hub.tokens["analyst"])
    screens.take(page, "home-analyst")
    _nav(page, "Projects")
    screens.take(page, "projects")
    page.get_by_role("link", name=PROJECT, exact=True).click()
    screens.take(page, "project")
    page.get_by_role("link", name=run).first.click()
    page.wait_for_url(re.compile(f"/ui/runs/{run}$"))
    screens.take(page, "run")
    assert page.locator("#weights-chart svg").count() == 1
    assert page.locator("#parameters-chart svg").count() == 1
    assert "Precision" in page.inner_text("#quality")
    _nav(page, "Extracts")
    screens.take(page, "extracts")
    page.get_by_role("link", name=extract_id).click()
    screens.take(page, "extract-released")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="records.csv").click()
    download = download_info.value
    saved = tmp_path / "records.csv"
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.splitlines()[0] == b"entity,agency,arrival_datetime,assault_method,role"
    shown = p.hub.api("analyst").call("GET", f"/v1/extracts/{extract_id}")
    declared = {f["name"]: f["sha256"] for f in shown["release"]["files"]}
    assert hashlib.sha256(data).hexdigest() == declared["records.csv"]
    resource = f"extract/{extract_id}/files/records.csv"
    downloads = [
        e for e in _entries(p) if e["action"] == "download" and e.get("resource") == resource
    ]
    assert len(downloads) == 1 and downloads[0]["auth_method"] == "session"
    return page


def _forbidden_page(page: Any, p: Prepared, screens: Screens) -> None:
    response = page.goto(p.hub.url + "/ui/audit")
    assert response is not None and response.status == 403
    assert "none of your roles grants audit:read" in page.inner_text("main").lower()
    screens.take(page, "forbidden")
    refused = [e for e in _entries(p) if e.get("resource") == "/ui/audit"][-1]
    assert refused["outcome"] == "refused" and refused.get("role") is None


def _auditor(browser: Any, p: Prepared, screens: Screens) -> Any:
    page = sign_in(browser, p.hub.url, p.hub.tokens["auditor"])
    _nav(page, "Audit log")
    assert page.get_attribute("#integrity-status", "data-status") == "unverified"
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url(re.compile(r"/ui/audit$"))
    assert page.get_attribute("#integrity-status", "data-status") == "verified"
    assert "The log verifies" in page.inner_text("#integrity-status")
    screens.take(page, "audit-verified")
    # filters: the three approvals of the request, and nothing else
    _nav(page, "Audit entries")
    screens.take(page, "audit-entries")
    page.get_by_label("Action").select_option("approve")
    page.get_by_label("Outcome").select_option("allowed")
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("#entries tbody tr")
    assert rows.count() == 3
    assert all("approve" in rows.nth(i).inner_text() for i in range(3))
    screens.take(page, "audit-entries-filtered")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export as JSON lines").click()
    exported = Path(download_info.value.path()).read_bytes().splitlines()
    assert len(exported) == 3 and all(json.loads(x)["action"] == "approve" for x in exported)
    rows.first.get_by_role("link").click()
    screens.take(page, "audit-entry")
    assert "included" in page.inner_text("main").lower()
    return page


def _csrf_refused(page: Any, p: Prepared, screens: Screens) -> None:
    page.goto(p.hub.url + "/ui/audit")
    page.evaluate(
        "document.querySelector('form[action=\"/ui/audit/verify\"] input[name=csrf]').remove()"
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Verify now").click()
    assert "CSRF" in page.inner_text("main")
    screens.take(page, "csrf-refused")
    refused = [e for e in _entries(p) if "CSRF" in (e.get("refusal_reason") or "")]
    assert refused and refused[-1]["outcome"] == "refused"


def _tampered_turns_red(page: Any, p: Prepared, screens: Screens) -> None:
    _tamper(p, 7)
    page.goto(p.hub.url + "/ui/audit")
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url(re.compile(r"/ui/audit$"))
    assert page.get_attribute("#integrity-status", "data-status") == "failed"
    status = page.inner_text("#integrity-status")
    assert "does not verify" in status and "7" in status, status
    screens.take(page, "audit-failed")


def _operator_pages(browser: Any, p: Prepared, screens: Screens) -> None:
    page = sign_in(browser, p.hub.url, p.hub.made["admin"]["token"])
    screens.take(page, "home-admin")
    for label, name in (("Agencies", "agencies"), ("Users", "users"), ("Agreements", "agreements")):
        _nav(page, label)
        screens.take(page, name)
    page.locator("main table a").first.click()
    assert "Version history" in page.inner_text("main")
    screens.take(page, "agreement")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login\?signed_out=1"))
    screens.take(page, "signed-out")
    assert page.errors == [], page.errors
    # the old session no longer opens anything
    page.goto(p.hub.url + "/ui/users")
    assert "/ui/login" in page.url
    page.context.close()
