"""Attacks on our own encodings: how many encoded records can an adversary re-identify?

Usage (from the repository root, in the project's venv; ``make bench-attack`` runs the default)::

    python bench/attack.py [--people 160000] [--hardening default,none,salt-yob,...] [--quick]

A synthetic population (``connectors.synth``) renders two corrupted agency extracts (A&E and
police); the connector encodes both under fresh keys with schema v2 as shipped (``default``),
with its hardening switched off (``none``), with v1's keyed salt by birth year added
(``salt-yob``) and, for the trade-off curve, with random bit flipping added at several
probabilities (``flip-0.02`` ... ``flip-0.25``: ``[hardening] flip_probability``; these run at the
``--curve-overlaps`` only, 100% and 90% by default). The adversary holds what the hub holds (the
encoded Parquet columns), knows the public schema (Kerckhoffs) and has a plaintext reference
population that overlaps the encoded people by 100%, 90%, 75% and 50%. The attacks
(``bench/_attacks/``):

* ``frequency``: frequency alignment of every token and every filter column;
* ``patterns``: pattern mining of filter bit patterns (Christen et al., PAKDD 2018);
* ``graph``: similarity-graph matching (Vidanage et al., CIKM 2020) on a sample of nodes;
* ``dictionary``: for contrast, an adversary who also stole the linkage secret.

Each result row reports the share of encoded records re-identified (record level: the attacker's
top guess of the person is right; value level: its top guess of one column's value is right),
the precision of its confident guesses, and the linkage F1 of the same encoding settings. Every
figure is defined in ``bench/README.md`` ("attack"); the last line of stdout is the JSON object.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench._attacks import data, dictionary, frequency, graph, patterns
from bench._attacks.resolve import resolve_people, result_row, value_outcome
from bench._common import BENCH_DIR, load_average, log, machine_info, print_result_line

ATTACKS = ("frequency", "patterns", "graph", "dictionary")
NO_KEY = ("frequency", "patterns", "graph")
OVERLAPS = (1.0, 0.9, 0.75, 0.5)
#: What ``--quick`` runs: both settings the issue names, and one point of the flip curve.
QUICK_HARDENING = "default,none,flip-0.2"
#: The issue's target: under 1% of records re-identified by the no-key adversary at 90% overlap
#: or more, with the default hardening.
TARGET_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class Config:
    people: int
    seed: int
    overlaps: tuple[float, ...]
    curve_overlaps: tuple[float, ...]
    hardening: tuple[str, ...]
    attacks: tuple[str, ...]
    graph_nodes: int
    pattern_params: patterns.Params
    workers: int
    out: Path
    quick: bool
    link: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, help="population drawn (default 160000; quick 3000)")
    p.add_argument("--seed", type=int, default=2026, help="population and sampling seed")
    p.add_argument("--overlaps", default=",".join(map(str, OVERLAPS)), help="reference overlaps")
    p.add_argument(
        "--curve-overlaps",
        default="1.0,0.9",
        help="reference overlaps for the flip-* variants (default 1.0,0.9: the target's range)",
    )
    p.add_argument(
        "--hardening",
        help="comma-separated subset of: "
        + ", ".join(data.VARIANTS)
        + f" (default: all; quick: {QUICK_HARDENING})",
    )
    p.add_argument("--attacks", default=",".join(ATTACKS), help="subset of: " + ", ".join(ATTACKS))
    p.add_argument("--graph-nodes", type=int, help="nodes per graph (default 3000; quick 300)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoder processes")
    p.add_argument("--no-link", action="store_true", help="skip linkage (linkage_f1 is null)")
    p.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR / "out" / "attack",
        help="data, schemas and encoded files (default bench/out/attack, gitignored)",
    )
    p.add_argument("--quick", action="store_true", help="a small run for CI (well under a minute)")
    a = p.parse_args(argv)
    overlaps = tuple(float(x) for x in a.overlaps.split(",") if x.strip())
    curve_overlaps = tuple(float(x) for x in a.curve_overlaps.split(",") if x.strip())
    hardening = tuple(
        h.strip()
        for h in (a.hardening or (QUICK_HARDENING if a.quick else ",".join(data.VARIANTS))).split(
            ","
        )
        if h.strip()
    )
    attacks = tuple(x.strip() for x in a.attacks.split(",") if x.strip())
    for flag, values in (("--overlaps", overlaps), ("--curve-overlaps", curve_overlaps)):
        if not values or any(not 0.0 < o <= 1.0 for o in values):
            p.error(f"{flag}: values in (0, 1]")
    if not hardening or set(hardening) - set(data.VARIANTS):
        p.error(f"--hardening: choose from {', '.join(data.VARIANTS)}")
    if not attacks or set(attacks) - set(ATTACKS):
        p.error(f"--attacks: choose from {', '.join(ATTACKS)}")
    people = a.people or (3000 if a.quick else 160_000)
    params = (
        patterns.Params(
            sample_records=2000,
            pool=30,
            seed_budget=120,
            bootstrap_rounds=2,
            kicks=12,
            restarts=1,
        )
        if a.quick
        else patterns.Params()
    )
    return Config(
        people=people,
        seed=a.seed,
        overlaps=overlaps,
        curve_overlaps=curve_overlaps,
        hardening=hardening,
        attacks=attacks,
        graph_nodes=a.graph_nodes or (300 if a.quick else 3000),
        pattern_params=params,
        workers=max(1, a.workers),
        out=a.out.resolve() / ("quick" if a.quick else "full"),
        quick=a.quick,
        link=not a.no_link,
    )


def _true_reference(view: data.HubView, reference: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Reference index of each hub record's person (-1: not in the reference)."""
    at = np.searchsorted(reference, view.record_index)
    at = np.minimum(at, reference.size - 1)
    return np.where(reference[at] == view.record_index, at, -1).astype(np.int64)


