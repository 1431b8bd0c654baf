"""The analyst and auditor clients: the second load process, one event loop.

Each analyst client (aiohttp, one connection, the analyst users' tokens in turn) polls, in
turn, what an analyst reads (``ANALYST_PATHS``). Each auditor client monitors the log as
``audit monitor`` would: the newest checkpoint (signature checked against the log key), one
random entry's canonical bytes and its inclusion proof (checked against the checkpoint's root),
and a consistency proof from the previous checkpoint it saw (checked). Every request's latency
is recorded by kind; a non-2xx answer, a connection failure, a timeout, or a checkpoint or
proof that does not check is an error.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from typing import Any

from bench._load.recording import Recorder, wait_until
from bench._load.setup import AGREEMENT, PROJECT

ANALYST_PATHS = (
    "/v1/me",
    "/v1/projects",
    f"/v1/projects/{PROJECT}/datasets",
    f"/v1/projects/{PROJECT}/runs",
    f"/v1/projects/{PROJECT}/extracts",
    "/v1/agreements",
    f"/v1/agreements/{AGREEMENT}",
    "/v1/agencies",
)


async def _get(
    session: Any, url: str, kind: str, rec: Recorder, label: str | None = None
) -> tuple[int, bytes, Any] | None:
    """One GET: (status, body, headers) if it answered 2xx, else None (an error is recorded)."""
    import aiohttp

    started = time.perf_counter()
    rec.requests += 1
    try:
        async with session.get(url) as response:
            body = await response.read()
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, TimeoutError) as exc:
        rec.latency[kind].append(time.perf_counter() - started)
        rec.error(kind, f"{label or url}: {type(exc).__name__} {exc}")
        return None
    seconds = time.perf_counter() - started
    rec.latency[kind].append(seconds)
    if label is not None:
        rec.latency[label].append(seconds)
    if status >= 300:
        rec.error(kind, f"{label or url}: HTTP {status} {body[:200]!r}")
        return None
    return status, body, headers


def _session(token: str) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1),
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def _analyst(n: int, spec: dict[str, Any], deadline: float, rec: Recorder) -> None:
    tokens = spec["analyst_tokens"]
    async with _session(tokens[n % len(tokens)]) as session:
        i = n
        while time.perf_counter() < deadline:
            path = ANALYST_PATHS[i % len(ANALYST_PATHS)]
            await _get(session, spec["url"] + path, "poll", rec, f"GET {path}")
            i += 1


async def _auditor(n: int, spec: dict[str, Any], deadline: float, rec: Recorder) -> None:
    from audit.checkpoint import open_checkpoint
    from audit.errors import AuditError
    from audit.merkle import leaf_hash
    from audit.note import parse_vkey
    from audit.verify import verify_consistency, verify_inclusion

    vkey = parse_vkey(spec["log_vkey"])
    rng = random.Random(spec["seed"] * 7919 + n)
    url = spec["url"] + "/v1/audit"
    previous: Any = None
    async with _session(spec["auditor_token"]) as session:
        while time.perf_counter() < deadline:
            got = await _get(session, url + "/checkpoint", "checkpoint", rec)
            if got is None:
                continue
            try:
                cp, _ = open_checkpoint(got[1], vkey, spec["origin"])
            except AuditError as exc:
                rec.error("checkpoint", f"does not verify: {exc}")
                continue
            index = rng.randrange(cp.size)
            entry = await _get(session, f"{url}/entries.jsonl?after={index}&limit=1", "entry", rec)
            proof = await _get(
                session, f"{url}/proofs/inclusion?index={index}&size={cp.size}", "inclusion", rec
            )
            if entry is not None and proof is not None:
                try:
                    hashes = [base64.b64decode(h) for h in json.loads(proof[1])["proof"]]
                    leaf = leaf_hash(entry[1].rstrip(b"\n"))
                    verify_inclusion(leaf, index, cp.size, hashes, cp.root_hash)
                except (AuditError, ValueError, KeyError) as exc:
                    rec.error("inclusion", f"entry {index} in {cp.size}: {exc}")
            if previous is not None and previous.size < cp.size:
                old, new = previous.size, cp.size
                got = await _get(
                    session, f"{url}/proofs/consistency?old={old}&new={new}", "consistency", rec
                )
                if got is not None:
                    try:
                        hashes = [base64.b64decode(h) for h in json.loads(got[1])["proof"]]
                        verify_consistency(old, new, previous.root_hash, cp.root_hash, hashes)
                    except (AuditError, ValueError, KeyError) as exc:
                        rec.error("consistency", f"{old} -> {new}: {exc}")
            if previous is None or cp.size > previous.size:
                previous = cp


async def _pollers(spec: dict[str, Any]) -> tuple[Recorder, float]:
    rec = Recorder()
    started = time.perf_counter()
    deadline = started + spec["seconds"]
    await asyncio.gather(
        *(_analyst(n, spec, deadline, rec) for n in range(spec["analysts"])),
        *(_auditor(n, spec, deadline, rec) for n in range(spec["auditors"])),
    )
    return rec, time.perf_counter() - started


def pollers_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Run every analyst and auditor client for ``spec["seconds"]`` from ``spec["start_at"]``:
    the recorder (``rec``, as plain data) and the load phase's wall seconds (``elapsed``)."""
    wait_until(spec["start_at"])
    rec, elapsed = asyncio.run(_pollers(spec))
    return {"rec": rec.to_dict(), "elapsed": elapsed}
