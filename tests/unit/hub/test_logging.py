"""hub.logging: the Redactor's rules, and the configured pipeline end to end."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from hub.logging import (
    ACCESS_LOG_FORMAT,
    REDACTED,
    AccessLogger,
    Redactor,
    configure_logging,
    get_logger,
    scrub,
)
from tests.conftest import REPO

TOKEN = "pph_" + "k3Jd9xYzQw8RtLmN2pVb7cHs4fGa1eKiUoP0lZyX5Aq"
HEX_KEY = "5f1c" * 16
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
DATASET_ID = "ds_01HZXK4V7M3Q9TJ8R2WBN5YCFD"
KEY_ID = "kid_4be3a1f09c"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n"
    "-----END PRIVATE KEY-----"
)
B64_SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # 32 bytes


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put structlog and stdlib logging back as they were, so other tests are unaffected."""
    root = logging.getLogger()
    handlers, level, raise_exc = root.handlers[:], root.level, logging.raiseExceptions
    capped = {n: logging.getLogger(n).level for n in ("sqlalchemy", "aiosqlite")}
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, lvl in capped.items():
        logging.getLogger(name).setLevel(lvl)
    logging.captureWarnings(False)
    logging.raiseExceptions = raise_exc
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "authorization", "Authorization", "Set-Cookie", "cookie", "token", "api_token", "bearer",
        "password", "secret", "key", "master_key", "data-key", "private_key", "linkage_secret",
        "record_key", "csrf", "session", "access_token", "filter_key", "X-API-Key", "apiKey",
        "MASTER_KEY", "db_password", "client_secret", "nhs_number", "email",
    ],
)  # fmt: skip
def test_sensitive_names_drop_the_value(name: str) -> None:
    """A key that is sensitive by name, in any case or separator style, loses its value."""
    out = Redactor()(None, "info", {"event": "x", name: "plaintext-value", "count": 3})
    assert out == {"event": "x", name: REDACTED, "count": 3}


@pytest.mark.parametrize(
    "name", ["key_id", "KeyId", "key_check", "key_check_value", "idempotency_key", "public_key"]
)
def test_allow_listed_key_names_survive(name: str) -> None:
    """Ids and check values whose names end in ``_key`` are allow-listed and kept."""
    assert Redactor()(None, "info", {name: "k_4be3"}) == {name: "k_4be3"}


def test_neutral_names_survive() -> None:
    """Names that merely contain a sensitive word (tokens, token_id, keys) are kept."""
    event = {"tokens": 5, "token_id": "t_abc", "n_keys": 2, "keyring": "hub", "dataset_id": "d"}
    assert Redactor()(None, "info", event) == event


def test_nested_structures_are_redacted_recursively() -> None:
    """Sensitive keys and patterns are found inside nested dicts, lists and tuples."""
    event = {
        "event": "loaded",
        "config": {"keys": [{"master_key": HEX_KEY, "key_id": KEY_ID}], "to": ("a@b.org", 1)},
    }
    out = Redactor()(None, "info", event)
    assert out["config"] == {
        "keys": [{"master_key": REDACTED, "key_id": KEY_ID}],
        "to": ("[redacted:email]", 1),
    }


def test_a_sensitive_name_drops_a_whole_structure() -> None:
    """A sensitive key's value is dropped whole, even when it is a dict or list."""
    out = Redactor()(None, "info", {"secret": {"a": [1, 2]}, "tokens": [TOKEN]})
    assert out == {"secret": REDACTED, "tokens": ["[redacted:api_token]"]}


def test_input_is_not_mutated() -> None:
    """The redactor builds new containers: the caller's nested objects are left as they were."""
    inner = {"password": "p", "note": "a@b.org"}
    event = {"event": "x", "inner": inner}
    Redactor()(None, "info", event)
    assert inner == {"password": "p", "note": "a@b.org"}


