"""Request ids, the one place errors become HTTP responses, and security headers.

Every error body is ``{"error": {"code": ..., "message": ..., "request_id": ...}}``. A
``HubError`` keeps its status and message; aiohttp's own HTTP errors (404 for an unknown
path, 405, 413 for a body over the server's limit) are mapped to the same shape; a write
that found the disk full (``ENOSPC``, ``EDQUOT``) is a 507 ``storage_full``; anything else
is a 500 whose body says only that something failed (the log has the detail).
"""

from __future__ import annotations

import errno
import secrets
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from hub.errors import HubError, StorageFull

__all__ = ["error_middleware", "request_id_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
_log = structlog.get_logger("hub.http")

#: errno values of a write that found no room: the disk full, or the user's quota used up.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _error(status: int, code: str, message: str, request_id: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "request_id": request_id}}
    return web.json_response(body, status=status)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = secrets.token_hex(8)
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await handler(request)
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        structlog.contextvars.unbind_contextvars("request_id")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.get(REQUEST_ID, "-")
    try:
        response = await handler(request)
    except HubError as exc:
        if exc.status >= 500:
            _log.error("request failed", path=request.path, code=exc.code, message=exc.message)
        response = _error(exc.status, exc.code, exc.message, request_id)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="pprl-hub"'
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        response = _error(exc.status, code, exc.reason, request_id)
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            _log.exception("unhandled error", path=request.path)
            response = _error(500, "internal", "the hub could not complete the request", request_id)
        else:
            full = StorageFull()
            _log.error("request failed", path=request.path, code=full.code, message=full.message)
            response = _error(full.status, full.code, full.message, request_id)
    except Exception:  # noqa: BLE001 - the one place that turns any failure into a 500
        _log.exception("unhandled error", path=request.path)
        response = _error(500, "internal", "the hub could not complete the request", request_id)
    response.headers["X-Request-Id"] = request_id
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
