"""``make demo``'s scenario runs end to end (small population): synthetic exports, keys,
pseudonymisation, a hub on SQLite, agreement and project, uploads from both agencies, and the
auditor's verification and cosignature through the hub."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from audit.db import open_engine
from audit.logcheck import check_log
from audit.note import parse_vkey
from audit.sources import DatabaseSource
from hub.demo import ORIGIN, run


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    console = Console(record=True, width=120)
    run(out, 400, 3, console)
    text = console.export_text()
    assert text.count("-> dataset version dv_") == 2
    assert "demo finished" in text
    vkey = parse_vkey((out / "auditor" / "log.pub").read_text().strip())
    engine = open_engine(out / "hub" / "hub.sqlite")
    report = check_log(
        DatabaseSource(engine),
        vkey,
        ORIGIN,
        [parse_vkey((out / "auditor" / "witness.key.pub").read_text().strip())],
    )
    engine.dispose()
    assert report.ok, report.problem
    assert report.cosignatures_verified == 1
