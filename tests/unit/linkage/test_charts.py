"""Diagnostic charts are well-formed, self-contained SVG that say what they show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from linkage.charts import LevelParameters, parameter_chart_svg, weight_histogram_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_histogram_is_valid_svg_with_threshold() -> None:
    """The histogram parses as SVG, has one bar per bin and marks the threshold."""
    weights = np.random.default_rng(1).normal(0, 8, 5_000)
    svg = weight_histogram_svg(weights, threshold_weight=3.0, bins=30)
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 30
    assert "threshold" in svg
    assert "<script" not in svg


def test_histogram_of_nothing_says_so() -> None:
    """With no pairs the chart says there are none instead of failing."""
    assert "no scored pairs" in weight_histogram_svg([])


def test_parameter_chart_lists_every_level() -> None:
    """Every level appears with its weight; untrained levels are marked, negatives drawn left."""
    levels = [
        LevelParameters("nhs", "agree", 0.9, 0.0001),
        LevelParameters("nhs", "disagree", 0.1, 0.9999),
        LevelParameters("email", "agree", None, 0.001),
        LevelParameters("given", "dice >= 0.9 & <balanced>", 0.7, 0.01),
    ]
    svg = parameter_chart_svg(levels)
    ET.fromstring(svg)
    assert "nhs: agree" in svg
    assert "not trained" in svg
    assert f"{np.log2(0.9 / 0.0001):+.2f}" in svg
    assert "dice &gt;= 0.9 &amp; &lt;balanced&gt;" in svg  # labels are escaped, not raw markup
