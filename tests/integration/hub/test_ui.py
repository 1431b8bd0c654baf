"""The web console over plain HTTP (no browser), on SQLite and PostgreSQL: the session
cookie's flags, sessions stored as hashes and revoked by sign-out, CSRF refusals, the
security headers, and the audit entries of sign-in, sign-out, refusals and 403 pages."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from audit.db import open_engine
from hub.config import load_config
from hub.ui.sessions import LOGIN_COOKIE, SESSION_COOKIE
from tests.integration.hub.conftest import RunningHub

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def cookies(self) -> dict[str, str]:
        """Set-Cookie headers by cookie name (the whole header line)."""
        return {line.split("=", 1)[0]: line for line in self.headers.get_all("Set-Cookie") or []}

    def csrf(self) -> str:
        found = _CSRF.search(self.body)
        assert found, self.body[:500]
        return found.group(1)


@dataclass
class Browserless:
    """A cookie-keeping HTTP client that does not follow redirects."""

    hub: RunningHub
    jar: dict[str, str] = field(default_factory=dict)

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> Reply:
        parsed = urllib.parse.urlsplit(self.hub.url)
        conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)
        headers = {}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        reply = Reply(response.status, response.headers, response.read().decode())
        conn.close()
        for name, line in reply.cookies().items():
            value = line.split("=", 1)[1].split(";", 1)[0]
            if "Max-Age=0" in line or not value or value == '""':
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return reply

    def sign_in(self, token: str) -> Reply:
        form = self.send("GET", "/ui/login")
        return self.send("POST", "/ui/login", {"token": token, "csrf": form.csrf(), "next": "/ui/"})


def _entries(hub: RunningHub) -> list[dict[str, Any]]:
    engine = open_engine(load_config(hub.data_dir).database_url())
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT body FROM audit_entries ORDER BY seq")).all()
    engine.dispose()
    return [json.loads(bytes(body)) for (body,) in rows]


def _sessions(hub: RunningHub) -> list[Any]:
    engine = open_engine(load_config(hub.data_dir).database_url())
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM ui_sessions ORDER BY created_us")).all()
    engine.dispose()
    return list(rows)


def test_sign_in_sets_a_strict_cookie_stores_a_hash_and_sign_out_revokes(
    hub: RunningHub,
) -> None:
    """A good token opens a session: an HttpOnly, Secure, SameSite=Strict, __Host- cookie
    whose secret the database holds only as a SHA-256; sign-in and sign-out are audited;
    after sign-out the cookie opens nothing (a login-failure entry and a redirect)."""
    auditor = hub.token_for("Ann Auditor", ["auditor"])
    client = Browserless(hub)
    form = client.send("GET", "/ui/login")
    assert form.status == 200
    login_cookie = form.cookies()[LOGIN_COOKIE]
    assert "HttpOnly" in login_cookie and "Secure" in login_cookie
    signed_in = client.send(
        "POST", "/ui/login", {"token": auditor, "csrf": form.csrf(), "next": "/ui/audit"}
    )
    assert signed_in.status == 303 and signed_in.headers["Location"] == "/ui/audit"
    cookie = signed_in.cookies()[SESSION_COOKIE]
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/" in cookie and "domain" not in attributes
    secret = client.jar[SESSION_COOKIE]
    assert len(secret) == 43
    (session,) = _sessions(hub)
    assert bytes(session.secret_hash) == hashlib.sha256(secret.encode()).digest()
    assert secret.encode() not in json.dumps([str(v) for v in session]).encode()
    assert session.expires_us - session.created_us <= 8 * 3600 * 1_000_000

    page = client.send("GET", "/ui/audit")
    assert page.status == 200 and "Integrity of the audit log" in page.body
    logins = [e for e in _entries(hub) if e["action"] == "login"]
    assert logins[-1]["outcome"] == "allowed" and logins[-1]["role"] == "auditor"
    assert logins[-1]["resource"] == f"ui/session/{session.id}"

    signed_out = client.send("POST", "/ui/logout", {"csrf": page.csrf()})
    assert signed_out.status == 303 and "signed_out" in signed_out.headers["Location"]
    assert SESSION_COOKIE not in client.jar
    assert _sessions(hub)[0].revoked_us is not None
    logout = [e for e in _entries(hub) if e["action"] == "logout"]
    assert len(logout) == 1 and logout[0]["outcome"] == "allowed"

    client.jar[SESSION_COOKIE] = secret  # the old cookie, replayed
    again = client.send("GET", "/ui/audit")
    assert again.status == 303 and again.headers["Location"].startswith("/ui/login?next=")
    failure = _entries(hub)[-1]
    assert failure["action"] == "login-failure" and failure["outcome"] == "refused"
    assert failure["resource"] == "/ui/audit"


def test_bad_tokens_are_login_failures(hub: RunningHub) -> None:
    """A wrong token re-shows the form (401) and is a login-failure entry; nothing opens."""
    client = Browserless(hub)
    before = len(_entries(hub))
    for token in ("pph_" + "x" * 43, "not a token", ""):
        reply = client.sign_in(token)
        assert reply.status == 401 and "was not accepted" in reply.body
    after = _entries(hub)[before:]
    assert [e["action"] for e in after] == ["login-failure"] * 3
    assert all(e["outcome"] == "refused" and e["actor"] == "anonymous" for e in after)
    assert SESSION_COOKIE not in client.jar and _sessions(hub) == []


def test_forms_without_their_csrf_token_are_refused_and_audited(hub: RunningHub) -> None:
    """Every POST checks the session's CSRF token: missing or wrong, it is a 403 page and
    a refused entry, and nothing happens. The sign-in form has its own token."""
    auditor = hub.token_for("Ann Auditor", ["auditor"])
    client = Browserless(hub)
    # sign-in without the login cookie's token
    bare = Browserless(hub)
    refused = bare.send("POST", "/ui/login", {"token": auditor, "csrf": "x" * 43})
    assert refused.status == 403 and "CSRF" in refused.body
    assert SESSION_COOKIE not in bare.jar
    assert client.sign_in(auditor).status == 303
    for form in ({}, {"csrf": ""}, {"csrf": "A" * 43}):
        reply = client.send("POST", "/ui/audit/verify", form)
        assert reply.status == 403 and "CSRF" in reply.body
        assert reply.headers["Content-Type"].startswith("text/html")
    entries = _entries(hub)
    refusals = [e for e in entries if "CSRF" in e.get("refusal_reason", "")]
    assert len(refusals) == 4
    assert all(e["outcome"] == "refused" for e in refusals)
    assert [e["resource"] for e in refusals[1:]] == ["/ui/audit/verify"] * 3
    # with the token it runs, records who verified, and the page shows it
    page = client.send("GET", "/ui/audit")
    assert 'data-status="unverified"' in page.body
    done = client.send("POST", "/ui/audit/verify", {"csrf": page.csrf()})
    assert done.status == 303 and done.headers["Location"] == "/ui/audit"
    page = client.send("GET", "/ui/audit")
    assert 'data-status="verified"' in page.body and "Ann Auditor" in page.body


def test_pages_carry_a_strict_content_security_policy(hub: RunningHub) -> None:
    """Pages (and the sign-in form) carry the CSP, nosniff, no-referrer, no-store and
    frame denial; the stylesheet and script come from the hub itself."""
    analyst = hub.token_for("Ana Analyst", ["analyst"])
    client = Browserless(hub)
    login = client.send("GET", "/ui/login")
    client.sign_in(analyst)
    home = client.send("GET", "/ui/")
    for reply in (login, home):
        assert reply.status == 200
        csp = reply.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "<script>" not in reply.body and " style=" not in reply.body
        assert 'src="/ui/static/console.js"' in reply.body
    for asset, kind in (("console.css", "text/css"), ("console.js", "text/javascript")):
        reply = client.send("GET", f"/ui/static/{asset}")
        assert reply.status == 200 and reply.headers["Content-Type"].startswith(kind)
    assert client.send("GET", "/ui/static/../hub.toml").status == 404


def test_a_role_without_permission_gets_an_audited_403_page(hub: RunningHub) -> None:
    """An analyst opening the auditor's pages gets a 403 HTML page; each refusal is an
    entry naming the page and the permission. Without a session: a redirect to sign in,
    recorded as a login-failure."""
    analyst = hub.token_for("Ana Analyst", ["analyst"])
    anonymous = Browserless(hub)
    before = len(_entries(hub))
    redirected = anonymous.send("GET", "/ui/audit/entries")
    assert redirected.status == 303
    assert redirected.headers["Location"] == "/ui/login?next=/ui/audit/entries"
    client = Browserless(hub)
    client.sign_in(analyst)
    for path in ("/ui/audit", "/ui/audit/entries", "/ui/users", "/ui/approvals"):
        reply = client.send("GET", path)
        assert reply.status == 403, path
        assert reply.headers["Content-Type"].startswith("text/html")
        assert "You cannot do this" in reply.body and "recorded in the audit log" in reply.body
    after = _entries(hub)[before:]
    assert after[0]["action"] == "login-failure" and after[0]["resource"] == "/ui/audit/entries"
    refused = [e for e in after if e["outcome"] == "refused" and e["actor"] != "anonymous"]
    assert [e["resource"] for e in refused] == [
        "/ui/audit",
        "/ui/audit/entries",
        "/ui/users",
        "/ui/approvals",
    ]
    assert "audit:read" in refused[0]["refusal_reason"]
    assert "extracts:decide" in refused[3]["refusal_reason"]
    # a page the analyst may see is recorded too, with the session as auth method
    assert client.send("GET", "/ui/projects").status == 200
    seen = _entries(hub)[-1]
    assert seen["resource"] == "projects" and seen["auth_method"] == "session"
