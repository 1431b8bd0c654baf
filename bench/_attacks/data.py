"""The attacked world: a synthetic population, two corrupted agency extracts, their encodings.

* **Population.** :func:`connectors.synth.build_scenario` (the generator behind ``connector
  synth``: name tables by community with Faker additions, households sharing a family name,
  postcode and address, ages skewed to young adults) draws ``people`` people and renders an A&E
  and a police export with the generator's realistic corruption.
* **Encoded population** ``E``: the people with at least one record in either extract. The hub
  holds every record of both extracts, encoded by the connector's own pipeline under fresh keys
  (a new linkage secret per hardening variant, new record keys per agency).
* **Reference populations** (the attacker's plaintext, e.g. an electoral roll with dates of
  birth): for an overlap ``o``, ``|E|`` people of whom ``round(o |E|)`` are in ``E`` and the rest
  are people of the same synthetic population who are in neither extract. The reference holds
  each person's clean values (as of the start of the record window), normalised with the
  connector's own normalisers. Overlaps are nested (the 50% reference's encoded people are
  among the 75% reference's, and so on).
* **Values.** Every token and filter column is an attacked *value*: the token's inputs (after
  their transforms, ``unordered`` inputs sorted, joined by U+001F), or the filter's input
  (with the salt value appended when the schema salts). Values are integer codes over one
  vocabulary per column, shared by the records and the population, so every comparison below
  is an integer comparison.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bench._common import REPO_DIR, log
from connectors.batch import normalise_export
from connectors.encoding_schema import EncodingSchema, FieldRef, load_encoding_schema
from connectors.fields import normaliser_for
from connectors.keys import generate_key
from connectors.mapping import load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise
from connectors.synth import AE_COLUMNS, DEFAULT_TODAY, POLICE_COLUMNS, build_scenario
from connectors.transforms import transformer

TODAY: date = DEFAULT_TODAY
V2_SCHEMA = REPO_DIR / "config" / "encoding" / "v2.toml"
MAPPING_A = REPO_DIR / "config" / "mappings" / "ae.toml"
MAPPING_B = REPO_DIR / "config" / "mappings" / "police.toml"
SEP = "\x1f"
#: The reference population's fields (what an electoral roll joined with a commercial list of
#: dates of birth, phone numbers and e-mail addresses holds); ``mobile`` and ``landline`` are the
#: person's two phone numbers, so both phone tokens can be computed.
PERSON_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
    "mobile",
    "landline",
    "email",
    "pnc_id",
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One hardening setting of schema v2 (everything else as shipped)."""

    name: str
    balance: bool
    salt: str | None = None
    #: ``[hardening] flip_probability`` (random bit flipping, BLIP); 0: not set
    flip: float = 0.0

    def schema(self, out: Path) -> EncodingSchema:
        """``config/encoding/v2.toml`` itself for ``default``; otherwise a bench-local copy whose
        ``[hardening]`` table alone differs (written under ``out``; config/ is never touched)."""
        if self.name == "default":
            return load_encoding_schema(V2_SCHEMA)
        text = V2_SCHEMA.read_text(encoding="utf-8")
        shipped = "[hardening]\nbalance = true\n"
        if text.count(shipped) != 1:
            raise SystemExit(f"{V2_SCHEMA}: its [hardening] table is not '{shipped.strip()}'")
        lines = ["[hardening]", f"balance = {'true' if self.balance else 'false'}"]
        if self.salt:
            lines.append(f'salt = "{self.salt}"')
        if self.flip:
            lines.append(f"flip_probability = {self.flip}")
        path = out / "schemas" / f"v2-{self.name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(shipped, "\n".join(lines) + "\n"), encoding="utf-8")
        return load_encoding_schema(path)


#: ``default`` is v2 as shipped (balanced, unsalted); ``none`` switches hardening off;
#: ``salt-yob`` adds v1's keyed salt by birth year (a trade-off point: it costs recall);
#: ``flip-<p>`` adds random bit flipping with probability p to the default (the trade-off curve).
FLIPS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25)
VARIANTS: dict[str, Variant] = {
    "default": Variant("default", balance=True),
    "none": Variant("none", balance=False),
    "salt-yob": Variant("salt-yob", balance=True, salt="date_of_birth:year"),
    **{f"flip-{p}": Variant(f"flip-{p}", balance=True, flip=p) for p in FLIPS},
}


