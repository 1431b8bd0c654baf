"""A console page's declaration (``Page``), what its handler gets (``View``), and
``page_guard``, which does for every page what ``hub.routes.guard`` does for the API:

1. a public page (the sign-in form, the static assets) runs as is;
2. anything else needs a live session (``hub.ui.sessions``): without one the request is
   recorded as a ``login-failure`` entry and redirected to the sign-in page;
3. one of the user's roles must grant the page's permission (``hub.permissions``): if none
   does, the refusal is recorded and answered with a 403 page;
4. a POST must carry the session's CSRF token in its form (field ``csrf``): if it does not,
   the refusal is recorded and answered with a 403 page;
5. the handler runs. Whatever it asks of the API (``View.api``) is recorded by the API's
   own handlers; a page that recorded nothing gets the page's action recorded for it; a
   refusal becomes an error page with the API's status and message, already recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from audit.entry import Action
from hub.certificates import peer_fingerprint
from hub.context import Context
from hub.errors import HubError, PayloadTooLarge, Unauthenticated
from hub.permissions import Permission
from hub.routes import SERVICES
from hub.ui.internal import ApiCall, Recorded, call_api
from hub.ui.render import render, secure_headers
from hub.ui.sessions import SESSION_COOKIE, Session, csrf_matches, session_for

__all__ = [
    "UI_ENV",
    "UI_PAGES",
    "Page",
    "PageHandler",
    "View",
    "page_guard",
    "redirect",
    "safe_next",
]

PageHandler = Callable[["View"], Awaitable[web.StreamResponse]]
UI_ENV = web.AppKey("ui_env", jinja2.Environment)
_MAX_FORM_BYTES = 64 * 1024
_TITLES = {
    400: "Check what you entered",
    401: "Sign in",
    403: "You cannot do this",
    404: "Page not found",
    409: "This cannot be done now",
    410: "No longer available",
    413: "Too large",
    422: "Not accepted",
}


@dataclass(frozen=True, slots=True)
class Page:
    """One console page: method, path, handler, the permission it needs, the audit action
    its access is recorded under, its title and (optionally) its navigation label."""

    method: str
    path: str
    handler: PageHandler
    permission: Permission
    action: Action
    title: str
    nav: str | None = None


UI_PAGES = web.AppKey("ui_pages", tuple)


@dataclass
class View:
    """What a page handler gets: the request's context (services, user, audit helpers),
    the templates, the page, the session and the submitted form."""

    ctx: Context
    env: jinja2.Environment
    page: Page
    session: Session | None = None
    form: MultiDictProxy[str] = field(default_factory=lambda: MultiDictProxy(MultiDict()))

    @property
    def request(self) -> web.Request:
        return self.ctx.request

    def can(self, permission: Permission) -> bool:
        p = self.ctx.principal
        return p is not None and p.role_for(permission) is not None

    def nav(self) -> list[dict[str, str]]:
        pages: tuple[Page, ...] = self.request.app[UI_PAGES]
        return [
            {"label": p.nav, "path": p.path, "current": str(self.request.path == p.path)}
            for p in pages
            if p.nav is not None
            and (p.permission is Permission.AUTHENTICATED or self.can(p.permission))
        ]

    def render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        context: dict[str, Any] = {
            "title": values.pop("title", self.page.title),
            "principal": self.ctx.principal,
            "csrf": self.session.csrf if self.session is not None else "",
            "nav": self.nav() if self.ctx.principal is not None else [],
            "path": self.request.path,
            "origin": self.ctx.services.config.origin,
            **values,
        }
        return render(self.env, template, context, status=status)

    def error(self, status: int, message: str) -> web.Response:
        """An error page: the status, a plain title, and the message as a sentence."""
        message = message[:1].upper() + message[1:]
        if not message.endswith((".", "?", "!")):
            message += "."
        return self.render(
            "error.html",
            status=status,
            title=_TITLES.get(status, "Something went wrong"),
            status_code=status,
            message=message,
        )

    async def api(
        self,
        method: str,
        template: str,
        params: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> ApiCall:
        """Call the JSON API's handler for ``method template`` as this user (in process)."""
        return await call_api(self.ctx, method, template, params, query=query, body=body)


def redirect(location: str) -> web.Response:
    """A 303 to ``location`` (a path on this hub) with the console's headers."""
    response = web.Response(status=303, headers={"Location": location})
    secure_headers(response)
    return response


def safe_next(path: str) -> str:
    """Only paths inside the console come back after sign-in (no open redirect)."""
    if path.startswith("/ui/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/ui/"


async def _session(ctx: Context) -> Session:
    services = ctx.services
    client_cert: str | bool | None = False
    if services.config.server.tls_client_ca is not None:
        client_cert = peer_fingerprint(ctx.request)
    secret = ctx.request.cookies.get(SESSION_COOKIE)
    async with services.store.read() as conn:
        return await conn.run_sync(session_for, secret, services.now_us(), client_cert)


async def _refused(ctx: Context, message: str) -> None:
    await ctx.audit("refused", refusal_reason=message[:1000])


def page_guard(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for ``page`` (see the module docstring)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = Context(request=request, services=request.app[SERVICES], action=page.action)
        view = View(ctx=ctx, env=request.app[UI_ENV], page=page)
        if page.permission is Permission.PUBLIC:
            return await page.handler(view)
        try:
            view.session = await _session(ctx)
        except Unauthenticated as exc:
            ctx.action = "login-failure"
            await _refused(ctx, exc.message)
            target = "/ui/login"
            if request.method == "GET" and request.path != "/ui/":
                target += "?next=" + quote(safe_next(request.path_qs), safe="/")
            to_login = redirect(target)
            if SESSION_COOKIE in request.cookies:
                to_login.del_cookie(SESSION_COOKIE, path="/", secure=True, samesite="Strict")
            return to_login
        principal = ctx.principal = view.session.principal
        if page.permission is Permission.AUTHENTICATED:
            ctx.role = min(principal.roles, default=None)
        else:
            ctx.role = principal.role_for(page.permission)
            if ctx.role is None:
                message = f"none of your roles grants {page.permission.value}"
                await _refused(ctx, message)
                return view.error(403, message)
        if request.method == "POST":
            if (request.content_length or 0) > _MAX_FORM_BYTES:
                await _refused(ctx, "the form is too large")
                return view.error(413, "the form is too large")
            view.form = await request.post()  # type: ignore[assignment]
            if not _csrf_ok(view):
                message = "the form's CSRF token is missing or wrong: reload the page and retry"
                await _refused(ctx, message)
                return view.error(403, message)
        try:
            response = await page.handler(view)
        except Recorded as exc:
            return view.error(exc.error.status, exc.error.message)
        except PayloadTooLarge as exc:
            ctx.discard()
            await _refused(ctx, exc.message)
            return view.error(exc.status, exc.message)
        except HubError as exc:
            ctx.discard()
            if exc.status >= 500:
                await ctx.audit("error")
                raise
            await _refused(ctx, exc.message)
            return view.error(exc.status, exc.message)
        except Exception:
            ctx.discard()
            await ctx.audit("error")
            raise
        ctx.settle()
        if not ctx.audited:
            await ctx.audit(resource=request.path[:200])
        return response

    handle.__name__ = f"ui_{page.handler.__name__}"
    return handle


def _csrf_ok(view: View) -> bool:
    assert view.session is not None
    return csrf_matches(view.session.csrf, view.form.get("csrf"))
