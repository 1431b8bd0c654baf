"""``audit``: the auditor's command line.

Every command that reads a log takes it from ``--db PATH_OR_URL`` (the hub's database:
a SQLite file or a ``postgresql://`` URL) or ``--export DIR`` (a directory written by
``audit export``); ``--hub URL`` arrives with the hub's HTTP API. The log's public key
comes from the auditor (``--log-key``: a verifier key, or a file holding one), never
from the source being checked, and names the log: its name is the checkpoint origin.

Exit status: 0 success, 1 a verification failure (the log, a proof or a checkpoint is
bad: an incident), 2 a usage or input error.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from audit import store
from audit.bundle import format_bundle, parse_bundle, verify_bundle
from audit.checkpoint import WitnessKey
from audit.db import open_engine
from audit.entry import decode
from audit.errors import AuditError, InconsistentLogError, ProofError, StoreError
from audit.log import AuditLog, stored_fields
from audit.logcheck import Report, Tree, check_log
from audit.merkle import consistency_ranges, inclusion_ranges, leaf_hash
from audit.note import NoteSignature, SigningKey, VerifierKey, format_note, parse_vkey
from audit.sources import DatabaseSource, ExportSource, HubSource, write_export
from audit.verify import verify_consistency
from audit.witness import accept_checkpoint, witness_checkpoint

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_OPENED: list[Engine] = []


class UsageError(Exception):
    """A command-line mistake: reported on stderr with exit status 2."""


# -- argument helpers ---------------------------------------------------------------


def _read_key_text(value: str, what: str) -> str:
    path = Path(value)
    if "+" in value and not path.exists():
        return value.strip()
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {value}: {exc.strerror}") from None


def _vkey(value: str, what: str = "--log-key") -> VerifierKey:
    try:
        return parse_vkey(_read_key_text(value, what))
    except AuditError as exc:
        raise UsageError(f"{what}: {exc}") from None


def _log_key(args: argparse.Namespace) -> VerifierKey:
    value = args.log_key or os.environ.get("AUDIT_LOG_KEY")
    if not value:
        raise UsageError("give the log's public key with --log-key (or AUDIT_LOG_KEY)")
    return _vkey(value)


def _witness_keys(args: argparse.Namespace) -> list[VerifierKey]:
    return [_vkey(v, "--witness-key") for v in args.witness_key or ()]


def _add_source(p: argparse.ArgumentParser, *, export: bool = True) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--db", metavar="PATH_OR_URL", help="the hub's database")
    if export:
        group.add_argument("--export", metavar="DIR", type=Path, help="an `audit export` directory")
    group.add_argument("--hub", metavar="URL", help="a running hub's base URL")
    p.add_argument(
        "--token-file",
        type=Path,
        help="with --hub: file holding an auditor's API token (default: $AUDIT_TOKEN)",
    )


def _add_log_key(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-key",
        metavar="VKEY_OR_FILE",
        help="the log's public verifier key, or a file holding it (default: $AUDIT_LOG_KEY)",
    )


def _add_witness_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--witness-key",
        action="append",
        metavar="VKEY_OR_FILE",
        help="a trusted witness's public key (repeat for several)",
    )


def _no_hub(args: argparse.Namespace) -> None:
    if getattr(args, "hub", None):
        raise UsageError(f"audit {args.command} works on --db (or --export), not --hub")


def _hub(args: argparse.Namespace) -> HubSource:
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file: {exc.strerror}") from None
    else:
        token = os.environ.get("AUDIT_TOKEN", "").strip()
    if not token:
        raise UsageError("--hub needs an auditor's token: --token-file FILE (or AUDIT_TOKEN)")
    return HubSource(args.hub, token)


def _hub_consistency(source: HubSource) -> Any:
    def proof(old: int, new: int) -> list[bytes]:
        doc = json.loads(source.get("/v1/audit/proofs/consistency", old=old, new=new))
        return [base64.b64decode(h) for h in doc["proof"]]

    return proof


def _open_log(args: argparse.Namespace, log_key: VerifierKey) -> AuditLog:
    log = AuditLog.open(args.db, origin=log_key.name, log_key=log_key)
    _OPENED.append(log.engine)
    return log


def _engine(target: str) -> Engine:
    """An engine for ``--db``, disposed when the command ends (so no connection outlives
    it, and SQLite checkpoints its WAL)."""
    engine = open_engine(target)
    _OPENED.append(engine)
    return engine


# -- commands -----------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    out: Path = args.out
    pub = out.with_name(out.name + ".pub")
    for path in (out, pub):
        if path.exists():
            raise UsageError(f"{path} already exists: refusing to overwrite a key")
    try:
        key: SigningKey | WitnessKey = (
            WitnessKey.generate(args.name) if args.witness else SigningKey.generate(args.name)
        )
    except AuditError as exc:
        raise UsageError(f"--name: {exc}") from None
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key.to_text() + "\n")
    vkey = key.verifier().to_vkey()
    pub.write_text(vkey + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps({"private_key_file": str(out), "public_key_file": str(pub), "vkey": vkey}))
    else:
        print(f"private key: {out} (mode 0600; keep it off the database host's backups)")
        print(f"public key:  {pub}")
        print(vkey)
    return EXIT_OK


def _load_signing_key(path: Path) -> SigningKey:
    try:
        return SigningKey.from_text(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise UsageError(f"cannot read key {path}: {exc.strerror}") from None
    except AuditError as exc:
        raise UsageError(f"{path}: {exc}") from None


def cmd_init(args: argparse.Namespace) -> int:
    key = _load_signing_key(args.key)
    log = AuditLog.open(args.db, origin=key.name, log_key=key.verifier(), create=True)
    log.close()
    print(f"audit log {key.name!r} ready in {args.db}")
    return EXIT_OK


def _report_json(report: Report) -> dict[str, Any]:
    latest = report.latest
    return {
        "ok": report.ok,
        "source": report.source,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "latest": None if latest is None else {"size": latest.size, "root": latest.root_hash.hex()},
        "nodes_checked": report.nodes_checked,
        "consistency_proofs": report.consistency_proofs,
        "cosignatures_verified": report.cosignatures_verified,
        "cosignatures_unverified": report.cosignatures_unverified,
        "problem": None
        if report.problem is None
        else {
            "kind": report.problem.kind,
            "message": report.problem.message,
            "entry": report.problem.entry,
            "checkpoint": report.problem.checkpoint,
        },
    }


def _check_export_proofs(source: ExportSource, report: Report, log_key: VerifierKey) -> None:
    """Check the export's stored consistency proofs against its checkpoints."""
    from audit.checkpoint import open_checkpoint

    roots = {
        c.size: open_checkpoint(c.note.encode(), log_key, log_key.name)[0].root_hash
        for c in source.checkpoints()
    }
    for old, new, proof in source.consistency_proofs():
        if old not in roots or new not in roots:
            raise ProofError(
                f"consistency/{old}-{new}.proof names a checkpoint that is not exported"
            )
        verify_consistency(old, new, roots[old], roots[new], proof)
        report.consistency_proofs += 1