@dataclass(frozen=True, slots=True)
class World:
    """The population, the two extracts' records and who is who (the ground truth)."""

    people: int
    #: normalised clean values per person, by :data:`PERSON_FIELDS`
    person_fields: dict[str, list[str | None]]
    #: per person: appears in at least one extract
    encoded: np.ndarray[Any, np.dtype[np.bool_]]
    csv_a: Path
    csv_b: Path
    #: normalised values per record (A&E rows, then police rows), canonical field names
    record_fields: dict[str, list[str | None]]
    record_ids: list[str]
    #: population index of each record's person
    record_person: np.ndarray[Any, np.dtype[np.int64]]


def build_world(people: int, seed: int, out: Path) -> World:
    """Draw the population, write both exports as CSV and normalise them as the connector does."""
    log(f"synthesising {people:,} people (seed {seed})")
    scenario = build_scenario(people, seed, today=TODAY)
    out.mkdir(parents=True, exist_ok=True)
    csv_a, csv_b = out / "ae.csv", out / "police.csv"
    for path, columns, records in (
        (csv_a, AE_COLUMNS, scenario.ae),
        (csv_b, POLICE_COLUMNS, scenario.police),
    ):
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(r.row for r in records)
    index = {p.person_id: i for i, p in enumerate(scenario.people)}
    owner = {r.record_id: index[r.person_id] for r in (*scenario.ae, *scenario.police)}
    record_fields: dict[str, list[str | None]] = {}
    n_records = 0
    for path, mapping in ((csv_a, MAPPING_A), (csv_b, MAPPING_B)):
        for batch in normalise_export(path, load_mapping(mapping), TODAY):
            size = len(batch["record_id"])
            for name in batch.keys() | record_fields.keys():
                # a field one side does not map (the police aliases) is missing on the other
                column = record_fields.setdefault(name, [None] * n_records)
                column.extend(batch.get(name, [None] * size))
            n_records += size
    record_ids = [str(r) for r in record_fields["record_id"]]
    record_person = np.array([owner[r] for r in record_ids], dtype=np.int64)
    encoded = np.zeros(len(scenario.people), dtype=bool)
    encoded[record_person] = True
    return World(
        people=len(scenario.people),
        person_fields=_person_fields(scenario.people),
        encoded=encoded,
        csv_a=csv_a,
        csv_b=csv_b,
        record_fields=record_fields,
        record_ids=record_ids,
        record_person=record_person,
    )


def _person_fields(people: Sequence[Any]) -> dict[str, list[str | None]]:
    def norm(field: str, formats: Sequence[str] = ("%Y-%m-%d",)) -> Any:
        fn = normaliser_for(field, date_formats=formats, phone_region="GB", today=TODAY)
        memo: dict[str, str | None] = {}

        def apply(raw: str) -> str | None:
            if not raw:
                return None
            if raw not in memo:
                memo[raw] = fn(raw).value
            return memo[raw]

        return apply

    name, dob, sex = norm("given_name"), norm("date_of_birth"), norm("sex")
    postcode, address, nhs = norm("postcode"), norm("address"), norm("nhs_number")
    phone, email, pnc = norm("phone"), norm("email"), norm("pnc_id")
    return {
        "given_name": [name(p.given_name) for p in people],
        "family_name": [name(p.family_name) for p in people],
        "date_of_birth": [dob(p.dob.isoformat()) for p in people],
        "sex": [sex(p.sex) for p in people],
        "postcode": [postcode(p.postcode) for p in people],
        "address": [address(p.address_line) for p in people],
        "nhs_number": [nhs(p.nhs_number) for p in people],
        "mobile": [phone(p.mobile) for p in people],
        "landline": [phone(p.landline) for p in people],
        "email": [email(p.email) for p in people],
        "pnc_id": [pnc(p.pnc_id) for p in people],
    }


