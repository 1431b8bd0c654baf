"""Feedback lookup: the hub's feedback file maps back to exactly the agency's own record ids."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from connectors import lookup as lookup_module
from connectors.cli import main
from connectors.errors import FeedbackError, KeyFileError
from connectors.feedback import FeedbackRow, feedback_table, read_feedback, write_feedback
from connectors.keys import RECORD_KEY_ENV, Key, generate_key, read_key, write_key
from connectors.lookup import (
    NO_MATCH,
    export_record_ids,
    lookup,
    record_pseudonymiser,
)
from connectors.mapping import ColumnMapping, load_mapping
from connectors.readers import Batch, ExportReader, open_export
from connectors.synth import synthesise
from tests.conftest import REPO

AGENCY = "ae-cardiff"
META = {"project": "cardiff-2026", "run": "run-7", "created": "2026-11-22T21:00:00Z"}
MAPPING = REPO / "config" / "mappings" / "ae.toml"


@dataclass(frozen=True)
class Agency:
    """One agency's side after `connector pseudonymise`: export, record key, pipeline keymap."""

    root: Path
    export: Path
    record_key_file: Path
    record_key: Key
    encoded: Path
    keymap: dict[str, bytes]  # record_id -> record pseudonym, as the pipeline wrote it

    def feedback(
        self, rows: list[FeedbackRow], name: str = "feedback.parquet", **meta: str
    ) -> Path:
        path = self.root / name
        write_feedback(feedback_table(rows, **{"agency": AGENCY, **META, **meta}), path)
        return path

    def cli(self, links: Path, *extra: str) -> list[str]:
        return [
            "lookup",
            "--record-key", str(self.record_key_file),
            "--mapping", str(MAPPING),
            "--input", str(self.export),
            "--links", str(links),
            *extra,
        ]  # fmt: skip


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Agency:
    """A synthetic A&E export pseudonymised by the real pipeline, with its keymap."""
    root = tmp_path_factory.mktemp("lookup")
    synthesise(150, 5, root / "exports")
    assert main(["keygen", "--out", str(root / "project.key")]) == 0
    assert main(["keygen", "--record-key", "--out", str(root / "record.key")]) == 0
    export = root / "exports" / "ae_attendances.csv"
    assert main(
        [
            "pseudonymise",
            "--mapping", str(MAPPING),
            "--schema", str(REPO / "config" / "encoding" / "v2.toml"),
            "--key", str(root / "project.key"),
            "--record-key", str(root / "record.key"),
            "--input", str(export),
            "--output", str(root / "ae.parquet"),
            "--keymap", str(root / "keymap.parquet"),
            "--quiet",
        ]
    ) == 0  # fmt: skip
    keymap = pq.read_table(root / "keymap.parquet").to_pylist()
    return Agency(
        root=root,
        export=export,
        record_key_file=root / "record.key",
        record_key=read_key(root / "record.key"),
        encoded=root / "ae.parquet",
        keymap={r["record_id"]: r["record_pseudonym"] for r in keymap},
    )


@pytest.fixture(scope="module")
def mapping() -> ColumnMapping:
    return load_mapping(MAPPING)


def _subset(agency: Agency) -> tuple[list[FeedbackRow], list[tuple[str, str, int]]]:
    """Feedback rows for every third record (some linked to two agencies) and the expected
    lookup rows, sorted by record id then agency."""
    rows: list[FeedbackRow] = []
    expected: list[tuple[str, str, int]] = []
    for i, (record_id, pseudonym) in enumerate(sorted(agency.keymap.items())[::3]):
        rows.append((pseudonym, "police-south-wales", 1 + i % 3))
        expected.append((record_id, "police-south-wales", 1 + i % 3))
        if i % 4 == 0:
            rows.append((pseudonym, "council-cardiff", 2))
            expected.append((record_id, "council-cardiff", 2))
    return rows, sorted(expected)


def _csv_rows(text: str) -> list[tuple[str, str, int]]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == ["record_id", "linked_agency", "linked_records"]
    return [(r, a, int(n)) for r, a, n in reader]


def test_recomputed_pseudonyms_are_the_pipelines(agency: Agency, mapping: ColumnMapping) -> None:
    """Every record id the pipeline kept gets the pseudonym the pipeline wrote, and it is in
    the encoded file that was uploaded."""
    pseudonym = record_pseudonymiser(agency.record_key)
    ids = set(export_record_ids(agency.export, mapping))
    assert set(agency.keymap) <= ids
    assert {r: pseudonym(r) for r in agency.keymap} == agency.keymap
    uploaded = set(pq.read_table(agency.encoded).column("record_pseudonym").to_pylist())
    assert uploaded == set(agency.keymap.values())


