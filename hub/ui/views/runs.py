"""Analysts' pages: projects, a project's runs and extract requests, and one run with its
diagnostics drawn as SVG by the hub (``linkage.charts``)."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web
from markupsafe import Markup

from hub.permissions import Permission
from hub.ui.view import View
from linkage.charts import LevelParameters, histogram_svg, parameter_chart_svg

__all__ = ["project", "project_list", "run"]


async def project_list(view: View) -> web.StreamResponse:
    """The linkage projects (and, for those who may see runs, links to them)."""
    projects = (await view.api("GET", "/v1/projects")).doc["projects"]
    return view.render("projects.html", projects=projects, can_runs=view.can(Permission.RUNS_READ))


async def project(view: View) -> web.StreamResponse:
    """A project's runs with their progress, and the user's extract requests in it."""
    project_id = view.request.match_info["project_id"]
    runs = (
        await view.api("GET", "/v1/projects/{project_id}/runs", {"project_id": project_id})
    ).doc["runs"]
    extracts: list[dict[str, Any]] | None = None
    if view.can(Permission.EXTRACTS_READ):
        extracts = (
            await view.api("GET", "/v1/projects/{project_id}/extracts", {"project_id": project_id})
        ).doc["extracts"]
    return view.render(
        "project.html",
        title=f"Project {project_id}",
        project_id=project_id,
        runs=list(reversed(runs)),
        extracts=None if extracts is None else list(reversed(extracts)),
    )


def _weight(p: float | None) -> float | None:
    if p is None or not 0.0 < p < 1.0:
        return None
    return math.log2(p / (1.0 - p))


def _charts(diagnostics: dict[str, Any], threshold: float | None) -> dict[str, Markup]:
    """The two charts, as SVG the hub drew (labels escaped by ``linkage.charts``)."""
    charts: dict[str, Markup] = {}
    hist = diagnostics.get("weight_histogram") or {}
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if counts and len(edges) == len(counts) + 1:
        charts["weights"] = Markup(  # SVG built by linkage.charts, which escapes every label
            histogram_svg(counts, edges, threshold_weight=_weight(threshold))
        )
    levels = [
        LevelParameters(p["comparison"], p["level"], p.get("m"), p.get("u"))
        for p in diagnostics.get("parameters") or []
    ]
    if levels:
        charts["parameters"] = Markup(parameter_chart_svg(levels))
    return charts


async def run(view: View) -> web.StreamResponse:
    """One run: job progress, result counts, expected precision and recall at the chosen
    threshold, blocking counts, checks, and the weight and parameter charts."""
    run_id = view.request.match_info["run_id"]
    doc = (await view.api("GET", "/v1/runs/{run_id}", {"run_id": run_id})).doc
    diagnostics: dict[str, Any] = doc.get("diagnostics") or {}
    result = doc.get("result") or {}
    choice = diagnostics.get("threshold") or {}
    parameters = [
        {k: p.get(k) for k in ("comparison", "level", "m", "u", "weight")}
        for p in diagnostics.get("parameters") or []
    ]
    raw_blocking = diagnostics.get("blocking") or {}
    blocking = {
        "per_rule": raw_blocking.get("per_rule") or [],
        "skipped_tokens": raw_blocking.get("skipped_tokens") or [],
        **{k: raw_blocking.get(k) for k in ("total", "compared", "possible")},
    }
    seconds = diagnostics.get("seconds")
    stages: dict[str, float] = seconds if isinstance(seconds, dict) else {}
    total = sum(stages.values()) if stages else seconds
    return view.render(
        "run.html",
        title=f"Run {run_id}",
        run=doc,
        result=result,
        choice=choice,
        blocking=blocking if raw_blocking else None,
        checks=diagnostics.get("checks") or [],
        parameters=parameters,
        charts=_charts(diagnostics, result.get("threshold")),
        engine=diagnostics.get("engine"),
        seconds=total,
        stages=stages,
    )
