"""Schemathesis against the hub's own OpenAPI description: every operation, generated from
its declared parameters and bodies, sent as each role and without credentials, to a real hub
on loopback (SQLite). No request may cause a server error, and every response must match
what the description declares (status, content type, the error body's schema).

The description is built from the route table itself (what ``/openapi.json`` serves; a test
in ``test_meta.py`` keeps the two identical), so the operations are known when pytest
collects this module."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hub import __version__
from hub.openapi import openapi
from hub.routes import ROUTES
from tests.integration.hub.conftest import RunningHub, _init, start_hub, stop_hub

SCHEMA = schemathesis.openapi.from_dict(openapi(ROUTES, title="pprl hub", version=__version__))
#: Examples per operation (each sent as every caller): 3 in ``make test``; the long run in
#: docs/security.md sets ``PPRL_FUZZ_EXAMPLES``.
EXAMPLES = int(os.environ.get("PPRL_FUZZ_EXAMPLES", "3"))
#: Status codes of every fuzzed request, printed by the last test (``pytest -s``).
STATUSES: Counter[int] = Counter()
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Callers:
    hub: RunningHub
    tokens: dict[str, str | None]


@pytest.fixture(scope="module")
def callers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callers]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "hub"
    hub = start_hub(data_dir, _init(data_dir, "sqlite"))
    try:
        hub.call("POST", "/v1/agencies", hub.admin_token, {"id": "ae-fuzz", "name": "A&E"})
        tokens: dict[str, str | None] = {"anonymous": None, "admin": hub.admin_token}
        for role in ("auditor", "analyst", "approver", "data_officer"):
            agency = "ae-fuzz" if role == "data_officer" else None
            tokens[role] = hub.token_for(f"fuzz {role}", [role], agency=agency)
        yield Callers(hub, tokens)
    finally:
        stop_hub(hub)
        log = (data_dir.parent / "hub-serve.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_breaks_the_hub(case: schemathesis.Case, callers: Callers) -> None:
    for token in callers.tokens.values():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call_and_validate(
            base_url=callers.hub.url, headers=headers, checks=CHECKS, timeout=30
        )
        STATUSES[response.status_code] += 1


def test_the_log_still_verifies_after_fuzzing(callers: Callers, tmp_path: Path) -> None:
    from audit.cli import main as audit_main

    token = tmp_path / "auditor.token"
    token.write_text(str(callers.tokens["auditor"]))
    key = tmp_path / "log.pub"
    key.write_text(callers.hub.log_vkey)
    args = ["verify", "--hub", callers.hub.url, "--token-file", str(token), "--log-key", str(key)]
    assert audit_main(args) == 0
    status, me = callers.hub.call("GET", "/v1/me", callers.tokens["auditor"])
    assert status == 200 and json.dumps(me)
    assert not any(code >= 500 for code in STATUSES)
    print(f"\nfuzzed requests: {sum(STATUSES.values())}; by status: {sorted(STATUSES.items())}")
