"""Signing in and out, the start page, and the console's static assets."""

from __future__ import annotations

import secrets
from importlib.resources import files

from aiohttp import web

from hub.auth import authenticate, parse_bearer
from hub.certificates import peer_fingerprint
from hub.errors import Unauthenticated
from hub.permissions import Permission
from hub.ui.render import secure_headers
from hub.ui.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    cookie_attributes,
    csrf_matches,
    open_session,
    revoke_session,
    session_for,
)
from hub.ui.view import View, redirect, safe_next

__all__ = ["home", "login", "login_form", "logout", "static"]

_LOGIN_MINUTES = 30
_STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
}


def _login_page(view: View, *, status: int = 200, error: str | None = None) -> web.Response:
    nonce = secrets.token_urlsafe(32)
    target = safe_next(view.request.query.get("next", view.form.get("next", "/ui/")))
    response = view.render(
        "login.html",
        status=status,
        login_csrf=nonce,
        next=target,
        error=error,
        signed_out="signed_out" in view.request.query,
    )
    response.set_cookie(LOGIN_COOKIE, nonce, **cookie_attributes(_LOGIN_MINUTES * 60))  # type: ignore[arg-type]
    return response


async def _signed_in(view: View) -> bool:
    secret = view.request.cookies.get(SESSION_COOKIE)
    if secret is None:
        return False
    services = view.ctx.services
    try:
        async with services.store.read() as conn:
            await conn.run_sync(session_for, secret, services.now_us(), _client_cert(view))
    except Unauthenticated:
        return False
    return True


def _client_cert(view: View) -> str | bool | None:
    if view.ctx.services.config.server.tls_client_ca is None:
        return False
    return peer_fingerprint(view.request)


async def login_form(view: View) -> web.StreamResponse:
    """The sign-in form (public, not recorded: it shows nothing)."""
    if await _signed_in(view):
        return redirect(safe_next(view.request.query.get("next", "/ui/")))
    return _login_page(view)


async def login(view: View) -> web.StreamResponse:
    """Exchange an API token for a session: ``login`` entry, or ``login-failure``."""
    ctx = view.ctx
    view.form = await view.request.post()  # type: ignore[assignment]
    expected = view.request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not csrf_matches(expected, view.form.get("csrf")):
        ctx.action = "login"
        message = "the sign-in form's CSRF token is missing or wrong: reload the page"
        await ctx.audit("refused", refusal_reason=message)
        return view.error(403, message)
    token = str(view.form.get("token", "")).strip()
    services = ctx.services
    try:
        token = parse_bearer(f"Bearer {token}")
        async with services.store.read() as conn:
            principal = await conn.run_sync(
                authenticate, token, services.now_us(), _client_cert(view)
            )
    except Unauthenticated as exc:
        ctx.action = "login-failure"
        await ctx.audit("refused", refusal_reason=exc.message)
        return _login_page(view, status=401, error="That token was not accepted: " + exc.message)
    ctx.principal = principal
    ctx.role = min(principal.roles, default=None)
    ctx.action = "login"
    async with services.store.write() as conn:
        session_id, secret, expires = await conn.run_sync(
            open_session, principal, services.now_us()
        )
        await ctx.audit_in(conn, resource=f"ui/session/{session_id}")
    ctx.settle()
    response = redirect(safe_next(str(view.form.get("next", "/ui/"))))
    max_age = max(1, (expires - services.now_us()) // 1_000_000)
    response.set_cookie(SESSION_COOKIE, secret, **cookie_attributes(max_age))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path="/", secure=True, samesite="Strict")
    return response


async def logout(view: View) -> web.StreamResponse:
    """End the session (``logout`` entry) and forget the cookie."""
    ctx = view.ctx
    assert view.session is not None
    services = ctx.services
    async with services.store.write() as conn:
        await conn.run_sync(revoke_session, view.session.id, services.now_us())
        await ctx.audit_in(conn, resource=f"ui/session/{view.session.id}")
    ctx.settle()
    response = redirect("/ui/login?signed_out=1")
    response.del_cookie(SESSION_COOKIE, path="/", secure=True, samesite="Strict")
    return response


async def home(view: View) -> web.StreamResponse:
    """The start page: who you are and what your roles let you do here."""
    tasks = [
        (Permission.EXTRACTS_DECIDE, "Approvals", "/ui/approvals",
         "Extract requests waiting for your decision, with exactly what each would release."),
        (Permission.EXTRACTS_READ, "Extract requests", "/ui/extracts",
         "Requests and their status; download approved releases."),
        (Permission.RUNS_READ, "Projects and runs", "/ui/projects",
         "Linkage runs and their diagnostics."),
        (Permission.AUDIT_READ, "Audit log", "/ui/audit",
         "The log's integrity, its entries and their proofs."),
        (Permission.AGENCIES_READ, "Agencies", "/ui/agencies", "The agencies registered."),
        (Permission.USERS_READ, "Users and roles", "/ui/users", "Who may do what."),
        (Permission.AGREEMENTS_READ, "Agreements", "/ui/agreements",
         "Data sharing agreements and their version history."),
    ]  # fmt: skip
    cards = [
        {"title": title, "path": path, "text": text}
        for permission, title, path, text in tasks
        if view.can(permission)
    ]
    return view.render("home.html", cards=cards)


async def static(view: View) -> web.StreamResponse:
    """The console's stylesheet and script (public, not recorded)."""
    name = view.request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    data = files("hub.ui").joinpath("static", name).read_bytes()
    response = web.Response(body=data, content_type=_STATIC[name], charset="utf-8")
    secure_headers(response, cache=True)
    return response
