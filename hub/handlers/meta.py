"""The API's own description (``/openapi.json``) and Prometheus metrics (``/metrics``).

Both are public like the health checks: the description says what the API is, and the
metrics count requests and their latency per route template and status, never ids, users
or data."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.context import Context
from hub.metrics import METRICS


async def openapi_json(ctx: Context) -> web.Response:
    from hub.routes import OPENAPI

    return web.json_response(ctx.request.app[OPENAPI])


async def metrics(ctx: Context) -> web.Response:
    body = generate_latest(ctx.request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
