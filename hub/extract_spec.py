"""Extract requests: what an analyst asks for, checked against the agreement before anyone
is asked to approve it.

A request names a finished run and either ``records`` (one row per linked record, with a
fresh random entity id per extract) or an ``aggregate`` (counts grouped by attributes,
through disclosure control). It lists the attributes it wants from each agency, optional
filters and generalisations, and a justification saying how it serves the agreement's
purpose. Anything the agreement does not permit (an attribute not in that agency's
``fields``, a record-level extract when only aggregates are allowed, record pseudonyms or
match weights when the agreement says no) is refused at once, naming the first problem.

The request needs approvals in these capacities (``required_capacities``): one from an
approver of every data-owning agency whose attributes it contains (``agency:<id>``) and one
information-governance approval (``governance``), from at least two different people, none
of them the requester.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hub.agreements import Agreement, text_field
from hub.errors import BadRequest, Forbidden
from hub.release.generalise import GeneralisationError, parse_generalisation

__all__ = [
    "GOVERNANCE",
    "REQUEST_KEYS",
    "ExtractSpec",
    "Filter",
    "parse_extract_spec",
    "required_capacities",
]

GOVERNANCE: Final = "governance"
KINDS: Final = ("records", "aggregate")
FORMATS: Final = ("parquet", "csv")
REQUEST_KEYS: Final = frozenset(
    {
        "run",
        "kind",
        "justification",
        "attributes",
        "generalise",
        "filters",
        "group_by",
        "count",
        "include",
        "format",
    }
)
_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")
_INCLUDES: Final = ("record_pseudonyms", "match_weights")
MAX_VALUES = 200


@dataclass(frozen=True, slots=True)
class Filter:
    """Keep records whose ``field`` is one of ``values``."""

    field: str
    values: tuple[str | int | float | bool, ...]


@dataclass(frozen=True, slots=True)
class ExtractSpec:
    run: str
    kind: str
    justification: str
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    generalise: Mapping[str, Any]
    linked_to_all: tuple[str, ...]
    where: tuple[Filter, ...]
    group_by: tuple[str, ...]
    count: str
    include: tuple[str, ...]
    format: str
    document: str

    @property
    def agencies(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.attributes)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every attribute column the output draws on, once, in request order."""
        seen: dict[str, None] = {}
        for _, fields in self.attributes:
            for f in fields:
                seen[f] = None
        return tuple(seen)

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.document.encode()).hexdigest()


def _fields(raw: object, name: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(f, str) and _FIELD.fullmatch(f) for f in raw
    ):
        raise BadRequest(f"{name} must be a list of attribute field names")
    if len(set(raw)) != len(raw):
        raise BadRequest(f"{name} has duplicates")
    return tuple(raw)


