"""Prometheus metrics: requests by route template, method and status, and their latency.

Each application has its own registry (no process-global state), filled by
``metrics_middleware`` and served at ``/metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["METRICS", "Metrics", "metrics_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hub_requests",
            "HTTP requests handled, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hub_request_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            registry=self.registry,
        )


METRICS = web.AppKey("metrics", Metrics)


def _template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app[METRICS]
        template = _template(request)
        metrics.requests.labels(template, request.method, str(status)).inc()
        metrics.latency.labels(template).observe(time.perf_counter() - started)
