"""The hub's structured logs: JSON lines that never carry an identifier, token or key.

``configure_logging`` is called once, at the edge (``hub serve``), never at import time. It
sends structlog events *and* the standard library's records (aiohttp.access, aiohttp.server,
``warnings`` such as SQLAlchemy's) through one ``ProcessorFormatter`` chain: contextvars merge
(request ids), level filter, ISO UTC timestamp, ``format_exc_info``, ``Redactor``, renderer.

``Redactor`` is the product rule "no plaintext identifier, token key or filter key reaches the
hub's logs" as a structlog processor. It walks the event dict recursively and:

1. Replaces with ``[redacted]`` the value of every key whose *name* is sensitive. Names are
   compared after lower-casing, splitting camelCase and mapping ``-``, ``.`` and spaces to
   ``_``: a name is sensitive if it is in ``SENSITIVE_NAMES`` or ends in one of
   ``SENSITIVE_SUFFIXES``, unless it is in ``ALLOWED_NAMES`` (ids and check values that end in
   ``_key`` but are not secrets).
2. Scrubs every string (values, dict keys, the ``event`` message, rendered tracebacks), in
   this order, replacing each match with a typed marker:

   - ``[redacted:private_key]``: PEM ``-----BEGIN ... PRIVATE KEY-----`` blocks (to the END line,
     or to the end of the text if it is cut off) and signed-note keys ``PRIVATE+KEY+name+id+b64``;
   - ``Bearer [redacted:bearer]``: ``bearer`` (any case), spaces, then the next word;
   - ``[redacted:api_token]``: ``pph_`` followed by 20 or more base64url characters;
   - ``[redacted:hex_key]``: 32 or more hex digits after ``key``/``secret`` then ``=`` or ``:``
     (optionally quoted), or after the master-key file header ``pprl-hub-master-key v1``;
   - ``[redacted]``: the value in ``name=value`` (query strings, logfmt) and ``"name": value``
     (dict and JSON text) when ``name`` is sensitive by rule 1;
   - ``[redacted:secret]``: a run of 43 or more base64 (``A-Za-z0-9+/``, ``=`` padding) or
     base64url (``A-Za-z0-9_-``) characters, not glued to others of its alphabet, that mixes
     upper case, lower case and digits and is not all hex (a 256-bit key is 43-44 characters).
     Hex digests (SHA-256 of files, audit leaf hashes) are all hex and survive; base64-encoded
     hashes and signatures do not, so log hashes as hex;
   - ``[redacted:email]``: ``local@domain.tld``;
   - ``[redacted:dob]``: ``YYYY-MM-DD`` / ``YYYY/MM/DD`` and ``DD/MM/YYYY`` / ``DD-MM-YYYY`` /
     ``DD.MM.YYYY`` (years 1800-2099), unless a time other than midnight follows (``T`` or a
     space then ``hh:mm``): that is a timestamp, such as every line's own;
   - ``[redacted:phone]``: ``+44``/``0044`` (optionally ``(0)``) or ``0`` then ``1``, ``2`` or ``7``
     and 8-9 more digits, single spaces or hyphens allowed between digits;
   - ``[redacted:nhs_number]``: 10 digits, 3-3-4 with optional spaces or hyphens;
   - ``[redacted:postcode]``: a full UK postcode (any case, optional space), e.g. ``CF10 3AT``.

   Number and date patterns only match where no letter or digit is glued on either side, so a
   10-digit run inside a hex digest or an id such as ``ds_01HZX...`` is left alone. Scrubbing is
   repeated until nothing changes, so redacting twice equals redacting once.
3. Writes ``bytes``-like values as ``[bytes:N]``, dates and datetimes as ISO text (then scrubs),
   other objects as ``str()`` (scrubbed). Numbers are kept: an identifier logged as an int under
   a neutral name is not caught (identifier field names are in ``SENSITIVE_NAMES`` for this).

It never raises: a failing ``__str__`` becomes ``[unrepresentable:Type]``, structures deeper
than 32 levels become ``[redacted:too_deep]``, and any other failure logs ``[unloggable]``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Final, TextIO, TypeAlias

import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "ACCESS_FIELDS",
    "ACCESS_LOG_FORMAT",
    "ALLOWED_NAMES",
    "REDACTED",
    "SENSITIVE_NAMES",
    "SENSITIVE_SUFFIXES",
    "AccessLogger",
    "Redactor",
    "configure_logging",
    "get_logger",
    "scrub",
]

REDACTED: Final = "[redacted]"

#: Keys whose values are secrets, or plaintext identifiers, whatever they hold.
SENSITIVE_NAMES: Final = frozenset(
    {
        # credentials and keys
        "authorization", "proxy_authorization", "cookie", "set_cookie", "token", "api_token",
        "bearer", "password", "passwd", "secret", "key", "master_key", "data_key", "private_key",
        "linkage_secret", "record_key", "csrf", "session", "session_id", "sessionid", "apikey",
        # plaintext identifier fields (the hub should never hold them: defence in depth)
        "nhs_number", "dob", "date_of_birth", "birth_date", "email", "phone", "phone_number",
        "mobile", "postcode", "home_address", "forename", "surname", "first_name", "last_name",
        "given_name", "family_name", "full_name",
    }
)  # fmt: skip
SENSITIVE_SUFFIXES: Final = ("_token", "_key", "_secret", "_password")
#: Names ending in ``_key`` that are ids or public values, not secrets: a key's id and check
#: value (they name a key without revealing it), a client's idempotency key, a public key.
ALLOWED_NAMES: Final = frozenset(
    {"key_id", "key_check", "key_check_value", "idempotency_key", "public_key"}
)

_MAX_DEPTH: Final = 32
_MAX_PASSES: Final = 4
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[-.\s]+")
_B = r"(?<![A-Za-z0-9])"  # nothing alphanumeric glued on the left
_E = r"(?![A-Za-z0-9])"  # ... or on the right
_TIME = r"(?P<time>[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_MIDNIGHT = re.compile(r"[T ]00:00(?::00(?:[.,]0+)?)?(?:Z|[+-]\d{2}:?\d{2})?")

_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*)", re.S
)
_NOTE_KEY = re.compile(r"PRIVATE\+KEY\+[^\s+]+\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/]*=*")
_BEARER = re.compile(r"(?i)\b(bearer)[ \t]+(?!\[redacted)[^\s\"',;]+")
_API_TOKEN = re.compile(r"pph_[A-Za-z0-9_-]{20,}")
_HEX_KEY = re.compile(
    r"(?i)((?:key|secret)[\"']?[ \t]*[=:][ \t]*[\"']?|pprl-hub-master-key v\d+ )"
    r"[0-9a-f]{32,}(?![0-9a-z])"
)
_NAMED = re.compile(
    r"(?<![\w-])(?:(?P<q>[\"'])(?P<qname>[A-Za-z][\w-]{0,63})(?P=q)[ \t]*:"
    r"|(?P<name>[A-Za-z][\w-]{0,63})[ \t]*=)"
    r"[ \t]*(?=(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s&,;=?\"'<>()\[\]{}]+))"
)
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43,}=*(?![A-Za-z0-9+/=])")
_B64URL = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43,}(?![A-Za-z0-9_-])")
_HEX = re.compile(r"[0-9a-fA-F]+")
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+(?:'[\w.%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_YEAR = r"(?:18|19|20)\d{2}"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_DOB_YMD = re.compile(_B + _YEAR + r"([-/])" + _MONTH + r"\1" + _DAY + _TIME + _E)
_DOB_DMY = re.compile(_B + _DAY + r"([-/.])" + _MONTH + r"\1" + _YEAR + _TIME + _E)
_PHONE = re.compile(
    r"(?<![A-Za-z0-9+])(?:(?:\+|00)44[ -]?(?:\(0\)[ -]?)?|0)[127](?:[ -]?\d){8,9}" + _E
)
_NHS = re.compile(_B + r"\d{3}[ -]?\d{3}[ -]?\d{4}" + _E)
_POSTCODE = re.compile(
    r"(?i)(?<![A-Z0-9])(?:GIR ?0AA|[A-PR-UWYZ]"
    r"(?:\d{1,2}|[A-HK-Y]\d{1,2}|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRV-Y]) ?\d[ABD-HJLNP-UW-Z]{2})"
    r"(?![A-Z0-9])"
)


def _normalise(name: str) -> str:
    return _SEPARATORS.sub("_", _CAMEL.sub("_", name).lower())


def _secret_like(match: re.Match[str]) -> str:
    run = match.group(0)
    core = run.rstrip("=")
    mixed = any(c.isupper() for c in core) and any(c.islower() for c in core)
    if mixed and any(c.isdigit() for c in core) and not _HEX.fullmatch(core):
        return "[redacted:secret]"
    return run


def _dob(match: re.Match[str]) -> str:
    time = match.group("time")
    if time and not _MIDNIGHT.fullmatch(time):
        return match.group(0)  # a timestamp, not a date of birth
    return "[redacted:dob]"


_Rule: TypeAlias = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]
_BEFORE_NAMED: Final[tuple[_Rule, ...]] = (
    (_PEM, "[redacted:private_key]"),
    (_NOTE_KEY, "[redacted:private_key]"),
    (_BEARER, r"\1 [redacted:bearer]"),
    (_API_TOKEN, "[redacted:api_token]"),
    (_HEX_KEY, r"\1[redacted:hex_key]"),
)
_AFTER_NAMED: Final[tuple[_Rule, ...]] = (
    (_B64, _secret_like),
    (_B64URL, _secret_like),
    (_EMAIL, "[redacted:email]"),
    (_DOB_YMD, _dob),
    (_DOB_DMY, _dob),
    (_PHONE, "[redacted:phone]"),
    (_NHS, "[redacted:nhs_number]"),
    (_POSTCODE, "[redacted:postcode]"),
)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break a log line
        return f"[unrepresentable:{type(value).__name__}]"


class Redactor:
    """structlog processor: drop sensitive keys' values and scrub every string (module doc).

    ``extra_names`` adds sensitive names; ``allowed_names`` replaces ``ALLOWED_NAMES``.
    """

    def __init__(
        self,
        *,
        extra_names: Iterable[str] = (),
        allowed_names: Iterable[str] = ALLOWED_NAMES,
        max_depth: int = _MAX_DEPTH,
    ) -> None:
        self._names = SENSITIVE_NAMES | {_normalise(n) for n in extra_names}
        self._allowed = frozenset(_normalise(n) for n in allowed_names)
        self._max_depth = max_depth

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        try:
            if "exc_info" in event_dict:  # never pass a raw traceback on: render it, then scrub
                event_dict = structlog.processors.format_exc_info(
                    logger, method_name, dict(event_dict)
                )
            return self._mapping(event_dict, 0)
        except Exception:  # noqa: BLE001 - logging must never raise, nor fall back to raw text
            return {"event": "[unloggable]"}

    def is_sensitive(self, name: str) -> bool:
        """Whether a value stored under ``name`` is dropped whatever it holds."""
        norm = _normalise(name)
        if norm in self._allowed:
            return False
        return norm in self._names or norm.endswith(SENSITIVE_SUFFIXES)

    def redact(self, value: object) -> object:
        """``value`` with sensitive keys' values dropped and every string scrubbed."""
        return self._value(value, 0)

    def scrub(self, text: str) -> str:
        """``text`` with every secret and identifier pattern replaced by its marker."""
        for _ in range(_MAX_PASSES):
            new = self._scrub_once(text)
            if new == text:
                break
            text = new
        return text

    def _scrub_once(self, text: str) -> str:
        if len(text) < 3:
            return text
        for pattern, replacement in _BEFORE_NAMED:
            text = pattern.sub(replacement, text)
        text = self._named_values(text)
        for pattern, replacement in _AFTER_NAMED:
            if pattern is not _EMAIL or "@" in text:
                text = pattern.sub(replacement, text)
        return text

    def _named_values(self, text: str) -> str:
        if "=" not in text and ":" not in text:
            return text
        parts: list[str] = []
        pos = 0
        for match in _NAMED.finditer(text):
            name = match.group("name") or match.group("qname")
            if match.start() < pos or not self.is_sensitive(name):
                continue
            start, end = match.span("value")
            quote = text[start] if text[start] in "\"'" else ""
            parts += [text[pos:start], quote, REDACTED, quote]
            pos = end
        return "".join(parts) + text[pos:] if parts else text

    def _key(self, key: object) -> object:
        if key is None or isinstance(key, bool | int | float):
            return key
        if isinstance(key, bytes | bytearray | memoryview):
            return self._value(key, 0)
        return self.scrub(key if isinstance(key, str) else _safe_str(key))

    def _mapping(self, mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, value in list(mapping.items()):
            clean = self._key(key)
            sensitive = isinstance(key, str) and self.is_sensitive(key)
            if sensitive or (isinstance(clean, str) and self.is_sensitive(clean)):
                out[clean] = REDACTED
            else:
                out[clean] = self._value(value, depth + 1)
        return out

    def _value(self, value: object, depth: int) -> object:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bytes | bytearray):
            return f"[bytes:{len(value)}]"
        if isinstance(value, memoryview):
            return f"[bytes:{value.nbytes}]"
        if depth >= self._max_depth:
            return "[redacted:too_deep]"
        if isinstance(value, Mapping):
            return self._mapping(value, depth)
        if isinstance(value, tuple):
            return tuple(self._value(v, depth + 1) for v in value)
        if isinstance(value, list | set | frozenset):
            return [self._value(v, depth + 1) for v in value]
        if isinstance(value, date):
            return self.scrub(value.isoformat())
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {_safe_str(value)}")
        return self.scrub(_safe_str(value))


