"""Round trip on the synthetic scenario at 10,000 people: nothing identifying leaves the agency."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from connectors.cli import main
from connectors.mapping import load_mapping
from connectors.synth import synthesise
from tests.conftest import REPO

PEOPLE = 10_000
SOURCES = {"ae": "ae_attendances.csv", "police": "police_incidents.csv"}
#: Raw-byte search needs values long enough not to occur by chance in 10 MB of hashes.
MIN_RAW_SEARCH = 6


@dataclass(frozen=True)
class Run:
    root: Path
    exports: Path

    def encoded(self, source: str, tag: str = "a") -> Path:
        return self.root / f"{source}-{tag}.parquet"


def _pseudonymise(run: Run, source: str, key: str, tag: str) -> None:
    code = main(
        [
            "pseudonymise",
            "--mapping", str(REPO / "config" / "mappings" / f"{source}.toml"),
            "--schema", str(REPO / "config" / "encoding" / "v1.toml"),
            "--key", str(run.root / key),
            "--record-key", str(run.root / f"{source}-record.key"),
            "--input", str(run.exports / SOURCES[source]),
            "--output", str(run.encoded(source, tag)),
            "--report", str(run.root / f"{source}-{tag}.json"),
            "--quiet",
            "--workers", "1" if tag != "b" else "2",
        ]
    )  # fmt: skip
    assert code == 0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("roundtrip")
    exports = root / "exports"
    synthesise(PEOPLE, 11, exports)
    r = Run(root, exports)
    assert main(["keygen", "--out", str(root / "project.key")]) == 0
    assert main(["keygen", "--out", str(root / "other.key")]) == 0
    for source in SOURCES:
        assert main(["keygen", "--record-key", "--out", str(root / f"{source}-record.key")]) == 0
        _pseudonymise(r, source, "project.key", "a")  # first run
        _pseudonymise(r, source, "project.key", "b")  # same key again (with two workers)
        _pseudonymise(r, source, "other.key", "c")  # a different linkage secret
    return r


def _identifier_values(run: Run, source: str) -> set[str]:
    """Every identifier value of the input, as written and in common normalised forms."""
    mapping = load_mapping(REPO / "config" / "mappings" / f"{source}.toml")
    columns = {f.column for f in mapping.identifiers if f.field != "record_id"}
    names = {
        f.column
        for f in mapping.identifiers
        if f.field.endswith("_name") or f.field == "other_names"
    }
    values: set[str] = set()
    with (run.exports / SOURCES[source]).open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for column in columns:
                raw = row[column].strip()
                if not raw:
                    continue
                values.update({raw, raw.lower(), raw.upper(), raw.replace(" ", "")})
                if column in names:  # each word of a name, as well as the whole name
                    values.update(w for w in raw.replace(";", " ").split() if len(w) > 3)
    return values


def _decoded_strings(path: Path) -> set[str]:
    table = pq.read_table(path)
    out: set[str] = set()
    for column in table.columns:
        for value in column.to_pylist():
            if value is None:
                continue
            out.add(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return out


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_no_plaintext_identifier_in_output(run: Run, source: str) -> None:
    """No decoded output value, and no run of the file's raw bytes, is an input identifier."""
    identifiers = _identifier_values(run, source)
    assert len(identifiers) > 10_000  # the search is over real data, not an empty set
    path = run.encoded(source)
    leaked = identifiers & _decoded_strings(path)
    assert not leaked, f"{len(leaked)} identifier values appear as output values"
    raw = path.read_bytes()
    long_values = [v for v in identifiers if len(v.encode()) >= MIN_RAW_SEARCH]
    found = [v for v in long_values if v.encode() in raw]
    assert not found, f"{len(found)} identifier values appear in the file's bytes"


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_row_counts_match(run: Run, source: str) -> None:
    """Rows written = rows read - rows rejected, and rows read = the export's data rows."""
    report = json.loads((run.root / f"{source}-a.json").read_text())
    with (run.exports / SOURCES[source]).open(newline="", encoding="utf-8") as fh:
        data_rows = sum(1 for _ in csv.reader(fh)) - 1
    assert report["rows_read"] == data_rows
    assert report["rows_written"] == data_rows - report["rows_rejected"]
    assert pq.read_metadata(run.encoded(source)).num_rows == report["rows_written"]
    meta = json.loads(pq.read_metadata(run.encoded(source)).metadata[b"pprl"])
    assert meta["row_count"] == report["rows_written"]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_same_key_gives_identical_encodings(run: Run, source: str) -> None:
    """A second run with the same keys (here with two worker processes) is byte-identical."""
    first = pq.read_table(run.encoded(source, "a"))
    second = pq.read_table(run.encoded(source, "b"))
    assert first.equals(second)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_different_key_gives_different_tokens(run: Run, source: str) -> None:
    """Another linkage secret changes every token and filter; record pseudonyms stay."""
    first = pq.read_table(run.encoded(source, "a"))
    other = pq.read_table(run.encoded(source, "c"))
    assert first.column("tok_name_dob").null_count < first.num_rows
    assert first.column("record_pseudonym").equals(other.column("record_pseudonym"))
    for name in first.column_names:
        if not name.startswith(("tok_", "bf_")):
            continue
        pairs = zip(first.column(name).to_pylist(), other.column(name).to_pylist(), strict=True)
        both = [(a, b) for a, b in pairs if a is not None]
        assert all(a != b for a, b in both), name


def test_key_check_value_in_metadata_matches_key_check(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key check value in the file's metadata is what `connector key-check` prints."""
    capsys.readouterr()
    assert main(["key-check", str(run.root / "project.key")]) == 0
    printed = capsys.readouterr().out.strip()
    for source in SOURCES:
        meta = json.loads(pq.read_metadata(run.encoded(source)).metadata[b"pprl"])
        assert meta["key_check_value"] == printed
    other = json.loads(pq.read_metadata(run.encoded("ae", "c")).metadata[b"pprl"])
    assert other["key_check_value"] != printed


def test_tokens_link_the_two_agencies(run: Run) -> None:
    """The encodings are useful: most people in both exports share a name/dob token."""
    truth: dict[tuple[str, str], str] = {}
    with (run.exports / "truth.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            truth[(row["source"], row["record_id"])] = row["person_id"]
    shared = set()
    for source in SOURCES:
        shared_people = {p for (s, _), p in truth.items() if s == source}
        shared = shared_people if not shared else shared & shared_people
    ae = pq.read_table(run.encoded("ae"), columns=["tok_name_dob"]).column(0).to_pylist()
    police = pq.read_table(run.encoded("police"), columns=["tok_name_dob"]).column(0).to_pylist()
    common = {t for t in ae if t} & {t for t in police if t}
    assert len(shared) > 500
    assert len(common) > 0.5 * len(shared)
