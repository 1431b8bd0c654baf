"""``hub``: placeholder until the hub issues land; prints the planned subcommands."""

from __future__ import annotations

import sys
from collections.abc import Sequence

PLANNED = """hub: the pprl data-sharing hub (not built yet)

planned subcommands:
  hub init --data-dir D       create configuration, database, log signing key and master key
  hub serve --data-dir D      run the API and the linkage workers
  hub worker --data-dir D     run more linkage workers
  hub migrate --data-dir D    apply database schema migrations
  hub admin ...               manage agencies, users, tokens, agreements and projects
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    print(PLANNED, end="")
    return 0 if not args or args[0] in ("-h", "--help") else 2


if __name__ == "__main__":
    raise SystemExit(main())
