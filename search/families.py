"""Remix-family metrics over the remix forest (`search/lineage.py`); definitions in the README ("Lineage").

- size, depth (deepest generation), generations (scenes per generation), roots
- remix velocity: remixes created in the window (as_of - window, as_of], per day
- time to the k-th remix: hours from the root's creation to the k-th remix's (by creation time)
- structural virality (Goel et al. 2016): mean shortest-path distance over all pairs of the family tree,
  computed in O(n) as the Wiener index sum over edges of s * (n - s) (s: scenes below the edge) / C(n, 2)
- prompt mutation: normalised Levenshtein distance (rapidfuzz) parent prompt -> child prompt, mean per family
  and per generation of the child
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from indexer.schema import SceneCol
from search.lineage import RemixForest, remix_forest
from search.snapshot import Snapshot

SORTS = ("velocity", "size", "depth", "virality", "mutation", "recent")
KTH_REMIX = (1, 5, 10)
DEFAULT_WINDOW_DAYS = 7.0


@dataclass
class FamilyMetrics:
    family_id: str  # the root scene's id
    root_creator: str | None
    roots: list[str]
    size: int
    depth: int
    generations: dict[int, int]  # generation -> scenes in it
    remixes: int
    remixes_in_window: int
    velocity_per_day: float
    time_to_kth_remix_hours: dict[int, float | None]
    structural_virality: float | None  # None for a family of one
    prompt_mutation: float | None  # None without remixes
    mutation_by_generation: dict[int, float]
    last_created_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FamilyTable:
    """Per-node and per-family arrays for one forest; families are keyed by their root node."""

    forest: RemixForest
    as_of: np.datetime64
    window_days: float
    created: np.ndarray  # node -> datetime64[us]
    mutation: np.ndarray  # node -> edit distance from its parent (NaN for roots)
    subtree: np.ndarray  # node -> scenes in its subtree
    roots: np.ndarray  # root nodes
    size: np.ndarray  # by root node
    depth: np.ndarray
    in_window: np.ndarray
    wiener: np.ndarray
    mutation_sum: np.ndarray
    last_created: np.ndarray  # by root node: newest creation time in the family (int64 microseconds)
    members: dict[int, list[int]] = field(default_factory=dict)  # root node -> nodes, parents first

    def virality(self, root: int) -> float | None:
        n = int(self.size[root])
        return float(self.wiener[root]) / (n * (n - 1) / 2) if n > 1 else None

    def sort_key(self, sort: str) -> np.ndarray:
        """Higher first for every sort, ties broken by family size then id by the caller."""
        r = self.roots
        key: np.ndarray
        if sort == "velocity":
            key = self.in_window[r] / self.window_days
        elif sort == "size":
            key = self.size[r].astype(np.float64)
        elif sort == "depth":
            key = self.depth[r].astype(np.float64)
        elif sort == "virality":
            key = np.array([self.virality(int(x)) or 0.0 for x in r])
        elif sort == "mutation":
            key = np.nan_to_num(self.mutation_sum[r] / np.maximum(self.size[r] - 1, 1))
        elif sort == "recent":
            key = self.last_created[r].astype(np.float64)
        else:
            raise ValueError(f"unknown sort '{sort}' (choose {', '.join(SORTS)})")
        return key


def family_table(
    snap: Snapshot,
    visible: np.ndarray | None = None,
    as_of: datetime | None = None,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> FamilyTable:
    forest = remix_forest(snap, visible)
    created = snap.created[forest.rows]
    stamp = np.datetime64(as_of.replace(tzinfo=None), "us") if as_of else _latest(created)
    n = len(forest)
    subtree = np.ones(n, dtype=np.int64)
    for node in reversed(forest.order):  # children before parents
        if forest.parent[node] >= 0:
            subtree[forest.parent[node]] += subtree[node]
    size = np.bincount(forest.root, minlength=n)
    depth = np.zeros(n, dtype=np.int64)
    np.maximum.at(depth, forest.root, forest.generation)
    child = forest.parent >= 0
    window = (created > stamp - np.timedelta64(int(window_days * 86400e6), "us")) & (created <= stamp)
    in_window = np.bincount(forest.root[child & window], minlength=n)
    wiener = np.bincount(forest.root[child], weights=(subtree * (size[forest.root] - subtree))[child], minlength=n)
    mutation = _mutation(snap, forest)
    mutation_sum = np.bincount(forest.root[child], weights=mutation[child], minlength=n)
    last_created = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    known = ~np.isnat(created)
    np.maximum.at(last_created, forest.root[known], created[known].astype(np.int64))
    members: dict[int, list[int]] = {}
    for node in forest.order:
        members.setdefault(int(forest.root[node]), []).append(node)
    roots = np.flatnonzero(forest.parent < 0)
    return FamilyTable(
        forest=forest,
        as_of=stamp,
        window_days=window_days,
        created=created,
        mutation=mutation,
        subtree=subtree,
        roots=roots,
        size=size,
        depth=depth,
        in_window=in_window,
        wiener=wiener,
        mutation_sum=mutation_sum,
        last_created=last_created,
        members=members,
    )


def family_metrics(snap: Snapshot, table: FamilyTable, root: int) -> FamilyMetrics:
    """Every metric of the family rooted at forest node `root`."""
    forest, nodes = table.forest, table.members[root]
    remixes = [n for n in nodes if forest.parent[n] >= 0]
    gens = forest.generation[nodes]
    by_gen: dict[int, list[float]] = {}
    for n in remixes:
        by_gen.setdefault(int(forest.generation[n]), []).append(float(table.mutation[n]))
    times = np.sort(table.created[remixes][~np.isnat(table.created[remixes])])
    born = table.created[root]
    kth: dict[int, float | None] = {}
    for k in KTH_REMIX:
        kth[k] = (
            None
            if len(times) < k or np.isnat(born)
            else round(float((times[k - 1] - born) / np.timedelta64(1, "h")), 3)
        )
    root_row = int(forest.rows[root])
    last = int(table.last_created[root])
    return FamilyMetrics(
        family_id=snap.ids[root_row],
        root_creator=snap.columns[SceneCol.CREATOR][root_row],
        roots=[snap.ids[root_row]],
        size=int(table.size[root]),
        depth=int(table.depth[root]),
        generations={int(g): int(c) for g, c in zip(*np.unique(gens, return_counts=True), strict=True)},
        remixes=len(remixes),
        remixes_in_window=int(table.in_window[root]),
        velocity_per_day=round(float(table.in_window[root]) / table.window_days, 4),
        time_to_kth_remix_hours=kth,
        structural_virality=_rounded(table.virality(root)),
        prompt_mutation=_rounded(float(np.mean(table.mutation[remixes])) if remixes else None),
        mutation_by_generation={g: round(float(np.mean(v)), 4) for g, v in sorted(by_gen.items())},
        last_created_at=None if last == np.iinfo(np.int64).min else _iso(np.datetime64(last, "us")),
    )


def _iso(stamp: np.datetime64) -> str:
    return f"{np.datetime_as_string(stamp, unit='s')}Z"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def top_families(
    snap: Snapshot, table: FamilyTable, sort: str = "velocity", limit: int = 20, min_size: int = 2
) -> list[FamilyMetrics]:
    """Families with at least `min_size` scenes, best first by `sort` (ties: larger, then by id)."""
    key = table.sort_key(sort)
    roots = table.roots
    keep = table.size[roots] >= min_size
    ids = np.array([snap.ids[int(table.forest.rows[r])] for r in roots[keep]], dtype=object)
    order = np.lexsort((ids, -table.size[roots][keep], -key[keep]))[:limit]
    return [family_metrics(snap, table, int(r)) for r in roots[keep][order]]


def family_of(snap: Snapshot, table: FamilyTable, row: int) -> FamilyMetrics | None:
    node = table.forest.node.get(row)
    return None if node is None else family_metrics(snap, table, int(table.forest.root[node]))


def _latest(created: np.ndarray) -> np.datetime64:
    known = created[~np.isnat(created)]
    return known.max() if len(known) else np.datetime64("1970-01-01", "us")


def _mutation(snap: Snapshot, forest: RemixForest) -> np.ndarray:
    prompts = snap.columns[SceneCol.PROMPT]
    out = np.full(len(forest), np.nan)
    for node in np.flatnonzero(forest.parent >= 0):
        parent_row, row = int(forest.rows[forest.parent[node]]), int(forest.rows[node])
        out[node] = Levenshtein.normalized_distance(prompts[parent_row], prompts[row])
    return out
