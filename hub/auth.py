"""API tokens and the authenticated caller.

A token is ``pph_`` followed by 43 base64url characters (256 random bits). The hub keeps
only its SHA-256 (a token is random, so a plain hash is enough: there is nothing to
brute-force), shows the token once when it is made, and looks callers up by the hash.
Unknown, expired and revoked tokens, disabled users and malformed headers all get the same
``Unauthenticated`` error, so a caller cannot tell which it was.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, select

from hub.errors import Unauthenticated
from hub.permissions import ROLE_PERMISSIONS, Permission, Role
from hub.store.schema import client_certificates, tokens, user_roles, users

__all__ = [
    "TOKEN_PREFIX",
    "Principal",
    "authenticate",
    "certificate_agency",
    "hash_token",
    "new_id",
    "new_token",
    "parse_bearer",
]

TOKEN_PREFIX = "pph_"
_TOKEN = re.compile(r"pph_[A-Za-z0-9_-]{43}")
_REFUSED = "missing, invalid, expired or revoked credentials"


def new_token() -> tuple[str, bytes]:
    """A fresh token and the hash to store."""
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    token = TOKEN_PREFIX + raw
    return token, hash_token(token)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def new_id(prefix: str) -> str:
    """A random id such as ``u_k3j9...``: 80 bits, lowercase base32."""
    return prefix + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def parse_bearer(header: str | None) -> str:
    """The token in an ``Authorization: Bearer pph_...`` header."""
    if header is None:
        raise Unauthenticated(_REFUSED)
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(value):
        raise Unauthenticated(_REFUSED)
    return value


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    name: str
    agency_id: str | None
    roles: frozenset[Role]
    token_id: str
    auth_method: str = "bearer"

    def role_for(self, permission: Permission) -> Role | None:
        """The first of the caller's roles (in a fixed order) that grants ``permission``."""
        for role in sorted(self.roles):
            if permission in ROLE_PERMISSIONS[role]:
                return role
        return None


def authenticate(
    conn: Connection, token: str, now_us: int, client_cert: str | bool | None = False
) -> Principal:
    """The caller holding ``token`` (a sync connection: run it through ``run_sync``).

    ``client_cert`` is ``False`` without mutual TLS; with it, the connection's client
    certificate fingerprint (``None`` when the client sent none). The certificate is checked
    first, so a connection without a registered one learns nothing about the token.
    """
    cert_agency = certificate_agency(conn, client_cert, now_us)
    row = conn.execute(
        select(
            tokens.c.id,
            tokens.c.expires_us,
            tokens.c.revoked_us,
            users.c.id,
            users.c.name,
            users.c.agency_id,
            users.c.disabled,
        )
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise Unauthenticated(_REFUSED)
    token_id, expires_us, revoked_us, user_id, name, agency_id, disabled = row
    if revoked_us is not None or expires_us <= now_us or disabled:
        raise Unauthenticated(_REFUSED)
    roles = frozenset(
        Role(r)
        for (r,) in conn.execute(select(user_roles.c.role).where(user_roles.c.user_id == user_id))
    )
    if cert_agency is None:
        return Principal(user_id, name, agency_id, roles, token_id)
    if agency_id is not None and agency_id != cert_agency:
        raise Unauthenticated("your client certificate is registered to another agency")
    return Principal(user_id, name, agency_id, roles, token_id, "bearer+mtls")


def certificate_agency(conn: Connection, client_cert: str | bool | None, now_us: int) -> str | None:
    """The agency the connection's certificate is registered to (None without mTLS);
    ``Unauthenticated`` for a connection without a registered, unrevoked, unexpired one.
    (``hub.ui.sessions`` checks console sessions with it too.)"""
    if client_cert is False:
        return None
    if not isinstance(client_cert, str):
        raise Unauthenticated("this hub requires a client certificate (mutual TLS)")
    t = client_certificates
    agency = conn.execute(
        select(t.c.agency_id).where(
            t.c.fingerprint == client_cert, t.c.revoked_us.is_(None), t.c.not_after_us > now_us
        )
    ).scalar()
    if agency is None:
        raise Unauthenticated(
            "your client certificate is not registered to an agency, or was revoked"
        )
    return str(agency)