def test_extra_and_allowed_names_are_options() -> None:
    """``extra_names`` adds sensitive names; ``allowed_names`` replaces the allow-list."""
    redactor = Redactor(extra_names=["Salt"], allowed_names=["sort_key"])
    out = redactor(None, "info", {"salt": "s", "sort_key": "a", "idempotency_key": "i"})
    assert out == {"salt": REDACTED, "sort_key": "a", "idempotency_key": REDACTED}


# --- patterns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", "Authorization: Bearer [redacted:bearer]"),
        ("bearer abc.def-ghi", "bearer [redacted:bearer]"),
        (f"token {TOKEN} used", "token [redacted:api_token] used"),
        (f"key={HEX_KEY}", "key=[redacted:hex_key]"),
        (f"secret: {HEX_KEY}", "secret: [redacted:hex_key]"),
        (f"{{'secret': '{HEX_KEY}'}}", "{'secret': '[redacted]'}"),
        (f"pprl-hub-master-key v1 {HEX_KEY}", "pprl-hub-master-key v1 [redacted:hex_key]"),
        (f"got {PEM} here", "got [redacted:private_key] here"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQ (cut", "[redacted:private_key]"),
        ("PRIVATE+KEY+hub+0a1b2c3d+AZx9/Qk+w== end", "[redacted:private_key] end"),
        (f"seed {B64_SECRET}.", "seed [redacted:secret]."),
        ("k3Jd9_xYz-Qw8RtLmN2pVb7cHs4fGa1eKiUoP0lZyX5", "[redacted:secret]"),
        ("GET /x?token=abc&page=2&api_key=zz", "GET /x?token=[redacted]&page=2&api_key=[redacted]"),
        ("{'password': 'correct horse', 'n': 1}", "{'password': '[redacted]', 'n': 1}"),
        ('note="password=hunter2"', 'note="password=[redacted]"'),
        ("mail alice.o'brien+x@example.co.uk now", "mail [redacted:email] now"),
        ("+44 7700 900123", "[redacted:phone]"),
        ("+44 (0)7700 900123", "[redacted:phone]"),
        ("+447700900123", "[redacted:phone]"),
        ("call 07700 900123.", "call [redacted:phone]."),
        ("07700-900-123", "[redacted:phone]"),
        ("020 7946 0958", "[redacted:phone]"),
        ("nhs 943 476 5919", "nhs [redacted:nhs_number]"),
        ("9434765919", "[redacted:nhs_number]"),
        ("943-476-5919", "[redacted:nhs_number]"),
        ("at CF10 3AT", "at [redacted:postcode]"),
        ("cf103at", "[redacted:postcode]"),
        ("SW1A 1AA, M1 1AE, EC1A 1BB, B33 8TH", ", ".join(["[redacted:postcode]"] * 4)),
        ("born 1984-03-07", "born [redacted:dob]"),
        ("born 07/03/1984", "born [redacted:dob]"),
        ("born 7.3.1984", "born [redacted:dob]"),
        ("born 1984-03-07T00:00:00", "born [redacted:dob]"),
        ("born 07/03/1984 00:00", "born [redacted:dob]"),
    ],
)
def test_patterns_are_replaced_by_typed_markers(text: str, expected: str) -> None:
    """Each secret or identifier pattern in free text becomes its typed marker."""
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"file sha256 {SHA256}",
        SHA256.upper(),
        f"audit leaf {SHA256} at 12",
        f"dataset {DATASET_ID} ready",
        f"{KEY_ID} key_id={KEY_ID} key_check_value=8c1f",
        "123e4567-e89b-12d3-a456-426614174000",
        "at 2024-06-01T12:34:56.123456Z and 2024-06-01 09:30:00",
        "unknown key: 'dataset'; missing token: header absent",
        'File "/work/main/hub/store/datasets.py", line 120, in append_rows',
        "version 2024.10.31 on 192.168.1.20:8443, 12 rows, 0.25s",
        "u_k3j9abcdefghijklm",
        "test_redactor_never_raises_on_arbitrary_nested_structures_at_all",
    ],
)
def test_non_secrets_survive(text: str) -> None:
    """Hex digests, ids, timestamps, versions, addresses and code paths are left alone."""
    assert scrub(text) == text