_DEFAULT_REDACTOR: Final = Redactor()


def scrub(text: str) -> str:
    """``text`` scrubbed by the default ``Redactor`` (for error messages and reports too)."""
    return _DEFAULT_REDACTOR.scrub(text)


#: Fields of an access-log line; also the stdlib ``extra`` keys copied into the event.
ACCESS_FIELDS: Final = ("method", "path", "status", "bytes", "duration_ms", "remote")
#: The access-log message, a ``%``-mapping over ``ACCESS_FIELDS``. aiohttp's Apache-style atoms
#: cannot say "path without query" (``%r`` is ``request.path_qs``), so pass both
#: ``access_log_class=AccessLogger`` and ``access_log_format=ACCESS_LOG_FORMAT``.
ACCESS_LOG_FORMAT: Final = '%(remote)s "%(method)s %(path)s" %(status)s %(bytes)s %(duration_ms)sms'
_ACCESS_SAMPLE: Final = dict.fromkeys(ACCESS_FIELDS, 0)


class AccessLogger(AbstractAccessLogger):
    """aiohttp access logger: method, path without its query, status, bytes, duration, remote.

    No header is read, so the Authorization header and cookies never reach the log. The fields
    go on the record as ``extra`` and ``configure_logging`` copies them into the JSON event. An
    Apache-style format (aiohttp's default) is replaced by ``ACCESS_LOG_FORMAT``.
    """

    def __init__(self, logger: logging.Logger, log_format: str = ACCESS_LOG_FORMAT) -> None:
        if "%(" not in log_format:
            log_format = ACCESS_LOG_FORMAT
        try:
            log_format % _ACCESS_SAMPLE
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"bad access log format {log_format!r}: {exc}") from None
        super().__init__(logger, log_format)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "bytes": response.body_length,
            "duration_ms": round(time * 1000, 3),
            "remote": request.remote or "-",
        }
        self.logger.info(self.log_format, fields, extra=fields)


