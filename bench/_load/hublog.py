"""What the hub's JSON log says about the load phase: server-side latencies, warnings, errors.

``read_hub_log`` reads the lines ``hub serve`` wrote between two byte offsets of its log file
(taken just before and just after the load phase).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench._load.recording import upload_kind


@dataclass(slots=True)
class ServerLog:
    """What the hub's JSON log says about the load phase."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    warnings: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)


def read_hub_log(path: Path, start: int, end: int) -> ServerLog:
    """From the hub's JSON log between two byte offsets: server-side latencies (the access
    log's ``duration_ms``) by kind (an upload's ``open``/``chunk``/``commit``/``status``,
    ``audit`` for ``/v1/audit/``, ``poll`` for the rest), the number of warning and error
    lines, and the first error lines (path, event and the exception's last line)."""
    with path.open("rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8", "replace")
    out = ServerLog()
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        level = doc.get("level")
        out.warnings += level == "warning"
        if level in ("error", "critical", "exception"):
            out.errors += 1
            if len(out.samples) < 5:
                last = (doc.get("exception") or "").strip().splitlines()[-1:] or [""]
                out.samples.append(f"{doc.get('path')}: {doc.get('event')}: {last[0]}"[:400])
        if doc.get("logger") == "aiohttp.access" and "duration_ms" in doc:
            method, route = doc.get("method", ""), doc.get("path", "")
            if route.startswith("/v1/uploads/") or route.endswith("/uploads"):
                kind = upload_kind(method, route)
            elif route.startswith("/v1/audit/"):
                kind = "audit"
            else:
                kind = "poll"
            out.latency[kind].append(doc["duration_ms"] / 1000)
    return out
