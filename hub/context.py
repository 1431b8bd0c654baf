"""What a handler gets: the request, the hub's services, the caller, and audit helpers.

Handlers translate HTTP to domain calls and back; they do not authenticate or check roles
(``hub.routes`` did that before calling them). Every handler records at least one audit
entry through ``audit_in`` (inside its write transaction) or ``audit`` (for reads); if it
does not, the route wrapper records one for it, so no request escapes the log.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.entry import LABEL_MAX, TEXT_MAX, Action, AuditEntry, Outcome
from audit.log import PendingAppend, Receipt
from audit.note import SigningKey
from hub.audit_trail import AuditTrail
from hub.auth import Principal
from hub.config import HubConfig
from hub.datastore import DataStore
from hub.errors import BadRequest, PayloadTooLarge
from hub.permissions import Role
from hub.store.db import Store

__all__ = ["Context", "Services"]


@dataclass(frozen=True, slots=True)
class Services:
    """The hub's long-lived resources (opened and closed by ``create_app``'s cleanup_ctx)."""

    config: HubConfig
    store: Store
    trail: AuditTrail
    datastore: DataStore
    release_key: SigningKey
    clock: Callable[[], float] = time.time

    def now_us(self) -> int:
        return int(self.clock() * 1_000_000)


@dataclass
class Context:
    request: web.Request
    services: Services
    action: Action
    principal: Principal | None = None
    role: Role | None = None
    audited: bool = False
    receipts: list[Receipt] = field(default_factory=list)
    _pending: list[PendingAppend] = field(default_factory=list)

    @property
    def source_address(self) -> str | None:
        return self.request.remote

    def entry(self, outcome: Outcome = "allowed", **fields: Any) -> AuditEntry:
        """An audit entry for this request; ``fields`` override or add entry fields."""
        p = self.principal
        base: dict[str, Any] = {
            "time": datetime.fromtimestamp(self.services.clock(), tz=UTC),
            "actor": p.user_id if p is not None else "anonymous",
            "role": None if self.role is None else str(self.role),
            "agency": p.agency_id if p is not None else None,
            "auth_method": p.auth_method if p is not None else None,
            "source_address": _address(self.source_address),
            "action": self.action,
            "outcome": outcome,
            "resource": self.request.path,
        }
        base.update(fields)
        for name in _REQUEST_LABELS:
            if isinstance(base.get(name), str):
                base[name] = audit_label(base[name])
        if isinstance(base.get("refusal_reason"), str):
            base["refusal_reason"] = audit_label(base["refusal_reason"], TEXT_MAX)
        return AuditEntry(**base)

    async def audit_in(self, conn: AsyncConnection, **fields: Any) -> None:
        """Record an allowed action in the caller's write transaction."""
        pending = await self.services.trail.append_in(conn, [self.entry(**fields)])
        self._pending.append(pending)
        self.audited = True

    async def audit(self, outcome: Outcome = "allowed", **fields: Any) -> Receipt:
        """Record an entry on its own (reads, refusals); returns once it is durable."""
        receipt = await self.services.trail.record(self.entry(outcome, **fields))
        self.receipts.append(receipt)
        self.audited = True
        return receipt

    def settle(self) -> None:
        """After the handler's transactions committed: acknowledge their entries."""
        for pending in self._pending:
            self.receipts.extend(self.services.trail.committed(pending))
        self._pending.clear()

    def discard(self) -> None:
        """The handler failed: its transactions rolled back, their entries with them."""
        self._pending.clear()
        self.audited = bool(self.receipts)

    async def json_body(
        self, allowed: frozenset[str], required: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """The request's JSON object, refusing unknown or missing fields."""
        limit = self.services.config.limits.max_json_bytes
        if self.request.content_length is not None and self.request.content_length > limit:
            raise PayloadTooLarge(f"a JSON body may be at most {limit} bytes")
        raw = await self.read_body(limit, f"a JSON body may be at most {limit} bytes")
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise BadRequest("the body must be a JSON object")
        unknown = sorted(set(doc) - allowed)
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(unknown)}")
        missing = sorted(required - set(doc))
        if missing:
            raise BadRequest(f"missing fields: {', '.join(missing)}")
        return doc

    async def read_body(self, limit: int, too_large: str) -> bytes:
        """The whole request body, refusing (413) more than ``limit`` bytes. (A single
        ``content.read(n)`` returns only what has arrived so far.)"""
        pieces: list[bytes] = []
        total = 0
        while True:
            piece = await self.request.content.read(1 << 16)
            if not piece:
                return b"".join(pieces)
            total += len(piece)
            if total > limit:
                raise PayloadTooLarge(too_large)
            pieces.append(piece)

    def last_entry(self) -> int | None:
        return self.receipts[-1].sequence if self.receipts else None


#: entry fields that may carry what a caller typed (a path, an id from the URL)
_REQUEST_LABELS = ("resource", "dsa_id", "purpose")


def audit_label(text: str, limit: int = LABEL_MAX) -> str:
    """``text`` as an audit label: characters an entry refuses (controls, line breaks,
    format characters, lone surrogates) percent-encoded as UTF-8, surrounding whitespace
    removed, and cut to the entry's limit with a visible "..."; never empty. A request whose
    path holds such characters is still recorded, not turned into a server error."""
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        else:
            raw = char.encode("utf-8", "surrogatepass")
            out.append("".join(f"%{b:02X}" for b in raw))
    label = "".join(out).strip() or "-"
    return label if len(label) <= limit else label[: limit - 3] + "..."


def _address(remote: str | None) -> str | None:
    if remote is None:
        return None
    try:
        return str(ipaddress.ip_address(remote))
    except ValueError:
        return None
