"""Derive the fault-injection vectors under inclusion/ and consistency/ from the published proofs.

    .venv/bin/python tests/vectors/audit/generate.py

Input: ``rfc6962-reference.json`` (the RFC 6962 test tree and proofs published in
transparency-dev/merkle). Output: one JSON file per injected fault, named after it in the
style of transparency-dev/merkle's testdata (``wrong-leaf.json``, ``modified-proof-bit-3.json``),
each holding one case per published proof. The mutations are the ones transparency-dev applies
in ``proof/verify_test.go`` (corruptInclusionProof, corruptConsistencyProof) plus ``size1 > size2``.

This script does not import ``audit``: the vectors depend only on the published data and the
mutation rules, so the code under test cannot shape its own expectations. Every case but
``happy-path`` must fail to verify.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOME_HASH = "abacaba000000000000000000000000000000000000000000060061e00123456"  # from the Go test
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()

Case = dict[str, Any]


def _flip(hex_hash: str, mask: int) -> str:
    raw = bytearray(bytes.fromhex(hex_hash))
    raw[0] ^= mask
    return raw.hex()


def inclusion_faults(base: Case) -> Iterator[tuple[str, Case]]:
    """(fault name, mutated case) pairs for one published inclusion proof."""
    i, n, proof, root, leaf = (
        base[k] for k in ("leaf_index", "tree_size", "proof", "root", "leaf_hash")
    )

    def case(**changes: Any) -> Case:
        return {**base, **changes}

    yield "leaf-index-minus-1", case(leaf_index=i - 1)
    yield "leaf-index-plus-1", case(leaf_index=i + 1)
    yield "leaf-index-xor-2", case(leaf_index=i ^ 2)
    yield "tree-size-times-2", case(tree_size=n * 2)
    yield "tree-size-div-2", case(tree_size=n // 2)
    yield "wrong-leaf", case(leaf_hash=b"WrongLeaf".hex())
    yield "modified-leaf-bit-3", case(leaf_hash=_flip(leaf, 8))
    yield "empty-root", case(root=EMPTY_ROOT)
    yield "random-root", case(root=SOME_HASH)
    yield "modified-root-bit-3", case(root=_flip(root, 8))
    yield "trailing-garbage", case(proof=[*proof, ""])
    yield "trailing-root", case(proof=[*proof, root])
    yield "preceding-garbage", case(proof=["", *proof])
    yield "preceding-root", case(proof=[root, *proof])
    for j in range(len(proof)):
        flipped = [*proof[:j], _flip(proof[j], 8), *proof[j + 1 :]]
        yield "modified-proof-bit-3", case(proof=flipped, element=j)
    if proof:
        yield "removed-component", case(proof=proof[:-1])
    if len(proof) > 1:
        yield "inserted-component", case(proof=[proof[0], SOME_HASH, *proof[1:]])


def consistency_faults(base: Case) -> Iterator[tuple[str, Case]]:
    """(fault name, mutated case) pairs for one published non-empty consistency proof."""
    m, n, proof, r1, r2 = (base[k] for k in ("size1", "size2", "proof", "root1", "root2"))

    def case(**changes: Any) -> Case:
        return {**base, **changes}

    yield "size1-minus-1", case(size1=m - 1)
    yield "size1-plus-1", case(size1=m + 1)
    yield "size1-xor-2", case(size1=m ^ 2)
    yield "size2-times-2", case(size2=n * 2)
    yield "size2-div-2", case(size2=n // 2)
    yield "size1-above-size2", case(size1=n, size2=m)
    yield "wrong-root1", case(root1=b"WrongRoot".hex())
    yield "wrong-root2", case(root2=b"WrongRoot".hex())
    yield "modified-root1-bit-4", case(root1=_flip(r1, 16))
    yield "modified-root2-bit-4", case(root2=_flip(r2, 16))
    yield "swapped-roots", case(root1=r2, root2=r1)
    yield "empty-proof", case(proof=[])
    yield "trailing-garbage", case(proof=[*proof, ""])
    yield "trailing-root1", case(proof=[*proof, r1])
    yield "trailing-root2", case(proof=[*proof, r2])
    yield "preceding-garbage", case(proof=["", *proof])
    yield "preceding-root1", case(proof=[r1, *proof])
    yield "preceding-root2", case(proof=[r2, *proof])
    yield "preceding-proof-0", case(proof=[proof[0], *proof])
    yield "truncated-proof", case(proof=proof[:-1])
    for j in range(len(proof)):
        flipped = [*proof[:j], _flip(proof[j], 16), *proof[j + 1 :]]
        yield "modified-proof-bit-4", case(proof=flipped, element=j)


def _write(
    directory: Path, bases: list[Case], faults: Callable[[Case], Iterator[tuple[str, Case]]]
) -> int:
    directory.mkdir(exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    files: dict[str, list[Case]] = {"happy-path": []}
    for base in bases:
        files["happy-path"].append({**base, "want": "ok"})
        for fault, mutated in faults(base):
            suffix = f"-proof-{mutated['element']}" if "element" in mutated else ""
            files.setdefault(fault, []).append(
                {**mutated, "name": f"{base['name']}{suffix}", "want": "error"}
            )
    for fault, cases in files.items():
        doc = {
            "fault": fault,
            "source": "derived by tests/vectors/audit/generate.py from rfc6962-reference.json",
            "checked_by": "tests/unit/audit/test_vectors.py",
            "cases": cases,
        }
        (directory / f"{fault}.json").write_text(json.dumps(doc, indent=1) + "\n")
    return len(files)


def main() -> None:
    ref = json.loads((HERE / "rfc6962-reference.json").read_text())
    roots, leaves = ref["roots"], ref["leaves"]
    inclusion = [
        {
            **c,
            "root": roots[c["tree_size"]],
            "leaf_hash": hashlib.sha256(
                b"\x00" + bytes.fromhex(leaves[c["leaf_index"]])
            ).hexdigest(),
        }
        for c in ref["inclusion"]
    ]
    consistency = [
        {**c, "root1": roots[c["size1"]], "root2": roots[c["size2"]]} for c in ref["consistency"]
    ]
    n_incl = _write(HERE / "inclusion", inclusion, inclusion_faults)
    # Like transparency-dev, mutate only non-trivial consistency proofs (1-to-1 is empty).
    n_cons = _write(
        HERE / "consistency",
        consistency,
        lambda c: consistency_faults(c) if c["proof"] else iter(()),
    )
    print(f"wrote {n_incl} inclusion and {n_cons} consistency vector files")


if __name__ == "__main__":
    main()
