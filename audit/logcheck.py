"""Full offline verification of a log: what ``audit verify`` runs.

Given every stored entry, checkpoint, cosignature and (for a database) tree node, and the
log's public key from the auditor (never from the source being checked), it

- reads the entries in sequence order and refuses a gap, a duplicate, bytes that are not
  the canonical encoding of a valid entry, an entry whose own sequence number differs
  from its position, or filter columns that disagree with the entry's bytes;
- recomputes every leaf hash and the tree, and for each checkpoint checks the log's
  signature, the origin, and that its root is the root of the entries up to its size;
- checks every consecutive pair of checkpoints with an RFC 9162 consistency proof built
  from the recomputed tree;
- refuses entries that no checkpoint covers (the writer signs every batch it commits, so
  an unsigned tail was added behind its back);
- checks every cosignature by a witness whose key the auditor gave (others are counted as
  unverified, not trusted);
- for a database, compares every stored tree node with the recomputed one, which is also
  how an entry edited underneath the database is named: its stored leaf hash no longer
  matches its bytes.

It stops at the first problem and names the entry or checkpoint (``Problem``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import NoReturn, Protocol, runtime_checkable

from sqlalchemy import Engine, text

from audit import store
from audit.checkpoint import Checkpoint, open_checkpoint, verify_cosignature
from audit.db import open_engine
from audit.entry import ENCODING_VERSION, decode, parse_time
from audit.errors import AuditError
from audit.merkle import (
    EMPTY_ROOT,
    consistency_ranges,
    fold_subtrees,
    leaf_hash,
    perfect_subtrees,
)
from audit.note import VerifierKey, parse_signature_line
from audit.verify import verify_consistency

__all__ = ["LogSource", "Problem", "Report", "Tree", "check_log"]


RANGE_LEVELS = 14
"""A worker checks ranges of 2**14 entries: every tree node of level <= 14 inside a range
is computed and compared by the worker that read the range."""

EntryRow = tuple[int, int | None, str | None, str | None, str | None, str | None, str | None, bytes]
"""``(seq, time_us, actor, agency, action, dsa_id, outcome, body)``: a stored entry as the
scan reads it. From an export, where nothing is stored beside the bytes, every column but
``seq`` (the line number) and ``body`` is None."""


class LogSource(Protocol):
    """Where a log is read from: a database or an export directory."""

    description: str

    def entries(self) -> Iterator[store.StoredEntry]: ...

    def entry_chunks(self, size: int) -> Iterator[list[EntryRow]]: ...

    def checkpoints(self) -> list[store.StoredCheckpoint]: ...

    def cosignatures(self) -> list[store.StoredCosignature]: ...


@runtime_checkable
class RangeSource(Protocol):
    """A source whose entries worker processes can read by sequence range themselves (a
    database): the main process then only merges their results."""

    def worker_url(self) -> str | None: ...

    def entry_total(self) -> int: ...

    def node_total(self) -> int: ...

    def nodes_above(self, level: int) -> Iterator[tuple[int, int, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Problem:
    """The first discrepancy found: what kind, which entry or checkpoint, and why."""

    kind: str
    message: str
    entry: int | None = None
    checkpoint: int | None = None


@dataclass
class Report:
    """What ``check_log`` found. ``ok`` when ``problem`` is None."""

    source: str
    entries: int = 0
    checkpoints: int = 0
    latest: Checkpoint | None = None
    nodes_checked: int = 0
    consistency_proofs: int = 0
    cosignatures_verified: int = 0
    cosignatures_unverified: int = 0
    witnesses: dict[str, int] = field(default_factory=dict)
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class Tree:
    """Every node of a tree, recomputed from leaf hashes, level by level (in memory: two
    nodes per leaf; docs/audit.md gives the measured peak). ``levels[0]`` holds the leaf
    hashes; ``levels[k][i]`` is the perfect subtree over leaves ``[i << k, (i + 1) << k)``."""

    def __init__(self) -> None:
        self.levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add leaf hashes and every interior node they complete."""
        self.levels[0].extend(leaves)
        self._build(0)

    def _build(self, level: int) -> None:
        sha256 = hashlib.sha256
        while True:
            lower = self.levels[level]
            if level + 1 == len(self.levels):
                if len(lower) < 2:
                    return
                self.levels.append([])
            upper = self.levels[level + 1]
            start, stop = len(upper), len(lower) // 2
            if start == stop:
                return
            upper.extend(
                sha256(b"\x01" + lower[2 * k] + lower[2 * k + 1]).digest()
                for k in range(start, stop)
            )
            level += 1

    def append(self, leaf: bytes) -> None:
        self.extend([leaf])

    def add_levels(self, levels: Sequence[Sequence[bytes]]) -> None:
        """Add a range's leaves and its complete lower-level nodes (computed elsewhere,
        see ``scan_range``), then every node above them that is now complete."""
        for level, nodes in enumerate(levels):
            if level == len(self.levels):
                self.levels.append([])
            self.levels[level].extend(nodes)
        self._build(max(len(levels) - 1, 0))

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all)."""
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def subtree(self, start: int, end: int) -> bytes:
        return fold_subtrees([self.levels[lv][ix] for lv, ix in perfect_subtrees(start, end)])

    def proof(self, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
        return [self.subtree(a, b) for a, b in ranges]

    def node_count(self) -> int:
        return sum(len(level) for level in self.levels)


class _Failed(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _fail(kind: str, message: str, *, entry: int | None = None, cp: int | None = None) -> NoReturn:
    raise _Failed(Problem(kind, message, entry, cp))


def _open_checkpoints(
    stored: Sequence[store.StoredCheckpoint], log_key: VerifierKey, origin: str
) -> list[Checkpoint]:
    opened: list[Checkpoint] = []
    previous = -1
    for row in stored:
        if row.size <= previous:
            _fail("checkpoint", f"checkpoints out of order at size {row.size}", cp=row.size)
        previous = row.size
        try:
            cp, _ = open_checkpoint(row.note.encode("utf-8"), log_key, origin)
        except AuditError as exc:
            _fail("checkpoint", f"checkpoint at size {row.size}: {exc}", cp=row.size)
        if cp.size != row.size:
            _fail("checkpoint", f"checkpoint row {row.size} holds size {cp.size}", cp=row.size)
        opened.append(cp)
    return opened


def _time_us(value: object) -> int | None:
    """Microseconds since the epoch of an entry's ``time`` text; None if malformed."""
    try:
        return store.time_to_us(parse_time(value))
    except AuditError:
        return None