def _attributes(
    raw: object, agreement: Agreement, run_agencies: Sequence[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, dict) or not raw:
        raise BadRequest("attributes must map agency ids to the fields wanted from each")
    out = []
    for agency, wanted in sorted(raw.items()):
        fields = _fields(wanted, f"attributes[{agency}]")
        party = agreement.party(agency)
        if party is None:
            raise Forbidden(f"{agency} is not a party to the agreement")
        if agency not in run_agencies:
            raise BadRequest(f"the run has no dataset from {agency}")
        refused = [f for f in fields if f not in party.fields]
        if refused:
            raise Forbidden(
                f"the agreement does not permit {agency}'s field {refused[0]!r} "
                f"(permitted: {', '.join(party.fields) or 'none'})"
            )
        out.append((agency, fields))
    return tuple(out)


def _filters(raw: object, columns: Sequence[str], agencies: Sequence[str]) -> tuple[Any, Any]:
    if raw is None:
        return (), ()
    if not isinstance(raw, dict) or set(raw) - {"linked_to_all", "where"}:
        raise BadRequest("filters must be {linked_to_all, where}")
    linked = raw.get("linked_to_all", [])
    if not isinstance(linked, list) or not all(isinstance(a, str) for a in linked):
        raise BadRequest("filters.linked_to_all must be a list of agency ids")
    unknown = [a for a in linked if a not in agencies]
    if unknown:
        raise BadRequest(f"filters.linked_to_all: the run has no dataset from {unknown[0]}")
    where_raw = raw.get("where", [])
    if not isinstance(where_raw, list):
        raise BadRequest("filters.where must be a list of {field, in}")
    where = []
    for i, item in enumerate(where_raw):
        if not isinstance(item, dict) or set(item) != {"field", "in"}:
            raise BadRequest(f"filters.where[{i}] must be {{field, in}}")
        if item["field"] not in columns:
            raise BadRequest(f"filters.where[{i}]: filter only on requested attributes")
        values = item["in"]
        if (
            not isinstance(values, list)
            or not values
            or len(values) > MAX_VALUES
            or not all(isinstance(v, str | int | float | bool) for v in values)
        ):
            raise BadRequest(f"filters.where[{i}].in must list 1 to {MAX_VALUES} values")
        where.append(Filter(item["field"], tuple(values)))
    return tuple(sorted(set(linked))), tuple(where)


def parse_extract_spec(
    doc: Mapping[str, Any], agreement: Agreement, run_agencies: Sequence[str]
) -> ExtractSpec:
    """An ``ExtractSpec`` permitted by ``agreement`` for a run over ``run_agencies``;
    ``BadRequest`` for a malformed request, ``Forbidden`` for one the agreement does not
    permit."""
    unknown = sorted(set(doc) - REQUEST_KEYS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}")
    run = doc.get("run")
    if not isinstance(run, str) or not run:
        raise BadRequest("run must be the id of a finished linkage run")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    release = agreement.release
    if kind == "records" and not release.record_level:
        raise Forbidden("the agreement permits aggregate tables only")
    if kind == "aggregate" and not release.aggregate:
        raise Forbidden("the agreement permits record-level extracts only")
    attributes = _attributes(doc.get("attributes"), agreement, run_agencies)
    columns = tuple(dict.fromkeys(f for _, fs in attributes for f in fs))
    try:
        generalise_raw = doc.get("generalise", {})
        generalise = parse_generalisation(generalise_raw)
    except GeneralisationError as exc:
        raise BadRequest(f"generalise: {exc}") from None
    outside = sorted(set(generalise) - set(columns))
    if outside:
        raise BadRequest(f"generalise names {outside[0]!r}, which is not a requested attribute")
    linked, where = _filters(doc.get("filters"), columns, run_agencies)
    group_by: tuple[str, ...] = ()
    count = "records"
    if kind == "aggregate":
        group_by = _fields(doc.get("group_by", []), "group_by")
        if not group_by or len(group_by) > 3:
            raise BadRequest("group_by must name 1 to 3 requested attributes")
        missing = [g for g in group_by if g not in columns]
        if missing:
            raise BadRequest(f"group_by names {missing[0]!r}, which is not a requested attribute")
        count = doc.get("count", "entities")
        if count not in ("entities", "records"):
            raise BadRequest("count must be entities or records")
    elif "group_by" in doc or "count" in doc:
        raise BadRequest("group_by and count belong to aggregate requests")
    include = doc.get("include", [])
    if not isinstance(include, list) or not all(i in _INCLUDES for i in include):
        raise BadRequest(f"include may list: {', '.join(_INCLUDES)}")
    if include and kind != "records":
        raise BadRequest("include applies to record-level extracts only")
    for item in include:
        if not getattr(release, item):
            raise Forbidden(f"the agreement does not permit releasing {item.replace('_', ' ')}")
    fmt = doc.get("format", "parquet")
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
    document = json.dumps(
        {**dict(doc), "format": fmt}, sort_keys=True, separators=(",", ":"), default=str
    )
    return ExtractSpec(
        run=run,
        kind=str(kind),
        justification=text_field(doc, "justification", 2000),
        attributes=attributes,
        generalise=generalise,
        linked_to_all=linked,
        where=where,
        group_by=group_by,
        count=str(count),
        include=tuple(sorted(set(include))),
        format=str(fmt),
        document=document,
    )


def required_capacities(spec: ExtractSpec) -> tuple[str, ...]:
    """The approvals the request needs: each agency whose data it draws on (its attributes,
    or whether its records link, through ``linked_to_all``), and governance."""
    owners = sorted({*spec.agencies, *spec.linked_to_all})
    return (*(f"agency:{a}" for a in owners), GOVERNANCE)