def _scan_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    return {"strict": args.strict, "workers": args.workers}


def cmd_verify(args: argparse.Namespace) -> int:
    log_key = _log_key(args)
    started = time.perf_counter()
    if args.db or args.hub:
        source_any: Any = _hub(args) if args.hub else DatabaseSource(_engine(args.db))
        report = check_log(
            source_any, log_key, log_key.name, _witness_keys(args), **_scan_options(args)
        )
    else:
        source = ExportSource(args.export, log_key.name)
        report = check_log(
            source, log_key, log_key.name, _witness_keys(args), **_scan_options(args)
        )
        if report.ok:
            report.consistency_proofs = 0
            _check_export_proofs(source, report, log_key)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps({**_report_json(report), "seconds": round(elapsed, 3)}))
    elif report.ok:
        latest = report.latest
        print(f"OK: {report.source}")
        print(
            f"  {report.entries} entries, {report.checkpoints} signed checkpoints, "
            f"{report.consistency_proofs} consistency proofs, {report.nodes_checked} tree nodes"
        )
        if latest is not None:
            print(f"  latest checkpoint: size {latest.size}, root {latest.root_hash.hex()}")
        print(
            f"  cosignatures: {report.cosignatures_verified} verified, "
            f"{report.cosignatures_unverified} by witnesses whose key was not given"
        )
        print(f"  verified in {elapsed:.2f} s")
    else:
        assert report.problem is not None
        print(f"FAILED: {report.source}", file=sys.stderr)
        print(f"  {report.problem.message}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def _proof_fn(args: argparse.Namespace, log: AuditLog | None, tree: Tree | None) -> Any:
    if log is not None:
        return log.consistency_proof
    assert tree is not None
    return lambda old, new: tree.proof(consistency_ranges(old, new))


def _export_tree(directory: Path, log_name: str) -> tuple[ExportSource, Tree]:
    source = ExportSource(directory, log_name)
    tree = Tree()
    for row in source.entries():
        tree.append(leaf_hash(row.body))
    return source, tree


def _latest_note(args: argparse.Namespace, log_key: VerifierKey) -> tuple[bytes, Any]:
    """The newest checkpoint note and a consistency-proof function (--db, --export, --hub)."""
    if args.hub:
        source = _hub(args)
        return source.get("/v1/audit/checkpoint"), _hub_consistency(source)
    if args.db:
        log = _open_log(args, log_key)
        head = log.latest()
        if head is None:
            raise UsageError("the log is empty: there is no checkpoint yet")
        return format_note(head[1]).encode(), log.consistency_proof
    export, tree = _export_tree(args.export, log_key.name)
    notes = export.checkpoints()
    if not notes:
        raise UsageError("the export holds no checkpoint")
    return notes[-1].note.encode(), lambda old, new: tree.proof(consistency_ranges(old, new))


def cmd_monitor(args: argparse.Namespace) -> int:
    log_key = _log_key(args)
    note, proof_fn = _latest_note(args, log_key)
    try:
        accepted = accept_checkpoint(
            note,
            log_key=log_key,
            origin=log_key.name,
            state_path=args.state,
            consistency_proof=proof_fn,
        )
    except InconsistentLogError as exc:
        print(f"ALARM: {exc}", file=sys.stderr)
        return EXIT_FAILED
    cp, prev = accepted.checkpoint, accepted.previous
    witnesses = _witness_keys(args)
    verified = _count_cosignatures(accepted.note, cp, witnesses)
    if verified < args.min_witnesses:
        print(
            f"ALARM: checkpoint at size {cp.size} has {verified} valid cosignatures from "
            f"trusted witnesses, {args.min_witnesses} required",
            file=sys.stderr,
        )
        return EXIT_FAILED
    since = (
        "first run: trusted on first use" if prev is None else f"consistent with size {prev.size}"
    )
    result = {
        "ok": True,
        "size": cp.size,
        "root": cp.root_hash.hex(),
        "previous_size": None if prev is None else prev.size,
        "cosignatures_verified": verified,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"OK: checkpoint at size {cp.size} ({since}); {verified} trusted cosignatures")
    return EXIT_OK


def _count_cosignatures(note: Any, cp: Any, witnesses: Sequence[VerifierKey]) -> int:
    from audit.checkpoint import verify_cosignature

    keys = {(k.name, k.key_id): k for k in witnesses}
    count = 0
    for sig in note.signatures:
        key = keys.get((sig.name, sig.key_id))
        if key is None:
            continue
        verify_cosignature(cp.to_text(), sig, key)
        count += 1
    return count


def cmd_witness(args: argparse.Namespace) -> int:
    log_key = _log_key(args)
    try:
        witness_key = WitnessKey.from_text(_read_key_text(str(args.key), "--key"))
    except AuditError as exc:
        raise UsageError(f"--key: {exc}") from None
    note, proof_fn = _latest_note(args, log_key)
    now = int(time.time())
    try:
        accepted, cosig = witness_checkpoint(
            note,
            log_key=log_key,
            origin=log_key.name,
            witness_key=witness_key,
            state_path=args.state,
            consistency_proof=proof_fn,
            timestamp=now,
        )
    except InconsistentLogError as exc:
        print(f"REFUSED TO CO-SIGN: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.hub:
        stored = _post_cosignature(_hub(args), accepted.checkpoint.size, cosig, witness_key)
    else:
        stored = _open_log(args, log_key).add_cosignature(accepted.checkpoint.size, cosig, now)
    size = accepted.checkpoint.size
    if args.json:
        print(json.dumps({"ok": True, "size": size, "witness": witness_key.name, "stored": stored}))
    else:
        what = "co-signed" if stored else "already co-signed by this witness"
        print(f"OK: checkpoint at size {size} {what} as {witness_key.name}")
    return EXIT_OK


def _post_cosignature(source: HubSource, size: int, cosig: NoteSignature, key: WitnessKey) -> bool:
    doc = {"size": size, "cosignature": cosig.to_line(), "vkey": key.verifier().to_vkey()}
    try:
        source.post("/v1/audit/cosignatures", doc)
    except StoreError as exc:
        if "409" in str(exc):
            return False
        raise
    return True


def _parse_time(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO 8601 time: {value!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return store.time_to_us(t)


def cmd_show(args: argparse.Namespace) -> int:
    where = store.EntryFilter(
        since_us=_parse_time(args.since),
        until_us=_parse_time(args.until),
        actor=args.actor,
        agency=args.agency,
        action=args.action,
        dsa_id=args.dsa,
        outcome=args.outcome,
    )
    if args.hub:
        rows = _hub_entries(_hub(args), args)
    elif args.db:
        engine = _engine(args.db)
        with engine.connect() as conn:
            store.check_schema(conn)
            rows = list(store.iter_entries(conn, where, limit=args.limit))
    else:
        log_name = _log_key(args).name
        rows = [r for r in ExportSource(args.export, log_name).entries() if _matches(r, where)]
        rows = rows[: args.limit] if args.limit is not None else rows
    for row in rows:
        if args.json:
            sys.stdout.write(row.body.decode("ascii") + "\n")
        else:
            e = decode(row.body)
            print(
                f"{e.sequence:>8}  {e.time.isoformat(timespec='seconds')}  {e.actor:<16} "
                f"{e.agency or '-':<12} {e.action:<18} {e.outcome:<8} "
                f"{e.resource or '-'}  {_dsa_label(e.dsa_id, e.dsa_version)}"
                + (f"  reason: {e.refusal_reason}" if e.refusal_reason else "")
            )
    if not args.json:
        print(f"({len(rows)} entries)", file=sys.stderr)
    return EXIT_OK


def _hub_entries(source: HubSource, args: argparse.Namespace) -> list[store.StoredEntry]:
    params: dict[str, object] = {
        "since": args.since,
        "until": args.until,
        "actor": args.actor,
        "agency": args.agency,
        "action": args.action,
        "dsa": args.dsa,
        "outcome": args.outcome,
    }
    rows: list[store.StoredEntry] = []
    after: int | None = 0
    while after is not None and (args.limit is None or len(rows) < args.limit):
        page = json.loads(source.get("/v1/audit/entries", after=after, limit=1000, **params))
        for item in page["entries"]:
            body = json.dumps(
                item["entry"], sort_keys=True, separators=(",", ":"), ensure_ascii=True
            ).encode("ascii")
            rows.append(stored_fields(decode(body), body))
        after = page["next_after"]
    return rows[: args.limit] if args.limit is not None else rows


def _dsa_label(dsa_id: str | None, version: int | None) -> str:
    return "" if dsa_id is None else f"{dsa_id} v{version}"


def _matches(row: store.StoredEntry, where: store.EntryFilter) -> bool:
    if where.since_us is not None and row.time_us < where.since_us:
        return False
    if where.until_us is not None and row.time_us >= where.until_us:
        return False
    return all(
        getattr(where, name) is None or getattr(where, name) == getattr(row, name)
        for name in ("actor", "agency", "action", "dsa_id", "outcome")
    )


def cmd_export(args: argparse.Namespace) -> int:
    _no_hub(args)
    log_key = _log_key(args)
    manifest = write_export(_engine(args.db), args.out, log_key.name, log_key.to_vkey())
    print(
        f"exported {manifest['entries']} entries and {manifest['checkpoints']} "
        f"checkpoints to {args.out}"
    )
    return EXIT_OK


def cmd_prove(args: argparse.Namespace) -> int:
    log_key = _log_key(args)
    if args.hub:
        doc = json.loads(_hub(args).get(f"/v1/audit/bundles/{args.index}"))
        bundle = parse_bundle(doc["bundle"])
        data = str(doc["entry"]).encode("ascii")
    elif args.db:
        log = _open_log(args, log_key)
        bundle = log.bundle(args.index)
        data = log.entry_bytes(args.index)
    else:
        source, tree = _export_tree(args.export, log_key.name)
        notes = source.checkpoints()
        if not notes:
            raise UsageError("the export holds no checkpoint")
        from audit.bundle import ProofBundle
        from audit.note import parse_note

        size = int(notes[-1].size)
        if not 0 <= args.index < size:
            raise UsageError(f"entry {args.index} is not in the log of {size} entries")
        note_path = args.export / "checkpoints" / f"{size}.checkpoint"
        bundle = ProofBundle(
            index=args.index,
            proof=tuple(tree.proof(inclusion_ranges(args.index, size))),
            checkpoint=parse_note(note_path.read_bytes()),
        )
        data = next(r.body for r in source.entries() if r.seq == args.index)
    verify_bundle(bundle, data, log_key, log_key.name, _witness_keys(args), args.min_witnesses)
    text = format_bundle(bundle)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_name(args.out.name + ".entry").write_bytes(data)
        print(f"proof for entry {args.index} verified and written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        print(f"entry: {data.decode('ascii')}", file=sys.stderr)
        print(f"proof for entry {args.index} verified", file=sys.stderr)
    return EXIT_OK


def cmd_check_proof(args: argparse.Namespace) -> int:
    log_key = _log_key(args)
    try:
        bundle = parse_bundle(args.proof.read_bytes())
        data = args.entry.read_bytes().rstrip(b"\n")
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    cp = verify_bundle(bundle, data, log_key, log_key.name, _witness_keys(args), args.min_witnesses)
    entry = decode(data)
    if entry.sequence != bundle.index:
        raise ProofError(
            f"the entry says it is entry {entry.sequence}, the proof is for {bundle.index}"
        )
    print(f"OK: entry {bundle.index} is in log {cp.origin!r} at size {cp.size}")
    return EXIT_OK


# -- parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audit",
        description="Verify, monitor, witness and search the hub's tamper-evident audit log.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("keygen", help="create an Ed25519 key for a log or a witness")
    p.add_argument(
        "--name", required=True, help="key name: the log's origin, or the witness's name"
    )
    p.add_argument(
        "--out", required=True, type=Path, help="private key file (the public key goes to FILE.pub)"
    )
    p.add_argument("--witness", action="store_true", help="a witness (cosignature) key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("init", help="create the log's tables in a database")
    p.add_argument("--db", required=True, metavar="PATH_OR_URL")
    p.add_argument("--key", required=True, type=Path, help="the log's private key file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("verify", help="recompute and check the whole log")
    _add_source(p)
    _add_log_key(p)
    _add_witness_keys(p)
    p.add_argument(
        "--strict",
        action="store_true",
        help="also check every entry is valid and canonically encoded (slower)",
    )
    p.add_argument("--workers", type=int, help="processes checking entries (default: cores)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("monitor", help="check the newest checkpoint extends the last one verified")
    _add_source(p)
    _add_log_key(p)
    _add_witness_keys(p)
    p.add_argument("--min-witnesses", type=int, default=0, metavar="N")
    p.add_argument(
        "--state", required=True, type=Path, help="file remembering the last verified checkpoint"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("witness", help="check and co-sign the newest checkpoint")
    _add_source(p, export=False)
    _add_log_key(p)
    p.add_argument("--key", required=True, metavar="FILE", help="the witness's private key file")
    p.add_argument(
        "--state", required=True, type=Path, help="file remembering the last co-signed checkpoint"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_witness)

    p = sub.add_parser("show", help="list entries, filtered")
    _add_source(p)
    _add_log_key(p)
    p.add_argument("--since", help="from this time (ISO 8601, UTC if no offset)")
    p.add_argument("--until", help="before this time")
    p.add_argument("--actor")
    p.add_argument("--agency")
    p.add_argument("--action")
    p.add_argument("--dsa", help="data sharing agreement id")
    p.add_argument("--outcome", choices=["allowed", "refused", "error"])
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true", help="JSON lines: each entry's canonical bytes")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("export", help="write the whole log to a directory, verifiable offline")
    p.add_argument("out", type=Path, metavar="DIR")
    _add_source(p, export=False)
    _add_log_key(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("prove", help="print and verify an inclusion proof bundle for one entry")
    p.add_argument("index", type=int, metavar="INDEX")
    _add_source(p)
    _add_log_key(p)
    _add_witness_keys(p)
    p.add_argument("--min-witnesses", type=int, default=0, metavar="N")
    p.add_argument("--out", type=Path, help="write the bundle here (and the entry to OUT.entry)")
    p.set_defaults(func=cmd_prove)

    p = sub.add_parser("check-proof", help="verify a proof bundle for an entry, offline")
    p.add_argument("proof", type=Path, metavar="BUNDLE")
    p.add_argument(
        "--entry", required=True, type=Path, help="file holding the entry's canonical bytes"
    )
    _add_log_key(p)
    _add_witness_keys(p)
    p.add_argument("--min-witnesses", type=int, default=0, metavar="N")
    p.set_defaults(func=cmd_check_proof)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"audit {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"audit {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AuditError as exc:
        print(f"audit {args.command}: FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        while _OPENED:
            _OPENED.pop().dispose()


if __name__ == "__main__":
    raise SystemExit(main())