def reference_people(
    world: World, overlap: float, seed: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Population indices of the reference population for ``overlap`` (nested across overlaps)."""
    rng = np.random.default_rng(seed)
    inside = rng.permutation(np.flatnonzero(world.encoded))
    outside = rng.permutation(np.flatnonzero(~world.encoded))
    k = round(overlap * inside.size)
    if inside.size - k > outside.size:
        raise SystemExit(
            f"overlap {overlap}: needs {inside.size - k:,} people outside the extracts but the "
            f"population has {outside.size:,}; draw more people"
        )
    return np.sort(np.concatenate([inside[:k], outside[: inside.size - k]]))


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """One attacked column: its values as codes into ``vocab`` (-1: null / missing input)."""

    name: str  # tok_<token> or bf_<filter>
    kind: str  # "token" or "filter"
    refs: tuple[FieldRef, ...]
    vocab: np.ndarray[Any, np.dtype[np.object_]]
    #: per hub record (the hub view's order)
    record_code: np.ndarray[Any, np.dtype[np.int64]]
    #: per population person
    person_code: np.ndarray[Any, np.dtype[np.int64]]


def _ref_values(ref: FieldRef, fields: dict[str, list[str | None]], person: bool) -> list[Any]:
    if person and ref.field == "phone":
        base = fields["mobile" if ref.transform != "landline" else "landline"]
    else:
        base = fields[ref.field]
    if ref.transform == "none":
        return list(base)
    fn = transformer(ref)
    memo: dict[str, str | None] = {}
    out: list[str | None] = []
    for v in base:
        if v is None:
            out.append(None)
            continue
        r = memo.get(v, "\x00")
        if r == "\x00":
            r = memo[v] = fn(v)
        out.append(r)
    return out


def _joined(columns: Sequence[list[Any]], unordered: Sequence[int] = ()) -> list[str | None]:
    out: list[str | None] = []
    for parts in zip(*columns, strict=True):
        if None in parts:
            out.append(None)
            continue
        row = list(parts)
        if unordered:
            for i, v in zip(unordered, sorted(row[i] for i in unordered), strict=True):
                row[i] = v
        out.append(SEP.join(row))
    return out


def column_values(
    schema: EncodingSchema, world: World, hub_records: np.ndarray[Any, np.dtype[np.int64]]
) -> dict[str, Column]:
    """Every token and filter column's values for the hub's records and for every person."""
    sides = {
        True: world.person_fields,
        False: {k: [v[i] for i in hub_records.tolist()] for k, v in world.record_fields.items()},
    }
    cache: dict[tuple[FieldRef, bool], list[Any]] = {}

    def values(ref: FieldRef, person: bool) -> list[Any]:
        key = (ref, person)
        if key not in cache:
            cache[key] = _ref_values(ref, sides[person], person)
        return cache[key]

    specs: list[tuple[str, str, tuple[FieldRef, ...], tuple[int, ...]]] = []
    for t in schema.tokens:
        unordered = tuple(i for i, r in enumerate(t.inputs) if r in t.unordered)
        specs.append((f"tok_{t.name}", "token", t.inputs, unordered))
    salt = schema.hardening.salt
    for f in schema.filters:
        specs.append((f"bf_{f.name}", "filter", (f.input,), ()))
    out: dict[str, Column] = {}
    for name, kind, refs, unordered in specs:
        per_side = []
        for person in (False, True):
            joined = _joined([values(r, person) for r in refs], unordered)
            if kind == "filter" and salt is not None:
                salts = values(salt, person)
                joined = [
                    None if v is None else f"{v}{SEP}{s or ''}"
                    for v, s in zip(joined, salts, strict=True)
                ]
            per_side.append(joined)
        vocab, codes = _codes(per_side[0] + per_side[1])
        n = len(per_side[0])
        out[name] = Column(name, kind, refs, vocab, codes[:n], codes[n:])
    return out


def _codes(values: list[str | None]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    arr = np.array(["\x00" if v is None else v for v in values], dtype=object)
    vocab, inverse = np.unique(arr, return_inverse=True)
    codes = inverse.astype(np.int64)
    if vocab.size and vocab[0] == "\x00":
        vocab, codes = vocab[1:], codes - 1
    return vocab, codes


# --- encoding: what the hub holds --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubView:
    """The encoded columns of both uploads, as the hub (and a thief of its store) holds them."""

    variant: str
    schema: EncodingSchema
    paths: tuple[Path, Path]
    #: row of ``World.record_*`` and population index of each hub record's person (evaluation
    #: only, never shown to an attacker)
    rows: np.ndarray[Any, np.dtype[np.int64]]
    record_index: np.ndarray[Any, np.dtype[np.int64]]
    tokens: dict[str, np.ndarray[Any, np.dtype[np.uint8]]]  # (n, 16), all-zero rows are null
    token_null: dict[str, np.ndarray[Any, np.dtype[np.bool_]]]
    filters: dict[str, np.ndarray[Any, np.dtype[np.uint8]]]  # (n, bytes), packed as encoded
    filter_null: dict[str, np.ndarray[Any, np.dtype[np.bool_]]]
    #: the linkage secret: only the dictionary attack (the key-holding adversary) may use it
    stolen_secret: bytes

    @property
    def records(self) -> int:
        return int(self.record_index.size)


def encode(world: World, variant: Variant, out: Path, workers: int) -> HubView:
    """Encode both extracts with the connector's pipeline under fresh keys."""
    schema = variant.schema(out)
    linkage_key = generate_key("linkage-secret")
    where = out / variant.name
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    rows: list[int] = []
    index = {r: i for i, r in enumerate(world.record_ids)}
    for side, csv_path, mapping in (("a", world.csv_a, MAPPING_A), ("b", world.csv_b, MAPPING_B)):
        path, keymap = where / f"{side}.parquet", where / f"keymap_{side}.parquet"
        for p in (path, keymap):
            p.unlink(missing_ok=True)
        job = PseudonymiseJob(
            mapping=load_mapping(mapping),
            schema=schema,
            linkage_key=linkage_key,
            record_key=generate_key("record-key"),
            input=csv_path,
            output=path,
            agency=f"{side}-{variant.name}",
            keymap=keymap,
            workers=workers,
            today=TODAY,
        )
        pseudonymise(job)
        paths.append(path)
        ids = pq.read_table(keymap, columns=["record_id"]).column(0).to_pylist()
        rows.extend(index[r] for r in ids)
    tables = [pq.read_table(p) for p in paths]
    tokens, token_null, filters, filter_null = {}, {}, {}, {}
    for t in schema.tokens:
        tokens[t.name], token_null[t.name] = _fixed(tables, f"tok_{t.name}", 16)
    for f in schema.filters:
        filters[f.name], filter_null[f.name] = _fixed(
            tables, f"bf_{f.name}", schema.filter_bytes(f)
        )
    hub = np.asarray(rows, dtype=np.int64)
    return HubView(
        variant=variant.name,
        schema=schema,
        paths=(paths[0], paths[1]),
        rows=hub,
        record_index=np.asarray(world.record_person[hub]),
        tokens=tokens,
        token_null=token_null,
        filters=filters,
        filter_null=filter_null,
        stolen_secret=linkage_key.secret,
    )


def _fixed(
    tables: Sequence[Any], column: str, width: int
) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], np.ndarray[Any, np.dtype[np.bool_]]]:
    values = [v for t in tables for v in t.column(column).to_pylist()]
    null = np.array([v is None for v in values], dtype=bool)
    blob = b"".join(bytes(width) if v is None else v for v in values)
    return np.frombuffer(blob, dtype=np.uint8).reshape(len(values), width), null


