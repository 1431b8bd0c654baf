"""Automatic checks of a trained model and its links: signs that it learned the wrong thing.

Fellegi-Sunter trained by EM finds *a* two-class split of the candidate pairs; on agency data
that split can be "same household" instead of "same person" (siblings and parents share family
name, address and phone), or EM can converge on a degenerate solution. Nothing fails loudly
when that happens, so every run checks:

* **links that disagree on a field that separates people** (date of birth, given name): if most
  links above the threshold disagree on it, the model is linking households or families;
* **agreement that counts against a match** (a level whose m is below its u at the top of a
  comparison): EM has inverted that comparison;
* **levels EM never saw** (no trained m, other than the else level): their weight rests on a
  floor, not on evidence.

Each check gives a :class:`Finding` with the measured value and its limit, whether it passed,
and a sentence for a person. Findings go to the run's diagnostics and, when failed, to the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linkage.model import ModelPlan, Similar
from linkage.u_estimate import pair_dice

#: Fields on which two different members of one household usually differ.
SEPARATING_FIELDS = ("date_of_birth", "given_name")
#: More than this share of links disagreeing on a separating field fails the check.
MAX_DISAGREEING_LINKS = 0.5


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome."""

    check: str
    ok: bool
    value: float | None
    limit: float | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_parameters(model: Mapping[str, Any]) -> list[Finding]:
    """Checks on the trained m and u of each comparison."""
    findings: list[Finding] = []
    for comparison in model.get("comparisons", []):
        name = str(comparison.get("output_column_name"))
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        if len(levels) < 2:
            continue
        top = levels[0]
        m, u = top.get("m_probability"), top.get("u_probability")
        if m is not None and u is not None:
            inverted = m < u
            findings.append(
                Finding(
                    f"{name}: top level is evidence for a match",
                    not inverted,
                    round(float(np.log2(max(m, 1e-300) / max(u, 1e-300))), 3),
                    0.0,
                    f"agreement on {name} counts {'against' if inverted else 'for'} a match "
                    f"(weight {np.log2(max(m, 1e-300) / max(u, 1e-300)):+.2f})",
                )
            )
        # the else level may rightly see no match in training (a field matches never differ on)
        untrained = [
            str(lv.get("label_for_charts", "?"))
            for lv in levels[:-1]
            if lv.get("m_probability") is None
        ]
        if untrained:
            findings.append(
                Finding(
                    f"{name}: every level trained",
                    False,
                    float(len(untrained)),
                    0.0,
                    f"EM saw no training pair in {len(untrained)} level(s) of {name}: "
                    + "; ".join(untrained),
                )
            )
    return findings


def _separating_level(plan: ModelPlan, field: str) -> Similar | None:
    """The ladder comparing ``field`` alone by a filter, and its second-strongest Dice level
    (the weakest level still counted as agreement on that field)."""
    for ladder in plan.ladders:
        if ladder.fields - {"sex"} != {field}:
            continue
        similar = [lv for lv in ladder.levels if isinstance(lv, Similar)]
        if len(similar) >= 2:
            return similar[1]
    return None


def check_links(
    links: pa.Table,
    tables: Sequence[pa.Table],
    names: Sequence[str],
    plan: ModelPlan,
) -> list[Finding]:
    """Share of links above the threshold that disagree on each separating field."""
    findings: list[Finding] = []
    if links.num_rows == 0:
        return findings
    index = {name: i for i, name in enumerate(names)}
    for field in SEPARATING_FIELDS:
        similar = _separating_level(plan, field)
        if similar is None:
            continue
        disagree = 0
        compared = 0
        for (dl, dr), part in _by_dataset_pair(links):
            left, right = tables[index[dl]], tables[index[dr]]
            rows_l = pc.index_in(part.column("record_l"), value_set=left.column("unique_id"))
            rows_r = pc.index_in(part.column("record_r"), value_set=right.column("unique_id"))
            dice = pair_dice(
                left,
                right,
                similar.column,
                plan.words(similar.column),
                np.asarray(rows_l.to_numpy(zero_copy_only=False), dtype=np.int64),
                np.asarray(rows_r.to_numpy(zero_copy_only=False), dtype=np.int64),
            )
            present = ~np.isnan(dice)
            compared += int(present.sum())
            disagree += int((dice[present] < similar.threshold).sum())
        if not compared:
            continue
        share = disagree / compared
        ok = share <= MAX_DISAGREEING_LINKS
        findings.append(
            Finding(
                f"links agree on {field}",
                ok,
                round(share, 4),
                MAX_DISAGREEING_LINKS,
                f"{share:.1%} of links (with {field} on both sides) disagree on {field}"
                + ("" if ok else ": the model may be linking households or families"),
            )
        )
    return findings


def _by_dataset_pair(links: pa.Table) -> list[tuple[tuple[str, str], pa.Table]]:
    pairs = links.select(["dataset_l", "dataset_r"]).group_by(["dataset_l", "dataset_r"])
    out = []
    for row in pairs.aggregate([]).to_pylist():
        mask = pc.and_(
            pc.equal(links.column("dataset_l"), row["dataset_l"]),
            pc.equal(links.column("dataset_r"), row["dataset_r"]),
        )
        out.append(((str(row["dataset_l"]), str(row["dataset_r"])), links.filter(mask)))
    return out
