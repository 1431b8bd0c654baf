"""``make demo``: the scenario end to end on the embedded defaults, printing what happened.

1-4. the connector part (``connectors.demo``): synthetic A&E and police exports, keys,
     pseudonymisation at each agency;
5.   a hub on SQLite (``hub init`` + ``hub serve`` on a loopback port);
6.   its administrator registers the agencies, a data sharing agreement and a project, and
     issues tokens to each agency's data officer and to an auditor;
7.   each agency uploads its encoded file with ``connector upload``;
8.   the auditor verifies the whole audit log through the hub, co-signs the newest checkpoint
     as a witness, and lists the upload entries.

Linkage jobs and approved extracts join the demo with the hub's linkage issue.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console

from audit.cli import main as audit_main
from connectors import demo as connector_demo
from connectors.upload import HubClient, upload
from hub.local import serve_local

ORIGIN = "demo.hub.invalid/audit"


def _call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"demo: {method} {path} failed: {exc.code} {exc.read()!r}") from None


def run(out_dir: Path, people: int, seed: int, console: Console) -> None:
    started = time.perf_counter()
    connector_demo.run(out_dir, people, seed, console)
    encoded = {a: out_dir / "encoded" / f"{a}.parquet" for a in ("ae", "police")}
    meta = {a: json.loads(pq.read_metadata(p).metadata[b"pprl"]) for a, p in encoded.items()}

    console.rule("5. the hub (SQLite, loopback)")
    hub_dir = out_dir / "hub"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub.cli",
            "init",
            "--data-dir",
            str(hub_dir),
            "--origin",
            ORIGIN,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"demo: hub init failed: {done.stderr}")
    made = json.loads(done.stdout)
    admin = made["admin"]["token"]
    proc, url = serve_local(hub_dir, out_dir / "hub-serve.log")
    try:
        console.print(f"hub at {url}, data directory {hub_dir}")
        console.print(f"audit log {ORIGIN}, public key {made['log_public_key']}")

        console.rule("6. agencies, agreement, project, users")
        agencies = {a: m["agency"] for a, m in meta.items()}
        for name in agencies.values():
            _call(url, admin, "POST", "/v1/agencies", {"id": name, "name": name})
        parties = [
            {
                "agency": agencies[a],
                "lawful_basis": basis,
                "fields": [f["name"] for f in meta[a]["attributes"]],
            }
            for a, basis in (
                ("ae", "UK GDPR 6(1)(e) and 9(2)(h); Serious Violence Duty"),
                ("police", "DPA 2018 Part 3, s35; Crime and Disorder Act 1998 s115"),
            )
        ]
        dsa = _call(url, admin, "POST", "/v1/agreements", {
            "id": "dsa-svd-demo",
            "title": "A&E and police serious violence data sharing (demo)",
            "purpose": "Find assault victims seen in the emergency department, unknown to police",
            "status": "active",
            "parties": parties,
            "retention_days": 365,
            "review_date": "2099-12-31",
        })  # fmt: skip
        project = _call(url, admin, "POST", "/v1/projects", {
            "id": "svd-demo",
            "name": "Serious violence demo",
            "agreement": "dsa-svd-demo",
            "schema_id": meta["ae"]["schema"]["id"],
            "schema_hash": meta["ae"]["schema"]["hash"],
            "key_check_value": meta["ae"]["key_check_value"],
        })  # fmt: skip
        console.print(f"agreement {dsa['id']} v{dsa['version']}, project {project['id']}")
        tokens: dict[str, str] = {}
        for a, agency in agencies.items():
            officer = {"name": f"{a} data officer", "agency": agency, "roles": ["data_officer"]}
            user = _call(url, admin, "POST", "/v1/users", officer)
            tokens[a] = _call(url, admin, "POST", f"/v1/users/{user['id']}/tokens", {})["token"]
        auditor = _call(url, admin, "POST", "/v1/users", {"name": "Auditor", "roles": ["auditor"]})
        auditor_token = _call(url, admin, "POST", f"/v1/users/{auditor['id']}/tokens", {})["token"]

        console.rule("7. each agency uploads its encoded file")
        for a, path in encoded.items():
            result = upload(HubClient(url, tokens[a]), "svd-demo", path)
            console.print(
                f"{agencies[a]}: {path.name} -> dataset version {result.dataset_version} "
                f"({result.rows} rows, {result.chunks_total} chunk(s), "
                f"audit entry {result.audit_entry})"
            )

        console.rule("8. the auditor verifies the log and co-signs it")
        keys = out_dir / "auditor"
        keys.mkdir()
        (keys / "token").write_text(auditor_token)
        (keys / "log.pub").write_text(made["log_public_key"])
        common = [
            "--hub",
            url,
            "--token-file",
            str(keys / "token"),
            "--log-key",
            str(keys / "log.pub"),
        ]
        audit_main(
            [
                "keygen",
                "--witness",
                "--name",
                "auditor.demo.invalid",
                "--out",
                str(keys / "witness.key"),
            ]
        )
        for command in (
            ["verify", *common],
            [
                "witness",
                *common,
                "--key",
                str(keys / "witness.key"),
                "--state",
                str(keys / "witness.json"),
            ],
            ["show", "--hub", url, "--token-file", str(keys / "token"), "--action", "upload"],
        ):
            if audit_main(command) != 0:
                raise SystemExit(f"demo: audit {command[0]} failed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    console.print(
        f"demo finished in {time.perf_counter() - started:.1f} s; everything is under {out_dir}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the scenario end to end on synthetic data.")
    parser.add_argument("--out-dir", type=Path, default=Path("demo-output"))
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run(args.out_dir, args.people, args.seed, Console(highlight=False, width=110))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
