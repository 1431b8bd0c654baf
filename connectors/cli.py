"""``connector``: the agency-side command line (arguments only; the work lives elsewhere)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connectors.encoding_schema import load_encoding_schema
from connectors.errors import ConnectorError, OutputError
from connectors.keys import (
    LINKAGE_KEY_ENV,
    RECORD_KEY_ENV,
    generate_key,
    read_key,
    resolve_key_path,
    write_key,
)
from connectors.mapping import load_mapping
from connectors.pipeline import DEFAULT_BATCH_ROWS, PseudonymiseJob, pseudonymise, read_metadata
from connectors.render import render_report

HUB_TOKEN_ENV = "CONNECTOR_HUB_TOKEN_FILE"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector",
        description="Normalise and pseudonymise an agency export at source, for the pprl hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write synthetic A&E and police exports with ground truth")
    p.add_argument("--people", type=int, required=True, help="size of the synthetic population")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    p.add_argument("--out-dir", type=Path, required=True, help="directory for the three CSV files")

    p = sub.add_parser("keygen", help="generate a key file (mode 0600)")
    p.add_argument("--out", type=Path, required=True, help="key file to write")
    p.add_argument(
        "--record-key",
        action="store_true",
        help="generate the agency's own record-key secret instead of a project linkage secret",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")

    p = sub.add_parser("key-check", help="print a key file's id and key check value")
    p.add_argument("file", type=Path, help="key file")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("pseudonymise", help="normalise, check and encode an export")
    _pseudonymise_arguments(p)

    p = sub.add_parser("inspect", help="print the metadata of an encoded file")
    p.add_argument("file", type=Path)

    p = sub.add_parser("upload", help="upload an encoded file to the hub (resumable)")
    _hub_arguments(p)
    p.add_argument("file", type=Path, help="the encoded Parquet file (never the keymap)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("run", help="pseudonymise an export, then upload it")
    _pseudonymise_arguments(p)
    _hub_arguments(p)

    p = sub.add_parser(
        "lookup", help="map a hub feedback file's record pseudonyms back to your record ids"
    )
    p.add_argument(
        "--record-key", type=Path, help=f"agency record-key file (default: ${RECORD_KEY_ENV})"
    )
    p.add_argument("--mapping", type=Path, required=True, help="column mapping (TOML)")
    p.add_argument(
        "--input", type=Path, required=True, help="the export the uploaded file was made from"
    )
    p.add_argument(
        "--links", type=Path, required=True, help="the feedback file downloaded from the hub"
    )
    p.add_argument("--output", type=Path, help="CSV to write (default: standard output)")
    p.add_argument("--agency", help="agency id (default: the mapping's [source] agency)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object on standard output (needs --output)",
    )
    return parser


def _pseudonymise_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mapping", type=Path, required=True, help="column mapping (TOML)")
    p.add_argument("--schema", type=Path, required=True, help="encoding schema (TOML)")
    p.add_argument(
        "--key", type=Path, help=f"project linkage secret file (default: ${LINKAGE_KEY_ENV})"
    )
    p.add_argument(
        "--record-key", type=Path, help=f"agency record-key file (default: ${RECORD_KEY_ENV})"
    )
    p.add_argument("--input", type=Path, required=True, help="export to read (CSV, Parquet, xlsx)")
    p.add_argument("--output", type=Path, required=True, help="encoded Parquet file to write")
    p.add_argument("--report", type=Path, help="write the data-quality report as JSON here")
    p.add_argument("--agency", help="agency id (default: the mapping's [source] agency)")
    p.add_argument(
        "--keymap", type=Path, help="write record_id -> record pseudonym here (never upload it)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes to encode with (default: one per core, at most 4; 1: no pool)",
    )
    p.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress bar or report table")


def _hub_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hub", required=True, help="the hub's base URL")
    p.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding your API token (default: ${HUB_TOKEN_ENV})",
    )
    p.add_argument("--project", required=True, help="the hub project to upload into")


def _synth(args: argparse.Namespace, console: Console) -> int:
    from connectors.synth import synthesise

    if args.people < 1:
        raise ConnectorError("--people must be at least 1")
    summary = synthesise(args.people, args.seed, args.out_dir)
    console.print(
        f"wrote {summary.ae_rows} A&E attendances and {summary.police_rows} police incidents "
        f"about {summary.people} people ({summary.people_in_both} in both) to {args.out_dir}"
    )
    return 0


def _keygen(args: argparse.Namespace, console: Console) -> int:
    key = generate_key("record-key" if args.record_key else "linkage-secret")
    write_key(key, args.out, overwrite=args.force)
    console.print(f"wrote {key.kind} {key.key_id} to {args.out} (mode 0600)")
    console.print(f"key check value: {key.check_value}")
    if not args.record_key:
        console.print(
            "share this file out of band with the other agencies of the project; never send it "
            "to the hub"
        )
    return 0


def _key_check(args: argparse.Namespace, console: Console) -> int:
    key = read_key(args.file)
    if args.json:
        doc = {"kind": key.kind, "key_id": key.key_id, "key_check_value": key.check_value}
        print(json.dumps(doc))
    else:
        print(key.check_value)
    return 0


def _pseudonymise(args: argparse.Namespace, console: Console) -> int:
    if args.batch_rows < 1:
        raise ConnectorError("--batch-rows must be at least 1")
    if args.workers < 0:
        raise ConnectorError("--workers must be 0 (automatic) or more")
    workers = args.workers or min(4, os.cpu_count() or 1)
    mapping = load_mapping(args.mapping)
    schema = load_encoding_schema(args.schema)
    env = dict(os.environ)
    linkage = read_key(resolve_key_path(args.key, LINKAGE_KEY_ENV, env), "linkage-secret")
    record = read_key(resolve_key_path(args.record_key, RECORD_KEY_ENV, env), "record-key")
    agency = args.agency or mapping.agency
    if not agency:
        raise ConnectorError("no agency id: pass --agency or set [source] agency in the mapping")
    now = datetime.now(UTC)
    job = PseudonymiseJob(
        mapping=mapping,
        schema=schema,
        linkage_key=linkage,
        record_key=record,
        input=args.input,
        output=args.output,
        agency=agency,
        report=args.report,
        keymap=args.keymap,
        batch_rows=args.batch_rows,
        workers=workers,
        today=now.date(),
        now=now,
    )
    show = not args.quiet and sys.stderr.isatty()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task(f"pseudonymising {args.input.name}", total=None)
        report = pseudonymise(job, progress=lambda n: bar.advance(task, n))
    if not args.quiet:
        render_report(report, console)
    console.print(
        f"wrote {report.rows_written} encoded rows to {args.output} "
        f"(key check value {linkage.check_value})"
    )
    return 0


def _upload(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, TaskProgressColumn

    from connectors.upload import HubClient, UploadError, upload

    path = args.token_file or os.environ.get(HUB_TOKEN_ENV)
    if not path:
        raise UploadError(f"give your API token file with --token-file (or ${HUB_TOKEN_ENV})")
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UploadError(f"cannot read the token file: {exc.strerror}") from None
    file = args.output if args.command == "run" else args.file
    client = HubClient(args.hub, token)
    show = not args.quiet and sys.stderr.isatty()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task(f"uploading {file.name}", total=None)
        result = upload(
            client,
            args.project,
            file,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"uploaded {file} as dataset version {result.dataset_version} ({result.rows} rows; "
        f"{result.chunks_sent} of {result.chunks_total} chunks sent this time; "
        f"audit entry {result.audit_entry})"
    )
    return 0


def _run(args: argparse.Namespace, console: Console) -> int:
    code = _pseudonymise(args, console)
    return code if code else _upload(args, console)


def _lookup(args: argparse.Namespace, console: Console) -> int:
    from connectors.feedback import read_feedback
    from connectors.lookup import export_record_ids, lookup, save_lookup_csv, write_lookup_csv

    if args.json and args.output is None:
        raise ConnectorError("--json needs --output: without it the table goes to standard output")
    if args.output is not None:
        if args.output.resolve() in {args.input.resolve(), args.links.resolve()}:
            raise OutputError(f"{args.output}: refusing to overwrite an input")
        if not args.output.parent.is_dir():
            raise OutputError(f"{args.output.parent}: output directory does not exist")
    mapping = load_mapping(args.mapping)
    agency = args.agency or mapping.agency
    if not agency:
        raise ConnectorError("no agency id: pass --agency or set [source] agency in the mapping")
    record = read_key(
        resolve_key_path(args.record_key, RECORD_KEY_ENV, dict(os.environ)), "record-key"
    )
    feedback = read_feedback(args.links)
    result = lookup(
        feedback, export_record_ids(args.input, mapping), record_key=record, agency=agency
    )
    if args.output is None:
        write_lookup_csv(result.table, sys.stdout)
    else:
        save_lookup_csv(result.table, args.output)
    meta = feedback.metadata
    summary = {"agency": agency, "project": meta.project, "run": meta.run, **result.summary()}
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    where = f" to {args.output}" if args.output is not None else ""
    print(
        f"feedback for run {meta.run} of project {meta.project}: {result.feedback_rows} rows, "
        f"{result.matched} matched, {result.unmatched} unmatched; wrote {result.table.num_rows} "
        f"rows about {summary['records']} records{where}",
        file=sys.stderr,
    )
    if result.unmatched:
        print(
            f"{result.unmatched} feedback rows name records not in {args.input} "
            "(a different or later export?)",
            file=sys.stderr,
        )
    return 0


def _inspect(args: argparse.Namespace, console: Console) -> int:
    print(json.dumps(read_metadata(args.file), indent=2))
    return 0


_COMMANDS = {
    "synth": _synth,
    "keygen": _keygen,
    "key-check": _key_check,
    "pseudonymise": _pseudonymise,
    "inspect": _inspect,
    "upload": _upload,
    "run": _run,
    "lookup": _lookup,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        return _COMMANDS[args.command](args, console)
    except ConnectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
