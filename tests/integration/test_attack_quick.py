"""``bench/attack.py --quick``: every attack runs, for both hardening settings and every overlap,
and reports rows with the documented figures (bench/README.md, "attack")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

OVERLAPS = {1.0, 0.9, 0.75, 0.5}
HARDENING = {"default", "none"}
#: the point of the bit-flipping curve that --quick runs (at 100% and 90% overlap only)
FLIP = "flip-0.2"
ATTACKS = {"frequency", "patterns", "graph", "dictionary"}
ROW_KEYS = {
    "system",
    "dataset",
    "attack",
    "level",
    "target",
    "overlap",
    "hardening",
    "records",
    "reidentified_share",
    "guesses",
    "correct_guesses",
    "guess_precision",
    "linkage_f1",
    "flip_probability",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The closing JSON object of one quick run (a few thousand people, about half a minute)."""
    out = tmp_path_factory.mktemp("attack")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "attack.py"), "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    doc: dict[str, Any] = json.loads(last)
    return doc


def _record_rows(report: dict[str, Any]) -> dict[tuple[str, str, float], dict[str, Any]]:
    return {
        (r["attack"], r["hardening"], r["overlap"]): r
        for r in report["results"]
        if r["level"] == "record"
    }


@pytest.mark.slow
def test_last_line_is_the_result_object(report: dict[str, Any]) -> None:
    """The last line of stdout is the bench's JSON object: name, machine block, result rows."""
    assert report["bench"] == "attack"
    assert {"cores", "cpu_model", "python"} <= report["machine"].keys()
    assert report["results"]
    assert report["settings"]["quick"] is True


@pytest.mark.slow
def test_every_row_has_the_documented_figures(report: dict[str, Any]) -> None:
    """Each row carries the documented keys, with shares and precisions in [0, 1] and no more
    confident guesses than records, nor correct ones than guesses."""
    for row in report["results"]:
        assert row.keys() >= ROW_KEYS, sorted(ROW_KEYS - row.keys())
        assert row["level"] in ("record", "value")
        assert 0.0 <= row["reidentified_share"] <= 1.0
        assert 0 <= row["correct_guesses"] <= row["guesses"] <= row["records"]
        precision = row["guess_precision"]
        assert (precision is None) == (row["guesses"] == 0)
        assert precision is None or 0.0 <= precision <= 1.0
        assert 0.5 < row["linkage_f1"] <= 1.0


@pytest.mark.slow
def test_every_attack_ran_for_both_hardenings_and_all_overlaps(report: dict[str, Any]) -> None:
    """A record-level row exists for every attack, hardening setting and overlap."""
    rows = _record_rows(report)
    for attack in ATTACKS:
        for hardening in HARDENING:
            for overlap in OVERLAPS:
                assert (attack, hardening, overlap) in rows, (attack, hardening, overlap)
    assert {t["hardening"] for t in report["targets"]} == HARDENING | {FLIP}
    assert set(report["linkage"]) == HARDENING | {FLIP}
    flipped = {(a, o) for a, h, o in rows if h == FLIP}
    assert flipped == {(a, o) for a in ATTACKS for o in (1.0, 0.9)}


@pytest.mark.slow
def test_bit_flipping_weakens_the_filter_attacks_and_keeps_linkage(report: dict[str, Any]) -> None:
    """Flipping 20% of filter bits stops pattern mining and lowers what the graph attack finds
    (its features come from filter similarities), while the linkage F1 stays high (the tokens
    are not flipped and the thresholds follow the noise). The curve lists default, then flip."""
    rows = _record_rows(report)
    for overlap in (1.0, 0.9):
        graph_flip = rows[("graph", FLIP, overlap)]["reidentified_share"]
        assert graph_flip < rows[("graph", "default", overlap)]["reidentified_share"]
        assert rows[("patterns", FLIP, overlap)]["reidentified_share"] <= max(
            0.01, rows[("patterns", "default", overlap)]["reidentified_share"]
        )
    assert report["linkage"][FLIP]["f1"] > 0.9
    assert [p["hardening"] for p in report["curve"]] == ["default", FLIP]
    assert [p["flip_probability"] for p in report["curve"]] == [0.0, 0.2]
    # the key-holding attacker cannot undo the per-record noise: no exact filter matches to
    # report, so its filter columns are left out rather than shown as 0%
    assert not [
        r
        for r in report["results"]
        if r["attack"] == "dictionary" and r["hardening"] == FLIP and r["target"].startswith("bf_")
    ]


@pytest.mark.slow
def test_the_stolen_secret_reidentifies_most_records(report: dict[str, Any]) -> None:
    """With the linkage secret, the dictionary attack names the person of most records, and a
    token it matches is never wrong (an HMAC match is an exact match of the inputs)."""
    rows = _record_rows(report)
    for hardening in HARDENING:
        for overlap in (1.0, 0.9):
            assert rows[("dictionary", hardening, overlap)]["reidentified_share"] > 0.5
    tokens = [
        r
        for r in report["results"]
        if r["attack"] == "dictionary" and r["level"] == "value" and r["target"].startswith("tok_")
    ]
    assert tokens
    assert all(r["guess_precision"] in (None, 1.0) for r in tokens)


@pytest.mark.slow
def test_the_dictionary_attack_needs_the_reference(report: dict[str, Any]) -> None:
    """Its share falls with the overlap: records of people outside the reference stay unnamed."""
    rows = _record_rows(report)
    for hardening in HARDENING:
        shares = [rows[("dictionary", hardening, o)]["reidentified_share"] for o in (1.0, 0.5)]
        assert shares[1] < shares[0]


def test_quick_run_output_lands_under_out(tmp_path: Path) -> None:
    """``--out`` is honoured by the argument parser (nothing is written under bench/out)."""
    from bench.attack import parse_args

    cfg = parse_args(["--quick", "--out", str(tmp_path)])
    assert cfg.out == tmp_path.resolve() / "quick"
    assert cfg.hardening == ("default", "none", FLIP)
    assert cfg.overlaps == (1.0, 0.9, 0.75, 0.5)
    assert cfg.curve_overlaps == (1.0, 0.9)
