"""Bad input: one clear error, a non-zero exit, and no output file left behind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.cli import main
from connectors.keys import generate_key, write_key
from tests.conftest import REPO, VECTORS

GOLDEN_INPUT = VECTORS / "golden" / "input.csv"
HEADER = GOLDEN_INPUT.read_text().splitlines()[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_key(generate_key("linkage-secret"), tmp_path / "project.key")
    write_key(generate_key("record-key"), tmp_path / "record.key")
    (tmp_path / "out").mkdir()
    return tmp_path


def _run(workdir: Path, input_path: Path, *extra: str, key: str = "project.key") -> int:
    return main(
        [
            "pseudonymise",
            "--mapping", str(REPO / "config" / "mappings" / "ae.toml"),
            "--schema", str(REPO / "config" / "encoding" / "v1.toml"),
            "--key", str(workdir / key),
            "--record-key", str(workdir / "record.key"),
            "--input", str(input_path),
            "--output", str(workdir / "out" / "encoded.parquet"),
            "--report", str(workdir / "out" / "quality.json"),
            "--keymap", str(workdir / "out" / "keymap.parquet"),
            "--quiet",
            *extra,
        ]
    )  # fmt: skip


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _wrong_columns(p: Path) -> None:
    p.write_text("id,name,birth\n1,Ann,1990-01-01\n")


def _header_only(p: Path) -> None:
    p.write_text(HEADER + "\n")


def _binary(p: Path) -> None:
    p.write_bytes(bytes(range(256)) * 64)


def _not_utf8(p: Path) -> None:
    p.write_bytes((HEADER + "\nG1,Zo\xeb,Smith\n").encode("latin-1") + b"x" * 100)


def _long_line(p: Path) -> None:
    with p.open("w") as fh:
        fh.write(HEADER + "\n")
        fh.write("G1,Ann,Smith," + "x" * (30 * 1024 * 1024) + "\n")


def _long_header(p: Path) -> None:
    p.write_text("a" * (20 * 1024 * 1024) + "\n1\n")


def _ragged(p: Path) -> None:
    p.write_text(HEADER + "\nG1,Ann,Smith\n")


def _unreadable_dates(p: Path) -> None:
    lines = GOLDEN_INPUT.read_text().splitlines()
    rows = [HEADER]
    for i in range(1, 7):
        cells = lines[i].split(",")
        cells[3] = f"1985.03.{10 + i}"  # a format the mapping does not declare
        rows.append(",".join(cells))
    p.write_text("\n".join(rows) + "\n")


def _unreadable_datetimes(p: Path) -> None:
    lines = GOLDEN_INPUT.read_text().splitlines()
    rows = [HEADER]
    for i in range(1, 7):
        cells = lines[i].split(",")
        cells[-4] = f"14.03.2025 23:{10 + i}"  # arrival_datetime in an undeclared format
        rows.append(",".join(cells))
    p.write_text("\n".join(rows) + "\n")


def _duplicate_header(p: Path) -> None:
    p.write_text(HEADER + ",forename\n")


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty-file": (_empty, "the file is empty"),
    "wrong-columns": (_wrong_columns, "does not have"),
    "header-only": (_header_only, "no data rows"),
    "binary-file": (_binary, "binary file"),
    "not-utf8": (_not_utf8, "not UTF-8"),
    "thirty-megabyte-line": (_long_line, "longer than"),
    "twenty-megabyte-header": (_long_header, "longer than"),
    "ragged-row": (_ragged, "Expected 14 columns, got 3"),
    "unreadable-date-format": (_unreadable_dates, "match none of the declared date formats"),
    "duplicate-header": (_duplicate_header, "appears twice"),
    "unreadable-datetime-attribute": (_unreadable_datetimes, "(arrival_datetime) match none"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_file(workdir: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each malformed input gives one clear error line, exit code 2 and no output files."""
    make, expect = CASES[case]
    bad = workdir / "input.csv"
    make(bad)
    assert _run(workdir, bad) == 2
    err = capsys.readouterr().err
    assert expect in err
    assert err.count("error:") == 1
    assert "Traceback" not in err
    assert list((workdir / "out").iterdir()) == []


def test_error_does_not_echo_values(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ragged row's error names the problem without quoting the row's identifiers."""
    bad = workdir / "input.csv"
    bad.write_text(HEADER + "\nG1,Bartholomew,Zzyzx-Quimby\n")
    assert _run(workdir, bad) == 2
    err = capsys.readouterr().err
    assert "Bartholomew" not in err
    assert "Zzyzx" not in err


@pytest.mark.parametrize(
    ("problem", "expect"),
    [("size", "must be 32 bytes"), ("mode", "chmod 600"), ("kind", "record-key file")],
)
def test_bad_key_file(
    workdir: Path, problem: str, expect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key of the wrong size, permissions or kind is refused before anything is written."""
    key = workdir / "bad.key"
    if problem == "size":
        text = (workdir / "project.key").read_text()
        import json

        doc = json.loads(text)
        doc["secret"] = "AAAA"
        key.write_text(json.dumps(doc))
        os.chmod(key, 0o600)
    elif problem == "mode":
        shutil.copy(workdir / "project.key", key)
        os.chmod(key, 0o644)
    else:
        shutil.copy(workdir / "record.key", key)
        os.chmod(key, 0o600)
    assert _run(workdir, GOLDEN_INPUT, key="bad.key") == 2
    err = capsys.readouterr().err
    assert expect in err
    assert list((workdir / "out").iterdir()) == []


def test_key_not_accepted_inline(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """There is no way to pass a secret on the command line: --key names a file."""
    assert _run(workdir, GOLDEN_INPUT, key="0" * 64) == 2
    assert "cannot read key file" in capsys.readouterr().err


def test_output_dir_missing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output in a directory that does not exist is refused up front."""
    shutil.rmtree(workdir / "out")
    assert _run(workdir, GOLDEN_INPUT) == 2
    assert "does not exist" in capsys.readouterr().err


def test_good_input_writes_all_outputs(workdir: Path) -> None:
    """The golden input succeeds and writes exactly the three requested files."""
    assert _run(workdir, GOLDEN_INPUT) == 0
    names = sorted(p.name for p in (workdir / "out").iterdir())
    assert names == ["encoded.parquet", "keymap.parquet", "quality.json"]
