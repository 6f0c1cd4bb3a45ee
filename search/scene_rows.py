"""Scene columns as arrays, built once per segment and extended by appending (never rebuilt per write).

Display fields stay Arrow arrays (a row is turned into Python only when it is shown); slots are integer codes
and multi-hot matrices so slot agreement and filters are numpy work; dates and dwell are numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from indexer.schema import SceneCol
from search.segments import GrowingArray, GrowingList

# Columns kept out of memory: read from LanceDB for one row when needed, or used only by the indexer.
NOT_HELD = (
    SceneCol.RECORD,
    SceneCol.SOURCE,
    SceneCol.CLIP_VEC,
    SceneCol.TEXT_VEC,
    SceneCol.DOC,
    SceneCol.CONTENT_HASH,
)


class ArrowColumn(Sequence[Any]):
    """One column over the base (an Arrow array) and the delta (Python values of the few rows written since)."""

    __slots__ = ("_base", "_delta")

    def __init__(self, base: pa.Array, delta: Sequence[Any]):
        self._base = base
        self._delta = delta

    def __len__(self) -> int:
        return len(self._base) + len(self._delta)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            base = len(self._base)
            head = self._base.slice(start, max(0, min(stop, base) - start)).to_pylist() if start < base else []
            return head + list(self._delta[max(0, start - base) : max(0, stop - base)])
        index = int(index)
        base = len(self._base)
        if index < 0:
            index += len(self)
        return self._base[index].as_py() if index < base else self._delta[index - base]

    def __iter__(self) -> Iterator[Any]:
        yield from self._base.to_pylist()
        yield from self._delta


def _encoded(column: pa.Array | pa.ChunkedArray) -> tuple[list[Any], np.ndarray]:
    """(distinct values, each row's index into them, -1 for null): Arrow does the per-row work."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    encoded = pc.dictionary_encode(array)
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return encoded.dictionary.to_pylist(), indices


def _grown(labels: list[str], values: list[Any]) -> tuple[list[str], np.ndarray]:
    """Labels with the new values appended (sorted), and each value's label index (-1 for none or empty)."""
    labels = list(dict.fromkeys([*labels, *sorted({v for v in values if v and v not in labels})]))
    index = {name: i for i, name in enumerate(labels)}
    return labels, np.array([index[v] if v else -1 for v in values] + [-1], dtype=np.int64)


@dataclass
class Codes:
    """One single-valued slot as integer codes (-1 = unknown) over a label list that only ever grows."""

    labels: list[str]
    rows: GrowingArray

    @property
    def codes(self) -> np.ndarray:
        return self.rows.values

    @classmethod
    def build(cls, column: pa.Array | pa.ChunkedArray, labels: list[str]) -> Codes:
        return cls(list(labels), GrowingArray.of(np.zeros(0, np.int32))).extend(column)

    def extend(self, column: pa.Array | pa.ChunkedArray) -> Codes:
        values, indices = _encoded(column)
        labels, lookup = _grown(self.labels, values)
        return Codes(labels, self.rows.extend(lookup[indices].astype(np.int32)))  # -1 indexes the final -1

    def code(self, value: str | None) -> int:
        return self.labels.index(value) if value in self.labels else -2  # -2 never matches


@dataclass
class MultiHot:
    labels: list[str]
    rows: GrowingArray  # rows x labels, bool

    @property
    def matrix(self) -> np.ndarray:
        return self.rows.values

    @classmethod
    def build(cls, column: pa.Array | pa.ChunkedArray, labels: list[str]) -> MultiHot:
        empty = GrowingArray.of(np.zeros((0, len(labels)), dtype=bool))
        return cls(list(labels), empty).extend(column)

    def extend(self, column: pa.Array | pa.ChunkedArray) -> MultiHot:
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        values, indices = _encoded(pc.list_flatten(array))
        labels, lookup = _grown(self.labels, values)
        rows = self.rows.widen(len(labels)) if len(labels) > len(self.labels) else self.rows
        matrix = np.zeros((len(array), len(labels)), dtype=bool)
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        columns = lookup[indices]
        keep = columns >= 0
        matrix[parents[keep], columns[keep]] = True
        return MultiHot(labels, rows.extend(matrix))

    def column(self, value: str) -> np.ndarray:
        if value not in self.labels:
            return np.zeros(len(self.matrix), dtype=bool)
        return self.matrix[:, self.labels.index(value)]


@dataclass
class SceneRows:
    """Every held column of every row (base rows first, then the delta), as the snapshot reads them."""

    base: pa.Table  # held columns of the base rows
    delta: dict[str, GrowingList]  # held columns of the delta rows, as Python values
    setting: Codes
    time_of_day: Codes
    weather: Codes
    tones: MultiHot
    categories: MultiHot
    brands: MultiHot
    created: GrowingArray  # datetime64[us], NaT when unknown
    dwell: GrowingArray

    @classmethod
    def build(cls, table: pa.Table, labels: dict[str, list[str]]) -> SceneRows:
        held = table.select([c for c in table.column_names if c not in NOT_HELD]).combine_chunks()
        none = pa.array([], pa.string())
        lists = pa.array([], pa.list_(pa.string()))
        empty = cls(
            base=held,
            delta={name: GrowingList.of([]) for name in held.column_names},
            setting=Codes.build(none, labels["setting"]),
            time_of_day=Codes.build(none, labels["time_of_day"]),
            weather=Codes.build(none, labels["weather"]),
            tones=MultiHot.build(lists, labels["tone"]),
            categories=MultiHot.build(lists, labels["category"]),
            brands=MultiHot.build(lists, []),
            created=GrowingArray.of(np.zeros(0, "datetime64[us]")),
            dwell=GrowingArray.of(np.zeros(0, np.float64)),
        )
        return empty._derive(held)

    def extend(self, table: pa.Table) -> SceneRows:
        """These rows appended after the existing ones."""
        held = table.select(list(self.base.column_names))
        delta = {name: self.delta[name].extend(held.column(name).to_pylist()) for name in held.column_names}
        return replace(self, delta=delta)._derive(held)

    def _derive(self, held: pa.Table) -> SceneRows:
        def values(name: str) -> pa.ChunkedArray:
            return held.column(name)

        created = held.column(SceneCol.CREATED).cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
        dwell = held.column(SceneCol.DWELL).fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
        return replace(
            self,
            setting=self.setting.extend(values(SceneCol.SETTING)),
            time_of_day=self.time_of_day.extend(values(SceneCol.TIME)),
            weather=self.weather.extend(values(SceneCol.WEATHER)),
            tones=self.tones.extend(values(SceneCol.TONES)),
            categories=self.categories.extend(values(SceneCol.CATEGORIES)),
            brands=self.brands.extend(values(SceneCol.BRANDS)),
            created=self.created.extend(np.asarray(created, dtype="datetime64[us]")),
            dwell=self.dwell.extend(dwell),
        )

    def __len__(self) -> int:
        return int(self.base.num_rows) + self.delta[SceneCol.ID].n

    def columns(self) -> dict[str, ArrowColumn]:
        return {
            name: ArrowColumn(self.base.column(name).chunk(0) if self.base.num_rows else pa.array([]),
                              self.delta[name].view)
            for name in self.base.column_names
        }  # fmt: skip