def _row_problem(row: EntryRow, strict: bool) -> str | None:
    """What is wrong with one stored entry, or None (see ``check_log``)."""
    seq, time_us, actor, agency, action, dsa_id, outcome, body = row
    if strict:
        try:
            entry = decode(body)
        except AuditError as exc:
            return f"entry {seq} is not a valid canonical entry: {exc}"
        if entry.sequence != seq:
            return f"entry {seq} says it is entry {entry.sequence}"
        columns: tuple[object, ...] = (store.time_to_us(entry.time), entry.actor, entry.agency)
        columns += (entry.action, entry.dsa_id, entry.outcome)
    else:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            return f"entry {seq} is not JSON"
        if type(doc) is not dict or doc.get("v") != ENCODING_VERSION:
            return f"entry {seq} is not a version-{ENCODING_VERSION} entry"
        if doc.get("sequence") != seq:
            return f"entry {seq} says it is entry {doc.get('sequence')}"
        columns = (_time_us(doc.get("time")), doc.get("actor"), doc.get("agency"))
        columns += (doc.get("action"), doc.get("dsa_id"), doc.get("outcome"))
    if time_us is not None and columns != (time_us, actor, agency, action, dsa_id, outcome):
        return f"entry {seq}: filter columns disagree with its bytes"
    return None


def _scan(rows: Sequence[EntryRow], strict: bool) -> tuple[list[bytes], str | None]:
    """Leaf hashes of ``rows`` up to the first bad one, and what is wrong with it."""
    leaves: list[bytes] = []
    for row in rows:
        problem = _row_problem(row, strict)
        if problem is not None:
            return leaves, problem
        leaves.append(leaf_hash(row[7]))
    return leaves, None


