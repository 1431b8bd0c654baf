"""The hub's set-up for the load, beyond ``bench/_hubsetup.py``, and the load processes' spec.

``set_chunk_size`` edits ``limits.max_chunk_bytes`` in the new hub's ``hub.toml`` (before it is
served); ``set_up`` has the administrator register, through the real API, the agencies, one
agreement in force between all of them (each may upload its layout's attribute fields), the
project, a data officer per agency, the analysts and an auditor, each with a token;
``load_spec`` is everything the two load processes need, as plain data (it crosses a process
boundary).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._hubsetup import ORIGIN, add_agreement_project, user_token
from bench._load.data import Prepared, link_files

PROJECT = "load"
AGREEMENT = "dsa-load"


def set_chunk_size(data_dir: Path, chunk_bytes: int) -> None:
    """Set the hub's ``limits.max_chunk_bytes`` in ``<data_dir>/hub.toml``."""
    config = data_dir / "hub.toml"
    text, n = re.subn(
        r"(?m)^max_chunk_bytes = \d+$",
        f"max_chunk_bytes = {chunk_bytes}",
        config.read_text(encoding="utf-8"),
    )
    if n != 1:
        raise RuntimeError("no limits.max_chunk_bytes line in hub.toml")
    config.write_text(text, encoding="utf-8")


def set_up(url: str, admin: str, prepared: Prepared, analyst_users: int) -> dict[str, Any]:
    """The administrator's set-up through the API; the users' tokens (``officers`` by agency,
    ``analysts``, ``auditor``)."""
    agencies = list(prepared.files)
    add_agreement_project(
        url, admin, agreement=AGREEMENT, project=PROJECT,
        parties=[(a, prepared.fields[a]) for a in agencies], meta=prepared.meta,
    )  # fmt: skip
    return {
        "officers": {
            a: user_token(url, admin, f"{a} data officer", ["data_officer"], a) for a in agencies
        },
        "analysts": [
            user_token(url, admin, f"analyst {i + 1}", ["analyst"]) for i in range(analyst_users)
        ],
        "auditor": user_token(url, admin, "auditor", ["auditor"]),
    }


def load_spec(
    args: argparse.Namespace,
    url: str,
    tokens: dict[str, Any],
    prepared: Prepared,
    clients_dir: Path,
    log_vkey: str,
) -> dict[str, Any]:
    """Everything the two load processes need (plain data: it crosses a process boundary).
    Connector client ``c`` uploads for agency ``c mod agencies``, from its own links to that
    agency's files under ``clients_dir/c<c>``."""
    agencies = list(prepared.files)
    connectors = []
    for c in range(args.connectors):
        agency = agencies[c % len(agencies)]
        files = link_files(prepared.files[agency], clients_dir / f"c{c}")
        connectors.append(
            {"token": tokens["officers"][agency], "files": [asdict(f) for f in files]}
        )
    return {
        "url": url,
        "seed": args.seed,
        "seconds": args.seconds,
        "resume_every": args.resume_every,
        "connectors": connectors,
        "analysts": args.analysts,
        "analyst_tokens": tokens["analysts"],
        "auditors": args.auditors,
        "auditor_token": tokens["auditor"],
        "log_vkey": log_vkey,
        "origin": ORIGIN,
    }