def linkage_quality(view: HubView, threads: int) -> dict[str, Any]:
    """Link the two uploads with ``linkage.run.link`` (defaults, DuckDB) and score the links."""
    from linkage.engines import DuckDBEngine
    from linkage.inputs import read_encoded
    from linkage.run import LinkSettings, link

    a, b = read_encoded(view.paths[0], "a"), read_encoded(view.paths[1], "b")
    result = link([a, b], LinkSettings(), DuckDBEngine(threads=threads))
    n_a = a.table.num_rows
    where = {
        name: {
            p.hex(): i + off for i, p in enumerate(ds.table.column("record_pseudonym").to_pylist())
        }
        for name, ds, off in (("a", a, 0), ("b", b, n_a))
    }
    links = result.links
    left_is_a = np.array([d == "a" for d in links.column("dataset_l").to_pylist()], dtype=bool)
    left = links.column("record_l").to_pylist()
    right = links.column("record_r").to_pylist()
    ia = np.array(
        [where["a"][x if f else y] for x, y, f in zip(left, right, left_is_a, strict=True)],
        dtype=np.int64,
    )
    ib = np.array(
        [where["b"][y if f else x] for x, y, f in zip(left, right, left_is_a, strict=True)],
        dtype=np.int64,
    )
    pairs = np.unique(ia * view.records + ib)
    ia, ib = pairs // view.records, pairs % view.records
    person = view.record_index
    tp = int(np.count_nonzero(person[ia] == person[ib]))
    size = int(person.max()) + 1
    true_pairs = int(
        np.dot(
            np.bincount(person[:n_a], minlength=size).astype(np.int64),
            np.bincount(person[n_a:], minlength=size).astype(np.int64),
        )
    )
    precision = tp / pairs.size if pairs.size else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    return {
        "threshold": round(float(result.choice.threshold), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(2 * tp / (pairs.size + true_pairs), 4) if pairs.size + true_pairs else 0.0,
        "links": int(pairs.size),
        "true_pairs": true_pairs,
        "seconds": round(sum(result.seconds.values()), 1),
    }
