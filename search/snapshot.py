"""An immutable view of one index version: base segment + delta + tombstones, consents, ads and vector layers.

Searches read one snapshot from start to end, so a batch that lands meanwhile is never half-seen. Rows
[0, base_rows) are the base (indexed by the ANN layers built at compaction); later rows are the delta, written
since and searched exactly; `dead` marks rows deleted or replaced since (a replacement is a new row).
`search.live` builds the base (`load_base`) and publishes the snapshot after each write (`apply`), sharing
everything that did not change; nothing a published snapshot holds is ever mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np

from indexer import ann
from indexer.location import IndexLocation
from indexer.schema import SceneCol
from indexer.store import Manifest
from search.consent import ConsentState, is_eligible
from search.consent_masks import ConsentMasks
from search.lance_vectors import LanceBase, LanceVectors
from search.scene_rows import ArrowColumn, Codes, MultiHot, SceneRows
from search.segments import GrowingArray, GrowingList, Overlay, RowList
from search.vectors import SegmentedVectors

# Keys of `Snapshot.derived` holding per-row facts: rows never change once written, so the next snapshot keeps
# them and computes only the rows appended since (see `search.disclosure.trust_facts`).
ROWWISE = "rows:"


@dataclass(frozen=True)
class Shot:
    index: int
    start_s: float | None
    end_s: float | None
    thumb_path: str | None
    media_path: str


@dataclass(frozen=True)
class AdEntry:
    ad_id: str
    skus: frozenset[str]
    categories: frozenset[str]
    target_tones: frozenset[str]
    bid_cpm: float
    creatives: tuple[str, ...]
    record: dict[str, Any]


@dataclass(frozen=True)
class ShotLayer:
    """CLIP keyframe vectors: position -> scene row and shot index; a scene's positions (base, then delta)."""

    vectors: SegmentedVectors
    rows: GrowingArray  # position -> scene row
    shot_index: GrowingArray  # position -> shot index within its scene
    positions: Overlay[int, list[int]]  # scene row -> positions

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, query: np.ndarray, allowed_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the best shots of allowed scenes."""
        return self.vectors.search(query, allowed_rows[self.rows.values], k)

    def row_of(self, position: int) -> int:
        return int(self.rows.values[position])

    def index_of(self, position: int) -> int:
        return int(self.shot_index.values[position])

    def of_row(self, row: int) -> list[int]:
        return self.positions.get(row, [])


@dataclass
class Snapshot:
    path: IndexLocation
    manifest: Manifest
    versions: dict[str, int]
    scene_rows: SceneRows
    id_rows: GrowingList  # scene id per row (dead rows keep theirs)
    row: Overlay[str, int]  # scene id -> its live row
    dead: np.ndarray  # tombstones: rows deleted or replaced since they were written
    base_rows: int
    sku_rows: Overlay[str, np.ndarray]
    products: Overlay[str, dict[str, Any]]
    family: np.ndarray  # row -> row of its lineage root
    children_of: Overlay[str, tuple[str, ...]]  # parent id -> ids that named it (checked on read)
    text: SegmentedVectors | LanceVectors
    clip: ShotLayer | None
    shots: Overlay[str, list[Shot]]
    masks: ConsentMasks
    ads: list[AdEntry]
    ad_vecs: np.ndarray
    scenes_table: Any = None  # LanceDB scenes table checked out at `versions` (full-text search reads it)
    ads_table: Any = None
    derived: dict[str, Any] = field(default_factory=dict)  # views built lazily from this version (trust, lineage)

    def __len__(self) -> int:
        return self.id_rows.n

    @property
    def scene_count(self) -> int:
        """Live scenes (rows that are neither deleted nor replaced)."""
        return len(self.row)

    @property
    def version(self) -> int:
        """One number that grows with every committed write (the sum of the table versions)."""
        return sum(self.versions.values())

    @property
    def ids(self) -> RowList[str]:
        return self.id_rows.view

    @cached_property
    def columns(self) -> dict[str, ArrowColumn]:
        return self.scene_rows.columns()

    @property
    def setting(self) -> Codes:
        return self.scene_rows.setting

    @property
    def time_of_day(self) -> Codes:
        return self.scene_rows.time_of_day

    @property
    def weather(self) -> Codes:
        return self.scene_rows.weather

    @property
    def tones(self) -> MultiHot:
        return self.scene_rows.tones

    @property
    def categories(self) -> MultiHot:
        return self.scene_rows.categories

    @property
    def brands(self) -> MultiHot:
        return self.scene_rows.brands

    @property
    def created(self) -> np.ndarray:
        return self.scene_rows.created.values

    @property
    def dwell(self) -> np.ndarray:
        return self.scene_rows.dwell.values

    @property
    def text_vecs(self) -> Any:
        return self.text.vectors

    @property
    def text_ann(self) -> ann.AnnIndex | LanceBase:
        return self.text.base

    @property
    def consents(self) -> Mapping[str, ConsentState]:
        return self.masks.consents

    def with_masks(self, masks: ConsentMasks) -> Snapshot:
        """This version with other consent masks (views derived from eligibility are dropped)."""
        return replace(self, masks=masks, derived={k: v for k, v in self.derived.items() if k.startswith(ROWWISE)})

    @cached_property
    def alive(self) -> np.ndarray:
        alive: np.ndarray = ~self.dead
        return alive

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive)

    @property
    def delta_rows(self) -> int:
        return len(self) - self.base_rows

    def eligible(self, use: str, now: datetime) -> np.ndarray:
        """Boolean mask of live rows whose cameo consents cover `use` at `now` (a new array: callers may change it)."""
        mask: np.ndarray = self.masks.eligible(use, now) & self.alive
        return mask

    def scene_eligible(self, scene_id: str, use: str, now: datetime) -> bool:
        r = self.row.get(scene_id)
        return r is not None and is_eligible(self.columns[SceneCol.CAMEOS][r] or [], use, self.consents, now)

    def children(self, scene_id: str) -> list[str]:
        """Ids of the live scenes whose parent is `scene_id`."""
        parents = self.columns[SceneCol.PARENT]
        out = []
        for child in self.children_of.get(scene_id, ()):
            r = self.row.get(child)
            if r is not None and parents[r] == scene_id and child not in out:
                out.append(child)
        return out

    @cached_property
    def family_count(self) -> int:
        return int(len(np.unique(self.family[self.alive])))

    def scene_fields(self, row: int) -> dict[str, Any]:
        """The display fields of one scene, shared by search results and catalog reads."""
        cols = self.columns
        parent = cols[SceneCol.PARENT][row]
        return {
            "scene_id": self.ids[row],
            "prompt": cols[SceneCol.PROMPT][row],
            "caption": cols[SceneCol.CAPTION][row],
            "setting": cols[SceneCol.SETTING][row],
            "time_of_day": cols[SceneCol.TIME][row],
            "weather": cols[SceneCol.WEATHER][row],
            "tones": list(cols[SceneCol.TONES][row] or []),
            "categories": list(cols[SceneCol.CATEGORIES][row] or []),
            "skus": list(cols[SceneCol.SKUS][row] or []),
            "parent_id": parent,
            "parent_missing": bool(parent) and parent not in self.row,
            "family_id": self.ids[int(self.family[row])],
        }


def root_rows(parent_rows: np.ndarray, max_rounds: int = 64) -> np.ndarray:
    """Row of each row's lineage root, from each row's parent row (-1: none): pointer jumping, so the rounds
    grow with the log of the deepest chain, not with the catalog."""
    root = np.where(parent_rows >= 0, parent_rows, np.arange(len(parent_rows)))
    for _ in range(max_rounds):  # a cycle (rejected at ingest) never settles; the cap ends it
        jumped = root[root]
        if np.array_equal(jumped, root):
            break
        root = jumped
    return root


def families(parents: Sequence[str | None], row: Mapping[str, int], rows: Iterable[int]) -> dict[int, int]:
    """Row of each given row's lineage root (a missing parent, or a cycle, ends the chain)."""
    out = {}
    for r in rows:
        seen, node = {int(r)}, int(r)
        while (parent := parents[node]) is not None and parent in row and row[parent] not in seen:
            node = row[parent]
            seen.add(node)
        out[int(r)] = node
    return out
