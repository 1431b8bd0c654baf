"""Diagnostic charts as standalone SVG (no plotting library, no scripts, readable offline).

Two pictures a person can look at: the match-weight histogram of scored pairs (from the
weights, or from counts already binned, as a run's diagnostics store them), and the match
weight of every comparison level (log2 of m/u) as horizontal bars, with m and u written beside
each. Pure functions: numbers in, SVG text out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

_FONT = 'font-family="sans-serif" font-size="12"'
_CHAR_W = 6.8  # a generous average advance of a 12px sans-serif character
_BAR = "#3b6ea8"
_NEG = "#b5473a"


@dataclass(frozen=True, slots=True)
class LevelParameters:
    """One comparison level's trained parameters."""

    comparison: str
    level: str
    m: float | None
    u: float | None

    @property
    def weight(self) -> float | None:
        if not self.m or not self.u:
            return None
        return math.log2(self.m / self.u)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) + "</svg>\n"
    )


def weight_histogram_svg(
    weights: npt.ArrayLike,
    *,
    title: str = "Match weight distribution of scored pairs",
    threshold_weight: float | None = None,
    bins: int = 40,
) -> str:
    """A histogram of match weights (log2 Bayes factors), with the threshold marked."""
    w = np.asarray(weights, dtype=np.float64)
    w = w[np.isfinite(w)]
    if w.size == 0:
        return histogram_svg([], [], title=title)
    lo, hi = math.floor(float(w.min())), math.ceil(float(w.max()))
    if hi == lo:
        hi = lo + 1
    counts, edges = np.histogram(w, bins=bins, range=(lo, hi))
    return histogram_svg(
        [int(c) for c in counts],
        [float(e) for e in edges],
        title=title,
        threshold_weight=threshold_weight,
    )


def histogram_svg(
    counts: Sequence[int],
    edges: Sequence[float],
    *,
    title: str = "Match weight distribution of scored pairs",
    threshold_weight: float | None = None,
) -> str:
    """The same histogram from counts already binned (``len(edges) == len(counts) + 1``),
    as a run's stored diagnostics hold them."""
    if counts and len(edges) != len(counts) + 1:
        raise ValueError("a histogram needs one more edge than counts")
    width, height, left, bottom, top = 720, 360, 60, 40, 40
    plot_w, plot_h = width - left - 20, height - top - bottom
    body = [f'<text x="{width / 2}" y="22" text-anchor="middle" {_FONT}>{escape(title)}</text>']
    if not counts:
        body.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {_FONT}>'
            "no scored pairs</text>"
        )
        return _svg(width, height, body, title)
    lo, hi = float(edges[0]), float(edges[-1])
    bins = len(counts)
    peak = max(max(int(c) for c in counts), 1)
    bar_w = plot_w / bins
    for i, c in enumerate(counts):
        h = plot_h * int(c) / peak
        x = left + i * bar_w
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="{_BAR}"><title>{edges[i]:.1f} to {edges[i + 1]:.1f}: '
            f"{int(c)} pairs</title></rect>"
        )
    axis_y = top + plot_h
    body.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" stroke="black"/>'
    )
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = lo + frac * (hi - lo)
        x = left + frac * plot_w
        body.append(
            f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" {_FONT}>{value:.0f}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" {_FONT}>'
        "match weight (log2 Bayes factor)</text>"
    )
    body.append(f'<text x="14" y="{top + 10}" {_FONT}>pairs (peak {peak})</text>')
    if threshold_weight is not None and lo <= threshold_weight <= hi:
        x = left + (threshold_weight - lo) / (hi - lo) * plot_w
        body.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" stroke="{_NEG}" '
            'stroke-dasharray="4 3"/>'
        )
        body.append(f'<text x="{x + 4:.1f}" y="{top + 12}" fill="{_NEG}" {_FONT}>threshold</text>')
    return _svg(width, height, body, title)


def parameter_chart_svg(
    levels: Sequence[LevelParameters], *, title: str = "Match weight of each comparison level"
) -> str:
    """Horizontal bars of log2(m/u) per level, grouped by comparison, m and u written beside.
    The label margin grows with the labels up to a limit; a longer label is shortened with an
    ellipsis and kept whole in its tooltip (``<title>``)."""
    row_h, top = 22, 44
    labels = [f"{lv.comparison}: {lv.level}" for lv in levels]
    left = max(300, min(420, int(_CHAR_W * max(map(len, labels), default=0)) + 16))
    fits = int((left - 16) / _CHAR_W)
    right = 240
    width = left + 400 + right
    height = top + row_h * (len(levels) + 1) + 20
    weights = [lv.weight for lv in levels if lv.weight is not None]
    span = max([abs(w) for w in weights] + [1.0])
    zero_x = left + (width - left - right) / 2
    scale = (width - left - right) / 2 / span
    body = [f'<text x="{width / 2}" y="22" text-anchor="middle" {_FONT}>{escape(title)}</text>']
    body.append(
        f'<line x1="{zero_x}" y1="{top - 6}" x2="{zero_x}" '
        f'y2="{top + row_h * len(levels)}" stroke="black"/>'
    )
    previous = None
    for i, lv in enumerate(levels):
        y = top + i * row_h
        name = lv.comparison if lv.comparison != previous else ""
        previous = lv.comparison
        label = f"{name}: {lv.level}" if name else lv.level
        shown = label if len(label) <= fits else label[: fits - 1] + "\u2026"
        body.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" {_FONT}>{escape(shown)}'
            f"<title>{escape(label)}</title></text>"
        )
        w = lv.weight
        if w is None:
            body.append(f'<text x="{zero_x + 6}" y="{y + 14}" {_FONT}>not trained</text>')
            continue
        x = zero_x if w >= 0 else zero_x + w * scale
        body.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{abs(w) * scale:.1f}" height="14" '
            f'fill="{_BAR if w >= 0 else _NEG}"/>'
        )
        body.append(
            f'<text x="{width - right + 8}" y="{y + 14}" {_FONT}>{w:+.2f} '
            f"(m {lv.m:.4g}, u {lv.u:.4g})</text>"
        )
    return _svg(width, height, body, title)