_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
#: Loggers held at WARNING or above: at DEBUG/INFO they print SQL parameters.
_CAPPED: Final = ("sqlalchemy", "aiosqlite")
_OURS: Final = "_pprl_hub_handler"


def _formatter(renderer: Processor, pre_chain: list[Processor]) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            Redactor(),
            renderer,
        ],
    )


def configure_logging(
    *,
    level: str = "info",
    json: bool = True,
    stream: TextIO | None = None,
    log_file: Path | None = None,
) -> None:
    """Send structlog and stdlib logging, redacted, to ``stream`` (default: stderr).

    ``json`` picks JSON lines or the console renderer; ``log_file`` (created 0600) always gets
    JSON lines. Replaces the root logger's handlers (any other would print raw event dicts),
    captures ``warnings`` and turns off logging's own error printing, which shows raw records.
    Calling it again reconfigures; it never runs at import time.
    """
    numeric = _LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(_LEVELS)}")
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # so tests can reconfigure and capture_logs works
    )
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(ACCESS_FIELDS),
        timestamper,
    ]
    out = sys.stderr if stream is None else stream
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    handler: logging.Handler = logging.StreamHandler(out)
    handler.setFormatter(_formatter(renderer, pre_chain))
    handlers = [handler]
    if log_file is not None:
        log_file.touch(mode=0o600, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(_formatter(structlog.processors.JSONRenderer(), pre_chain))
        handlers.append(handler)

    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if getattr(old, _OURS, False):
            old.close()
    for new in handlers:
        setattr(new, _OURS, True)
        root.addHandler(new)
    root.setLevel(numeric)
    for name in _CAPPED:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
    logging.raiseExceptions = False


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (default: the calling module)."""
    return structlog.stdlib.get_logger() if name is None else structlog.stdlib.get_logger(name)
