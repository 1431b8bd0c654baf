"""``hubctl``: the command line for analysts, approvers and operators, over the hub's API.

    hubctl [--hub URL] [--token-file T] [--json] COMMAND ...

    runs start PROJECT [--dataset ID ...] [--threshold P] [--wait]
    runs list PROJECT | runs show RUN | runs wait RUN | runs cancel RUN
    extracts request PROJECT SPEC.json [--run RUN]
    extracts list PROJECT | extracts show ID
    extracts approve ID --capacity C [--reason R] | extracts refuse ID --capacity C --reason R
    extracts download ID --out DIR [--release-key K --log-key L --origin O]
    extracts verify DIR --release-key K --log-key L --origin O      (offline)
    feedback RUN --out FILE
    agreements list | agreements show ID | users list | whoami

``--hub`` and ``--token-file`` default to ``$HUB_URL`` and ``$HUB_TOKEN_FILE``. Output is a
table, or the API's JSON with ``--json``. Exit status: 0 done, 1 the hub refused or the job
failed, 2 usage or local errors (a manifest that does not verify, unreadable files).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audit.errors import AuditError
from audit.note import parse_vkey
from hub.client import HubAPI, HubAPIError
from hub.manifest import ManifestError, Release, verify_release

__all__ = ["main"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _api(args: argparse.Namespace) -> HubAPI:
    url = args.hub or os.environ.get("HUB_URL")
    token_file = args.token_file or os.environ.get("HUB_TOKEN_FILE")
    if not url:
        raise UsageError("give the hub's URL with --hub (or $HUB_URL)")
    if not token_file:
        raise UsageError("give your API token file with --token-file (or $HUB_TOKEN_FILE)")
    try:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {token_file}: {exc.strerror}") from None
    return HubAPI(url, token)


def _table(console: Console, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        console.print("(none)")
        return
    table = Table(*columns, show_lines=False, header_style="bold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def _show(console: Console, args: argparse.Namespace, doc: Any, columns: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    if isinstance(doc, dict):
        rows = next((v for v in doc.values() if isinstance(v, list)), None)
        if rows is not None and all(isinstance(r, dict) for r in rows):
            _table(console, rows, columns)
            return
        for key, value in doc.items():
            if not isinstance(value, dict | list):
                console.print(f"{key:<18} {value}")
        return
    console.print(doc)


def _flat_run(run: dict[str, Any]) -> dict[str, Any]:
    result = run.get("result") or {}
    return {
        "id": run["id"],
        "status": run["job"]["status"],
        "stage": run["job"]["stage"],
        "links": result.get("links"),
        "entities": result.get("entities"),
        "threshold": None if result.get("threshold") is None else f"{result['threshold']:.3f}",
        "datasets": ", ".join(run["datasets"]),
    }


def _wait(api: HubAPI, run: str, console: Console, quiet: bool) -> dict[str, Any]:
    if quiet:
        done: dict[str, Any] = api.wait_run(run)
        return done
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(f"run {run}", total=1.0)

        def update(doc: dict[str, Any]) -> None:
            job = doc["job"]
            progress.update(
                task,
                completed=job.get("progress") or 0.0,
                description=f"run {run}: {job['status']}, {job['stage']}",
            )

        done = api.wait_run(run, progress=update)
    return done


def cmd_runs(args: argparse.Namespace, api: HubAPI, console: Console) -> int:
    if args.verb == "start":
        started = api.start_run(args.project, args.dataset or None, args.threshold)
        if not args.wait:
            _show(console, args, started, ())
            return EXIT_OK
        run = _wait(api, started["run"], console, args.json)
    elif args.verb == "wait":
        run = _wait(api, args.run, console, args.json)
    elif args.verb == "list":
        doc = api.call("GET", f"/v1/projects/{args.project}/runs")
        if args.json:
            _show(console, args, doc, ())
        else:
            cols = ("id", "status", "stage", "links", "entities", "threshold", "datasets")
            _table(console, [_flat_run(r) for r in doc["runs"]], cols)
        return EXIT_OK
    elif args.verb == "cancel":
        _show(console, args, api.call("POST", f"/v1/runs/{args.run}/cancel", {}), ())
        return EXIT_OK
    else:
        run = api.call("GET", f"/v1/runs/{args.run}")
    if args.json:
        print(json.dumps(run, indent=2, sort_keys=True))
    else:
        for key, value in _flat_run(run).items():
            console.print(f"{key:<12} {'' if value is None else value}")
        if run["job"].get("error"):
            console.print(f"error        {run['job']['error']}")
    return EXIT_OK if run["job"]["status"] in ("succeeded", "running", "queued") else EXIT_REFUSED


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None


def _keys(args: argparse.Namespace) -> tuple[Any, Any, str]:
    if not (args.release_key and args.log_key and args.origin):
        raise UsageError("verifying needs --release-key, --log-key and --origin")
    try:
        release_key = parse_vkey(args.release_key.read_text(encoding="utf-8").strip())
        log_key = parse_vkey(args.log_key.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise UsageError(f"cannot read a key file: {exc.strerror}") from None
    except AuditError as exc:
        raise UsageError(f"not a public key: {exc}") from None
    return release_key, log_key, str(args.origin)


def _verify(args: argparse.Namespace, directory: Path, console: Console) -> None:
    release_key, log_key, origin = _keys(args)
    try:
        release = Release.from_json(_read_json(directory / "manifest.json"))
        body = verify_release(
            release, release_key=release_key, log_key=log_key, origin=origin, files_dir=directory
        )
    except ManifestError as exc:
        raise UsageError(f"the release in {directory} does not verify: {exc}") from None
    console.print(
        f"OK: {len(body['files'])} file(s) of extract {body['extract']} match the signed "
        f"manifest, and its release is audit entry {body['release_entry']}, proven in the log"
    )


def cmd_extracts(args: argparse.Namespace, api: HubAPI | None, console: Console) -> int:
    if args.verb == "verify":
        _verify(args, args.directory, console)
        return EXIT_OK
    assert api is not None
    if args.verb == "request":
        spec = _read_json(args.spec)
        if not isinstance(spec, dict):
            raise UsageError(f"{args.spec} must hold a JSON object")
        if args.run:
            spec["run"] = args.run
        doc = api.call("POST", f"/v1/projects/{args.project}/extracts", spec)
        if not args.json:
            console.print(f"extract request {doc['id']}: {doc['status']}")
            console.print(f"needs approval as: {', '.join(doc['required'])}")
            return EXIT_OK
    elif args.verb == "list":
        doc = api.call("GET", f"/v1/projects/{args.project}/extracts")
        if not args.json:
            for row in doc["extracts"]:
                row["required"] = ", ".join(row["required"])
            cols = ("id", "kind", "status", "requester", "run", "required")
            _table(console, doc["extracts"], cols)
            return EXIT_OK
    elif args.verb in ("approve", "refuse"):
        body: dict[str, Any] = {"decision": args.verb, "capacity": args.capacity}
        if args.reason:
            body["reason"] = args.reason
        doc = api.call("POST", f"/v1/extracts/{args.id}/decisions", body)
    elif args.verb == "download":
        done = api.wait_extract(args.id)
        if done["status"] != "released":
            console.print(f"extract {args.id} is {done['status']}: nothing to download")
            return EXIT_REFUSED
        files = api.download(args.id, args.out)
        for path in files:
            console.print(f"wrote {path}")
        if args.release_key or args.log_key:
            _verify(args, args.out, console)
        return EXIT_OK
    else:
        doc = api.call("GET", f"/v1/extracts/{args.id}")
        if not args.json:
            _show(console, args, doc, ())
            _table(
                console,
                doc["decisions"],
                ("approver", "capacity", "decision", "reason"),
            )
            return EXIT_OK
    _show(console, args, doc, ())
    return EXIT_OK


def cmd_simple(args: argparse.Namespace, api: HubAPI, console: Console) -> int:
    if args.command == "feedback":
        data, _ = api.request("GET", f"/v1/runs/{args.run}/feedback")
        tmp = args.out.with_name(f".{args.out.name}.part")
        tmp.write_bytes(data)
        tmp.replace(args.out)
        console.print(f"wrote {args.out}; map it to your record ids with `connector lookup`")
        return EXIT_OK
    if args.command == "whoami":
        _show(console, args, api.call("GET", "/v1/me"), ())
        return EXIT_OK
    if args.command == "users":
        _show(console, args, api.call("GET", "/v1/users"), ("id", "name", "agency", "roles"))
        return EXIT_OK
    if args.verb == "list":
        doc = api.call("GET", "/v1/agreements")
        _show(console, args, doc, ("id", "version", "status", "title", "review_date"))
    else:
        doc = api.call("GET", f"/v1/agreements/{args.id}")
        if args.json:
            _show(console, args, doc, ())
        else:
            _show(console, args, doc["agreement"], ())
            parties = [{**p, "fields": ", ".join(p["fields"])} for p in doc["agreement"]["parties"]]
            _table(console, parties, ("agency", "lawful_basis", "fields"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubctl", description="The pprl hub's command line for analysts and approvers."
    )
    parser.add_argument("--hub", help="the hub's URL (default: $HUB_URL)")
    parser.add_argument("--token-file", type=Path, help="your API token (default: $HUB_TOKEN_FILE)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = sub.add_parser("runs", help="linkage runs").add_subparsers(dest="verb", required=True)
    p = runs.add_parser("start")
    p.add_argument("project")
    p.add_argument(
        "--dataset",
        action="append",
        help="a dataset version (repeat; default: each agency's newest)",
    )
    p.add_argument("--threshold", type=float)
    p.add_argument("--wait", action="store_true", help="show progress until it finishes")
    runs.add_parser("list").add_argument("project")
    for verb in ("show", "wait", "cancel"):
        runs.add_parser(verb).add_argument("run")

    ex = sub.add_parser("extracts", help="extract requests").add_subparsers(
        dest="verb", required=True
    )
    p = ex.add_parser("request")
    p.add_argument("project")
    p.add_argument("spec", type=Path, help="the request as JSON (see docs/hub.md)")
    p.add_argument("--run", help="the run (overrides the spec's)")
    ex.add_parser("list").add_argument("project")
    ex.add_parser("show").add_argument("id")
    for verb in ("approve", "refuse"):
        p = ex.add_parser(verb)
        p.add_argument("id")
        p.add_argument("--capacity", required=True, help="agency:<id> or governance")
        p.add_argument("--reason", required=verb == "refuse")
    download = ex.add_parser("download", help="fetch a release (and verify it, given keys)")
    download.add_argument("id")
    download.add_argument("--out", type=Path, required=True)
    verify = ex.add_parser("verify", help="verify a downloaded release offline")
    verify.add_argument("directory", type=Path)
    for p in (download, verify):
        p.add_argument("--release-key", type=Path, help="the hub's release public key")
        p.add_argument("--log-key", type=Path, help="the audit log's public key")
        p.add_argument("--origin", help="the audit log's origin")

    p = sub.add_parser("feedback", help="your agency's feedback from a run")
    p.add_argument("run")
    p.add_argument("--out", type=Path, required=True)
    ag = sub.add_parser("agreements").add_subparsers(dest="verb", required=True)
    ag.add_parser("list")
    ag.add_parser("show").add_argument("id")
    sub.add_parser("users").add_subparsers(dest="verb", required=True).add_parser("list")
    sub.add_parser("whoami")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # a pipe or a file gets whole lines, not a table squeezed to 80 columns
    wide = None if sys.stdout.isatty() else 200
    console = Console(highlight=False, stderr=args.json, width=wide)
    try:
        offline = args.command == "extracts" and args.verb == "verify"
        api = None if offline else _api(args)
        if args.command == "runs":
            assert api is not None
            return cmd_runs(args, api, console)
        if args.command == "extracts":
            return cmd_extracts(args, api, console)
        assert api is not None
        return cmd_simple(args, api, console)
    except HubAPIError as exc:
        print(f"hubctl: {exc}", file=sys.stderr)
        return EXIT_REFUSED if exc.status else EXIT_USAGE
    except UsageError as exc:
        print(f"hubctl: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
