"""Console sessions: an API token exchanged for a session cookie, and CSRF tokens.

Signing in checks the API token exactly as the API does (``hub.auth.authenticate``) and
opens a session: a fresh 256-bit secret goes to the browser in the cookie, and the hub
keeps only its SHA-256 (``ui_sessions``), the user, the token it was opened with and its
expiry (``SESSION_HOURS``, never later than the token's own expiry). Every request then
re-checks the session, its token (revoked or expired ends the session too), the user
(disabled) and, under mutual TLS, the connection's certificate, and reads the user's roles
afresh, so a change of roles takes effect on the next page.

The cookie is ``__Host-`` prefixed, ``HttpOnly``, ``Secure`` and ``SameSite=Strict``.
``Secure`` is set always: browsers treat ``http://127.0.0.1`` and ``http://localhost`` as
secure contexts and accept it there (checked with Chromium), and anywhere else the console
must be served over TLS.

The CSRF token of a session is HMAC-SHA256(secret, label): it needs no storage, differs
per session, and cannot be computed from the database (which holds only the secret's
hash). The sign-in form, which has no session yet, uses a double-submit token: a random
value in a short-lived ``__Host-`` cookie that the form must repeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from hub.auth import Principal, certificate_agency, new_id
from hub.errors import Unauthenticated
from hub.permissions import Role
from hub.store.schema import tokens, ui_sessions, user_roles, users

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_HOURS",
    "Session",
    "cookie_attributes",
    "csrf_matches",
    "csrf_token",
    "new_secret",
    "open_session",
    "revoke_session",
    "session_for",
]

SESSION_COOKIE = "__Host-pph_session"
LOGIN_COOKIE = "__Host-pph_login"
SESSION_HOURS = 8
_HOUR_US = 3_600 * 1_000_000
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_CSRF_LABEL = b"pprl-hub console csrf v1"
_EXPIRED = "your session has ended: sign in again"


def cookie_attributes(max_age: int | None) -> dict[str, object]:
    """The attributes every console cookie carries (for ``Response.set_cookie``)."""
    attrs: dict[str, object] = {
        "path": "/",
        "secure": True,
        "httponly": True,
        "samesite": "Strict",
    }
    if max_age is not None:
        attrs["max_age"] = max_age
    return attrs


def new_secret() -> str:
    """43 base64url characters: 256 random bits."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def csrf_token(secret: str) -> str:
    """The CSRF token forms of the session ``secret`` must carry."""
    mac = hmac.new(secret.encode("ascii"), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def csrf_matches(expected: str, given: object) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    return isinstance(given, str) and hmac.compare_digest(
        expected.encode("ascii"), given.encode("utf-8", "replace")
    )


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session: its id, the signed-in user and the session's CSRF token."""

    id: str
    principal: Principal
    csrf: str
    expires_us: int


def open_session(conn: Connection, principal: Principal, now_us: int) -> tuple[str, str, int]:
    """Store a new session for ``principal`` (just authenticated with its token); returns
    (session id, the secret for the cookie, expiry). A sync connection: ``run_sync``."""
    token_expires = conn.execute(
        select(tokens.c.expires_us).where(tokens.c.id == principal.token_id)
    ).scalar_one()
    expires = min(now_us + SESSION_HOURS * _HOUR_US, int(token_expires))
    secret = new_secret()
    session_id = new_id("ses_")
    conn.execute(
        insert(ui_sessions).values(
            id=session_id,
            secret_hash=_hash(secret),
            user_id=principal.user_id,
            token_id=principal.token_id,
            created_us=now_us,
            expires_us=expires,
        )
    )
    return session_id, secret, expires


def session_for(
    conn: Connection, secret: str | None, now_us: int, client_cert: str | bool | None = False
) -> Session:
    """The live session whose cookie value is ``secret``; ``Unauthenticated`` for a missing,
    malformed, unknown, expired or revoked session, a revoked or expired token, a disabled
    user, or (under mutual TLS, ``client_cert`` as in ``hub.auth.authenticate``) a
    connection whose certificate is not registered to the user's agency."""
    if secret is None or not _SECRET.fullmatch(secret):
        raise Unauthenticated(_EXPIRED)
    cert_agency = certificate_agency(conn, client_cert, now_us)
    s = ui_sessions
    row = conn.execute(
        select(
            s.c.id,
            s.c.expires_us,
            s.c.revoked_us,
            tokens.c.id.label("token_id"),
            tokens.c.expires_us.label("token_expires_us"),
            tokens.c.revoked_us.label("token_revoked_us"),
            users.c.id.label("user_id"),
            users.c.name,
            users.c.agency_id,
            users.c.disabled,
        )
        .join(tokens, tokens.c.id == s.c.token_id)
        .join(users, users.c.id == s.c.user_id)
        .where(s.c.secret_hash == _hash(secret))
    ).first()
    if (
        row is None
        or row.revoked_us is not None
        or row.expires_us <= now_us
        or row.token_revoked_us is not None
        or row.token_expires_us <= now_us
        or row.disabled
    ):
        raise Unauthenticated(_EXPIRED)
    if cert_agency is not None and row.agency_id is not None and row.agency_id != cert_agency:
        raise Unauthenticated("your client certificate is registered to another agency")
    roles = frozenset(
        Role(r)
        for (r,) in conn.execute(
            select(user_roles.c.role).where(user_roles.c.user_id == row.user_id)
        )
    )
    method = "session" if cert_agency is None else "session+mtls"
    principal = Principal(row.user_id, row.name, row.agency_id, roles, row.token_id, method)
    return Session(row.id, principal, csrf_token(secret), int(row.expires_us))


def revoke_session(conn: Connection, session_id: str, now_us: int) -> None:
    """End a session (sign-out): its cookie no longer opens anything."""
    conn.execute(
        update(ui_sessions)
        .where(ui_sessions.c.id == session_id, ui_sessions.c.revoked_us.is_(None))
        .values(revoked_us=now_us)
    )