def test_lookup_returns_exactly_the_linked_record_ids(
    agency: Agency, mapping: ColumnMapping
) -> None:
    """A feedback file for a subset maps back to exactly those record ids, nothing else."""
    rows, expected = _subset(agency)
    feedback = read_feedback(agency.feedback(rows))
    result = lookup(
        feedback,
        export_record_ids(agency.export, mapping),
        record_key=agency.record_key,
        agency=AGENCY,
    )
    got = [tuple(r.values()) for r in result.table.to_pylist()]
    assert got == expected
    assert result.table.column_names == ["record_id", "linked_agency", "linked_records"]
    assert (result.feedback_rows, result.matched, result.unmatched) == (len(rows), len(rows), 0)
    assert result.summary()["records"] == len({r[0] for r in expected})


def test_unknown_pseudonyms_are_counted_not_output(agency: Agency, mapping: ColumnMapping) -> None:
    """Rows naming records not in this export are reported as unmatched and left out."""
    rows, expected = _subset(agency)
    strangers: list[FeedbackRow] = [(bytes([i]) * 16, "police-south-wales", 1) for i in range(5)]
    feedback = read_feedback(agency.feedback(rows + strangers))
    result = lookup(
        feedback,
        export_record_ids(agency.export, mapping),
        record_key=agency.record_key,
        agency=AGENCY,
    )
    assert [tuple(r.values()) for r in result.table.to_pylist()] == expected
    assert (result.matched, result.unmatched) == (len(rows), 5)


