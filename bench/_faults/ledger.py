"""What the hub acknowledged, and what its clients saw go wrong.

An item is *acknowledged* when the hub answered its request 2xx: a chunk stored, an upload
committed (a dataset version), an upload session opened, a run started, an extract request
made, approved and queued for its build, or any audited request answered (its audit entry
is durable before the answer). The checks (``checks.py``) look for every one of them after
each recovery, over every round so far; an item missing is *lost*, and counted once, against
the scenario of the round that acknowledged it.

Client-visible errors are counted by kind (``http_503``, ``connection_refused``,
``disconnected``, ...), with the first message seen for each kind.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.upload import HubClient, UploadError
from hub.client import HubAPIError

__all__ = ["AckingClient", "Item", "Ledger", "classify"]


def _transport_kind(text: str) -> str:
    lowered = text.lower()
    for needle, kind in (
        ("connection refused", "connection_refused"),
        ("remote end closed", "disconnected"),
        ("remotedisconnected", "disconnected"),
        ("connection reset", "connection_reset"),
        ("broken pipe", "broken_pipe"),
        ("timed out", "timeout"),
        ("incompleteread", "incomplete_read"),
    ):
        if needle in lowered:
            return kind
    return "unreachable"


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) of an error a client saw."""
    if isinstance(exc, HubAPIError):
        if exc.status:
            return f"http_{exc.status}", f"{exc.code}: {exc.message}"
        return _transport_kind(exc.message), exc.message
    if isinstance(exc, UploadError):
        return _transport_kind(str(exc)), str(exc)
    return _transport_kind(f"{type(exc).__name__} {exc}"), f"{type(exc).__name__}: {exc}"


@dataclass
class Item:
    """One acknowledged thing."""

    kind: str  # upload | chunk | session | run | extract | request
    key: str
    scenario: str
    round: int
    #: the audit entry the answer named, and the resource that entry must carry
    audit_entry: int | None = None
    resource: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Ledger:
    """Acknowledged items and client errors, across rounds (thread-safe)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}
        self.lost: dict[tuple[str, str], str] = {}  # item -> why
        self.errors: dict[str, Counter[str]] = {}
        self.examples: dict[str, dict[str, str]] = {}
        self.scenario = "setup"
        self.round = 0
        self._lock = threading.Lock()

    def begin(self, scenario: str, round_: int) -> None:
        self.scenario, self.round = scenario, round_

    def ack(
        self,
        kind: str,
        key: str,
        *,
        audit_entry: int | None = None,
        resource: str | None = None,
        **detail: Any,
    ) -> None:
        with self._lock:
            if (kind, key) not in self.items:
                self.items[(kind, key)] = Item(
                    kind, key, self.scenario, self.round, audit_entry, resource, detail
                )

    def error(self, exc: BaseException) -> str:
        kind, message = classify(exc)
        self.error_kind(kind, message)
        return kind

    def error_kind(self, kind: str, message: str) -> None:
        with self._lock:
            self.errors.setdefault(self.scenario, Counter())[kind] += 1
            self.examples.setdefault(self.scenario, {}).setdefault(kind, message[:300])

    def of(self, kind: str) -> list[Item]:
        with self._lock:
            return [i for (k, _), i in self.items.items() if k == kind]

    def lose(self, item: Item, why: str) -> bool:
        """Record ``item`` as lost (once); True if it was not known lost before."""
        with self._lock:
            if (item.kind, item.key) in self.lost:
                return False
            self.lost[(item.kind, item.key)] = why
            return True

    def acknowledged(self, scenario: str) -> int:
        return sum(1 for i in self.items.values() if i.scenario == scenario)

    def lost_in(self, scenario: str) -> int:
        return sum(1 for k in self.lost if self.items[k].scenario == scenario)


class AckingClient(HubClient):
    """``connectors.upload``'s client, recording each 2xx answer as an acknowledgement and
    each failure as a client-visible error."""

    def __init__(self, url: str, token: str, ledger: Ledger, *, retries: int) -> None:
        super().__init__(url, token, retries=retries, backoff=0.25, timeout=30.0)
        self.ledger = ledger

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        try:
            status, doc = super().call(method, path, body=body, data=data, headers=headers)
        except UploadError as exc:
            self.ledger.error(exc)
            raise
        if status >= 400:
            message = doc.get("error", {}).get("message", "") if isinstance(doc, dict) else ""
            self.ledger.error_kind(f"http_{status}", str(message))
            return status, doc
        parts = path.strip("/").split("/")
        if method == "POST" and parts[-1] == "uploads" and status == 201:
            self.ledger.ack(
                "session",
                doc["id"],
                audit_entry=doc.get("audit_entry"),
                resource=f"upload/{doc['id']}",
            )
        elif method == "PUT" and "chunks" in parts:
            self.ledger.ack(
                "chunk", f"{parts[2]}/{parts[4]}", session=parts[2], index=int(parts[4])
            )
        elif method == "POST" and parts[-1] == "commit":
            self.ledger.ack(
                "upload",
                doc["id"],
                audit_entry=doc.get("audit_entry"),
                resource=f"dataset/{doc['id']}",
                sha256=doc["sha256"],
                rows=doc["rows"],
                session=parts[2],
            )
        return status, doc
