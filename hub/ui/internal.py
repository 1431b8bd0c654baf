"""The console calls the JSON API's own handlers, in process, as the signed-in user.

A console page that shows or changes something does not reimplement the API's rules: it
names an API route (``"POST", "/v1/extracts/{extract_id}/decisions"``), and ``call_api``
finds that route in ``hub.routes.ROUTES``, checks its permission against the user's roles
exactly as ``hub.routes.guard`` does, builds a ``hub.context.Context`` for the user over an
in-process request carrying the path parameters, query and JSON body, and runs the
route's handler. Refusals and errors are recorded the way ``guard`` records them, and the
handler records its own entries, so a decision taken in the browser leaves the same audit
entries as one taken with ``hubctl`` (their ``auth_method`` says ``session``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from hub.context import Context
from hub.errors import Forbidden, HubError
from hub.permissions import Permission
from hub.routes import ROUTES, Route, record_refusal

__all__ = ["ApiCall", "Recorded", "call_api", "route_for"]

_BY_TEMPLATE: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}


def route_for(method: str, template: str) -> Route:
    """The API route ``method template`` (a programming error if there is none)."""
    return _BY_TEMPLATE[(method, template)]


class _Body:
    """What ``Context.read_body`` reads: ``content.read(n)`` until it returns nothing."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data)
        piece, self._data = self._data[:n], self._data[n:]
        return piece


@dataclass
class _InternalRequest:
    """The parts of an ``aiohttp.web.Request`` the API handlers and ``Context`` read."""

    outer: web.Request
    method: str
    path: str
    match_info: dict[str, str]
    query: MultiDictProxy[str]
    body: bytes
    headers: CIMultiDictProxy[str] = field(
        default_factory=lambda: CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    )

    def __post_init__(self) -> None:
        self.content = _Body(self.body)

    @property
    def remote(self) -> str | None:
        return self.outer.remote

    @property
    def app(self) -> web.Application:
        return self.outer.app

    @property
    def content_length(self) -> int:
        return len(self.body)

    @property
    def transport(self) -> Any:
        return self.outer.transport


class Recorded(Exception):
    """An API call was refused or failed, and its audit entry is already written."""

    def __init__(self, error: HubError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class ApiCall:
    """An API handler's response: its status, its JSON (if any) and the response itself."""

    status: int
    doc: Any
    response: web.StreamResponse


async def call_api(
    page: Context,
    method: str,
    template: str,
    params: Mapping[str, str] | None = None,
    *,
    query: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> ApiCall:
    """Run the API route ``method template`` for the page's signed-in user (see the module
    docstring). Raises ``Recorded`` (wrapping the ``HubError``) when the API refuses."""
    route = route_for(method, template)
    params = dict(params or {})
    path = template.format(**params)
    raw = b"" if body is None else json.dumps(body).encode("utf-8")
    request = _InternalRequest(
        outer=page.request,
        method=method,
        path=path,
        match_info=params,
        query=MultiDictProxy(MultiDict(query or {})),
        body=raw,
    )
    principal = page.principal
    assert principal is not None, "the console calls the API only for a signed-in user"
    ctx = Context(
        request=cast(web.Request, request),
        services=page.services,
        action=route.action,
        principal=principal,
    )
    if route.permission is Permission.AUTHENTICATED:
        ctx.role = min(principal.roles, default=None)
    elif route.permission is not Permission.PUBLIC:
        ctx.role = principal.role_for(route.permission)
        if ctx.role is None:
            refusal = Forbidden(f"none of your roles grants {route.permission.value}")
            await record_refusal(ctx, refusal)
            page.audited = True
            raise Recorded(refusal)
    try:
        response = await route.handler(ctx)
    except HubError as exc:
        ctx.discard()
        await record_refusal(ctx, exc)
        page.audited = True
        raise Recorded(exc) from None
    except Exception:
        ctx.discard()
        await ctx.audit("error")
        page.audited = True
        raise
    ctx.settle()
    if not ctx.audited:
        await ctx.audit()
    page.audited = True
    page.receipts.extend(ctx.receipts)
    doc: Any = None
    if isinstance(response, web.Response) and response.content_type == "application/json":
        assert isinstance(response.body, bytes)
        doc = json.loads(response.body)
    return ApiCall(response.status, doc, response)