def test_only_the_record_id_column_is_read(
    agency: Agency, mapping: ColumnMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lookup asks the reader for the record-id column and nothing else."""
    asked: list[list[str]] = []

    def spying_open(path: Path, m: ColumnMapping) -> ExportReader:
        reader = open_export(path, m)
        real_batches = reader.batches

        def batches(wanted: list[str], rows: int) -> Iterator[Batch]:
            asked.append(list(wanted))
            return real_batches(wanted, rows)

        reader.batches = batches  # type: ignore[method-assign]
        return reader

    monkeypatch.setattr(lookup_module, "open_export", spying_open)
    assert list(export_record_ids(agency.export, mapping))
    assert asked == [["attendance_id"]]


def test_record_ids_are_normalised_like_the_pipeline(tmp_path: Path) -> None:
    """Ids are stripped; blanks, missing-value markers and control characters are skipped."""
    mapping_file = tmp_path / "m.toml"
    mapping_file.write_text(
        '[source]\nagency = "ae-cardiff"\n[identifiers]\nrecord_id = "id"\ngiven_name = "name"\n',
        encoding="utf-8",
    )
    export = tmp_path / "e.csv"
    export.write_text('id,name\n  A1 ,x\n,x\nNULL,x\n"B\x072",x\nC3,x\n', encoding="utf-8")
    ids = list(export_record_ids(export, load_mapping(mapping_file), batch_rows=2))
    assert ids == ["A1", "C3"]


def test_wrong_agency_is_refused(agency: Agency) -> None:
    """A feedback file for another agency is refused before the export is read."""
    rows: list[FeedbackRow] = [(p, "ae-cardiff", 1) for p in agency.keymap.values()]
    links = agency.feedback(rows, "police.parquet", agency="police-south-wales")
    with pytest.raises(FeedbackError, match="for agency 'police-south-wales'"):
        lookup(read_feedback(links), iter(()), record_key=agency.record_key, agency=AGENCY)


def test_wrong_record_key_matches_nothing(agency: Agency, mapping: ColumnMapping) -> None:
    """Under another record key no pseudonym matches, which is a clear error."""
    rows, _ = _subset(agency)
    feedback = read_feedback(agency.feedback(rows))
    other = generate_key("record-key")
    pseudonym = record_pseudonymiser(other)
    assert not {pseudonym(r) for r in agency.keymap} & set(agency.keymap.values())
    with pytest.raises(FeedbackError, match="wrong record key or wrong export"):
        lookup(
            feedback,
            export_record_ids(agency.export, mapping),
            record_key=other,
            agency=AGENCY,
        )


def test_linkage_secret_is_not_a_record_key() -> None:
    """The project linkage secret cannot stand in for the record key."""
    with pytest.raises(KeyFileError, match="record key"):
        record_pseudonymiser(generate_key("linkage-secret"))


def test_empty_feedback_is_not_an_error(agency: Agency, mapping: ColumnMapping) -> None:
    """A run that linked none of the records gives an empty table, not a wrong-key error."""
    feedback = read_feedback(agency.feedback([], "empty.parquet"))
    result = lookup(
        feedback,
        export_record_ids(agency.export, mapping),
        record_key=agency.record_key,
        agency=AGENCY,
    )
    assert result.table.num_rows == 0 and result.unmatched == 0


# The command line.


def test_cli_writes_csv_and_summary(agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    """`connector lookup --output` writes the CSV and a summary on stderr."""
    rows, expected = _subset(agency)
    links = agency.feedback([*rows, (b"\xff" * 16, "police-south-wales", 1)])
    out = agency.root / "linked.csv"
    assert main(agency.cli(links, "--output", str(out))) == 0
    assert _csv_rows(out.read_text(encoding="utf-8")) == expected
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{len(rows) + 1} rows, {len(rows)} matched, 1 unmatched" in captured.err
    assert not [p for p in agency.root.iterdir() if p.name.endswith(".partial")]


def test_cli_writes_csv_to_stdout(agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --output the CSV goes to stdout and the summary to stderr."""
    rows, expected = _subset(agency)
    assert main(agency.cli(agency.feedback(rows))) == 0
    captured = capsys.readouterr()
    assert _csv_rows(captured.out) == expected
    assert f"{len(rows)} matched" in captured.err


def test_cli_json_summary(agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the summary as one JSON object on stdout."""
    rows, expected = _subset(agency)
    out = agency.root / "json.csv"
    assert main(agency.cli(agency.feedback(rows), "--output", str(out), "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "agency": AGENCY,
        "project": "cardiff-2026",
        "run": "run-7",
        "feedback_rows": len(rows),
        "matched": len(rows),
        "unmatched": 0,
        "records": len({r[0] for r in expected}),
    }
    assert _csv_rows(out.read_text(encoding="utf-8")) == expected


def test_cli_json_needs_output(agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    """--json without --output would mix JSON and CSV on stdout: refused."""
    assert main(agency.cli(agency.feedback([]), "--json")) == 2
    assert "--json needs --output" in capsys.readouterr().err


def test_cli_record_key_from_environment(
    agency: Agency, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--record-key falls back to the file named by PPRL_RECORD_KEY_FILE."""
    rows, expected = _subset(agency)
    monkeypatch.setenv(RECORD_KEY_ENV, str(agency.record_key_file))
    args = agency.cli(agency.feedback(rows))
    del args[1:3]  # drop --record-key FILE
    assert main(args) == 0
    assert _csv_rows(capsys.readouterr().out) == expected


def test_cli_wrong_record_key(agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong record key exits 2 with the wrong-key message and writes nothing."""
    rows, _ = _subset(agency)
    wrong = agency.root / "other-record.key"
    write_key(generate_key("record-key"), wrong, overwrite=True)
    out = agency.root / "wrong.csv"
    args = agency.cli(agency.feedback(rows), "--output", str(out))
    args[2] = str(wrong)
    assert main(args) == 2
    assert NO_MATCH in capsys.readouterr().err
    assert not out.exists()


def test_cli_wrong_agency(agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    """A feedback file for another agency exits 2 naming both agencies."""
    links = agency.feedback(
        [(b"\x01" * 16, "ae-cardiff", 1)], "theirs.parquet", agency="police-south-wales"
    )
    assert main(agency.cli(links)) == 2
    err = capsys.readouterr().err
    assert "'police-south-wales'" in err and "'ae-cardiff'" in err


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_cli_truncated_feedback_file(
    agency: Agency, capsys: pytest.CaptureFixture[str], cut: float
) -> None:
    """A truncated download exits 2 with a clear message."""
    rows, _ = _subset(agency)
    links = agency.feedback(rows, "cut.parquet")
    data = links.read_bytes()
    links.write_bytes(data[: int(len(data) * cut)])
    assert main(agency.cli(links)) == 2
    assert "not a readable Parquet file" in capsys.readouterr().err


def test_cli_encoded_file_is_not_feedback(
    agency: Agency, capsys: pytest.CaptureFixture[str]
) -> None:
    """Passing the encoded upload as --links is refused by name."""
    assert main(agency.cli(agency.encoded)) == 2
    assert "this is an encoded file, not a feedback file" in capsys.readouterr().err


def test_cli_refuses_to_overwrite_an_input(
    agency: Agency, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output naming the export or the feedback file is refused before anything is read."""
    links = agency.feedback([], "same.parquet")
    before = agency.export.read_bytes()
    assert main(agency.cli(links, "--output", str(agency.export))) == 2
    assert main(agency.cli(links, "--output", str(links))) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert agency.export.read_bytes() == before
    assert read_feedback(links).table.num_rows == 0
