"""Jinja2 templates and the headers every console response carries.

Templates live in ``hub/ui/templates`` and are autoescaped; the only markup inserted
unescaped is the SVG the hub draws itself (``linkage.charts``, which escapes every label).
Every page gets a strict Content-Security-Policy (no inline script or style, nothing from
another origin, no framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web

__all__ = ["CSP", "environment", "fmt_time", "render", "secure_headers"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def secure_headers(response: web.StreamResponse, *, cache: bool = False) -> None:
    """The console's security headers (``cache`` only for the static assets)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache" if cache else "no-store"


def fmt_time(us: int | None) -> str:
    """Microseconds since the epoch as ``2026-11-23 14:05:09 UTC``."""
    if us is None:
        return ""
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = fmt_time
    env.filters["number"] = _number
    return env


def render(
    env: jinja2.Environment,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    """A rendered page with the console's headers."""
    text = env.get_template(template).render(**context)
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    secure_headers(response)
    return response
