"""Auditor pages: the log's integrity status and "Verify now", entries with filters and
paging, one entry with its inclusion proof, and an export of entries as JSON lines."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from audit import store as audit_store
from audit.bundle import parse_bundle, verify_bundle
from audit.checkpoint import cosignature_timestamp, parse_decimal
from audit.entry import ACTIONS, OUTCOMES
from audit.errors import AuditError
from hub.errors import BadRequest
from hub.ui.render import fmt_time, secure_headers
from hub.ui.verification import (
    latest_verifications,
    record_verification,
    verify_database,
)
from hub.ui.view import View, redirect

__all__ = ["entries", "entry", "export", "integrity", "verify_now"]

PAGE_SIZE = 50
EXPORT_MAX = 100_000
_FILTERS = ("since", "until", "actor", "agency", "action", "dsa", "outcome")


async def integrity(view: View) -> web.StreamResponse:
    """The newest checkpoint, its cosignatures, and the last verifications."""
    services = view.ctx.services
    log = services.trail.log
    async with services.store.read() as conn:
        head = await conn.run_sync(log.latest_in)
        stored = await conn.run_sync(audit_store.latest_checkpoint)
        size = await conn.run_sync(audit_store.entry_count)
        checks = await latest_verifications(conn)
    checkpoint: dict[str, Any] | None = None
    if head is not None and stored is not None:
        cp, note = head
        cosignatures = []
        for sig in note.signatures[1:]:
            try:
                stamp = fmt_time(cosignature_timestamp(sig) * 1_000_000)
            except AuditError:
                stamp = "not a cosignature"
            cosignatures.append({"witness": sig.name, "key_id": sig.key_id.hex(), "time": stamp})
        checkpoint = {
            "size": cp.size,
            "root": cp.root_hash.hex(),
            "signed_us": stored.signed_us,
            "note": stored.note,
            "cosignatures": cosignatures,
        }
    last = checks[0] if checks else None
    if last is None:
        state = "unverified"
    elif not last["ok"]:
        state = "failed"
    else:
        state = "verified"
    return view.render(
        "audit_integrity.html",
        checkpoint=checkpoint,
        entries=size,
        last=last,
        checks=checks,
        state=state,
        grown=None if last is None or not last["ok"] else size - int(last["entries"]),
        log_key=log.log_key.to_vkey(),
    )


async def verify_now(view: View) -> web.StreamResponse:
    """Run the full verification over the database, record who and what it found."""
    ctx = view.ctx
    p = ctx.principal
    assert p is not None
    services = ctx.services
    found = await verify_database(services)
    async with services.store.write() as conn:
        verification_id = await record_verification(conn, services, p.user_id, found)
        await ctx.audit_in(
            conn, resource=f"audit/verifications/{verification_id}", rows=found.entries
        )
    ctx.settle()
    return redirect("/ui/audit")


def _utc(raw: str, name: str) -> str:
    """A ``datetime-local`` value (read as UTC) or ISO 8601 time, as the API's ISO form."""
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be a date and time such as 2026-11-23T09:30") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _filters(view: View) -> dict[str, str]:
    q = view.request.query
    chosen = {k: q[k].strip() for k in _FILTERS if q.get(k, "").strip()}
    if "outcome" in chosen and chosen["outcome"] not in OUTCOMES:
        raise BadRequest("outcome must be allowed, refused or error")
    if "action" in chosen and chosen["action"] not in ACTIONS:
        raise BadRequest("unknown action")
    return chosen


def _api_query(chosen: dict[str, str]) -> dict[str, str]:
    query = dict(chosen)
    for name in ("since", "until"):
        if name in query:
            query[name] = _utc(query[name], name)
    return query


async def entries(view: View) -> web.StreamResponse:
    """Entries matching the filters, ``PAGE_SIZE`` at a time, oldest first."""
    chosen = _filters(view)
    raw_after = view.request.query.get("after", "0")
    after = parse_decimal(raw_after) or 0
    query = {**_api_query(chosen), "after": str(after), "limit": str(PAGE_SIZE)}
    found = await view.api("GET", "/v1/audit/entries", query=query)
    rows = [
        {
            "seq": e["seq"],
            "time": e["time"].replace("T", " ")[:19] + " UTC",
            **{k: e["entry"].get(k) for k in ("actor", "role", "agency", "action", "outcome")},
            "resource": e["entry"].get("resource"),
            "dsa": e["entry"].get("dsa_id"),
            "dsa_version": e["entry"].get("dsa_version"),
            "reason": e["entry"].get("refusal_reason"),
            "auth": e["entry"].get("auth_method"),
        }
        for e in found.doc["entries"]
    ]
    next_after = found.doc["next_after"]
    return view.render(
        "audit_entries.html",
        rows=rows,
        chosen=chosen,
        actions=sorted(ACTIONS),
        outcomes=sorted(OUTCOMES),
        next_link=None if next_after is None else "?" + urlencode({**chosen, "after": next_after}),
        first_link=None if after == 0 else "?" + urlencode(chosen),
        export_link="/ui/audit/export.jsonl" + ("?" + urlencode(chosen) if chosen else ""),
        after=after,
    )


async def entry(view: View) -> web.StreamResponse:
    """One entry, its canonical bytes, and its inclusion proof checked against the newest
    signed checkpoint (with the hub's log key)."""
    raw = view.request.match_info["seq"]
    found = await view.api("GET", "/v1/audit/bundles/{index}", {"index": raw})
    body: str = found.doc["entry"]
    log = view.ctx.services.trail.log
    bundle = parse_bundle(found.doc["bundle"])
    try:
        cp = verify_bundle(bundle, body.encode("ascii"), log.log_key, log.origin)
        proof_ok, proof_problem, size, root = True, None, cp.size, cp.root_hash.hex()
    except AuditError as exc:
        proof_ok, proof_problem, size, root = False, str(exc), None, None
    fields = json.loads(body)
    return view.render(
        "audit_entry.html",
        title=f"Audit entry {bundle.index}",
        seq=bundle.index,
        fields=sorted(fields.items()),
        canonical=body,
        proof=[base64.b64encode(h).decode("ascii") for h in bundle.proof],
        proof_ok=proof_ok,
        proof_problem=proof_problem,
        size=size,
        root=root,
        bundle_text=found.doc["bundle"],
    )


async def export(view: View) -> web.StreamResponse:
    """The matching entries' canonical bytes, one per line (at most ``EXPORT_MAX``)."""
    chosen = _filters(view)
    query = _api_query(chosen)

    def us(name: str) -> int | None:
        if name not in query:
            return None
        t = datetime.fromisoformat(query[name].replace("Z", "+00:00"))
        return audit_store.time_to_us(t)

    where = audit_store.EntryFilter(
        since_us=us("since"),
        until_us=us("until"),
        actor=chosen.get("actor"),
        agency=chosen.get("agency"),
        action=chosen.get("action"),
        dsa_id=chosen.get("dsa"),
        outcome=chosen.get("outcome"),
    )
    rows = await view.ctx.services.trail.entries(where, EXPORT_MAX)
    await view.ctx.audit(resource="audit/entries.jsonl", rows=len(rows))
    response = web.Response(
        body=b"".join(r.body + b"\n" for r in rows),
        content_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-entries.jsonl"'},
    )
    secure_headers(response)
    return response
