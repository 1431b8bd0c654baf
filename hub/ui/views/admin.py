"""Operators' pages, read-only: agencies, users and their roles, agreements and their
version history (changes stay with ``hub admin`` and the API)."""

from __future__ import annotations

from aiohttp import web

from hub.ui.view import View

__all__ = ["agencies", "agreement", "agreements", "users"]


async def agencies(view: View) -> web.StreamResponse:
    rows = (await view.api("GET", "/v1/agencies")).doc["agencies"]
    return view.render("agencies.html", rows=rows)


async def users(view: View) -> web.StreamResponse:
    rows = (await view.api("GET", "/v1/users")).doc["users"]
    return view.render("users.html", rows=rows)


async def agreements(view: View) -> web.StreamResponse:
    rows = (await view.api("GET", "/v1/agreements")).doc["agreements"]
    return view.render("agreements.html", rows=rows)


async def agreement(view: View) -> web.StreamResponse:
    agreement_id = view.request.match_info["agreement_id"]
    doc = (
        await view.api("GET", "/v1/agreements/{agreement_id}", {"agreement_id": agreement_id})
    ).doc
    return view.render(
        "agreement.html",
        title=f"Agreement {agreement_id}",
        current=doc["agreement"],
        history=list(reversed(doc["history"])),
    )
