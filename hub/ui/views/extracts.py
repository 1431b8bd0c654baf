"""Extract requests: the approvers' queue, one request with exactly what it would release
(and the decision forms), the analysts' list, and downloads of a release.

Everything goes through the API's handlers (``View.api``): the queue is what
``GET /v1/projects/{id}/extracts`` shows the user, a decision is
``POST /v1/extracts/{id}/decisions`` with the same rules, and a download is
``GET /v1/extracts/{id}/files/{name}`` with its audit entry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub.permissions import Permission
from hub.ui.internal import Recorded
from hub.ui.render import secure_headers
from hub.ui.view import View, redirect

__all__ = ["decide", "download", "extract", "extract_list", "manifest", "queue"]

_QUEUE_MAX = 50


async def _all_requests(view: View) -> list[dict[str, Any]]:
    """Every extract request the user may see, across projects, newest first."""
    projects = (await view.api("GET", "/v1/projects")).doc["projects"]
    found: list[dict[str, Any]] = []
    for project in projects:
        listed = await view.api(
            "GET", "/v1/projects/{project_id}/extracts", {"project_id": project["id"]}
        )
        for e in listed.doc["extracts"]:
            found.append({**e, "project": project["id"], "project_name": project["name"]})
    return sorted(found, key=lambda e: e["created_us"], reverse=True)


def _describe(spec: dict[str, Any]) -> dict[str, Any]:
    """A request's spec as lists a person can read."""
    filters = spec.get("filters") or {}
    where = []
    for cond in filters.get("where", []):
        ops = {k: v for k, v in cond.items() if k != "field"}
        for op, value in ops.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            where.append(f"{cond.get('field')} {op.replace('_', ' ')} {shown}")
    generalise = []
    for name, rule in (spec.get("generalise") or {}).items():
        if isinstance(rule, dict):
            rule = ", ".join(f"{k}: {v}" for k, v in rule.items())
        generalise.append(f"{name} ({rule})")
    return {
        "attributes": sorted((spec.get("attributes") or {}).items()),
        "generalise": generalise,
        "linked_to_all": filters.get("linked_to_all", []),
        "where": where,
        "group_by": spec.get("group_by", []),
        "count": spec.get("count", "entities") if spec.get("kind") == "aggregate" else None,
        "include": spec.get("include", []),
        "format": spec.get("format", "parquet"),
    }


async def queue(view: View) -> web.StreamResponse:
    """Pending requests, each with what it would release and who has decided so far."""
    pending = [e for e in await _all_requests(view) if e["status"] == "pending"]
    rows = []
    for e in pending[:_QUEUE_MAX]:
        shown = await view.api("GET", "/v1/extracts/{extract_id}", {"extract_id": e["id"]})
        doc = shown.doc
        approved = {d["capacity"] for d in doc["decisions"] if d["decision"] == "approve"}
        rows.append(
            {
                **e,
                "spec": _describe(doc["spec"]),
                "justification": doc["justification"],
                "agreement": doc["agreement"],
                "agreement_version": doc["agreement_version"],
                "waiting": [c for c in doc["required"] if c not in approved],
                "approved": sorted(approved),
            }
        )
    return view.render("approvals.html", rows=rows, more=len(pending) > _QUEUE_MAX)


async def extract_list(view: View) -> web.StreamResponse:
    """The extract requests the user may see, with their status."""
    return view.render("extracts.html", rows=await _all_requests(view))


def _capacities(view: View, doc: dict[str, Any]) -> list[str]:
    """The capacities this user could decide in (the API has the last word)."""
    p = view.ctx.principal
    assert p is not None
    if (
        doc["status"] != "pending"
        or doc["requester"] == p.user_id
        or not view.can(Permission.EXTRACTS_DECIDE)
    ):
        return []
    approved = {d["capacity"] for d in doc["decisions"] if d["decision"] == "approve"}
    mine = f"agency:{p.agency_id}" if p.agency_id else None
    return [c for c in doc["required"] if c not in approved and (c == "governance" or c == mine)]


async def extract(view: View) -> web.StreamResponse:
    """One request: what it would release, under which agreement clause, its decisions,
    the forms to decide, and (for its requester) the release's files."""
    extract_id = view.request.match_info["extract_id"]
    doc = (await view.api("GET", "/v1/extracts/{extract_id}", {"extract_id": extract_id})).doc
    agreement: dict[str, Any] | None = None
    if view.can(Permission.AGREEMENTS_READ):
        shown = await view.api(
            "GET", "/v1/agreements/{agreement_id}", {"agreement_id": doc["agreement"]}
        )
        history = shown.doc["history"]
        agreement = next(
            (v for v in history if v["version"] == doc["agreement_version"]), history[-1]
        )
    run: dict[str, Any] | None = None
    if view.can(Permission.RUNS_READ):
        try:
            run = (await view.api("GET", "/v1/runs/{run_id}", {"run_id": doc["run"]})).doc
        except Recorded:
            run = None
    spec = _describe(doc["spec"])
    parties = {} if agreement is None else {p["agency"]: p for p in agreement["parties"]}
    released_by = [
        {
            "agency": agency,
            "fields": fields,
            "lawful_basis": parties.get(agency, {}).get("lawful_basis", ""),
        }
        for agency, fields in spec["attributes"]
    ]
    p = view.ctx.principal
    assert p is not None
    return view.render(
        "extract.html",
        title=f"Extract request {extract_id}",
        doc=doc,
        spec=spec,
        released_by=released_by,
        agreement=agreement,
        run=run,
        capacities=_capacities(view, doc),
        is_requester=doc["requester"] == p.user_id,
        can_download=view.can(Permission.EXTRACTS_DOWNLOAD) and doc["requester"] == p.user_id,
        decided=view.request.query.get("decided"),
    )


async def decide(view: View) -> web.StreamResponse:
    """Approve or refuse, through the API's decision handler (same rules, same entry)."""
    extract_id = view.request.match_info["extract_id"]
    decision = str(view.form.get("decision", ""))
    body: dict[str, Any] = {"decision": decision, "capacity": str(view.form.get("capacity", ""))}
    reason = str(view.form.get("reason", "")).strip()
    if reason:
        body["reason"] = reason
    done = await view.api(
        "POST", "/v1/extracts/{extract_id}/decisions", {"extract_id": extract_id}, body=body
    )
    return redirect(f"/ui/extracts/{quote(extract_id)}?decided={quote(done.doc['status'])}")


async def download(view: View) -> web.StreamResponse:
    """One file of a release, for its requester (the API's download, audited there)."""
    params = dict(view.request.match_info)
    got = await view.api("GET", "/v1/extracts/{extract_id}/files/{name}", params)
    response = got.response
    secure_headers(response)
    return response


async def manifest(view: View) -> web.StreamResponse:
    """The release's signed manifest with its audit proof bundle, as a file."""
    extract_id = view.request.match_info["extract_id"]
    got = await view.api("GET", "/v1/extracts/{extract_id}/manifest", {"extract_id": extract_id})
    response = got.response
    response.headers["Content-Disposition"] = 'attachment; filename="manifest.json"'
    secure_headers(response)
    return response
