"""Run one command and write its wall time and peak RSS as JSON (used by ``_common.run_measured``).

Usage: ``python -I -S bench/_launch.py RESULT.json CMD [ARG...]``; exits with the command's code.

Why a launcher: Linux starts a new program's ``ru_maxrss`` from the high-water RSS of the process
image it replaces, and ``subprocess`` launches through ``vfork``, so a command started straight
from the bench (which holds the synthetic data in memory) would inherit the bench's own peak.
Forked from this small interpreter instead, the floor is this launcher's few megabytes. Standard
library only, no site packages, so it starts in milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    result_path, cmd = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: become the command
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(result_path, "w", encoding="utf-8") as fh:
        # ru_maxrss: kilobytes on Linux; the largest single process of the command's tree.
        json.dump({"wall_seconds": wall, "maxrss_kb": usage.ru_maxrss, "returncode": code}, fh)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    raise SystemExit(main())
