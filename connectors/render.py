"""Rendering the data-quality report and run summaries for a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from connectors.quality import FieldStats, QualityReport


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _reasons(stats: FieldStats) -> str:
    return ", ".join(f"{k} {v}" for k, v in stats.reasons.most_common())


def render_report(report: QualityReport, console: Console) -> None:
    """Print the report as tables: rows, then identifier fields, attributes and encodings."""
    rows = report.rows_read
    console.print(
        f"[bold]{report.input_name}[/bold] (agency {report.agency}, schema "
        f"{report.schema_id} v{report.schema_version}): {rows} rows read, "
        f"{report.rows_written} written, {report.rows_rejected} rejected"
    )
    if report.rejected:
        rejected = ", ".join(f"{k} {v}" for k, v in report.rejected.most_common())
        console.print(f"  rejected: {rejected}")
    for title, table_stats in (("identifier", report.fields), ("attribute", report.attributes)):
        if not table_stats:
            continue
        table = Table(title=f"{title} fields", title_justify="left")
        for col in ("field", "present", "valid", "missing", "invalid", "invalid reasons"):
            table.add_column(
                col, justify="left" if col in ("field", "invalid reasons") else "right"
            )
        for name, st in table_stats.items():
            table.add_row(
                name,
                str(st.present),
                f"{st.valid} ({_pct(st.valid, rows)})",
                f"{st.missing} ({_pct(st.missing, rows)})",
                str(st.invalid),
                _reasons(st),
            )
        console.print(table)
    table = Table(title="encodings (rows written)", title_justify="left")
    for col in ("encoding", "computed", "null"):
        table.add_column(col, justify="left" if col == "encoding" else "right")
    written = report.rows_written
    for kind, counters in (("token", report.tokens), ("filter", report.filters)):
        for name, counter in counters.items():
            table.add_row(
                f"{kind} {name}",
                f"{counter['computed']} ({_pct(counter['computed'], written)})",
                str(counter["null"]),
            )
    console.print(table)
