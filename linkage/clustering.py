"""Clustering pairwise links into entities across any number of datasets (pure, table in/out).

Connected components over the links at or above the threshold, then one refinement: a **weak
bridge** (a link whose removal splits its component into two parts of two or more records each,
and whose probability is below ``bridge_threshold``) is cut. That is the shape of a single false
link chaining two households together (father and son, twins): each side is held together by
several links of its own, and only one doubtful link joins them. Strong bridges stay.

Every record becomes exactly one entity (records with no link are singleton entities). Entity ids
are derived from the smallest member, so the same clusters get the same ids on every run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

import pyarrow as pa

from linkage.errors import SettingsError

Node = tuple[str, str]  # (dataset, record)
Edge = tuple[Node, Node, float]

ENTITY_SCHEMA = pa.schema(
    [
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("record", pa.string(), nullable=False),
    ]
)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Node, Node] = {}

    def find(self, x: Node) -> Node:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: Node, b: Node) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def _bridges(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[tuple[int, int]]:
    """Bridges of one connected component (iterative Tarjan), as (edge index, size of one side).

    The size is the number of nodes on the DFS-child side of the bridge.
    """
    adjacency: dict[Node, list[tuple[Node, int]]] = defaultdict(list)
    for i, (a, b, _) in enumerate(edges):
        adjacency[a].append((b, i))
        adjacency[b].append((a, i))
    order: dict[Node, int] = {}
    low: dict[Node, int] = {}
    size: dict[Node, int] = {}
    found: list[tuple[int, int]] = []
    root = nodes[0]
    order[root] = low[root] = 0
    size[root] = 1
    counter = 1
    stack: list[tuple[Node, int, int]] = [(root, -1, 0)]  # node, edge used to reach it, next nbr
    while stack:
        node, via, nxt = stack[-1]
        neighbours = adjacency[node]
        if nxt < len(neighbours):
            stack[-1] = (node, via, nxt + 1)
            other, edge = neighbours[nxt]
            if edge == via:
                continue
            if other in order:
                low[node] = min(low[node], order[other])
            else:
                order[other] = low[other] = counter
                size[other] = 1
                counter += 1
                stack.append((other, edge, 0))
            continue
        stack.pop()
        if stack:
            parent = stack[-1][0]
            low[parent] = min(low[parent], low[node])
            size[parent] += size[node]
            if low[node] > order[parent]:
                found.append((via, size[node]))
    return found


def _split(nodes: list[Node], edges: list[Edge], bridge_threshold: float) -> list[list[Node]]:
    """Cut weak bridges with two or more records on each side, until none is left."""
    if len(nodes) < 4:
        return [nodes]
    total = len(nodes)
    weak = [
        (edges[i][2], i)
        for i, side in _bridges(nodes, edges)
        if edges[i][2] < bridge_threshold and side >= 2 and total - side >= 2
    ]
    if not weak:
        return [nodes]
    _, cut = min(weak)  # the weakest bridge first; then look again in each part
    kept = [e for i, e in enumerate(edges) if i != cut]
    parts = _components(nodes, kept)
    out: list[list[Node]] = []
    for part_nodes, part_edges in parts:
        out.extend(_split(part_nodes, part_edges, bridge_threshold))
    return out


def _components(
    nodes: Iterable[Node], edges: Sequence[Edge]
) -> list[tuple[list[Node], list[Edge]]]:
    uf = _UnionFind()
    for n in nodes:
        uf.find(n)
    for a, b, _ in edges:
        uf.union(a, b)
    members: dict[Node, list[Node]] = defaultdict(list)
    for n in uf.parent:
        members[uf.find(n)].append(n)
    by_root: dict[Node, list[Edge]] = defaultdict(list)
    for e in edges:
        by_root[uf.find(e[0])].append(e)
    return [(sorted(m), by_root.get(r, [])) for r, m in members.items()]


def entity_id(members: Sequence[Node]) -> str:
    """A stable id for a cluster: a hash of its smallest member."""
    dataset, record = min(members)
    return "e-" + hashlib.sha256(f"{dataset}\x1f{record}".encode()).hexdigest()[:20]


def cluster(
    records: Iterable[Node],
    links: Iterable[Edge],
    *,
    threshold: float,
    bridge_threshold: float = 0.99,
) -> pa.Table:
    """Entities (``entity_id, dataset, record``) from records and scored links.

    ``links`` below ``threshold`` are ignored. Every record appears exactly once.
    """
    if not 0.0 < threshold <= 1.0 or not threshold <= bridge_threshold <= 1.0:
        raise SettingsError("need 0 < threshold <= bridge_threshold <= 1")
    kept = [e for e in links if e[2] >= threshold]
    all_nodes = set(records)
    for a, b, _ in kept:
        if a not in all_nodes or b not in all_nodes:
            raise SettingsError("a link names a record that is not among the records")
    entity: list[str] = []
    dataset: list[str] = []
    record: list[str] = []
    for nodes, edges in _components(all_nodes, kept):
        for part in _split(nodes, edges, bridge_threshold):
            eid = entity_id(part)
            for d, r in part:
                entity.append(eid)
                dataset.append(d)
                record.append(r)
    table = pa.table({"entity_id": entity, "dataset": dataset, "record": record}, ENTITY_SCHEMA)
    return table.sort_by(
        [("entity_id", "ascending"), ("dataset", "ascending"), ("record", "ascending")]
    )