def test_event_and_keys_are_scrubbed() -> None:
    """The ``event`` message and dict keys are scrubbed like any other string."""
    out = Redactor()(None, "info", {"event": "sent to a@b.org", "by": {"c@d.org": 1}})
    assert out == {"event": "sent to [redacted:email]", "by": {"[redacted:email]": 1}}


def test_unusual_values_never_raise() -> None:
    """Bytes become ``[bytes:N]``; dates, exceptions and objects become scrubbed text."""

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    class Person:
        def __str__(self) -> str:
            return "Person(ann@example.org)"

    event = {
        "raw": b"\x00secret",
        "buf": bytearray(3),
        "view": memoryview(b"abcd"),
        "born": date(1984, 3, 7),
        "at": datetime(2024, 6, 1, 12, 30, tzinfo=UTC),
        "error": ValueError("no row for 943 476 5919"),
        "broken": Broken(),
        "who": Person(),
        "ids": {"b"},
        (1, 2): "tuple key",
    }
    out = Redactor().redact(event)
    assert out == {
        "raw": "[bytes:7]",
        "buf": "[bytes:3]",
        "view": "[bytes:4]",
        "born": "[redacted:dob]",
        "at": "2024-06-01T12:30:00+00:00",
        "error": "ValueError: no row for [redacted:nhs_number]",
        "broken": "[unrepresentable:Broken]",
        "who": "Person([redacted:email])",
        "ids": ["b"],
        "(1, 2)": "tuple key",
    }


def test_cycles_and_deep_nesting_are_cut() -> None:
    """A self-referencing or very deep structure is cut with a marker instead of recursing."""
    loop: list[Any] = []
    loop.append(loop)
    out = Redactor(max_depth=3).redact({"a": loop})
    assert out == {"a": [["[redacted:too_deep]"]]}


def test_unrendered_exc_info_is_rendered_then_scrubbed() -> None:
    """An ``exc_info`` left for it is rendered to ``exception`` text and scrubbed."""
    with capture_logs(processors=[Redactor()]) as logs:
        try:
            raise KeyError("alice@example.org")
        except KeyError:
            get_logger("hub.test").exception("lookup failed")
    assert "exc_info" not in logs[0]
    assert "KeyError: '[redacted:email]'" in logs[0]["exception"]
    assert "alice@example.org" not in logs[0]["exception"]


def test_redactor_works_as_a_plain_processor_with_capture_logs() -> None:
    """Without configure_logging, get_logger works and the Redactor can be used in capture."""
    with capture_logs(processors=[Redactor()]) as logs:
        get_logger("hub.test").info("upload from a@b.org", password="p", rows=3)
    assert logs == [
        {"event": "upload from [redacted:email]", "password": REDACTED, "rows": 3,
         "log_level": "info"}
    ]  # fmt: skip


# --- properties ------------------------------------------------------------------------------

FRAGMENTS = [
    "Bearer ", "bearer\t", "pph_", "key=", "secret: ", "password=", "'token': ", "?api_key=",
    "&", "=", '"', "'", " ", "\n", "@", "alice", "example.com", ".", "-", "_", "/", "+", ":",
    "943 476 5919", "9434765919", "07700 900123", "+44 ", "(0)", "CF10 3AT", "1984-03-07",
    "T00:00", " 12:00", "07/03/1984", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
    "PRIVATE+KEY+", HEX_KEY, SHA256, B64_SECRET, TOKEN, DATASET_ID, "[redacted", "]", "0", "A",
]  # fmt: skip
tricky_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=10).map("".join)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | tricky_text
    | st.binary(max_size=8)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8) | tricky_text, children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_like)
def test_redact_never_raises_and_is_idempotent(value: object) -> None:
    """On any JSON-like structure the redactor returns, and redacting twice equals once."""
    redactor = Redactor()
    once = redactor.redact(value)
    assert redactor.redact(once) == once


