"""What a load client records: latencies by request kind, errors, and requests sent.

A ``Recorder`` belongs to one thread or one event loop; the load processes merge theirs and
send them back as plain data (``to_dict``/``from_dict``). The kinds are those of
``bench/README.md`` ("load"): ``open``, ``status``, ``chunk``, ``commit`` (an upload's requests,
``upload_kind``), ``upload`` and ``resume`` (whole uploads), ``poll`` (an analyst's requests,
also recorded under ``GET <path>``) and the auditor's ``AUDIT_KINDS``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

AUDIT_KINDS = ("checkpoint", "entry", "inclusion", "consistency")
MAX_ERROR_SAMPLES = 20


def upload_kind(method: str, path: str) -> str:
    """The kind of one of an upload's requests: ``open``, ``chunk``, ``commit`` or ``status``."""
    if path.endswith("/commit"):
        return "commit"
    if "/chunks/" in path:
        return "chunk"
    return "open" if method == "POST" else "status"


def wait_until(start_at: float) -> None:
    """Sleep until the wall-clock time ``start_at``, so both load processes start together."""
    time.sleep(max(0.0, start_at - time.time()))


@dataclass(slots=True)
class Recorder:
    """Latencies by request kind, errors, and the number of HTTP requests sent (one thread
    or one event loop each; merged afterwards)."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    requests: int = 0

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(f"{kind}: {what}"[:300])

    def merge(self, other: Recorder) -> None:
        for kind, values in other.latency.items():
            self.latency[kind].extend(values)
        for kind, n in other.errors.items():
            self.errors[kind] += n
        self.samples.extend(other.samples[: max(0, MAX_ERROR_SAMPLES - len(self.samples))])
        self.requests += other.requests

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": dict(self.latency),
            "errors": dict(self.errors),
            "samples": self.samples,
            "requests": self.requests,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Recorder:
        rec = cls()
        for kind, values in doc["latency"].items():
            rec.latency[kind].extend(values)
        for kind, n in doc["errors"].items():
            rec.errors[kind] += n
        rec.samples = list(doc["samples"])
        rec.requests = int(doc["requests"])
        return rec