def _scan_all(
    source: LogSource, strict: bool, workers: int | None, chunk: int
) -> Iterator[tuple[list[EntryRow], tuple[list[bytes], str | None]]]:
    """Each chunk of entries with its scan, in order; chunks go to worker processes."""
    chunks = source.entry_chunks(chunk)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    procs = (os.cpu_count() or 1) if workers is None else workers
    if second is None or procs <= 1:
        for rows in itertools.chain([first], [] if second is None else [second], chunks):
            yield rows, _scan(rows, strict)
        return
    with ProcessPoolExecutor(max_workers=procs) as pool:
        in_flight: deque[tuple[list[EntryRow], Future[tuple[list[bytes], str | None]]]] = deque()
        for rows in itertools.chain([first, second], chunks):
            in_flight.append((rows, pool.submit(_scan, rows, strict)))
            if len(in_flight) > 2 * procs:
                done_rows, future = in_flight.popleft()
                yield done_rows, future.result()
        while in_flight:
            done_rows, future = in_flight.popleft()
            yield done_rows, future.result()


def _check_order(seq: int, expected: int) -> None:
    if seq > expected:
        _fail("entry", f"entry {expected} is missing (next is {seq})", entry=expected)
    _fail("entry", f"entry {seq} is stored twice or out of order", entry=seq)


def check_log(
    source: LogSource,
    log_key: VerifierKey,
    origin: str,
    witness_keys: Sequence[VerifierKey] = (),
    *,
    strict: bool = False,
    workers: int | None = None,
    chunk: int = 20_000,
    range_levels: int = RANGE_LEVELS,
) -> Report:
    """Verify everything in ``source`` (see the module docstring).

    ``strict`` also decodes every entry with ``audit.entry.decode`` (every field valid,
    the bytes exactly its canonical encoding), about eight times the work per entry;
    without it each entry is parsed as JSON and its sequence number and filter columns
    compared. From a database, each of ``workers`` processes (default: one per core) reads
    and checks aligned ranges of ``2**range_levels`` entries and their tree nodes itself;
    from other sources this process reads the entries and workers check chunks of
    ``chunk``. The tree's upper levels, the checkpoints and the proofs are checked here.
    """
    report = Report(source=source.description)
    tree = Tree()
    try:
        stored = source.checkpoints()
        cps = _open_checkpoints(stored, log_key, origin)
        report.checkpoints = len(cps)
        pending = iter(cps)
        next_cp = next(pending, None)
        previous: Checkpoint | None = None
        if next_cp is not None and next_cp.size == 0:
            previous, next_cp = next_cp, next(pending, None)

        def advance() -> None:
            nonlocal previous, next_cp
            while next_cp is not None and next_cp.size <= tree.size:
                _check_root(tree, previous, next_cp)
                report.consistency_proofs += _check_consistency(tree, previous, next_cp)
                previous, next_cp = next_cp, next(pending, None)

        url = source.worker_url() if isinstance(source, RangeSource) else None
        nodes_checked = 0
        if url is not None:
            assert isinstance(source, RangeSource)
            for scan in _scan_ranges(url, source.entry_total(), strict, workers, range_levels):
                if scan.problem is not None:
                    advance()
                    raise _Failed(scan.problem)
                tree.add_levels(scan.levels)
                nodes_checked += scan.nodes_checked
                advance()
        else:
            for rows, (leaves, problem) in _scan_all(source, strict, workers, chunk):
                start = tree.size
                seqs = [row[0] for row in rows]
                if seqs != list(range(start, start + len(rows))):
                    at = next(i for i, s in enumerate(seqs) if s != start + i)
                    tree.extend(leaves[:at])
                    _check_order(seqs[at], start + at)
                tree.extend(leaves)
                advance()
                if problem is not None:
                    _fail("entry", problem, entry=start + len(leaves))
        report.entries = tree.size
        if next_cp is not None:
            _fail(
                "checkpoint",
                f"checkpoint at size {next_cp.size} covers more entries than the "
                f"{tree.size} stored: entries were removed",
                cp=next_cp.size,
            )
        covered = previous.size if previous is not None else 0
        if tree.size > covered:
            _fail(
                "entry",
                f"entries {covered}..{tree.size - 1} are not covered by any signed checkpoint",
                entry=covered,
            )
        report.latest = previous
        if url is not None:
            assert isinstance(source, RangeSource)
            report.nodes_checked = nodes_checked + _check_upper_nodes(source, tree, range_levels)
        _check_cosignatures(source, cps, witness_keys, report)
    except _Failed as failed:
        report.entries = max(report.entries, tree.size)
        report.problem = failed.problem
    return report


