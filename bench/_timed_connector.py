"""Run ``connector ARGS...`` exactly as the console script does, and also time the encoding call.

Usage (project venv)::

    python bench/_timed_connector.py pseudonymise --mapping ... --workers 2

The command is the real CLI (:func:`connectors.cli.main`); the only addition is a wrapper around
:func:`connectors.pipeline.pseudonymise` that times the call itself (read the export, normalise,
encode, write the Parquet file, including starting and stopping any worker processes) so start-up
(interpreter, imports, loading mapping, schema and keys) can be reported apart. After the CLI's
own output it prints one JSON line: ``{"encode_seconds", "rows_read", "rows_written",
"software_version"}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import connectors.cli as cli
from connectors import pipeline

_timing: dict[str, Any] = {}


def _timed_pseudonymise(
    job: pipeline.PseudonymiseJob, progress: Callable[[int], None] | None = None
) -> Any:
    start = time.perf_counter()
    report = pipeline.pseudonymise(job, progress)
    _timing["encode_seconds"] = time.perf_counter() - start
    _timing["rows_read"] = report.rows_read
    _timing["rows_written"] = report.rows_written
    return report


def main() -> int:
    cli.pseudonymise = _timed_pseudonymise  # type: ignore[attr-defined]
    code = cli.main(sys.argv[1:])
    if code == 0:
        _timing["software_version"] = pipeline.software_version()
        print(json.dumps(_timing), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
