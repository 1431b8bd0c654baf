"""``hubctl`` against a real hub with a worker (SQLite): runs with progress, extract requests,
approvals and refusals, download with offline verification, feedback, agreements, and clear
errors."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from hub.hubctl import main as hubctl
from tests.integration.hub.conftest import ORIGIN, PROJECT, Prepared, start_worker


@pytest.fixture
def worker(prepared: Prepared) -> Iterator[Prepared]:
    proc = start_worker(prepared, "worker.log")
    try:
        yield prepared
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _as(p: Prepared, who: str, tmp: Path) -> list[str]:
    token = tmp / f"{who}.token"
    token.write_text(p.hub.tokens.get(who) or p.hub.made["admin"]["token"])
    return ["--hub", p.hub.url, "--token-file", str(token)]


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = hubctl(["--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hubctl_drives_a_release(
    worker: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = worker
    analyst = _as(p, "analyst", tmp_path)
    assert hubctl([*analyst, "runs", "start", PROJECT, "--wait"]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out
    runs = _json(capsys, *analyst, "runs", "list", PROJECT)["runs"]
    run = runs[0]["id"]
    assert hubctl([*analyst, "runs", "list", PROJECT]) == 0
    assert run in capsys.readouterr().out

    ae, police = p.hub.agencies["ae"], p.hub.agencies["police"]
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "kind": "records",
                "justification": "ED attendances known to police",
                "attributes": {ae: ["assault_method"], police: ["role"]},
                "filters": {"linked_to_all": [ae, police]},
                "format": "csv",
            }
        )
    )
    request = _json(capsys, *analyst, "extracts", "request", PROJECT, str(spec), "--run", run)
    assert request["required"] == [f"agency:{ae}", f"agency:{police}", "governance"]
    ext = request["id"]
    for who, capacity in (
        ("approver-ae", f"agency:{ae}"),
        ("approver-police", f"agency:{police}"),
        ("governance", "governance"),
    ):
        assert (
            hubctl([*_as(p, who, tmp_path), "extracts", "approve", ext, "--capacity", capacity])
            == 0
        )
    capsys.readouterr()
    keys = p.data_dir / "keys"
    log_pub = tmp_path / "log.pub"
    log_pub.write_text(p.hub.made["log_public_key"])
    verify_args = ["--release-key", str(keys / "release.key.pub"), "--log-key", str(log_pub),
                   "--origin", ORIGIN]  # fmt: skip
    out_dir = tmp_path / "release"
    code = hubctl([*analyst, "extracts", "download", ext, "--out", str(out_dir), *verify_args])
    text, err = capsys.readouterr()
    assert code == 0 and "OK:" in text, err
    csv_text = (out_dir / "records.csv").read_text()
    assert csv_text.splitlines()[0] == "entity,agency,assault_method,role"
    assert hubctl(["extracts", "verify", str(out_dir), *verify_args]) == 0
    capsys.readouterr()
    (out_dir / "records.csv").write_text(csv_text + "x,y,z,w\r\n")
    assert hubctl(["extracts", "verify", str(out_dir), *verify_args]) == 2
    assert "does not verify" in capsys.readouterr().err

    shown = _json(capsys, *analyst, "extracts", "show", ext)
    assert shown["status"] == "released" and len(shown["decisions"]) == 3

    # a refusal needs a reason, and a second request can be refused
    second = _json(capsys, *analyst, "extracts", "request", PROJECT, str(spec), "--run", run)
    with pytest.raises(SystemExit):
        hubctl([*_as(p, "governance", tmp_path), "extracts", "refuse", second["id"],
                "--capacity", "governance"])  # fmt: skip
    capsys.readouterr()
    refuse = [*_as(p, "governance", tmp_path), "extracts", "refuse", second["id"]]
    assert hubctl([*refuse, "--capacity", "governance", "--reason", "duplicate"]) == 0
    # the requester may not approve: the hub refuses with 403, hubctl exits 1
    assert hubctl([*analyst, "extracts", "approve", second["id"], "--capacity", "governance"]) == 1
    assert "403" in capsys.readouterr().err

    # feedback for the A&E data officer
    fb = tmp_path / "feedback.parquet"
    assert hubctl([*_as(p, "ae", tmp_path), "feedback", run, "--out", str(fb)]) == 0
    assert pq.read_table(fb).num_rows > 0
    capsys.readouterr()

    listed = _json(capsys, *analyst, "agreements", "list")["agreements"]
    assert listed[0]["release"]["record_pseudonyms"] is True
    assert hubctl([*analyst, "agreements", "show", listed[0]["id"]]) == 0
    assert "lawful_basis" in capsys.readouterr().out
    assert _json(capsys, *analyst, "whoami")["roles"] == ["analyst"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hubctl_errors_are_clear(
    prepared: Prepared, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("HUB_URL", raising=False)
    monkeypatch.delenv("HUB_TOKEN_FILE", raising=False)
    assert hubctl(["whoami"]) == 2
    assert "--hub" in capsys.readouterr().err
    bad = tmp_path / "bad.token"
    bad.write_text("pph_" + "x" * 43)
    assert hubctl(["--hub", prepared.hub.url, "--token-file", str(bad), "whoami"]) == 1
    assert "401" in capsys.readouterr().err
    missing = ["--hub", prepared.hub.url, "--token-file", str(tmp_path / "none"), "whoami"]
    assert hubctl(missing) == 2
    assert "cannot read the token file" in capsys.readouterr().err
    assert hubctl(["--hub", "http://127.0.0.1:9", "--token-file", str(bad), "whoami"]) == 2
    assert "cannot reach" in capsys.readouterr().err