def _check_root(tree: Tree, previous: Checkpoint | None, cp: Checkpoint) -> None:
    """A root mismatch names the range of entries; from a database the workers have already
    named the altered entry itself (its stored leaf hash no longer matches its bytes)."""
    if tree.root(cp.size) == cp.root_hash:
        return
    start = previous.size if previous is not None else 0
    _fail(
        "checkpoint",
        f"the signed checkpoint at size {cp.size} does not match entries {start}..{cp.size - 1}: "
        "one of them was altered",
        entry=start,
        cp=cp.size,
    )


def _check_consistency(tree: Tree, previous: Checkpoint | None, cp: Checkpoint) -> int:
    if previous is None or previous.size == 0:
        return 0
    try:
        proof = tree.proof(consistency_ranges(previous.size, cp.size))
        verify_consistency(previous.size, cp.size, previous.root_hash, cp.root_hash, proof)
    except AuditError as exc:
        _fail(
            "checkpoint",
            f"checkpoints at sizes {previous.size} and {cp.size} are inconsistent: {exc}",
            cp=cp.size,
        )
    return 1


def _check_upper_nodes(source: RangeSource, tree: Tree, top: int) -> int:
    """Compare the stored nodes above the workers' ranges, and the total node count."""
    checked = 0
    for level, idx, value in source.nodes_above(top):
        if level >= len(tree.levels) or idx >= len(tree.levels[level]):
            _fail("node", f"tree node ({level}, {idx}) is beyond the tree")
        if tree.levels[level][idx] != value:
            _fail("node", f"tree node ({level}, {idx}) differs from the recomputed tree")
        checked += 1
    expected = sum(len(nodes) for nodes in tree.levels[top + 1 :])
    if checked != expected or source.node_total() != tree.node_count():
        _fail("node", "the database holds missing or extra tree nodes")
    return checked


def _check_cosignatures(
    source: LogSource,
    cps: Sequence[Checkpoint],
    witness_keys: Sequence[VerifierKey],
    report: Report,
) -> None:
    by_size = {cp.size: cp for cp in cps}
    keys = {(k.name, k.key_id): k for k in witness_keys}
    for row in source.cosignatures():
        cp = by_size.get(row.size)
        if cp is None:
            _fail(
                "cosignature",
                f"a cosignature by {row.witness} is for an unknown size {row.size}",
                cp=row.size,
            )
        key = keys.get((row.witness, row.key_id))
        if key is None:
            report.cosignatures_unverified += 1
            continue
        text = cp.to_text()
        try:
            sig = parse_signature_line(row.line)
            timestamp = verify_cosignature(text, sig, key)
        except AuditError as exc:
            _fail(
                "cosignature",
                f"cosignature by {row.witness} at size {row.size}: {exc}",
                cp=row.size,
            )
        if timestamp != row.timestamp:
            _fail(
                "cosignature",
                f"cosignature by {row.witness} at size {row.size}: stored time differs",
                cp=row.size,
            )
        report.cosignatures_verified += 1
        report.witnesses[row.witness] = max(report.witnesses.get(row.witness, 0), row.size)


# -- database sources: each worker reads and checks its own aligned range -------------------


_WORKER_ENGINES: dict[str, Engine] = {}


