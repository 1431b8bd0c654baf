"""The hub's errors: one root, each subclass carrying its HTTP status and a stable code.

``HubError`` is the only class callers catch. ``hub.middlewares`` turns any of them into
``{"error": {"code": ..., "message": ...}}`` with the status below; anything else becomes a
500 whose body says nothing about the cause (the log has it, redacted). Messages are meant
for the person who sent the request: they say what was wrong and never echo a token, a key
or a value that could identify anyone.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "HubError",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "StorageFull",
    "Unauthenticated",
    "Unprocessable",
]


class HubError(Exception):
    """Root of every error the hub raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]


class ConfigError(HubError):
    """The hub's configuration or data directory is missing or invalid (at start-up)."""

    code = "config"


class BadRequest(HubError):
    """Malformed request: not JSON, unknown or missing fields, bad values."""

    status = 400
    code = "bad_request"


class Unauthenticated(HubError):
    """No credentials, or credentials that are unknown, expired or revoked (one message for
    all of them, so a caller cannot probe which)."""

    status = 401
    code = "unauthenticated"


class Forbidden(HubError):
    """Authenticated, but the role, agency or agreement does not allow this."""

    status = 403
    code = "forbidden"


class NotFound(HubError):
    status = 404
    code = "not_found"


class Conflict(HubError):
    """The request contradicts the current state (a duplicate name, a stale version)."""

    status = 409
    code = "conflict"


class Gone(HubError):
    """The resource existed and was deleted or expired (an erased dataset, an old link)."""

    status = 410
    code = "gone"


class PayloadTooLarge(HubError):
    status = 413
    code = "payload_too_large"


class Unprocessable(HubError):
    """Well-formed but unacceptable content (an upload failing validation)."""

    status = 422
    code = "unprocessable"


class ServiceUnavailable(HubError):
    status = 503
    code = "unavailable"


class StorageFull(HubError):
    """The disk (or PostgreSQL's) holding the hub's data is full: nothing was changed, and
    the request can be repeated once an operator has made room."""

    status = 507
    code = "storage_full"

    def __init__(
        self,
        message: str = (
            "the hub's storage is full; nothing was changed: try again once an operator has "
            "made room"
        ),
    ) -> None:
        super().__init__(message)
