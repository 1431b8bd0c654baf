"""Data sharing agreements (DSAs): the document, validated once into a frozen object.

A DSA says who shares (the parties, each an agency with its lawful basis and the attribute
fields it may contribute), why (the purpose), how outputs are protected (disclosure control),
how long data is kept (retention) and when the agreement is next reviewed. It is versioned:
every change is a new version; none is ever overwritten (the database refuses UPDATE and
DELETE on ``agreement_versions``). Only the newest version counts, and only while its status
is ``active`` and its review date has not passed; every action under a DSA cites the id and
version it relied on, and the audit entry records both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from hub.errors import BadRequest

__all__ = [
    "DOCUMENT_KEYS",
    "STATUSES",
    "Agreement",
    "Disclosure",
    "FeedbackRule",
    "Party",
    "Release",
    "parse_agreement",
    "text_field",
]

STATUSES: Final = ("draft", "active", "suspended", "ended")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")
DOCUMENT_KEYS: Final = frozenset(
    {
        "title",
        "purpose",
        "status",
        "parties",
        "disclosure",
        "retention_days",
        "review_date",
        "release",
        "feedback",
    }
)
_RELEASE_KEYS: Final = ("record_level", "aggregate", "record_pseudonyms", "match_weights")


@dataclass(frozen=True, slots=True)
class Party:
    agency: str
    lawful_basis: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Disclosure:
    """Aggregate outputs: counts below ``min_cell`` suppressed, others rounded to the
    nearest ``rounding``, and secondary suppression so a suppressed cell cannot be
    recovered from totals."""

    min_cell: int = 10
    rounding: int = 5
    secondary_suppression: bool = True


@dataclass(frozen=True, slots=True)
class Release:
    """What extracts may contain: record-level rows and aggregate tables (both allowed
    unless switched off), record pseudonyms and match probabilities (off unless allowed)."""

    record_level: bool = True
    aggregate: bool = True
    record_pseudonyms: bool = False
    match_weights: bool = False


@dataclass(frozen=True, slots=True)
class FeedbackRule:
    """Agency ``to`` may learn which of its own records link to records held by each of
    the agencies in ``about``."""

    to: str
    about: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Agreement:
    title: str
    purpose: str
    status: str
    parties: tuple[Party, ...]
    disclosure: Disclosure
    retention_days: int
    review_date: date
    release: Release = Release()
    feedback: tuple[FeedbackRule, ...] = ()

    def party(self, agency: str) -> Party | None:
        return next((p for p in self.parties if p.agency == agency), None)

    def feedback_about(self, agency: str) -> tuple[str, ...]:
        """The agencies whose links ``agency`` may learn about (none by default)."""
        return next((r.about for r in self.feedback if r.to == agency), ())

    def in_force(self, today: date) -> bool:
        return self.status == "active" and today <= self.review_date

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "purpose": self.purpose,
            "status": self.status,
            "parties": [
                {"agency": p.agency, "lawful_basis": p.lawful_basis, "fields": list(p.fields)}
                for p in self.parties
            ],
            "disclosure": {
                "min_cell": self.disclosure.min_cell,
                "rounding": self.disclosure.rounding,
                "secondary_suppression": self.disclosure.secondary_suppression,
            },
            "retention_days": self.retention_days,
            "review_date": self.review_date.isoformat(),
            "release": {k: getattr(self.release, k) for k in _RELEASE_KEYS},
            "feedback": [{"to": r.to, "about": list(r.about)} for r in self.feedback],
        }

    def canonical(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


def text_field(doc: Mapping[str, Any], key: str, limit: int) -> str:
    """``doc[key]``: a non-empty printable string of at most ``limit`` characters, trimmed."""
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{key} must be a non-empty string of at most {limit} characters")
    if not value.isprintable():
        raise BadRequest(f"{key} must not contain control characters")
    return value.strip()


def _positive(value: object, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        raise BadRequest(f"{name} must be an integer from 1 to {maximum}")
    return value


def _party(raw: object, i: int) -> Party:
    if not isinstance(raw, dict) or set(raw) - {"agency", "lawful_basis", "fields"}:
        raise BadRequest(f"parties[{i}] must be {{agency, lawful_basis, fields}}")
    agency = raw.get("agency")
    if not isinstance(agency, str) or not _SLUG.fullmatch(agency):
        raise BadRequest(f"parties[{i}].agency must be an agency id")
    basis = text_field(raw, "lawful_basis", 500)
    fields = raw.get("fields", [])
    if not isinstance(fields, list) or not all(
        isinstance(f, str) and _FIELD.fullmatch(f) for f in fields
    ):
        raise BadRequest(f"parties[{i}].fields must be a list of attribute field names")
    if len(set(fields)) != len(fields):
        raise BadRequest(f"parties[{i}].fields has duplicates")
    return Party(agency, basis, tuple(fields))


def _disclosure(raw: object) -> Disclosure:
    if raw is None:
        return Disclosure()
    if not isinstance(raw, dict) or set(raw) - {"min_cell", "rounding", "secondary_suppression"}:
        raise BadRequest("disclosure must be {min_cell, rounding, secondary_suppression}")
    default = Disclosure()
    secondary = raw.get("secondary_suppression", default.secondary_suppression)
    if not isinstance(secondary, bool):
        raise BadRequest("disclosure.secondary_suppression must be true or false")
    return Disclosure(
        min_cell=_positive(raw.get("min_cell", default.min_cell), "disclosure.min_cell", 1000),
        rounding=_positive(raw.get("rounding", default.rounding), "disclosure.rounding", 1000),
        secondary_suppression=secondary,
    )


def _release(raw: object) -> Release:
    if raw is None:
        return Release()
    if not isinstance(raw, dict) or set(raw) - set(_RELEASE_KEYS):
        raise BadRequest(f"release must be {{{', '.join(_RELEASE_KEYS)}}}")
    if not all(isinstance(v, bool) for v in raw.values()):
        raise BadRequest("release settings must be true or false")
    return Release(**raw)


def _feedback(raw: object, parties: tuple[Party, ...]) -> tuple[FeedbackRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest("feedback must be a list of {to, about}")
    agencies = {p.agency for p in parties}
    rules = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"to", "about"}:
            raise BadRequest(f"feedback[{i}] must be {{to, about}}")
        to, about = item["to"], item["about"]
        if to not in agencies:
            raise BadRequest(f"feedback[{i}].to must be a party")
        if (
            not isinstance(about, list)
            or not about
            or not all(a in agencies and a != to for a in about)
            or len(set(about)) != len(about)
        ):
            raise BadRequest(f"feedback[{i}].about must list other parties, once each")
        rules.append(FeedbackRule(to, tuple(about)))
    if len({r.to for r in rules}) != len(rules):
        raise BadRequest("feedback names an agency twice")
    return tuple(rules)


def parse_agreement(doc: dict[str, Any]) -> Agreement:
    """An ``Agreement`` from a request body; ``BadRequest`` names the first bad field."""
    unknown = sorted(set(doc) - DOCUMENT_KEYS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}")
    status = doc.get("status", "draft")
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    parties_raw = doc.get("parties")
    if not isinstance(parties_raw, list) or len(parties_raw) < 2:
        raise BadRequest("parties must list at least two agencies")
    parties = tuple(_party(p, i) for i, p in enumerate(parties_raw))
    if len({p.agency for p in parties}) != len(parties):
        raise BadRequest("an agency appears twice among the parties")
    review = doc.get("review_date")
    try:
        review_date = date.fromisoformat(review) if isinstance(review, str) else None
    except ValueError:
        review_date = None
    if review_date is None:
        raise BadRequest("review_date must be a date, YYYY-MM-DD")
    return Agreement(
        title=text_field(doc, "title", 200),
        purpose=text_field(doc, "purpose", 2000),
        status=str(status),
        parties=parties,
        disclosure=_disclosure(doc.get("disclosure")),
        retention_days=_positive(doc.get("retention_days"), "retention_days", 36500),
        review_date=review_date,
        release=_release(doc.get("release")),
        feedback=_feedback(doc.get("feedback"), parties),
    )
