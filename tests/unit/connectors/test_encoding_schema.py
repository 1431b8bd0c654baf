"""Encoding schemas: the shipped ones load, each faulty one is refused with a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connectors.encoding_schema import FieldRef, load_encoding_schema
from connectors.errors import SchemaError
from tests.conftest import REPO, VECTORS

BAD = sorted((VECTORS / "encoding" / "bad").glob("*.toml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_schema_is_refused(path: Path) -> None:
    """Each faulty schema raises SchemaError naming the file and the fault."""
    expect = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(SchemaError) as info:
        load_encoding_schema(path)
    assert expect in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("name", ["v1", "v2", "febrl"])
def test_shipped_schemas_load(name: str) -> None:
    """The shipped schemas load and read only fields they may read."""
    schema = load_encoding_schema(REPO / "config" / "encoding" / f"{name}.toml")
    assert schema.tokens and schema.filters and len(schema.hash) == 64
    assert "sex" not in {r.field for t in schema.tokens for r in t.inputs if len(t.inputs) == 1}
    assert "sex" not in {f.input.field for f in schema.filters}


def test_v2_encodes_dates_as_filters_and_phones_by_kind() -> None:
    """v2 (version 2, unsalted) has a date-of-birth filter and single-input mobile and landline
    tokens; FEBRL is version 2 with a date-of-birth filter too."""
    v2 = load_encoding_schema(REPO / "config" / "encoding" / "v2.toml")
    assert (v2.schema_id, v2.version, v2.hardening.salt) == ("uk-person", 2, None)
    assert FieldRef("date_of_birth") in {f.input for f in v2.filters}
    phones = {t.name: t.inputs for t in v2.tokens if t.inputs[0].field == "phone"}
    assert phones == {
        "mobile": (FieldRef("phone", "mobile"),),
        "landline": (FieldRef("phone", "landline"),),
    }
    v1 = load_encoding_schema(REPO / "config" / "encoding" / "v1.toml")
    assert v2.hash != v1.hash
    febrl = load_encoding_schema(REPO / "config" / "encoding" / "febrl.toml")
    assert febrl.version == 2 and febrl.hardening.salt is None
    assert "date_of_birth" in {f.input.field for f in febrl.filters}


@pytest.mark.parametrize(
    "body",
    [
        '[[filters]]\nname = "d"\ninput = "date_of_birth"\n',
        '[extra_fields]\nseen = "date"\n[[filters]]\nname = "d"\ninput = "seen"\n',
        '[[tokens]]\nname = "m"\ninputs = ["phone:mobile"]\n',
        '[[tokens]]\nname = "l"\ninputs = ["phone:landline"]\n',
        '[[tokens]]\nname = "x"\ninputs = ["phone:landline", "family_name"]\n',
    ],
    ids=["dob-filter", "extra-date-filter", "mobile-token", "landline-token", "landline-pair"],
)
def test_dates_as_filters_and_phone_kinds_are_accepted(body: str, tmp_path: Path) -> None:
    """Dates may be filters now; a phone kept by kind may be a token's only input."""
    path = tmp_path / "s.toml"
    path.write_text('schema_id = "t"\nversion = 1\n' + body)
    assert load_encoding_schema(path).hash


def test_hash_ignores_comments_but_not_meaning(tmp_path: Path) -> None:
    """Changing a comment keeps the hash; changing a filter parameter changes it."""
    src = REPO / "config" / "encoding" / "v1.toml"
    base = load_encoding_schema(src).hash
    commented = tmp_path / "c.toml"
    commented.write_text("# another comment\n" + src.read_text())
    assert load_encoding_schema(commented).hash == base
    changed = tmp_path / "m.toml"
    changed.write_text(src.read_text().replace("hashes = 10", "hashes = 11"))
    assert load_encoding_schema(changed).hash != base


def test_v1_hash_is_pinned() -> None:
    """The v1 schema's hash is pinned: changing its meaning needs a new version."""
    schema = load_encoding_schema(REPO / "config" / "encoding" / "v1.toml")
    assert schema.hash == (REPO / "tests" / "vectors" / "golden" / "v1.hash").read_text().strip()


def test_filter_bytes_doubles_when_balanced(tmp_path: Path) -> None:
    """A balanced filter is twice the declared bits; an unbalanced one is as declared."""
    path = tmp_path / "s.toml"
    shutil.copy(REPO / "config" / "encoding" / "v1.toml", path)
    schema = load_encoding_schema(path)
    spec = schema.filters[0]
    assert schema.filter_bytes(spec) == spec.bits * 2 // 8
    path.write_text(path.read_text().replace("balance = true", "balance = false"))
    unbalanced = load_encoding_schema(path)
    assert unbalanced.filter_bytes(unbalanced.filters[0]) == spec.bits // 8
