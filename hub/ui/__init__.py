"""The web console: server-rendered pages under ``/ui/`` for auditors, approvers, analysts
and operators, behind the API's authentication, roles and audit trail.

``setup_ui(app)`` registers the pages of ``hub.ui.pages.PAGES``; ``docs/ui.md`` describes
them, the sessions and the browser-facing security headers.
"""

from __future__ import annotations

from aiohttp import web

from hub.ui.pages import PAGES, add_pages
from hub.ui.render import environment
from hub.ui.view import UI_ENV, UI_PAGES

__all__ = ["PAGES", "setup_ui"]


def setup_ui(app: web.Application) -> None:
    """Add the console's pages and templates to the hub's application."""
    app[UI_ENV] = environment()
    app[UI_PAGES] = PAGES
    add_pages(app)
