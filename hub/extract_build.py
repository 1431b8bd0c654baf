"""Building an extract's tables from a run's entities and the agencies' attribute columns:
pure table-in, table-out (the ``extract`` job does the reading, writing and signing).

Record-level (``records``): one row per record of the agencies whose attributes were asked
for, with

- ``entity``: a fresh random id for this extract only (two extracts cannot be joined on it),
- ``agency``: the agency holding the record,
- the requested attributes (null where the record's agency has no such field), filtered and
  then generalised as the request says,
- ``record_pseudonym`` and ``match_probability`` (the record's strongest link) only when
  the request includes them and the agreement allows it.

Aggregate: counts per combination of the ``group_by`` attributes, of entities (each entity
counted once per combination of its records' values, across agencies; an entity with no
record at an agency counts under null for that agency's fields, so "not known to police" is
a row of its own) or of records (the fields of one agency), then disclosure control
(``hub.release.disclosure``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from hub.errors import BadRequest
from hub.extract_spec import ExtractSpec
from hub.release.disclosure import DisclosureRules, ProtectedTable, protect
from hub.release.generalise import apply as generalise

__all__ = ["BuiltExtract", "build_extract", "fresh_ids"]


@dataclass(frozen=True, slots=True)
class BuiltExtract:
    """The output tables by file stem (``records``; or ``cells`` and ``margins``), and the
    disclosure actions for the manifest (aggregates only)."""

    tables: dict[str, pa.Table]
    disclosure: dict[str, object] | None


def fresh_ids(entities: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Random ids replacing ``entities``: equal in, equal out, unrelated to anything else."""
    unique = pc.unique(entities)
    fresh = pa.array([f"x-{secrets.token_hex(10)}" for _ in range(len(unique))], pa.string())
    return pc.take(fresh, pc.index_in(entities, value_set=unique))


def _linked_entities(entities: pa.Table, agencies: tuple[str, ...]) -> pa.Array:
    """Entities with at least one record in every one of ``agencies``."""
    per = (
        entities.group_by(["entity_id", "dataset"])
        .aggregate([])
        .filter(pc.is_in(pc.field("dataset"), pa.array(agencies)))
    )
    counted = per.group_by("entity_id").aggregate([("dataset", "count")])
    return counted.filter(pc.field("dataset_count") == len(agencies)).column("entity_id")


def _record_rows(
    spec: ExtractSpec, entities: pa.Table, attributes: Mapping[str, pa.Table]
) -> pa.Table:
    """One row per record of the requested agencies: entity_id, agency, record, and every
    requested attribute column (null where the agency has no such field)."""
    if spec.linked_to_all:
        keep = _linked_entities(entities, spec.linked_to_all)
        entities = entities.filter(pc.is_in(entities.column("entity_id"), keep))
    parts = []
    for agency, fields in spec.attributes:
        mine = entities.filter(pc.equal(entities.column("dataset"), agency))
        table = attributes[agency]
        joined = mine.join(table.select(["record", *fields]), keys="record", join_type="left outer")
        columns = {
            "entity_id": joined.column("entity_id"),
            "agency": joined.column("dataset"),
            "record": joined.column("record"),
        }
        for column in spec.columns:
            if column in fields:
                columns[column] = joined.column(column)
            else:
                other = next(
                    attributes[a].schema.field(column).type
                    for a, fs in spec.attributes
                    if column in fs
                )
                columns[column] = pa.nulls(joined.num_rows, other)
        parts.append(pa.table(columns))
    rows = pa.concat_tables(parts, promote_options="permissive")
    for f in spec.where:
        column = rows.column(f.field)
        values = pa.array(list(f.values))
        try:
            values = values.cast(column.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise BadRequest(f"filters.where: values do not fit {f.field}'s type") from None
        rows = rows.filter(pc.is_in(column, value_set=values))
    if spec.generalise:
        rows = generalise(rows, spec.generalise)
    return rows.sort_by([("agency", "ascending"), ("entity_id", "ascending")])


def _strongest_links(links: pa.Table) -> pa.Table:
    """Each record's highest match probability over its links."""
    sides = [
        links.select([f"dataset_{s}", f"record_{s}", "match_probability"]).rename_columns(
            ["dataset", "record", "match_probability"]
        )
        for s in ("l", "r")
    ]
    both = pa.concat_tables(sides)
    best = both.group_by(["dataset", "record"]).aggregate([("match_probability", "max")])
    return best.rename_columns(["dataset", "record", "match_probability"])


def _records_output(spec: ExtractSpec, rows: pa.Table, links: pa.Table | None) -> pa.Table:
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "entity": fresh_ids(rows.column("entity_id")),
        "agency": rows.column("agency"),
    }
    if "record_pseudonyms" in spec.include:
        columns["record_pseudonym"] = rows.column("record")
    if "match_weights" in spec.include and links is not None:
        best = _strongest_links(links)
        keyed = rows.select(["agency", "record"]).rename_columns(["dataset", "record"])
        keyed = keyed.append_column("order", pa.array(range(rows.num_rows), pa.int64()))
        joined = keyed.join(best, keys=["dataset", "record"], join_type="left outer")
        joined = joined.sort_by("order")
        columns["match_probability"] = joined.column("match_probability")
    for column in spec.columns:
        columns[column] = rows.column(column)
    return pa.table(columns)


def _aggregate(spec: ExtractSpec, rows: pa.Table) -> pa.Table:
    dims = list(spec.group_by)
    if spec.count == "records":
        owners = {a for a, fs in spec.attributes if set(dims) & set(fs)}
        if len(owners) > 1:
            raise BadRequest("count records groups by the fields of one agency only")
        rows = rows.filter(pc.is_in(rows.column("agency"), pa.array(sorted(owners))))
        counted = rows.group_by(dims).aggregate([("record", "count")])
        return counted.rename_columns([*dims, "count"])
    # entities: each entity once per combination of its records' values across agencies
    owners_of = {d: [a for a, fs in spec.attributes if d in fs] for d in dims}
    by_agency: dict[str, list[str]] = {}
    for d, agencies in owners_of.items():
        by_agency.setdefault(agencies[0], []).append(d)
    joined: pa.Table | None = None
    for agency, fields in sorted(by_agency.items()):
        mine = rows.filter(pc.equal(rows.column("agency"), agency)).select(["entity_id", *fields])
        mine = mine.group_by(["entity_id", *fields]).aggregate([])
        joined = (
            mine
            if joined is None
            else joined.join(mine, keys="entity_id", join_type="full outer", coalesce_keys=True)
        )
    assert joined is not None
    counted = joined.group_by(dims).aggregate([("entity_id", "count_distinct")])
    return counted.rename_columns([*dims, "count"])


def build_extract(
    spec: ExtractSpec,
    entities: pa.Table,
    attributes: Mapping[str, pa.Table],
    rules: DisclosureRules,
    links: pa.Table | None = None,
) -> BuiltExtract:
    """The extract ``spec`` asks for, from a run's ``entities`` (``entity_id, dataset,
    record``) and each agency's attribute table (``record`` plus its fields)."""
    rows = _record_rows(spec, entities, attributes)
    if spec.kind == "records":
        return BuiltExtract({"records": _records_output(spec, rows, links)}, None)
    counts = _aggregate(spec, rows)
    protected: ProtectedTable = protect(counts, list(spec.group_by), rules, count="count")
    # published tables say only "suppressed", never whether a cell was primary (1 to
    # min_cell - 1) or secondary; the counts of each go to the manifest
    published = protected.for_publication()
    return BuiltExtract(
        {"cells": published.cells, "margins": published.margins},
        protected.actions.to_json(),
    )
