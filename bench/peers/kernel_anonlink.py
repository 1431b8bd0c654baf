"""anonlink's Dice kernel on random 1,024-bit CLKs, one process (runs in ``bench/.peers-venv``).

Usage: ``bench/.peers-venv/bin/python bench/peers/kernel_anonlink.py [--n 2000] [--repeat 3]``

Times :func:`anonlink.candidate_generation.find_candidate_pairs` with
:func:`anonlink.similarities.dice_coefficient` over all ``n x n`` pairs of random half-full
1,024-bit filters at threshold 1.0 (so almost nothing is kept: the time is the comparisons).
Prints one JSON line ``{"system", "pairs_per_second", "n", "bits", "seconds"}`` (best of
``--repeat``).
"""

from __future__ import annotations

import random

from _linkpeer import kernel_parser, report_kernel  # peers/ is the script's directory
from anonlink.candidate_generation import find_candidate_pairs
from anonlink.similarities import dice_coefficient
from bitarray import bitarray

BITS = 1024


def _filters(n: int, rng: random.Random) -> list[bitarray]:
    out = []
    for _ in range(n):
        b = bitarray(BITS)
        b.frombytes(b"")  # keep the length; fill below
        b.setall(False)
        for i in rng.sample(range(BITS), BITS // 2):
            b[i] = True
        out.append(b)
    return out


def main() -> None:
    args = kernel_parser(__doc__.splitlines()[0]).parse_args()
    rng = random.Random(1)
    a, b = _filters(args.n, rng), _filters(args.n, rng)
    report_kernel(
        "clkhash+anonlink",
        lambda: find_candidate_pairs([a, b], dice_coefficient, 1.0),
        args.n,
        BITS,
        args.repeat,
    )


if __name__ == "__main__":
    main()
