"""``audit``: placeholder until the audit issue lands; prints the planned subcommands."""

from __future__ import annotations

import sys
from collections.abc import Sequence

PLANNED = """audit: the tamper-evident audit log (not built yet)

planned subcommands:
  audit keygen --out FILE          create the log's Ed25519 signing key
  audit verify --checkpoint FILE   recompute the log offline and check every proof
  audit witness ...                check and co-sign checkpoints
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    print(PLANNED, end="")
    return 0 if not args or args[0] in ("-h", "--help") else 2


if __name__ == "__main__":
    raise SystemExit(main())
