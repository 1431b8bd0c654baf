"""Extract requests checked against the agreement, the approvals they need, and the pure
build: fresh entity ids per extract, filters, generalisation, aggregates through disclosure
control."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from hub.agreements import parse_agreement
from hub.errors import BadRequest, Forbidden
from hub.extract_build import build_extract
from hub.extract_spec import parse_extract_spec, required_capacities
from hub.handlers.extracts import _approved
from hub.release.disclosure import DisclosureRules
from linkage.clustering import ENTITY_SCHEMA

AGREEMENT = parse_agreement(
    {
        "title": "t",
        "purpose": "p",
        "status": "active",
        "parties": [
            {"agency": "ae", "lawful_basis": "b", "fields": ["method", "arrived"]},
            {"agency": "police", "lawful_basis": "b", "fields": ["role"]},
        ],
        "retention_days": 30,
        "review_date": "2099-01-01",
    }
)


def _spec(**overrides: Any) -> Any:
    doc: dict[str, Any] = {
        "run": "run_1",
        "kind": "records",
        "justification": "why",
        "attributes": {"ae": ["method", "arrived"], "police": ["role"]},
    }
    doc.update(overrides)
    return parse_extract_spec(doc, AGREEMENT, ["ae", "police"])


@pytest.mark.parametrize(
    ("overrides", "error", "words"),
    [
        ({"attributes": {"ae": ["dob"]}}, Forbidden, "does not permit ae's field 'dob'"),
        ({"attributes": {"fire": ["x"]}}, Forbidden, "not a party"),
        ({"include": ["record_pseudonyms"]}, Forbidden, "record pseudonyms"),
        ({"kind": "table"}, BadRequest, "kind must be"),
        ({"group_by": ["method"]}, BadRequest, "belong to aggregate"),
        ({"generalise": {"role": {"date": "week"}}, "attributes": {"ae": ["method"]}},
         BadRequest, "not a requested attribute"),
        ({"generalise": {"arrived": {"date": "fortnight"}}}, BadRequest, "generalise"),
        ({"filters": {"linked_to_all": ["fire"]}}, BadRequest, "no dataset from fire"),
        ({"filters": {"where": [{"field": "dob", "in": ["x"]}]}}, BadRequest, "requested"),
        ({"surprise": 1}, BadRequest, "unknown fields"),
        ({"justification": ""}, BadRequest, "justification"),
    ],
)  # fmt: skip
def test_requests_the_agreement_does_not_permit_are_refused(
    overrides: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        _spec(**overrides)


def test_capacities_cover_every_owner_and_governance() -> None:
    assert required_capacities(_spec()) == ("agency:ae", "agency:police", "governance")
    only_ae = _spec(attributes={"ae": ["method"]}, filters={"linked_to_all": ["ae", "police"]})
    assert required_capacities(only_ae) == ("agency:ae", "agency:police", "governance")
    assert required_capacities(_spec(attributes={"ae": ["method"]})) == (
        "agency:ae",
        "governance",
    )


def test_approvals_need_every_capacity_two_people_and_unexpired() -> None:
    def d(approver: str, capacity: str, expires: int = 100) -> Any:
        return SimpleNamespace(
            approver=approver, capacity=capacity, decision="approve", expires_us=expires
        )

    required = ["agency:ae", "governance"]
    assert _approved(required, [d("a", "agency:ae"), d("b", "governance")], 50, 2)
    assert not _approved(required, [d("a", "agency:ae")], 50, 2)
    assert not _approved(required, [d("a", "agency:ae"), d("a", "governance")], 50, 2)
    assert not _approved(required, [d("a", "agency:ae", 40), d("b", "governance")], 50, 2)


def _inputs() -> tuple[pa.Table, dict[str, pa.Table]]:
    entities = pa.table(
        {
            "entity_id": ["e1", "e1", "e2", "e3", "e3"],
            "dataset": ["ae", "police", "ae", "ae", "police"],
            "record": ["a1", "p1", "a2", "a3", "p3"],
        },
        ENTITY_SCHEMA,
    )
    arrived = [dt.datetime(2026, 1, 7, 22, 30), dt.datetime(2026, 1, 9), dt.datetime(2026, 2, 1)]
    attributes = {
        "ae": pa.table(
            {
                "record": ["a1", "a2", "a3"],
                "method": ["Knife", "Fist", "Knife"],
                "arrived": pa.array(arrived, pa.timestamp("s")),
            }
        ),
        "police": pa.table({"record": ["p1", "p3"], "role": ["Victim", "Suspect"]}),
    }
    return entities, attributes


def test_record_extract_fresh_ids_filters_and_generalisation() -> None:
    entities, attributes = _inputs()
    spec = _spec(
        filters={
            "linked_to_all": ["ae", "police"],
            "where": [{"field": "method", "in": ["Knife"]}],
        },
        generalise={"arrived": {"date": "week"}},
    )
    rules = DisclosureRules()
    table = build_extract(spec, entities, attributes, rules).tables["records"]
    assert table.column_names == ["entity", "agency", "method", "arrived", "role"]
    rows = table.to_pylist()
    # e2 is A&E only (not linked to police) and so filtered out; police rows have no method
    # and the where filter keeps only Knife, so only A&E rows of e1 and e3 remain
    assert sorted((r["agency"], r["method"], r["arrived"]) for r in rows) == [
        ("ae", "Knife", dt.date(2026, 1, 5)),
        ("ae", "Knife", dt.date(2026, 1, 26)),
    ]
    again = build_extract(spec, entities, attributes, rules).tables["records"]
    assert set(table.column("entity").to_pylist()).isdisjoint(again.column("entity").to_pylist())
    assert "record_pseudonym" not in table.column_names


def test_aggregate_counts_entities_across_agencies_with_disclosure_control() -> None:
    entities, attributes = _inputs()
    spec = _spec(kind="aggregate", group_by=["method", "role"], count="entities")
    built = build_extract(spec, entities, attributes, DisclosureRules(min_cell=2, rounding=1))
    cells = {(c["method"], c["role"]): c["count"] for c in built.tables["cells"].to_pylist()}
    # e1: Knife x Victim, e3: Knife x Suspect, e2 (no police record): Fist x null; each is
    # 1 < min_cell 2, so withheld; the other combinations are true zeros
    assert cells[("Knife", "Victim")] is None and cells[("Knife", "Suspect")] is None
    assert cells[("Fist", None)] is None and cells[("Fist", "Victim")] == 0
    assert built.disclosure is not None and built.disclosure["cells"] == {
        "primary": 3,
        "secondary": 0,
        "rounded": 0,
    }
    with pytest.raises(BadRequest, match="one agency"):
        build_extract(
            _spec(kind="aggregate", group_by=["method", "role"], count="records"),
            entities,
            attributes,
            DisclosureRules(),
        )
