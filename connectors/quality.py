"""The data-quality report: counts and row numbers, never values.

The report stays on the agency's machine. Row numbers count data rows from 1 (the header is not
counted). For each field: ``present`` (non-blank in the input) = ``valid`` + ``invalid``, and
``missing`` (blank or a declared missing-value marker); ``invalid`` is broken down by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: How many example row numbers a report keeps per field or rejection reason.
ROW_SAMPLE = 20
REPORT_VERSION = 1


@dataclass
class FieldStats:
    """Counts for one identifier field or attribute."""

    present: int = 0
    valid: int = 0
    missing: int = 0
    invalid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    invalid_rows: list[int] = field(default_factory=list)

    def add_invalid(self, reason: str, row: int) -> None:
        self.invalid += 1
        self.reasons[reason] += 1
        if len(self.invalid_rows) < ROW_SAMPLE:
            self.invalid_rows.append(row)

    def as_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "valid": self.valid,
            "missing": self.missing,
            "invalid": self.invalid,
            "invalid_reasons": dict(sorted(self.reasons.items())),
            "invalid_rows_sample": self.invalid_rows,
        }


@dataclass
class QualityReport:
    """Everything the connector counted while reading one export."""

    input_name: str
    mapping_name: str
    agency: str
    schema_id: str
    schema_version: int
    schema_hash: str
    rows_read: int = 0
    rows_written: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_rows: dict[str, list[int]] = field(default_factory=dict)
    duplicate_record_ids: int = 0
    fields: dict[str, FieldStats] = field(default_factory=dict)
    attributes: dict[str, FieldStats] = field(default_factory=dict)
    tokens: dict[str, Counter[str]] = field(default_factory=dict)
    filters: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def reject(self, reason: str, row: int) -> None:
        self.rejected[reason] += 1
        sample = self.rejected_rows.setdefault(reason, [])
        if len(sample) < ROW_SAMPLE:
            sample.append(row)

    def count_encoded(self, kind: str, name: str, computed: int, null: int) -> None:
        table = self.tokens if kind == "token" else self.filters
        counter = table.setdefault(name, Counter())
        counter["computed"] += computed
        counter["null"] += null

    def as_dict(self) -> dict[str, Any]:
        return {
            "report_version": REPORT_VERSION,
            "input": self.input_name,
            "mapping": self.mapping_name,
            "agency": self.agency,
            "schema": {
                "id": self.schema_id,
                "version": self.schema_version,
                "hash": self.schema_hash,
            },
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "rejected_reasons": dict(sorted(self.rejected.items())),
            "rejected_rows_sample": {k: v for k, v in sorted(self.rejected_rows.items())},
            "duplicate_record_ids": self.duplicate_record_ids,
            "fields": {k: v.as_dict() for k, v in self.fields.items()},
            "attributes": {k: v.as_dict() for k, v in self.attributes.items()},
            "tokens": {k: dict(v) for k, v in self.tokens.items()},
            "filters": {k: dict(v) for k, v in self.filters.items()},
            "note": "row numbers count data rows from 1; the report holds counts, never values",
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False) + "\n"


def merge_stats(into: dict[str, FieldStats], batch: dict[str, FieldStats]) -> None:
    """Add one batch's counts to the running totals (row samples kept in row order)."""
    for name, stats in batch.items():
        total = into.setdefault(name, FieldStats())
        total.present += stats.present
        total.valid += stats.valid
        total.missing += stats.missing
        total.invalid += stats.invalid
        total.reasons.update(stats.reasons)
        room = ROW_SAMPLE - len(total.invalid_rows)
        if room > 0:
            total.invalid_rows.extend(stats.invalid_rows[:room])
