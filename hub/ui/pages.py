"""Every console page, the permission it needs and the action its access is recorded
under, in one table (the console's ``hub.routes.ROUTES``).

Permissions are the API's (``hub.permissions``): a page needs the permission of what it
shows, so a role sees in the browser exactly what it could fetch with its token.
"""

from __future__ import annotations

from aiohttp import web

from hub.permissions import Permission as P
from hub.ui.view import Page, page_guard
from hub.ui.views import admin, audit, extracts, runs, session

__all__ = ["PAGES", "add_pages"]

PAGES: tuple[Page, ...] = (
    Page("GET", "/ui/login", session.login_form, P.PUBLIC, "login", "Sign in"),
    Page("POST", "/ui/login", session.login, P.PUBLIC, "login", "Sign in"),
    Page("GET", "/ui/static/{name}", session.static, P.PUBLIC, "view", "Static files"),
    Page("POST", "/ui/logout", session.logout, P.AUTHENTICATED, "logout", "Sign out"),
    Page("GET", "/ui/", session.home, P.AUTHENTICATED, "view", "Overview", nav="Overview"),
    Page(
        "GET", "/ui/approvals", extracts.queue, P.EXTRACTS_DECIDE, "view",
        "Extract requests waiting for a decision", nav="Approvals",
    ),
    Page(
        "GET", "/ui/extracts", extracts.extract_list, P.EXTRACTS_READ, "view",
        "Extract requests", nav="Extracts",
    ),
    Page(
        "GET", "/ui/extracts/{extract_id}", extracts.extract, P.EXTRACTS_READ, "view",
        "Extract request",
    ),
    Page(
        "POST", "/ui/extracts/{extract_id}/decisions", extracts.decide, P.EXTRACTS_DECIDE,
        "approve", "Decide on an extract request",
    ),
    Page(
        "GET", "/ui/extracts/{extract_id}/files/{name}", extracts.download,
        P.EXTRACTS_DOWNLOAD, "download", "Download a release file",
    ),
    Page(
        "GET", "/ui/extracts/{extract_id}/manifest.json", extracts.manifest,
        P.EXTRACTS_DOWNLOAD, "view", "Download a release manifest",
    ),
    Page(
        "GET", "/ui/projects", runs.project_list, P.PROJECTS_READ, "view",
        "Linkage projects", nav="Projects",
    ),
    Page("GET", "/ui/projects/{project_id}", runs.project, P.RUNS_READ, "view", "Project"),
    Page("GET", "/ui/runs/{run_id}", runs.run, P.RUNS_READ, "view", "Linkage run"),
    Page(
        "GET", "/ui/audit", audit.integrity, P.AUDIT_READ, "audit-read",
        "Audit log integrity", nav="Audit log",
    ),
    Page(
        "POST", "/ui/audit/verify", audit.verify_now, P.AUDIT_READ, "audit-read",
        "Verify the audit log",
    ),
    Page(
        "GET", "/ui/audit/entries", audit.entries, P.AUDIT_READ, "audit-read",
        "Audit entries", nav="Audit entries",
    ),
    Page(
        "GET", "/ui/audit/entries/{seq:[0-9]{1,18}}", audit.entry, P.AUDIT_READ, "audit-read",
        "Audit entry",
    ),
    Page(
        "GET", "/ui/audit/export.jsonl", audit.export, P.AUDIT_READ, "audit-read",
        "Export audit entries",
    ),
    Page(
        "GET", "/ui/agencies", admin.agencies, P.AGENCIES_READ, "view", "Agencies",
        nav="Agencies",
    ),
    Page("GET", "/ui/users", admin.users, P.USERS_READ, "view", "Users and roles", nav="Users"),
    Page(
        "GET", "/ui/agreements", admin.agreements, P.AGREEMENTS_READ, "view",
        "Data sharing agreements", nav="Agreements",
    ),
    Page(
        "GET", "/ui/agreements/{agreement_id}", admin.agreement, P.AGREEMENTS_READ, "view",
        "Data sharing agreement",
    ),
)  # fmt: skip


def add_pages(app: web.Application) -> None:
    """Register every page, wrapped by ``page_guard``; ``/ui`` redirects to ``/ui/``."""
    for page in PAGES:
        app.router.add_route(page.method, page.path, page_guard(page))

    async def to_console(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect("/ui/")

    app.router.add_get("/ui", to_console)
