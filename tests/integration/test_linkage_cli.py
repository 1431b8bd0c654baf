"""End to end on DuckDB: synthetic exports -> connector -> `python -m linkage link` -> outputs."""

from __future__ import annotations

import csv
import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from connectors.encoding_schema import load_encoding_schema
from connectors.keys import Key, generate_key
from connectors.mapping import load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise
from connectors.synth import synthesise
from linkage.cli import main
from tests.conftest import REPO

ENCODINGS = REPO / "config" / "encoding"
LINK_COLUMNS = [
    "dataset_l", "record_l", "dataset_r", "record_r", "match_weight", "match_probability"
]  # fmt: skip


def _encode(
    src: Path, mapping: str, agency: str, out: Path, key: Key, schema: Path
) -> dict[str, tuple[str, str]]:
    keymap = out.with_name(out.stem + "-keymap.parquet")
    pseudonymise(
        PseudonymiseJob(
            mapping=load_mapping(REPO / "config" / "mappings" / f"{mapping}.toml"),
            schema=load_encoding_schema(schema),
            linkage_key=key,
            record_key=generate_key("record-key"),
            input=src,
            output=out,
            agency=agency,
            keymap=keymap,
            today=dt.date(2026, 1, 1),
        )
    )
    table = pq.read_table(keymap)
    return {
        p.hex(): (mapping, rid)
        for rid, p in zip(
            table.column("record_id").to_pylist(),
            table.column("record_pseudonym").to_pylist(),
            strict=True,
        )
    }


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic A&E and police exports with ground truth, made once for both schemas."""
    root = tmp_path_factory.mktemp("exports")
    synthesise(1500, 5, root)
    return root


@pytest.fixture(scope="module", params=["v1", "v2"])
def scenario(
    request: pytest.FixtureRequest, exports: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """Three agencies encoded with one schema, linked by the CLI (about 10 s per schema)."""
    schema = ENCODINGS / f"{request.param}.toml"
    root = tmp_path_factory.mktemp(f"linkcli-{request.param}")
    key = generate_key("linkage-secret")
    ids: dict[str, tuple[str, str]] = {}
    ids |= _encode(exports / "ae_attendances.csv", "ae", "ae", root / "ae.parquet", key, schema)
    ids |= _encode(
        exports / "police_incidents.csv", "police", "police", root / "police.parquet", key, schema
    )
    # a third agency holding copies of the first 200 A&E rows under its own record key
    lines = (exports / "ae_attendances.csv").read_text().splitlines()
    (root / "council.csv").write_text("\n".join(lines[:201]) + "\n")
    council = _encode(root / "council.csv", "ae", "council", root / "council.parquet", key, schema)
    ids |= {k: ("council", v[1]) for k, v in council.items()}
    out = root / "out"
    code = main(
        [
            "link",
            str(root / "ae.parquet"),
            str(root / "police.parquet"),
            str(root / "council.parquet"),
            "--out",
            str(out),
            "--schema",
            str(schema),
            "--scores",
            str(root / "scores.parquet"),
        ]
    )
    assert code == 0
    truth = {}
    with (exports / "truth.csv").open() as fh:
        for row in csv.DictReader(fh):
            truth[(row["source"], row["record_id"])] = row["person_id"]
    return {"out": out, "ids": ids, "truth": truth}


def test_outputs_exist_with_the_documented_columns(scenario: dict[str, object]) -> None:
    """links, review, entities, diagnostics and two charts are written with the documented
    columns."""
    out = scenario["out"]
    assert isinstance(out, Path)
    links = pq.read_table(out / "links.parquet")
    assert links.column_names == LINK_COLUMNS
    assert pq.read_table(out / "review.parquet").column_names == LINK_COLUMNS
    assert pq.read_table(out / "entities.parquet").column_names == [
        "entity_id",
        "dataset",
        "record",
    ]
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["parameters"]
    assert 0 < diag["threshold"]["threshold"] <= 1
    assert diag["blocking"]["total"] > 0
    # the report made before scoring counts exactly the pairs that were then compared
    assert diag["blocking"]["total"] == diag["blocking"]["compared"]
    assert sum(r["new_pairs"] for r in diag["blocking"]["per_rule"]) == diag["blocking"]["total"]
    for chart in ("weights.svg", "parameters.svg"):
        ET.fromstring((out / chart).read_text())
    assert {"prepare", "u", "train", "predict", "cluster", "report"} <= set(diag["seconds"])


def test_review_band_and_scores_file(scenario: dict[str, object]) -> None:
    """review.parquet holds the pairs in [review_lower, threshold); --scores holds every scored
    pair at or above 0.001, of which links and the review band are the top."""
    out = scenario["out"]
    assert isinstance(out, Path)
    threshold = json.loads((out / "diagnostics.json").read_text())["threshold"]
    links = pq.read_table(out / "links.parquet").to_pylist()
    review = pq.read_table(out / "review.parquet").to_pylist()
    scores = pq.read_table(out.parent / "scores.parquet")
    assert scores.column_names == LINK_COLUMNS
    p = [r["match_probability"] for r in scores.to_pylist()]
    assert min(p) >= 0.001
    assert all(
        threshold["review_lower"] <= r["match_probability"] < threshold["threshold"] for r in review
    )
    assert all(r["match_probability"] >= threshold["threshold"] for r in links)
    above = [r for r in scores.to_pylist() if r["match_probability"] >= threshold["review_lower"]]
    assert len(above) == len(links) + len(review)
    # not == review_pairs: with tied probabilities at review_lower the band can hold more (see
    # test_threshold.py::test_review_band_is_whole_with_tied_probabilities)
    assert len(review) >= threshold["review_pairs"]


def test_ae_police_links_are_accurate(scenario: dict[str, object]) -> None:
    """A&E-police links at the chosen threshold reach F1 above 0.9 against the ground truth."""
    out, ids, truth = scenario["out"], scenario["ids"], scenario["truth"]
    assert isinstance(out, Path) and isinstance(ids, dict) and isinstance(truth, dict)
    got = set()
    for row in pq.read_table(out / "links.parquet").to_pylist():
        a, b = ids[row["record_l"]], ids[row["record_r"]]
        if {a[0], b[0]} == {"ae", "police"}:
            ae, po = (a, b) if a[0] == "ae" else (b, a)
            got.add((ae[1], po[1]))
    people: dict[str, dict[str, list[str]]] = {}
    for (source, rid), person in truth.items():
        people.setdefault(person, {}).setdefault(source, []).append(rid)
    want = {(a, b) for p in people.values() for a in p.get("ae", []) for b in p.get("police", [])}
    tp = len(got & want)
    f1 = 2 * tp / (len(got) + len(want))
    assert f1 > 0.9


def test_third_dataset_copies_join_their_originals(scenario: dict[str, object]) -> None:
    """Each council copy of an A&E record lands in the same entity as that record."""
    out, ids = scenario["out"], scenario["ids"]
    assert isinstance(out, Path) and isinstance(ids, dict)
    entity_of: dict[tuple[str, str], str] = {}
    for row in pq.read_table(out / "entities.parquet").to_pylist():
        entity_of[ids[row["record"]]] = row["entity_id"]
    copies = [rid for (src, rid) in entity_of if src == "council"]
    assert len(copies) == 200
    joined = sum(entity_of[("council", r)] == entity_of[("ae", r)] for r in copies)
    assert joined >= 195


def test_mismatched_schema_is_refused(
    scenario: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Inputs not made with the named schema are refused with a clear error, writing nothing."""
    out = scenario["out"]
    assert isinstance(out, Path)
    febrl_schema = ENCODINGS / "febrl.toml"
    inputs = [str(out.parent / "ae.parquet"), str(out.parent / "police.parquet")]
    code = main(["link", *inputs, "--out", str(tmp_path / "x"), "--schema", str(febrl_schema)])
    assert code == 2
    assert "not encoded with" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_blocking_command_reports_before_linking(
    scenario: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m linkage blocking` prints per-rule and total candidate pairs, as linking used."""
    out = scenario["out"]
    assert isinstance(out, Path)
    inputs = [str(out.parent / f"{n}.parquet") for n in ("ae", "police", "council")]
    capsys.readouterr()
    assert main(["blocking", *inputs]) == 0
    printed = capsys.readouterr().out
    diag = json.loads((out / "diagnostics.json").read_text())
    assert f"{diag['blocking']['total']:,} pairs to compare" in printed
