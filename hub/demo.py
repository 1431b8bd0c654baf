"""``make demo``: the whole scenario end to end on the embedded defaults, printing each step.

1-4. the connector part (``connectors.demo``): synthetic A&E and police exports, keys,
     pseudonymisation at each agency;
5.   a hub on SQLite (or ``--database-url``) with one worker (``hub init`` + ``hub serve``);
6.   the administrator registers the agencies, the data sharing agreement, the project and
     the users (data officers, an analyst, an approver per agency, an information-governance
     approver, an auditor);
7.   each agency uploads its encoded file with ``connector upload``;
8.   the analyst starts a linkage run; a worker links the uploads on DuckDB;
9.   the analyst requests a record-level extract; approving it themselves is refused; the
     two agencies' approvers and information governance approve; the worker builds it;
10.  the analyst downloads it and verifies the signed manifest and its audit proof offline;
11.  an aggregate table goes through disclosure control the same way;
12.  the A&E data officer fetches feedback and maps it to its own record ids locally;
13.  linkage quality against the synthetic ground truth (possible only because the data are
     synthetic: the demo holds every agency's keymap, which no real party would);
14.  the auditor verifies the whole audit log through the hub and co-signs it.

The last line printed is one JSON object: ``precision``, ``recall``, ``f1``,
``extract_rows``, ``audit_entries``, ``audit_verified`` and ``seconds``.

The demo's agreement allows record pseudonyms in extracts so that step 13 can score the
linkage against the truth; a real agreement would leave that off (the default).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console

from audit.cli import main as audit_main
from audit.note import parse_vkey
from connectors import demo as connector_demo
from connectors.cli import main as connector_main
from connectors.upload import HubClient, upload
from hub.client import HubAPI, HubAPIError
from hub.local import serve_local
from hub.manifest import Release, verify_release

ORIGIN = "demo.hub.invalid/audit"
PROJECT = "svd-demo"
AGREEMENT = "dsa-svd-demo"


@dataclass
class Hub:
    url: str
    made: dict[str, Any]
    tokens: dict[str, str]
    agencies: dict[str, str]

    def api(self, who: str) -> HubAPI:
        return HubAPI(self.url, self.tokens[who])


def _init(hub_dir: Path, database_url: str | None) -> dict[str, Any]:
    args = [sys.executable, "-m", "hub.cli", "init", "--data-dir", str(hub_dir)]
    args += ["--origin", ORIGIN, "--json"]
    if database_url:
        args += ["--database-url", database_url]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"demo: hub init failed: {done.stderr}")
    made: dict[str, Any] = json.loads(done.stdout)
    return made


@contextlib.contextmanager
def running_hub(
    out_dir: Path, database_url: str | None, console: Console
) -> Iterator[tuple[str, dict[str, Any]]]:
    hub_dir = out_dir / "hub"
    made = _init(hub_dir, database_url)
    proc, url = serve_local(hub_dir, out_dir / "hub-serve.log", workers=1)
    console.print(f"hub at {url} with one worker, data directory {hub_dir}")
    console.print(f"audit log {ORIGIN}, public key {made['log_public_key']}")
    try:
        yield url, made
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def set_up(url: str, made: dict[str, Any], meta: dict[str, Any], console: Console) -> Hub:
    admin = HubAPI(url, made["admin"]["token"])
    agencies = {a: str(m["agency"]) for a, m in meta.items()}
    for name in agencies.values():
        admin.call("POST", "/v1/agencies", {"id": name, "name": name})
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
    dsa = admin.call("POST", "/v1/agreements", {
        "id": AGREEMENT,
        "title": "A&E and police serious violence data sharing (demo)",
        "purpose": "Find assault victims seen in the emergency department, unknown to police",
        "status": "active",
        "parties": parties,
        "retention_days": 365,
        "review_date": "2099-12-31",
        "release": {"record_pseudonyms": True},
        "feedback": [
            {"to": agencies["ae"], "about": [agencies["police"]]},
            {"to": agencies["police"], "about": [agencies["ae"]]},
        ],
    })  # fmt: skip
    admin.call("POST", "/v1/projects", {
        "id": PROJECT,
        "name": "Serious violence demo",
        "agreement": AGREEMENT,
        "schema_id": meta["ae"]["schema"]["id"],
        "schema_hash": meta["ae"]["schema"]["hash"],
        "key_check_value": meta["ae"]["key_check_value"],
    })  # fmt: skip
    console.print(f"agreement {dsa['id']} v{dsa['version']}, project {PROJECT}")
    people: dict[str, tuple[str, list[str], str | None]] = {
        "ae": ("A&E data officer", ["data_officer"], agencies["ae"]),
        "police": ("Police data officer", ["data_officer"], agencies["police"]),
        "analyst": ("Violence reduction unit analyst", ["analyst"], None),
        "approver-ae": ("A&E Caldicott guardian", ["approver"], agencies["ae"]),
        "approver-police": ("Police information manager", ["approver"], agencies["police"]),
        "governance": ("Information governance lead", ["approver"], None),
        "auditor": ("Auditor", ["auditor"], None),
    }
    tokens: dict[str, str] = {}
    for key, (name, roles, agency) in people.items():
        body: dict[str, Any] = {"name": name, "roles": roles}
        if agency:
            body["agency"] = agency
        user = admin.call("POST", "/v1/users", body)
        tokens[key] = admin.call("POST", f"/v1/users/{user['id']}/tokens", {})["token"]
    console.print(f"users: {', '.join(name for name, _, _ in people.values())}")
    return Hub(url, made, tokens, agencies)


def upload_both(hub: Hub, encoded: dict[str, Path], console: Console) -> None:
    for a, path in encoded.items():
        result = upload(HubClient(hub.url, hub.tokens[a]), PROJECT, path)
        console.print(
            f"{hub.agencies[a]}: {path.name} -> dataset version {result.dataset_version} "
            f"({result.rows} rows, audit entry {result.audit_entry})"
        )


def link(hub: Hub, console: Console) -> dict[str, Any]:
    analyst = hub.api("analyst")
    started = analyst.start_run(PROJECT)
    console.print(f"run {started['run']} over {', '.join(started['datasets'])} (job queued)")
    seen: set[str] = set()

    def progress(doc: dict[str, Any]) -> None:
        stage = doc["job"]["stage"]
        if stage not in seen:
            seen.add(stage)
            console.print(f"  {doc['job']['status']}: {stage}")

    run: dict[str, Any] = analyst.wait_run(started["run"], progress=progress, timeout=600)
    if run["job"]["status"] != "succeeded":
        raise SystemExit(f"demo: the run failed: {run['job']['error']}")
    result = run["result"]
    console.print(
        f"run {run['id']}: {result['links']} links, {result['entities']} entities over "
        f"{result['records']} records, threshold {result['threshold']:.3f}, "
        f"model {result['model'][:12]}"
    )
    return run


def approve(hub: Hub, extract: dict[str, Any], console: Console) -> None:
    """Every capacity the request needs, each by a different approver."""
    by_capacity = {f"agency:{agency}": f"approver-{a}" for a, agency in hub.agencies.items()}
    by_capacity["governance"] = "governance"
    for capacity in extract["required"]:
        who = by_capacity[capacity]
        decided = hub.api(who).call(
            "POST",
            f"/v1/extracts/{extract['id']}/decisions",
            {"decision": "approve", "capacity": capacity},
        )
        console.print(f"  {capacity} approved by {who}: request now {decided['status']}")


def request_built(
    hub: Hub, spec: dict[str, Any], out: Path, console: Console, *, try_self_approval: bool
) -> tuple[dict[str, Any], list[Path]]:
    analyst = hub.api("analyst")
    extract = analyst.call("POST", f"/v1/projects/{PROJECT}/extracts", spec)
    console.print(
        f"extract request {extract['id']} ({spec['kind']}) needs: {', '.join(extract['required'])}"
    )
    if try_self_approval:
        try:
            analyst.call(
                "POST",
                f"/v1/extracts/{extract['id']}/decisions",
                {"decision": "approve", "capacity": "governance"},
            )
            raise SystemExit("demo: the requester approved their own request")
        except HubAPIError as exc:
            console.print(
                f"  the analyst tries to approve it: refused ({exc.status}: {exc.message})"
            )
    approve(hub, extract, console)
    done = analyst.wait_extract(extract["id"], timeout=600)
    if done["status"] != "released":
        raise SystemExit(f"demo: extract {extract['id']} ended {done['status']}")
    files = analyst.download(extract["id"], out)
    return done, files


def verify_offline(hub: Hub, out: Path, console: Console) -> dict[str, Any]:
    release = Release.from_json(json.loads((out / "manifest.json").read_text()))
    body = verify_release(
        release,
        release_key=parse_vkey(hub.made["release_public_key"]),
        log_key=parse_vkey(hub.made["log_public_key"]),
        origin=ORIGIN,
        files_dir=out,
    )
    console.print(
        f"  manifest signature, file hashes and the audit proof of entry "
        f"{body['release_entry']} verify offline"
    )
    return body


def _truth(out_dir: Path) -> dict[tuple[str, str], str]:
    with (out_dir / "exports" / "truth.csv").open(newline="", encoding="utf-8") as fh:
        return {(r["source"], r["record_id"]): r["person_id"] for r in csv.DictReader(fh)}


def evaluate(out_dir: Path, records: Path, agencies: dict[str, str]) -> dict[str, float]:
    """Cross-agency pairs in the extract's entities against the true pairs."""
    truth = _truth(out_dir)
    source_of = {agency: a for a, agency in agencies.items()}
    ids: dict[str, dict[str, str]] = {}
    for a in agencies:
        keymap = pq.read_table(out_dir / "keys" / f"{a}-keymap.parquet")
        ids[a] = dict(
            zip(
                [p.hex() for p in keymap.column("record_pseudonym").to_pylist()],
                keymap.column("record_id").to_pylist(),
                strict=True,
            )
        )
    table = pq.read_table(records, columns=["entity", "agency", "record_pseudonym"])
    members: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for entity, agency, pseudonym in zip(
        *(table.column(c).to_pylist() for c in ("entity", "agency", "record_pseudonym")),
        strict=True,
    ):
        a = source_of[agency]
        members[entity].append((a, ids[a][pseudonym]))
    predicted = {
        (x, y)
        for group in members.values()
        for x in group
        if x[0] == "ae"
        for y in group
        if y[0] == "police"
    }
    people: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for (source, record), person in truth.items():
        people[person][source].append((source, record))
    true_pairs = {(x, y) for p in people.values() for x in p["ae"] for y in p["police"]}
    hits = len(predicted & true_pairs)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(true_pairs) if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "predicted_pairs": len(predicted),
        "true_pairs": len(true_pairs),
    }


