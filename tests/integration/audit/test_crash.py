"""Crash test: a process appending entries is killed with SIGKILL at random points; after
each restart every acknowledged entry is present, sequence numbers have no gaps, and the
whole log verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from audit import store
from audit.db import open_engine
from audit.logcheck import check_log
from audit.note import SigningKey
from audit.sources import DatabaseSource
from tests.conftest import REPO
from tests.integration.audit.helpers import ORIGIN

ROUNDS = 5


def _run_and_kill(db: str, key_file: Path, state: Path, rng: random.Random) -> set[int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.audit.crash_writer",
            db,
            str(key_file),
            str(state),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n", proc.stderr.read() if proc.stderr else ""
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + rng.uniform(0.2, 1.5)
    chunks: list[bytes] = []
    while time.monotonic() < deadline:
        data = proc.stdout.read()
        if data:
            chunks.append(data)
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    chunks.append(proc.stdout.read() or b"")
    lines = b"".join(chunks).split(b"\n")
    # The last piece may be a line cut short by the kill: only whole lines count.
    return {int(line.split()[1]) for line in lines[:-1] if line.startswith(b"ack ")}


def test_acknowledged_entries_survive_sigkill(database_url: str, tmp_path: Path) -> None:
    key = SigningKey.generate(ORIGIN)
    key_file = tmp_path / "log.key"
    key_file.write_text(key.to_text() + "\n")
    state = tmp_path / "log-head.json"
    rng = random.Random(20261123)
    acked: set[int] = set()
    for round_ in range(ROUNDS):
        acked |= _run_and_kill(database_url, key_file, state, rng)
        assert acked, f"round {round_}: nothing was acknowledged before the kill"
        engine = open_engine(database_url)
        with engine.connect() as conn:
            seqs = [e.seq for e in store.iter_entries(conn)]
        assert seqs == list(range(len(seqs))), "sequence numbers have a gap"
        assert acked <= set(seqs), f"lost acknowledged entries {sorted(acked - set(seqs))[:5]}"
        report = check_log(DatabaseSource(engine), key.verifier(), ORIGIN)
        assert report.ok, report.problem
        assert report.entries == len(seqs)
        engine.dispose()