@settings(max_examples=50)
@given(st.dictionaries(st.text(max_size=8) | tricky_text, json_like, max_size=4))
def test_processor_is_idempotent_on_event_dicts(event: dict[str, Any]) -> None:
    """As a processor on whole event dicts, a second pass changes nothing."""
    redactor = Redactor()
    once = redactor(None, "info", dict(event))
    assert redactor(None, "info", dict(once)) == once


@given(tricky_text)
def test_scrub_is_idempotent(text: str) -> None:
    """Scrubbed text contains nothing left to scrub (markers never match a pattern)."""
    assert scrub(scrub(text)) == scrub(text)


# --- the configured pipeline -----------------------------------------------------------------

PLAINTEXT = [
    TOKEN, "abc.def.ghi", "hunter2", HEX_KEY, "alice@example.org", "943 476 5919", "CF10 3AT",
    "1984-03-07", "07700 900123", "MC4CAQAwBQYDK2VwBCIEIJ", "bob@example.net",
]  # fmt: skip


def test_end_to_end_json_lines_carry_no_plaintext() -> None:
    """Through the real configured pipeline, every line is JSON and no plaintext survives."""
    out = io.StringIO()
    configure_logging(stream=out)
    log = get_logger("hub.test")
    log.info("auth header was Bearer abc.def.ghi", note=TOKEN, password="hunter2")
    log.info("config loaded", config={"keys": {"master_key": HEX_KEY, "key_id": KEY_ID}})
    log.info("person alice@example.org nhs 943 476 5919 at CF10 3AT born 1984-03-07")
    log.warning("callback", phone="07700 900123", blob=PEM)
    log.info("dataset stored", dataset_id=DATASET_ID, sha256=SHA256, key_id=KEY_ID)
    try:
        raise LookupError("no record for bob@example.net")
    except LookupError:
        log.exception("linkage failed")

    text = out.getvalue()
    lines = _lines(out)
    assert len(lines) == 6
    for plain in PLAINTEXT:
        assert plain not in text
    assert lines[0]["password"] == REDACTED
    assert lines[0]["note"] == "[redacted:api_token]"
    assert lines[1]["config"] == {"keys": {"master_key": REDACTED, "key_id": KEY_ID}}
    assert lines[3]["blob"] == "[redacted:private_key]"
    assert (lines[4]["dataset_id"], lines[4]["sha256"], lines[4]["key_id"]) == (
        DATASET_ID,
        SHA256,
        KEY_ID,
    )
    assert lines[5]["level"] == "error"
    assert "LookupError: no record for [redacted:email]" in lines[5]["exception"]
    for line in lines:
        assert line["logger"] == "hub.test"
        assert line["timestamp"].endswith("Z")
        assert "[redacted" not in line["timestamp"]


def test_stdlib_records_and_warnings_go_through_the_same_chain() -> None:
    """aiohttp.server records (with tracebacks) and ``warnings`` come out as redacted JSON."""
    out = io.StringIO()
    configure_logging(stream=out)
    try:
        raise RuntimeError("bad row 943 476 5919")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s", "a@b.org")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("row for alice@example.org skipped", UserWarning, stacklevel=1)
    first, second = _lines(out)
    assert first["logger"] == "aiohttp.server"
    assert first["event"] == "Error handling request from [redacted:email]"
    assert "RuntimeError: bad row [redacted:nhs_number]" in first["exception"]
    assert second["logger"] == "py.warnings"
    assert "[redacted:email]" in second["event"]
    assert "943 476 5919" not in out.getvalue() and "a@b.org" not in out.getvalue()


def test_context_vars_are_merged() -> None:
    """A request id bound in contextvars appears on structlog and stdlib lines alike."""
    out = io.StringIO()
    configure_logging(stream=out)
    structlog.contextvars.bind_contextvars(request_id="req_7")
    get_logger("hub.test").info("one")
    logging.getLogger("aiohttp.server").warning("two")
    assert [line["request_id"] for line in _lines(out)] == ["req_7", "req_7"]


