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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

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
    nodes = list(dict.fromkeys(records))
    edges = list(links)
    record_table = pa.table(
        {"dataset": [d for d, _ in nodes], "record": [r for _, r in nodes]},
        pa.schema([("dataset", pa.string()), ("record", pa.string())]),
    )
    link_table = pa.table(
        {
            "dataset_l": [a[0] for a, _, _ in edges],
            "record_l": [a[1] for a, _, _ in edges],
            "dataset_r": [b[0] for _, b, _ in edges],
            "record_r": [b[1] for _, b, _ in edges],
            "match_probability": [float(p) for _, _, p in edges],
        },
        pa.schema(
            [
                ("dataset_l", pa.string()),
                ("record_l", pa.string()),
                ("dataset_r", pa.string()),
                ("record_r", pa.string()),
                ("match_probability", pa.float64()),
            ]
        ),
    )
    return cluster_table(
        record_table, link_table, threshold=threshold, bridge_threshold=bridge_threshold
    )


def _keys(dataset: pa.ChunkedArray | pa.Array, record: pa.ChunkedArray | pa.Array) -> pa.Array:
    joined = pc.binary_join_element_wise(dataset, record, "\x1f")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def cluster_table(
    records: pa.Table,
    links: pa.Table,
    *,
    threshold: float,
    bridge_threshold: float = 0.99,
) -> pa.Table:
    """Entities from a table of records (``dataset, record``, unique) and a table of links
    (``dataset_l, record_l, dataset_r, record_r, match_probability``).

    Connected components are found with SciPy on record indices; only components of four or
    more records (the only ones a weak bridge can split into two parts of two) go through the
    bridge search in Python, so a million records cost seconds, not minutes.
    """
    if not 0.0 < threshold <= 1.0 or not threshold <= bridge_threshold <= 1.0:
        raise SettingsError("need 0 < threshold <= bridge_threshold <= 1")
    keys = _keys(records.column("dataset"), records.column("record"))
    n = len(keys)
    if pc.count_distinct(keys).as_py() != n:
        raise SettingsError("a record is listed twice")
    kept = links.filter(pc.greater_equal(links.column("match_probability"), threshold))
    left = pc.index_in(_keys(kept.column("dataset_l"), kept.column("record_l")), value_set=keys)
    right = pc.index_in(_keys(kept.column("dataset_r"), kept.column("record_r")), value_set=keys)
    if left.null_count or right.null_count:
        raise SettingsError("a link names a record that is not among the records")
    li = np.asarray(left.to_numpy(zero_copy_only=False), dtype=np.int64)
    ri = np.asarray(right.to_numpy(zero_copy_only=False), dtype=np.int64)
    probability = kept.column("match_probability").to_numpy()
    graph = coo_matrix((np.ones(len(li)), (li, ri)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels)
    key_list = keys.to_pylist()
    assignment = labels.copy()  # entity per record: a component, or a part of a split one
    next_label = int(labels.max()) + 1 if n else 0
    big = np.nonzero(sizes[labels[li]] >= 4)[0] if len(li) else np.zeros(0, dtype=np.int64)
    by_component: dict[int, list[int]] = defaultdict(list)
    for e in big.tolist():
        by_component[int(labels[li[e]])].append(e)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(len(sizes)))
    for component, edge_ids in by_component.items():
        start = int(starts[component])
        members = order[start : start + int(sizes[component])].tolist()
        nodes = [_node(key_list[i]) for i in members]
        edges = [
            (_node(key_list[li[e]]), _node(key_list[ri[e]]), float(probability[e]))
            for e in edge_ids
        ]
        parts = _split(sorted(nodes), edges, bridge_threshold)
        if len(parts) == 1:
            continue
        index = {node: i for node, i in zip(nodes, members, strict=True)}
        for part in parts[1:]:
            for node in part:
                assignment[index[node]] = next_label
            next_label += 1
    # entity id: a hash of the smallest member (dataset, record) of each entity; "\x1f" sorts
    # below every printable character, so the smallest key string is the smallest member
    firsts = (
        pa.table({"label": pa.array(assignment), "key": keys})
        .group_by("label")
        .aggregate([("key", "min")])
    )
    ids = dict(
        zip(
            firsts.column("label").to_pylist(),
            [_entity_id_of_key(k) for k in firsts.column("key_min").to_pylist()],
            strict=True,
        )
    )
    table = pa.table(
        {
            "entity_id": [ids[label] for label in assignment.tolist()],
            "dataset": records.column("dataset"),
            "record": records.column("record"),
        },
        ENTITY_SCHEMA,
    )
    return table.sort_by(
        [("entity_id", "ascending"), ("dataset", "ascending"), ("record", "ascending")]
    )


def _node(key: str) -> Node:
    dataset, _, record = key.partition("\x1f")
    return dataset, record


def _entity_id_of_key(key: str) -> str:
    dataset, record = _node(key)
    return "e-" + hashlib.sha256(f"{dataset}\x1f{record}".encode()).hexdigest()[:20]