def _audit(hub: Hub, out_dir: Path, console: Console) -> tuple[bool, int]:
    keys = out_dir / "auditor"
    keys.mkdir(exist_ok=True)
    (keys / "token").write_text(hub.tokens["auditor"])
    (keys / "log.pub").write_text(hub.made["log_public_key"])
    common = ["--hub", hub.url, "--token-file", str(keys / "token")]
    common += ["--log-key", str(keys / "log.pub")]
    witness_key = str(keys / "witness.key")
    audit_main(["keygen", "--witness", "--name", "auditor.demo.invalid", "--out", witness_key])
    verified = audit_main(["verify", *common]) == 0
    witness = ["witness", *common, "--key", witness_key]
    if audit_main([*witness, "--state", str(keys / "witness.json")]) != 0:
        raise SystemExit("demo: audit witness failed")
    for action in ("link-run", "extract-request", "approve", "extract-build", "download"):
        audit_main(["show", *common[:4], "--action", action])
    raw, _ = HubAPI(hub.url, hub.tokens["auditor"]).request("GET", "/v1/audit/checkpoint")
    size = int(raw.decode("utf-8").split("\n")[1])  # a checkpoint's second line is its size
    console.print(f"the log holds {size} entries, all verified and co-signed")
    return verified, size


def run(
    out_dir: Path,
    people: int,
    seed: int,
    console: Console,
    database_url: str | None = None,
    also: Callable[[Hub, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The scenario; ``also`` (for tests) runs against the live hub and the finished run
    just before the auditor's step."""
    started = time.perf_counter()
    connector_demo.run(out_dir, people, seed, console)
    encoded = {a: out_dir / "encoded" / f"{a}.parquet" for a in ("ae", "police")}
    meta = {a: json.loads(pq.read_metadata(p).metadata[b"pprl"]) for a, p in encoded.items()}

    console.rule("5. the hub (SQLite unless told otherwise, loopback, one worker)")
    with running_hub(out_dir, database_url, console) as (url, made):
        console.rule("6. agencies, agreement, project, users")
        hub = set_up(url, made, meta, console)
        console.rule("7. each agency uploads its encoded file")
        upload_both(hub, encoded, console)
        console.rule("8. the analyst starts a linkage run")
        link_run = link(hub, console)

        console.rule("9-10. a record-level extract: request, approvals, build, download")
        ae, police = hub.agencies["ae"], hub.agencies["police"]
        records_dir = out_dir / "extracts" / "records"
        record_spec = {
            "run": link_run["id"],
            "kind": "records",
            "justification": "Assault victims seen at the ED and known to police, by week",
            "attributes": {
                ae: ["arrival_datetime", "assault_method", "location_type"],
                police: ["offence_code", "role"],
            },
            "generalise": {"arrival_datetime": {"date": "week"}},
            "filters": {"linked_to_all": [ae, police]},
            "include": ["record_pseudonyms"],
        }
        built, _ = request_built(hub, record_spec, records_dir, console, try_self_approval=True)
        rows = sum(f["rows"] for f in built["release"]["files"])
        console.print(f"  downloaded {rows} rows to {records_dir}")
        verify_offline(hub, records_dir, console)

        console.rule("11. an aggregate table through disclosure control")
        table_dir = out_dir / "extracts" / "aggregate"
        aggregate_spec = {
            "run": link_run["id"],
            "kind": "aggregate",
            "justification": "Where assaults happen and how, for people known to both",
            "attributes": {ae: ["assault_method", "location_type"]},
            "filters": {"linked_to_all": [ae, police]},
            "group_by": ["assault_method", "location_type"],
            "count": "entities",
        }
        _, _ = request_built(hub, aggregate_spec, table_dir, console, try_self_approval=False)
        body = verify_offline(hub, table_dir, console)
        console.print(f"  disclosure control: {body['disclosure']}")
        cells = pq.read_table(table_dir / "cells.parquet")
        console.print(f"  {cells.num_rows} cells, for example:")
        for row in cells.slice(0, 6).to_pylist():
            console.print("    " + ", ".join(f"{k}={v}" for k, v in row.items()))

        console.rule("12. feedback to A&E, mapped back to its own record ids locally")
        feedback = out_dir / "feedback" / "ae-feedback.parquet"
        feedback.parent.mkdir(parents=True, exist_ok=True)
        raw, _ = hub.api("ae").request("GET", f"/v1/runs/{link_run['id']}/feedback")
        feedback.write_bytes(raw)
        code = connector_main([
            "lookup", "--record-key", str(out_dir / "keys" / "ae-record.key"),
            "--mapping", str(Path(connector_demo.CONFIG) / "mappings" / "ae.toml"),
            "--input", str(out_dir / "exports" / "ae_attendances.csv"),
            "--links", str(feedback), "--output", str(out_dir / "feedback" / "ae-linked.csv"),
        ])  # fmt: skip
        if code != 0:
            raise SystemExit("demo: connector lookup failed")

        console.rule("13. linkage quality against the synthetic ground truth")
        quality = evaluate(out_dir, records_dir / "records.parquet", hub.agencies)
        console.print(
            f"precision {quality['precision']:.4f}, recall {quality['recall']:.4f}, "
            f"F1 {quality['f1']:.4f} ({quality['predicted_pairs']} linked A&E-police record "
            f"pairs, {quality['true_pairs']} true)"
        )

        if also is not None:
            also(hub, link_run)
        console.rule("14. the auditor verifies the log and co-signs it")
        verified, entries = _audit(hub, out_dir, console)
    seconds = round(time.perf_counter() - started, 1)
    console.print(f"demo finished in {seconds} s; everything is under {out_dir}")
    return {
        "precision": quality["precision"],
        "recall": quality["recall"],
        "f1": quality["f1"],
        "extract_rows": rows,
        "audit_entries": entries,
        "audit_verified": verified,
        "seconds": seconds,
        "run": link_run["id"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the scenario end to end on synthetic data.")
    parser.add_argument("--out-dir", type=Path, default=Path("demo-output"))
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", help="PostgreSQL instead of SQLite (an empty database)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    console = Console(highlight=False, width=110)
    summary = run(args.out_dir, args.people, args.seed, console, args.database_url)
    sys.stdout.flush()
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if summary["audit_verified"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
