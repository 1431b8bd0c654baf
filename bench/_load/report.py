"""The result row of one store, its verdict, and the table on stderr (pure: no I/O).

Every figure is defined in ``bench/README.md`` ("load"). Percentiles are in milliseconds:
the median, and the 99th as the value at rank ``int(0.99 (n - 1))`` of the sorted latencies
(``None`` when there are none).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bench._load.checks import Checked
from bench._load.hublog import ServerLog
from bench._load.recording import AUDIT_KINDS, MAX_ERROR_SAMPLES, Recorder


def _ms(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if q == 0.5:
        return round(1000 * statistics.median(ordered), 2)
    return round(1000 * ordered[int(q * (len(ordered) - 1))], 2)


def _pcts(prefix: str, values: Sequence[float]) -> dict[str, Any]:
    return {f"{prefix}_p50_ms": _ms(values, 0.5), f"{prefix}_p99_ms": _ms(values, 0.99)}


def result_row(
    system: str,
    dataset: str,
    settings: Mapping[str, Any],
    uploads: Mapping[str, Any],
    polls: Mapping[str, Any],
    server: ServerLog,
    checked: Checked,
) -> dict[str, Any]:
    """One store's row: ``settings`` (the run's options, in order) after ``system`` and
    ``dataset``, then the figures from what ``connectors_phase`` (``uploads``) and
    ``pollers_phase`` (``polls``) answered, the hub's log and the checks; last, ``passed``."""
    acked: list[dict[str, Any]] = uploads["acked"]
    up = Recorder.from_dict(uploads["rec"])
    po = Recorder.from_dict(polls["rec"])
    kept = checked.present & checked.intact & checked.entries
    before, after = checked.tree_sizes
    result = {
        "system": system,
        "dataset": dataset,
        **settings,
        **_upload_figures(acked, up, uploads["elapsed"]),
        **_poll_figures(po, polls["elapsed"]),
        "requests": up.requests + po.requests,
        "requests_per_s": round(
            (up.requests + po.requests) / max(uploads["elapsed"], polls["elapsed"]), 1
        ),
        **{
            figure: value
            for kind in ("chunk", "commit", "poll", "audit")
            for figure, value in _pcts(f"server_{kind}", server.latency.get(kind, [])).items()
        },
        "errors": sum(up.errors.values()) + sum(po.errors.values()),
        "errors_by_kind": {**dict(up.errors), **dict(po.errors)},
        "error_samples": (up.samples + po.samples)[:MAX_ERROR_SAMPLES],
        "hub_log_warnings": server.warnings,
        "hub_log_errors": server.errors,
        "hub_log_error_samples": server.samples,
        "hub_exit_codes": checked.exit_codes,
        "uploads_present": len(checked.present),
        "uploads_intact": len(checked.intact),
        "upload_entries_present": len(checked.entries),
        "lost": sum(1 for a in acked if a["version"] not in kept),
        "audit_entries_load": after - before - 1,  # less the first request's own
        "audit_entries": checked.log_report.get("entries"),
        "log_verified": bool(checked.log_report["ok"]),
        "by_request": _by_request(po),
    }
    result["passed"] = passed(result)
    return result


def _upload_figures(
    acked: Sequence[dict[str, Any]], up: Recorder, seconds: float
) -> dict[str, Any]:
    rows = sum(a["rows"] for a in acked)
    mb = sum(a["size"] for a in acked) / 1e6
    return {
        "uploads_acknowledged": len(acked),
        "uploads_resumed": sum(1 for a in acked if a["resumed"]),
        "uploads_multichunk": sum(1 for a in acked if a["chunks"] > 1),
        "chunks_sent": len(up.latency.get("chunk", [])),
        "upload_records": rows,
        "upload_mb": round(mb, 2),
        "uploads_per_s": round(len(acked) / seconds, 2),
        "upload_records_per_s": round(rows / seconds, 1),
        "upload_mb_per_s": round(mb / seconds, 2),
        **_pcts("upload", up.latency.get("upload", [])),
        **{
            figure: value
            for kind in ("open", "chunk", "commit")
            for figure, value in _pcts(kind, up.latency.get(kind, [])).items()
        },
    }


def _poll_figures(po: Recorder, seconds: float) -> dict[str, Any]:
    polls = po.latency.get("poll", [])
    audit = [x for kind in AUDIT_KINDS for x in po.latency.get(kind, [])]
    return {
        "poll_requests": len(polls),
        "poll_requests_per_s": round(len(polls) / seconds, 1),
        **_pcts("poll", polls),
        "audit_requests": len(audit),
        "audit_requests_per_s": round(len(audit) / seconds, 1),
        **_pcts("audit", audit),
    }


def _by_request(po: Recorder) -> dict[str, dict[str, Any]]:
    return {
        label: {"requests": len(values), "p50_ms": _ms(values, 0.5), "p99_ms": _ms(values, 0.99)}
        for label, values in sorted(po.latency.items())
        if label.startswith("GET ")
    }


def passed(r: Mapping[str, Any]) -> bool:
    """The run's verdict: nothing lost, no error, every access audited, the log verifies."""
    return (
        r["lost"] == 0
        and r["errors"] == 0
        and r["hub_log_errors"] == 0
        and (r["connectors"] == 0 or r["uploads_acknowledged"] > 0)
        and r["uploads_present"] == r["uploads_acknowledged"]
        and r["audit_entries_load"] >= r["requests"]
        and r["log_verified"]
        and all(code == 0 for code in r["hub_exit_codes"])
    )


def failure_lines(r: Mapping[str, Any]) -> list[str]:
    """What a failed row's run went wrong on (for the progress log): the failing figures,
    the first five error samples and the hub's logged errors."""
    lines = [
        f"{r['system']}: FAILED: errors {r['errors']} {r['errors_by_kind']}, lost "
        f"{r['lost']}, hub log errors {r['hub_log_errors']}, exit codes "
        f"{r['hub_exit_codes']}, log verified {r['log_verified']}, entries "
        f"{r['audit_entries_load']} for {r['requests']} requests"
    ]
    lines += [f"  {sample}" for sample in r["error_samples"][:5] + r["hub_log_error_samples"]]
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    return str(value)


def table(results: Sequence[Mapping[str, Any]]) -> str:
    """The rows' headline figures as a plain-text table (one line per store)."""
    columns = (
        ("store", "system"), ("uploads", "uploads_acknowledged"), ("present", "uploads_present"),
        ("lost", "lost"), ("rec/s", "upload_records_per_s"), ("up p50 ms", "upload_p50_ms"),
        ("up p99 ms", "upload_p99_ms"), ("chunk p99", "chunk_p99_ms"),
        ("commit p99", "commit_p99_ms"), ("poll/s", "poll_requests_per_s"),
        ("poll p50", "poll_p50_ms"), ("poll p99", "poll_p99_ms"), ("errors", "errors"),
        ("requests", "requests"), ("entries", "audit_entries_load"),
        ("verified", "log_verified"),
    )  # fmt: skip
    rows = [[head for head, _ in columns]]
    rows += [[_cell(r[key]) for _, key in columns] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = zip(row, widths, strict=True)
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))
        )
    return "\n".join(lines)
