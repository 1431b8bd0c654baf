"""The OpenAPI 3.1 description of the hub's API, built from the route table.

Paths, methods, summaries and security come from ``hub.routes.ROUTES`` itself, so the
description cannot list an endpoint that does not exist or miss one that does (a test also
checks it against the running app). Request bodies and query parameters are declared here,
next to nothing else, as JSON Schema; the handlers refuse anything these schemas refuse
(unknown fields, missing fields, wrong types), which the fuzzing in the evidence issue will
hold them to.
"""

from __future__ import annotations

import re
from typing import Any, Final

from hub.permissions import Permission, Role, roles_granting

__all__ = ["REQUEST_BODIES", "openapi"]

_SLUG: Final = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,62}$"}
_SHA256: Final = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_NAME: Final = {"type": "string", "minLength": 1, "maxLength": 200}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


_AGREEMENT: Final = {
    "title": _NAME,
    "purpose": {"type": "string", "minLength": 1, "maxLength": 2000},
    "status": {"enum": ["draft", "active", "suspended", "ended"]},
    "parties": {
        "type": "array",
        "minItems": 2,
        "items": _object(
            ["agency", "lawful_basis"],
            agency=_SLUG,
            lawful_basis={"type": "string", "minLength": 1, "maxLength": 500},
            fields={
                "type": "array",
                "items": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"},
            },
        ),
    },
    "disclosure": _object(
        [],
        min_cell={"type": "integer", "minimum": 1, "maximum": 1000},
        rounding={"type": "integer", "minimum": 1, "maximum": 1000},
        secondary_suppression={"type": "boolean"},
    ),
    "retention_days": {"type": "integer", "minimum": 1, "maximum": 36500},
    "review_date": {"type": "string", "format": "date"},
    "release": _object(
        [],
        record_level={"type": "boolean"},
        aggregate={"type": "boolean"},
        record_pseudonyms={"type": "boolean"},
        match_weights={"type": "boolean"},
    ),
    "feedback": {
        "type": "array",
        "items": _object(["to", "about"], to=_SLUG, about={"type": "array", "items": _SLUG}),
    },
}
_WHERE: Final = _object(["field", "in"], field={"type": "string"}, **{"in": {"type": "array"}})
_AGREEMENT_REQUIRED: Final = ["title", "purpose", "parties", "retention_days", "review_date"]

