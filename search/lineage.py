"""Remix lineage of one scene: ancestors up to the root and all descendants, over a snapshot.

`visible` decides which scenes may be shown (callers pass consent eligibility): a hidden scene is left out,
and the lineage walks on through it, so its existence is never revealed by id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

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
        for child in sorted(snap.children.get(sid, [])):
            if child not in seen:
                seen.add(child)
                queue.append((child, level + 1))
                if visible(child):
                    out.descendants.append(LineageNode(child, parents[snap.row[child]], level + 1))
    return out
