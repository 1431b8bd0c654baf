"""Our Dice kernel outside SQL (``linkage.u_estimate.dice_matrix``), one thread, random filters.

Usage: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/_kernel_ours.py [--n 2000] [--repeat 3]``

The same all-pairs work as ``peers/kernel_anonlink.py``: ``n x n`` pairs of random half-full
1,024-bit filters. Prints one JSON line ``{"system", "pairs_per_second", "n", "bits",
"seconds"}`` (best of ``--repeat``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers._linkpeer import kernel_parser, report_kernel  # bench/ is the script directory

from linkage.u_estimate import dice_matrix

BITS = 1024


def _sample(n: int, rng: np.random.Generator) -> SimpleNamespace:
    bits = np.zeros((n, BITS), dtype=np.uint8)
    for row in bits:
        row[rng.choice(BITS, BITS // 2, replace=False)] = 1
    words = np.packbits(bits, axis=1).view(np.uint64)
    return SimpleNamespace(
        words={"f": words},
        counts={"f": bits.sum(axis=1).astype(np.int64)},
        valid={"f": np.ones(n, dtype=bool)},
    )


def main() -> None:
    args = kernel_parser(__doc__.splitlines()[0]).parse_args()
    rng = np.random.default_rng(1)
    a, b = _sample(args.n, rng), _sample(args.n, rng)
    report_kernel(
        "ours (linkage.u_estimate.dice_matrix)",
        lambda: dice_matrix(a, b, "f"),
        args.n,
        BITS,
        args.repeat,
    )


if __name__ == "__main__":
    main()