@dataclass(frozen=True, slots=True)
class RangeScan:
    """What a worker found in entries ``[start, end)``: the tree nodes of levels 0..14
    that lie wholly inside the range, how many stored nodes it compared, and the first
    problem (an entry number and a message), if any."""

    start: int
    end: int
    levels: list[list[bytes]]
    nodes_checked: int
    problem: Problem | None


def _worker_engine(url: str) -> Engine:
    engine = _WORKER_ENGINES.get(url)
    if engine is None:
        engine = _WORKER_ENGINES[url] = open_engine(url)
    return engine


def scan_range(url: str, start: int, end: int, strict: bool, top: int = RANGE_LEVELS) -> RangeScan:
    """Read and check entries ``[start, end)`` and their tree nodes from the database at
    ``url`` (runs in a worker process; ``start`` is a multiple of 2**RANGE_LEVELS)."""
    engine = _worker_engine(url)
    with engine.connect() as conn:
        rows: list[EntryRow] = [
            (s, t, a, g, c, d, o, bytes(b))
            for s, t, a, g, c, d, o, b in conn.execute(
                text(
                    "SELECT seq, time_us, actor, agency, action, dsa_id, outcome, body "
                    "FROM audit_entries WHERE seq >= :a AND seq < :b ORDER BY seq"
                ),
                {"a": start, "b": end},
            )
        ]
        seqs = [row[0] for row in rows]
        if seqs != list(range(start, end)):
            at = next((i for i, s in enumerate(seqs) if s != start + i), len(seqs))
            missing = Problem("entry", f"entry {start + at} is missing", start + at)
            return RangeScan(start, end, [], 0, missing)
        leaves, message = _scan(rows, strict)
        if message is not None:
            return RangeScan(start, end, [], 0, Problem("entry", message, start + len(leaves)))
        levels = [leaves]
        sha256 = hashlib.sha256
        for _ in range(top):
            lower = levels[-1]
            if len(lower) < 2:
                break
            levels.append(
                [
                    sha256(b"\x01" + lower[2 * k] + lower[2 * k + 1]).digest()
                    for k in range(len(lower) // 2)
                ]
            )
        checked = 0
        for level, expected in enumerate(levels):
            first = start >> level
            stored = conn.execute(
                text(
                    "SELECT idx, hash FROM audit_nodes "
                    "WHERE level = :l AND idx >= :a AND idx < :b ORDER BY idx"
                ),
                {"l": level, "a": first, "b": first + len(expected)},
            ).all()
            for i, (idx, value) in enumerate(stored):
                if idx != first + i:
                    break
                if bytes(value) != expected[i]:
                    if level == 0:
                        what = (
                            f"entry {idx} was altered: its bytes no longer hash to its stored leaf"
                        )
                        return RangeScan(start, end, [], 0, Problem("entry", what, idx))
                    what = f"tree node ({level}, {idx}) differs from the recomputed tree"
                    return RangeScan(start, end, [], 0, Problem("node", what))
            if len(stored) != len(expected) or any(
                idx != first + i for i, (idx, _) in enumerate(stored)
            ):
                what = f"tree nodes of level {level} are missing for entries {start}..{end - 1}"
                return RangeScan(start, end, [], 0, Problem("node", what))
            checked += len(stored)
    return RangeScan(start, end, levels, checked, None)


def _scan_ranges(
    url: str, count: int, strict: bool, workers: int | None, top: int
) -> Iterator[RangeScan]:
    span = 1 << top
    bounds = [(a, min(a + span, count)) for a in range(0, count, span)]
    procs = (os.cpu_count() or 1) if workers is None else workers
    if len(bounds) < 2 or procs <= 1:
        try:
            for a, b in bounds:
                yield scan_range(url, a, b, strict, top)
        finally:  # in this process: do not keep the connection past this check
            engine = _WORKER_ENGINES.pop(url, None)
            if engine is not None:
                engine.dispose()
        return
    with ProcessPoolExecutor(max_workers=procs) as pool:
        in_flight: deque[Future[RangeScan]] = deque()
        for a, b in bounds:
            in_flight.append(pool.submit(scan_range, url, a, b, strict, top))
            if len(in_flight) > 2 * procs:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