def _column_rows(
    attack: str,
    guesses: dict[str, frequency.ColumnGuess],
    columns: dict[str, data.Column],
    reference: np.ndarray[Any, Any],
    true_ref: np.ndarray[Any, Any],
    common: dict[str, Any],
    extra: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The value-level rows of one attack, then its record-level row."""
    rows = []
    for name, g in guesses.items():
        outcome = value_outcome(g.guess, g.confident, columns[name].record_code)
        rows.append(
            result_row(
                attack=attack,
                level="value",
                target=name,
                outcome=outcome,
                **common,
                **(extra or {}).get(name, {}),
            )
        )
    facts = {name: np.where(g.confident, g.guess, -1) for name, g in guesses.items()}
    people = resolve_people(
        facts, {name: columns[name].person_code[reference] for name in facts}, true_ref
    )
    rows.append(
        result_row(attack=attack, level="record", target="person", outcome=people, **common)
    )
    return rows


def run(cfg: Config) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    logging.getLogger("splink").setLevel(logging.ERROR)
    world = data.build_world(cfg.people, cfg.seed, cfg.out / "world")
    every = dict.fromkeys((*cfg.overlaps, *cfg.curve_overlaps))
    references = {o: data.reference_people(world, o, cfg.seed) for o in every}
    dataset = f"synthetic people={world.people} seed={cfg.seed}"
    population = {
        "people": world.people,
        "encoded_people": int(world.encoded.sum()),
        "records": len(world.record_ids),
        "reference_people": int(world.encoded.sum()),
    }
    results: list[dict[str, Any]] = []
    linkage: dict[str, Any] = {}
    for name in cfg.hardening:
        variant = data.VARIANTS[name]
        log(f"{name}: encoding both extracts under fresh keys")
        view = data.encode(world, variant, cfg.out, cfg.workers)
        columns = data.column_values(view.schema, world, view.rows)
        if cfg.link:
            log(f"{name}: linking the two uploads (linkage F1 of these settings)")
            linkage[name] = data.linkage_quality(view, cfg.workers)
        f1 = linkage[name]["f1"] if cfg.link else None
        base = {"system": "ours", "dataset": dataset, "schema": view.schema.hash[:16]}
        classes = (
            {c: frequency.classes(view, c) for c in columns} if "frequency" in cfg.attacks else {}
        )
        stolen = dictionary.encode_population(view, world) if "dictionary" in cfg.attacks else {}
        for overlap in cfg.curve_overlaps if variant.flip else cfg.overlaps:
            reference = references[overlap]
            true_ref = _true_reference(view, reference)
            # one stream per overlap, the same for every variant: each attack samples the same
            # records and nodes whatever the hardening, so the variants differ only in encoding
            rng = np.random.default_rng([cfg.seed, int(overlap * 100)])
            common = {
                "base": base,
                "hardening": name,
                "overlap": overlap,
                "linkage_f1": f1,
                "flip_probability": variant.flip,
            }
            for attack in cfg.attacks:
                log(f"{name}: {attack} at overlap {overlap:.0%}")
                t = time.perf_counter()
                if attack == "frequency":
                    g = frequency.attack(view, columns, reference, rng, classes)
                    rows = _column_rows(attack, g, columns, reference, true_ref, common)
                elif attack == "patterns":
                    guesses, extra = {}, {}
                    for spec in view.schema.filters:
                        col = columns[f"bf_{spec.name}"]
                        guess, report = patterns.attack_column(
                            view, col, spec, col.person_code[reference], rng, cfg.pattern_params
                        )
                        guesses[col.name] = guess
                        extra[col.name] = {
                            "mined_patterns": report.mined,
                            "known_qgrams": report.learnt[-1],
                            "label_residual": round(report.residual, 4),
                            "distinct_filters": report.distinct_filters,
                        }
                    rows = _column_rows(
                        attack, guesses, columns, reference, true_ref, common, extra
                    )
                elif attack == "graph":
                    outcome, info = graph.attack(
                        view, world, reference, overlap, rng, graph.Params(cfg.graph_nodes)
                    )
                    rows = [
                        result_row(
                            attack=attack,
                            level="record",
                            target="person",
                            outcome=outcome,
                            **common,
                            **info,
                        )
                    ]
                else:
                    g = dictionary.attack(view, columns, reference, stolen)
                    rows = _column_rows(attack, g, columns, reference, true_ref, common)
                seconds = round(time.perf_counter() - t, 1)
                for row in rows:
                    row["seconds"] = seconds
                results += rows
    return results, linkage, population


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per hardening: the worst no-key record-level share at 90% overlap or more, against 1%."""
    out = []
    for h in dict.fromkeys(r["hardening"] for r in results):
        rows = [
            r
            for r in results
            if r["hardening"] == h
            and r["level"] == "record"
            and r["attack"] in NO_KEY
            and r["overlap"] >= 0.9
        ]
        if not rows:
            continue
        worst = max(rows, key=lambda r: r["reidentified_share"])
        out.append(
            {
                "hardening": h,
                "worst_attack": worst["attack"],
                "worst_overlap": worst["overlap"],
                "max_reidentified_share": worst["reidentified_share"],
                "target": TARGET_SHARE,
                "meets_target": worst["reidentified_share"] < TARGET_SHARE,
                "linkage_f1": worst["linkage_f1"],
                "flip_probability": worst["flip_probability"],
            }
        )
    return out


def curve(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trade-off curve: for the default hardening and each flip-* variant (the default plus
    bit flipping), in order of flip probability, each no-key attack's record-level share at each
    overlap, and the linkage F1."""
    points = sorted(
        {
            r["hardening"]: r["flip_probability"]
            for r in results
            if r["hardening"] == "default" or r["flip_probability"] > 0
        }.items(),
        key=lambda kv: kv[1],
    )
    out = []
    for h, p in points:
        rows = [
            r
            for r in results
            if r["hardening"] == h and r["level"] == "record" and r["attack"] in NO_KEY
        ]
        out.append(
            {
                "hardening": h,
                "flip_probability": p,
                "linkage_f1": rows[0]["linkage_f1"] if rows else None,
                "reidentified_share": {
                    f"{r['attack']}@{r['overlap']}": r["reidentified_share"] for r in rows
                },
            }
        )
    return out


def _pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


def print_report(
    results: list[dict[str, Any]], linkage: dict[str, Any], checks: list[dict[str, Any]]
) -> None:
    overlaps = sorted({r["overlap"] for r in results}, reverse=True)
    head = f"{'attack':<11} {'hardening':<9} {'F1':>6}  " + "  ".join(
        f"{int(o * 100):>3}%: re-id% prec%" for o in overlaps
    )
    print("record level: share of encoded records whose person the top guess names correctly,")
    print("and the precision of the confident person guesses, by reference overlap")
    print(head)
    print("-" * len(head))
    by = {(r["attack"], r["hardening"], r["overlap"]): r for r in results if r["level"] == "record"}
    for attack in dict.fromkeys(r["attack"] for r in results):
        for h in dict.fromkeys(r["hardening"] for r in results):
            cells = []
            f1 = linkage.get(h, {}).get("f1")
            for o in overlaps:
                r = by.get((attack, h, o))
                cells.append(
                    "      -      -"
                    if r is None
                    else f"{_pct(r['reidentified_share'])}  {_pct(r['guess_precision'])}"
                )
            f1s = "     -" if f1 is None else f"{f1:.4f}"
            print(f"{attack:<11} {h:<9} {f1s:>6}  " + "  ".join(f"{c:>18}" for c in cells))
    print()
    print("value level at the highest overlap: the columns where the top guess is right most often")
    top = max(overlaps)
    for attack in dict.fromkeys(r["attack"] for r in results):
        for h in dict.fromkeys(r["hardening"] for r in results):
            vals = [
                r
                for r in results
                if r["attack"] == attack
                and r["hardening"] == h
                and r["overlap"] == top
                and r["level"] == "value"
            ]
            if not vals:
                continue
            vals.sort(key=lambda r: -r["reidentified_share"])
            shown = ", ".join(
                f"{r['target']} {100 * r['reidentified_share']:.1f}%" for r in vals[:4]
            )
            print(f"  {attack:<11} {h:<9} {shown}")
    points = curve(results)
    if len(points) > 1:
        print()
        print("trade-off curve (the default plus bit flipping): record-level re-id% and F1")
        keys = sorted({k for p in points for k in p["reidentified_share"]}, reverse=True)
        print(f"{'flip':>6} {'F1':>6}  " + "  ".join(f"{k:>15}" for k in keys))
        for point in points:
            f1 = point["linkage_f1"]
            f1s = "     -" if f1 is None else f"{f1:.4f}"
            shares = point["reidentified_share"]
            print(
                f"{point['flip_probability']:>6} {f1s:>6}  "
                + "  ".join(f"{_pct(shares.get(k)):>15}" for k in keys)
            )
    print()
    for c in checks:
        verdict = "meets" if c["meets_target"] else "FAILS"
        print(
            f"target (< {100 * c['target']:.0f}% by a no-key attack at overlap >= 90%), "
            f"{c['hardening']}: worst {c['worst_attack']} at {c['worst_overlap']:.0%}: "
            f"{100 * c['max_reidentified_share']:.1f}%: {verdict}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    started = time.perf_counter()
    machine = machine_info()
    machine["load_average_start"] = load_average()
    results, linkage, population = run(cfg)
    checks = targets(results)
    print_report(results, linkage, checks)
    machine["load_average_end"] = load_average()
    print_result_line(
        "attack",
        machine,
        results,
        linkage=linkage,
        targets=checks,
        curve=curve(results),
        population=population,
        settings={
            "quick": cfg.quick,
            "graph_nodes": cfg.graph_nodes,
            "curve_overlaps": list(cfg.curve_overlaps),
            "patterns": {
                k: getattr(cfg.pattern_params, k) for k in cfg.pattern_params.__dataclass_fields__
            },
        },
        command=" ".join([".venv/bin/python", "bench/attack.py", *(argv or sys.argv[1:])]),
        elapsed_seconds=round(time.perf_counter() - started, 1),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