REQUEST_BODIES: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("POST", "/v1/agencies"): _object(["id", "name"], id=_SLUG, name=_NAME),
    ("POST", "/v1/agencies/{agency_id}/certificates"): _object(
        ["certificate"], certificate={"type": "string", "maxLength": 20000}
    ),
    ("POST", "/v1/users"): _object(
        ["name", "roles"],
        name=_NAME,
        agency=_SLUG,
        roles={"type": "array", "minItems": 1, "items": {"enum": [r.value for r in Role]}},
    ),
    ("POST", "/v1/users/{user_id}/tokens"): _object(
        [], label=_NAME, lifetime_days={"type": "integer", "minimum": 1}
    ),
    ("POST", "/v1/agreements"): _object(["id", *_AGREEMENT_REQUIRED], id=_SLUG, **_AGREEMENT),
    ("PUT", "/v1/agreements/{agreement_id}"): _object(
        ["based_on", *_AGREEMENT_REQUIRED], based_on={"type": "integer", "minimum": 1}, **_AGREEMENT
    ),
    ("POST", "/v1/projects"): _object(
        ["id", "name", "agreement", "schema_id", "schema_hash", "key_check_value"],
        id=_SLUG,
        name=_NAME,
        agreement=_SLUG,
        schema_id=_SLUG,
        schema_hash=_SHA256,
        key_check_value={"type": "string", "pattern": "^[0-9a-f]{16}$"},
    ),
    ("POST", "/v1/projects/{project_id}/uploads"): _object(
        ["size", "sha256"], size={"type": "integer", "minimum": 1}, sha256=_SHA256
    ),
    ("POST", "/v1/projects/{project_id}/runs"): _object(
        [],
        datasets={"type": "array", "items": {"type": "string"}},
        threshold={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    ),
    ("POST", "/v1/runs/{run_id}/cancel"): _object([]),
    ("POST", "/v1/projects/{project_id}/extracts"): _object(
        ["run", "kind", "justification", "attributes"],
        run={"type": "string"},
        kind={"enum": ["records", "aggregate"]},
        justification={"type": "string", "minLength": 1, "maxLength": 2000},
        attributes={
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        generalise={"type": "object"},
        filters=_object(
            [],
            linked_to_all={"type": "array", "items": _SLUG},
            where={
                "type": "array",
                "items": _object(
                    ["field", "in"], field={"type": "string"}, **{"in": {"type": "array"}}
                ),
            },
        ),
        group_by={"type": "array", "items": {"type": "string"}, "maxItems": 3},
        count={"enum": ["entities", "records"]},
        include={"type": "array", "items": {"enum": ["record_pseudonyms", "match_weights"]}},
        format={"enum": ["parquet", "csv"]},
    ),
    ("POST", "/v1/extracts/{extract_id}/decisions"): _object(
        ["decision", "capacity"],
        decision={"enum": ["approve", "refuse"]},
        capacity={"type": "string"},
        reason={"type": "string", "maxLength": 2000},
    ),
    ("POST", "/v1/audit/cosignatures"): _object(
        ["size", "cosignature", "vkey"],
        size={"type": "integer", "minimum": 0},
        cosignature={"type": "string"},
        vkey={"type": "string"},
    ),
}

_RAW_BODIES: Final = {("PUT", "/v1/uploads/{upload_id}/chunks/{index}")}

_QUERY: Final[dict[tuple[str, str], list[tuple[str, dict[str, Any], bool]]]] = {
    ("GET", "/v1/audit/entries"): [
        ("since", {"type": "string", "format": "date-time"}, False),
        ("until", {"type": "string", "format": "date-time"}, False),
        ("actor", {"type": "string"}, False),
        ("agency", {"type": "string"}, False),
        ("action", {"type": "string"}, False),
        ("dsa", {"type": "string"}, False),
        ("outcome", {"enum": ["allowed", "refused", "error"]}, False),
        ("after", {"type": "integer", "minimum": 0}, False),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False),
    ],
    ("GET", "/v1/audit/entries.jsonl"): [
        ("after", {"type": "integer", "minimum": 0}, False),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, False),
    ],
    ("GET", "/v1/audit/checkpoints"): [
        ("after", {"type": "integer", "minimum": 0}, False),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, False),
    ],
    ("GET", "/v1/audit/proofs/inclusion"): [
        ("index", {"type": "integer", "minimum": 0}, True),
        ("size", {"type": "integer", "minimum": 1}, True),
    ],
    ("GET", "/v1/audit/proofs/consistency"): [
        ("old", {"type": "integer", "minimum": 0}, True),
        ("new", {"type": "integer", "minimum": 0}, True),
    ],
}

_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }
    },
}

_TEXT_RESPONSES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("GET", "/v1/audit/checkpoint"): ("text/plain",),
    ("GET", "/v1/audit/entries.jsonl"): ("application/x-ndjson",),
    ("GET", "/v1/runs/{run_id}/feedback"): ("application/vnd.apache.parquet",),
    ("GET", "/v1/extracts/{extract_id}/files/{name}"): (
        "application/vnd.apache.parquet",
        "text/csv",
    ),
    ("GET", "/metrics"): ("text/plain",),
}


def _operation(route: Any) -> dict[str, Any]:
    key = (route.method, route.path)
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{([a-z_]+)\}", route.path)
    ]
    params += [
        {"name": name, "in": "query", "required": required, "schema": schema}
        for name, schema, required in _QUERY.get(key, [])
    ]
    if key in _RAW_BODIES:
        params.append(
            {"name": "X-Chunk-SHA256", "in": "header", "required": True, "schema": _SHA256}
        )
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{route.handler.__name__}",
        "x-permission": route.permission.value,
        "x-audit-action": route.action,
        "parameters": params,
        "responses": {
            "default": {
                "description": "an error",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    kinds = _TEXT_RESPONSES.get(key, ("application/json",))
    content = {
        kind: {"schema": {"type": "object"} if kind == "application/json" else {"type": "string"}}
        for kind in kinds
    }
    op["responses"]["2XX"] = {"description": "success", "content": content}
    if key in REQUEST_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": REQUEST_BODIES[key]}},
        }
    elif key in _RAW_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    if route.permission is Permission.PUBLIC:
        op["security"] = []
    else:
        roles = sorted(r.value for r in roles_granting(route.permission))
        op["x-roles"] = roles if route.permission is not Permission.AUTHENTICATED else ["any"]
    return op


def openapi(routes: Any, *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes`` (``hub.routes.ROUTES``)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The pprl data-sharing hub. Every operation except the health "
            "checks needs a bearer token and is recorded in the audit log.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
