"""Remix lineage: one scene's ancestors and descendants, the remix graph (rustworkx) and credit chains.

`visible` decides which scenes may be shown (callers pass consent eligibility): a hidden scene is left out,
and the lineage walks on through it, so its existence is never revealed by id. Family metrics built on the
graph live in `search/families.py`.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import rustworkx as rx

from indexer.schema import SceneCol
from search.snapshot import Snapshot


@dataclass(frozen=True)
class LineageNode:
    scene_id: str
    parent_id: str | None
    depth: int  # generations away from the asked scene


@dataclass
class Lineage:
    scene_id: str
    root: str  # the oldest visible ancestor (or the scene itself)
    ancestors: list[LineageNode] = field(default_factory=list)  # parent first
    descendants: list[LineageNode] = field(default_factory=list)  # breadth first


def lineage(snap: Snapshot, scene_id: str, visible: Callable[[str], bool] = lambda _: True) -> Lineage | None:
    if scene_id not in snap.row or not visible(scene_id):
        return None
    parents = snap.columns[SceneCol.PARENT]
    out = Lineage(scene_id=scene_id, root=scene_id)
    seen, depth, current = {scene_id}, 0, parents[snap.row[scene_id]]
    while current and current in snap.row and current not in seen:
        seen.add(current)
        depth += 1
        if visible(current):
            out.ancestors.append(LineageNode(current, parents[snap.row[current]], depth))
            out.root = current
        current = parents[snap.row[current]]
    queue = deque([(scene_id, 0)])
    while queue:
        sid, level = queue.popleft()
        for child in sorted(snap.children(sid)):
            if child not in seen:
                seen.add(child)
                queue.append((child, level + 1))
                if visible(child):
                    out.descendants.append(LineageNode(child, parents[snap.row[child]], level + 1))
    return out


# --- the remix graph (rustworkx) -------------------------------------------------------------------------

FORESTS_KEPT = 4  # visibility masks change only when a consent expires or is revoked; keep a few per snapshot


@dataclass
class RemixForest:
    """The remix graph over the visible scenes: a hidden scene is contracted away (its visible remixes hang
    from its nearest visible ancestor), so metrics never count, and ids never reveal, a scene the caller may
    not see. Node i is snapshot row `rows[i]`; every node has at most one parent, so each family is a tree."""

    graph: rx.PyDiGraph
    rows: np.ndarray  # node -> snapshot row
    node: dict[int, int]  # snapshot row -> node
    parent: np.ndarray  # node -> parent node, -1 for a root
    generation: np.ndarray  # node -> generations below its root (0 = root)
    root: np.ndarray  # node -> its family's root node
    order: list[int]  # nodes, parents before children

    def __len__(self) -> int:
        return len(self.rows)


def parent_rows(snap: Snapshot) -> np.ndarray:
    """Row of each scene's parent, -1 when it has none or the parent is not in the index (cached)."""
    cached = snap.derived.get("parent_rows")
    if cached is None:
        parents = snap.columns[SceneCol.PARENT]
        cached = np.array([snap.row.get(p, -1) if p else -1 for p in parents], dtype=np.int64)
        snap.derived["parent_rows"] = cached
    return cached


def remix_forest(snap: Snapshot, visible: np.ndarray | None = None) -> RemixForest:
    """The forest for a visibility mask (None: every scene), cached per snapshot and mask."""
    visible = snap.alive if visible is None else np.asarray(visible, dtype=bool) & snap.alive
    key = "forest:" + hashlib.sha1(np.packbits(visible).tobytes()).hexdigest()
    cached = snap.derived.get(key)
    if cached is None:
        forests = [k for k in snap.derived if k.startswith("forest:")]
        for stale in forests[: max(0, len(forests) - FORESTS_KEPT + 1)]:  # oldest first (dicts keep order)
            del snap.derived[stale]
        cached = snap.derived[key] = _build_forest(parent_rows(snap), visible)
    return cached


def _visible_parents(parents: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Each row's nearest visible ancestor row (-1: none), climbing all rows together one step at a time."""
    out = parents.copy()
    for _ in range(len(parents)):  # at most the longest chain; a cycle of hidden scenes is cut below
        hidden = (out >= 0) & ~visible[np.maximum(out, 0)]
        if not hidden.any():
            return out
        out[hidden] = parents[out[hidden]]
    out[(out >= 0) & ~visible[np.maximum(out, 0)]] = -1
    return out


def _build_forest(parents: np.ndarray, visible: np.ndarray) -> RemixForest:
    rows = np.flatnonzero(visible)
    node = {int(r): i for i, r in enumerate(rows)}
    lifted = _visible_parents(parents, visible)[rows]
    parent = np.array([node.get(int(p), -1) for p in lifted], dtype=np.int64)
    graph = rx.PyDiGraph()
    graph.add_nodes_from(rows.tolist())
    children = np.flatnonzero(parent >= 0)
    graph.add_edges_from_no_data(list(zip(parent[children].tolist(), children.tolist(), strict=True)))
    while not rx.is_directed_acyclic_graph(graph):  # a parent_id cycle: cut one edge of it, its child becomes a root
        cycle = rx.digraph_find_cycle(graph)
        source, target = cycle[0]
        graph.remove_edge(source, target)
        parent[target] = -1
    generation = np.zeros(len(rows), dtype=np.int64)
    root = np.arange(len(rows), dtype=np.int64)
    order: list[int] = []
    for level, nodes in enumerate(rx.topological_generations(graph)):
        generation[nodes] = level
        order.extend(nodes)
    for n in order:  # parents come first, so a parent's root is final when its children are reached
        if parent[n] >= 0:
            root[n] = root[parent[n]]
    return RemixForest(graph, rows, node, parent, generation, root, order)


def credit_chain(snap: Snapshot, row: int, visible: np.ndarray | None = None) -> list[str | None]:
    """Creator ids from the root of the scene's (visible) lineage down to the scene itself."""
    forest = remix_forest(snap, visible)
    node = forest.node.get(row)
    if node is None:
        return []
    chain = [node, *rx.ancestors(forest.graph, node)]
    chain.sort(key=lambda n: forest.generation[n])
    creators = snap.columns[SceneCol.CREATOR]
    return [creators[int(forest.rows[n])] for n in chain]


def descendants(snap: Snapshot, row: int, visible: np.ndarray | None = None) -> list[str]:
    forest = remix_forest(snap, visible)
    node = forest.node.get(row)
    if node is None:
        return []
    found = sorted(
        rx.descendants(forest.graph, node), key=lambda n: (forest.generation[n], snap.ids[int(forest.rows[n])])
    )
    return [snap.ids[int(forest.rows[n])] for n in found]
