"""``make demo``: the connector part of the scenario, end to end, on synthetic data.

synthesise an A&E and a police export -> generate the project linkage secret and each agency's
record key -> pseudonymise both exports -> print the data-quality reports and a summary.
The hub, linkage and audit steps join the demo as their issues land.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console

from connectors.encoding_schema import load_encoding_schema
from connectors.keys import generate_key, write_key
from connectors.mapping import load_mapping
from connectors.pipeline import PseudonymiseJob, pseudonymise
from connectors.render import render_report
from connectors.synth import synthesise

CONFIG = Path(__file__).resolve().parent.parent / "config"


def run(out_dir: Path, people: int, seed: int, console: Console) -> None:
    """Run the scenario into ``out_dir`` (recreated) and print what happened."""
    started = time.perf_counter()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    exports, keys, encoded = out_dir / "exports", out_dir / "keys", out_dir / "encoded"
    for d in (exports, keys, encoded):
        d.mkdir(parents=True)

    console.rule("1. synthetic exports")
    summary = synthesise(people, seed, exports)
    console.print(
        f"{summary.people} people: {summary.ae_rows} A&E attendances, {summary.police_rows} "
        f"police incidents; {summary.people_in_both} people appear in both"
    )

    console.rule("2. keys")
    linkage = generate_key("linkage-secret")
    write_key(linkage, keys / "project-linkage.key")
    console.print(
        f"project linkage secret {linkage.key_id} (key check value {linkage.check_value}), "
        "shared by the two agencies out of band; the hub never sees it"
    )
    schema = load_encoding_schema(CONFIG / "encoding" / "v2.toml")
    now = datetime.now(UTC)
    outputs: dict[str, Path] = {}
    for agency, export in (("ae", "ae_attendances.csv"), ("police", "police_incidents.csv")):
        record_key = generate_key("record-key")
        write_key(record_key, keys / f"{agency}-record.key")
        console.print(f"{agency}: own record key {record_key.key_id} (never leaves the agency)")
        mapping = load_mapping(CONFIG / "mappings" / f"{agency}.toml")
        outputs[agency] = encoded / f"{agency}.parquet"
        job = PseudonymiseJob(
            mapping=mapping,
            schema=schema,
            linkage_key=linkage,
            record_key=record_key,
            input=exports / export,
            output=outputs[agency],
            agency=mapping.agency or agency,
            report=encoded / f"{agency}-quality.json",
            keymap=keys / f"{agency}-keymap.parquet",
            today=now.date(),
            now=now,
        )
        console.rule(f"3. pseudonymise the {agency} export")
        render_report(pseudonymise(job), console)

    console.rule("4. summary")
    ae = pq.read_table(outputs["ae"], columns=["tok_name_dob", "tok_nhs"])
    police = pq.read_table(outputs["police"], columns=["tok_name_dob", "tok_nhs"])
    for token in ("tok_name_dob", "tok_nhs"):
        shared = {v for v in ae.column(token).to_pylist() if v is not None} & {
            v for v in police.column(token).to_pylist() if v is not None
        }
        console.print(f"{token}: {len(shared)} values occur in both encoded files")
    console.print(
        f"encoded files (the only files that would be uploaded): {outputs['ae']}, "
        f"{outputs['police']}; the keymaps and quality reports stay with each agency"
    )
    console.print(f"done in {time.perf_counter() - started:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", type=Path, default=Path("demo-output"))
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    run(args.out_dir, args.people, args.seed, Console(highlight=False, width=110))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