def test_level_filter_applies_to_both_kinds_of_logger() -> None:
    """Below the configured level nothing is written, from structlog or stdlib loggers."""
    out = io.StringIO()
    configure_logging(level="warning", stream=out)
    get_logger("hub.test").info("quiet")
    logging.getLogger("aiohttp.access").info("quiet")
    get_logger("hub.test").warning("loud")
    assert [line["event"] for line in _lines(out)] == ["loud"]
    assert logging.getLogger("sqlalchemy").level == logging.WARNING


def test_unknown_level_is_refused() -> None:
    """A level name that logging does not know is a clear error."""
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging(level="loud", stream=io.StringIO())


def test_reconfiguring_replaces_handlers() -> None:
    """Calling configure_logging twice writes each event once, to the newest stream."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    get_logger("hub.test").info("once")
    assert first.getvalue() == ""
    assert [line["event"] for line in _lines(second)] == ["once"]


def test_console_renderer_is_redacted_too() -> None:
    """With json=False the console renderer gets the same redacted event."""
    out = io.StringIO()
    configure_logging(json=False, stream=out)
    get_logger("hub.test").info("to alice@example.org", password="hunter2")
    text = out.getvalue()
    assert "[redacted:email]" in text and "alice@example.org" not in text
    assert "hunter2" not in text


def test_log_file_gets_private_json_lines(tmp_path: Path) -> None:
    """The optional log file is created 0600 and gets the same redacted JSON lines."""
    log_file = tmp_path / "hub.log"
    configure_logging(json=False, stream=io.StringIO(), log_file=log_file)
    get_logger("hub.test").info("stored", email="alice@example.org")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert log_file.stat().st_mode & 0o777 == 0o600
    (line,) = [json.loads(x) for x in log_file.read_text().splitlines()]
    assert line["email"] == REDACTED and line["event"] == "stored"


def test_importing_configures_nothing() -> None:
    """Importing hub.logging leaves structlog and the root logger untouched."""
    code = (
        "import logging, structlog, hub.logging; "
        "print(structlog.is_configured(), len(logging.getLogger().handlers))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "0"]


# --- the aiohttp access log ------------------------------------------------------------------


async def _request_through_real_server(path: str, headers: dict[str, str]) -> int:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/datasets/{id}", handler)
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger, access_log_format=ACCESS_LOG_FORMAT)
    async with TestClient(server) as client:
        response = await client.get(path, headers=headers)
        return response.status


def test_access_log_is_json_without_query_or_headers() -> None:
    """A real request logs method, path, status, bytes, duration, remote: no query, no auth."""
    out = io.StringIO()
    configure_logging(stream=out)
    status = asyncio.run(
        _request_through_real_server(
            f"/datasets/{DATASET_ID}?token={TOKEN}&email=alice@example.org",
            {"Authorization": f"Bearer {TOKEN}", "Cookie": "session=s3cr3t"},
        )
    )
    assert status == 200
    (line,) = [x for x in _lines(out) if x["logger"] == "aiohttp.access"]
    assert line["method"] == "GET"
    assert line["path"] == f"/datasets/{DATASET_ID}"
    assert line["status"] == 200
    assert line["bytes"] > 0
    assert line["duration_ms"] >= 0
    assert line["remote"] == "127.0.0.1"
    assert line["event"].startswith(f'127.0.0.1 "GET /datasets/{DATASET_ID}" 200 ')
    text = out.getvalue()
    for plain in (TOKEN, "alice@example.org", "s3cr3t", "?", "Bearer"):
        assert plain not in text


def test_access_logger_falls_back_from_apache_formats() -> None:
    """aiohttp's Apache-style default (whose %r has the query) is replaced by ours."""
    logger = logging.getLogger("aiohttp.access")
    assert AccessLogger(logger, '%a %t "%r" %s %b').log_format == ACCESS_LOG_FORMAT
    assert AccessLogger(logger, "%(method)s %(path)s").log_format == "%(method)s %(path)s"
    with pytest.raises(ValueError, match="bad access log format"):
        AccessLogger(logger, "%(query)s")
