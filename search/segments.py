"""Append-only row storage shared by successive snapshots (the growing segment of the live index).

A snapshot sees rows [0, n). A write appends rows after n into the same buffers and publishes a snapshot that
sees [0, n + k); the older snapshot keeps its length, so searches in flight never see a half-applied batch and
nothing they read is ever mutated. Rows are never changed in place: a replaced or deleted scene's row is marked
in the tombstone bitmap (copied on write: one bit-sized byte per row) and a replacement is a new row.

Buffers grow by doubling, so appending k rows costs O(k) amortised, not O(catalog). If two snapshots extend the
same buffer from different lengths (a fork: a compaction rebased meanwhile), the second one copies first.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import numpy as np

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Shared:
    """A buffer and how many of its rows some snapshot already uses."""

    def __init__(self, data: Any, used: int):
        self.data = data
        self.used = used


@dataclass(frozen=True)
class GrowingArray:
    """A numpy array (1-D, or 2-D by rows) that grows by appending rows."""

    shared: _Shared
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> GrowingArray:
        return cls(_Shared(values, len(values)), len(values))

    @property
    def values(self) -> np.ndarray:
        view: np.ndarray = self.shared.data[: self.n]
        return view

    def extend(self, rows: np.ndarray) -> GrowingArray:
        need = self.n + len(rows)
        data = self.shared.data
        if self.shared.used != self.n or need > len(data):  # fork, or out of room: a new buffer
            capacity = max(need, 2 * self.n, 16)
            grown = np.empty((capacity, *data.shape[1:]), dtype=data.dtype)
            grown[: self.n] = data[: self.n]
            shared = _Shared(grown, self.n)
        else:
            shared = self.shared
        shared.data[self.n : need] = rows
        shared.used = need
        return GrowingArray(shared, need)

    def widen(self, columns: int) -> GrowingArray:
        """A 2-D bool array with more columns (a label first seen in a write): a copy, which is rare."""
        data = self.values
        wide = np.zeros((len(data), columns), dtype=data.dtype)
        wide[:, : data.shape[1]] = data
        return GrowingArray.of(wide)


class RowList(Sequence[T]):
    """A read-only view of the first n items of a list that later snapshots may append to."""

    __slots__ = ("_items", "_n")

    def __init__(self, items: list[T], n: int):
        self._items = items
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._n)
            return self._items[start:stop:step]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError(index)
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return itertools.islice(self._items, self._n)


@dataclass(frozen=True)
class GrowingList:
    shared: _Shared
    n: int

    @classmethod
    def of(cls, values: list[Any]) -> GrowingList:
        return cls(_Shared(values, len(values)), len(values))

    @property
    def view(self) -> RowList[Any]:
        return RowList(self.shared.data, self.n)

    def extend(self, values: Iterable[Any]) -> GrowingList:
        shared = self.shared
        if shared.used != self.n or len(shared.data) != self.n:  # fork: copy what this snapshot sees
            shared = _Shared(shared.data[: self.n], self.n)
        shared.data.extend(values)
        shared.used = len(shared.data)
        return GrowingList(shared, shared.used)


class Overlay(Mapping[K, V]):
    """A large immutable base mapping under a small mapping of changes; `None` in the changes hides a base key.

    Copying the overlay copies only the changes, which compaction keeps small."""

    __slots__ = ("_base", "_changes", "_size")

    def __init__(self, base: Mapping[K, V], changes: dict[K, V | None] | None = None):
        self._base = base
        self._changes: dict[K, V | None] = changes or {}
        hidden = sum(1 for k, v in self._changes.items() if v is None and k in base)
        added = sum(1 for k, v in self._changes.items() if v is not None and k not in base)
        self._size = len(base) + added - hidden

    def __getitem__(self, key: K) -> V:
        if key in self._changes:
            value = self._changes[key]
            if value is None:
                raise KeyError(key)
            return value
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        if key in self._changes:
            return self._changes[key] is not None
        return key in self._base

    def __iter__(self) -> Iterator[K]:
        for key in self._base:
            if key not in self._changes:
                yield key
        for key, value in self._changes.items():
            if value is not None:
                yield key

    def __len__(self) -> int:
        return self._size

    def with_changes(self, changes: Mapping[K, V | None]) -> Overlay[K, V]:
        return Overlay(self._base, {**self._changes, **changes})

    @property
    def changed(self) -> int:
        return len(self._changes)


@dataclass(frozen=True)
class VectorRows:
    """Row vectors of the base (a view of the ANN layer's own storage: not held twice) and of the delta."""

    base: np.ndarray
    delta: GrowingArray

    def __len__(self) -> int:
        return len(self.base) + self.delta.n

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.base.shape[1]

    def __getitem__(self, rows: Any) -> np.ndarray:
        index = np.asarray(rows, dtype=np.int64)
        if index.ndim == 0:
            r = int(index)
            out: np.ndarray = self.base[r] if r < len(self.base) else self.delta.values[r - len(self.base)]
            return out
        out = np.empty((len(index), self.base.shape[1]), dtype=np.float32)
        in_base = index < len(self.base)
        out[in_base] = self.base[index[in_base]]
        out[~in_base] = self.delta.values[index[~in_base] - len(self.base)]
        return out

    def extend(self, vectors: np.ndarray) -> VectorRows:
        return VectorRows(self.base, self.delta.extend(np.asarray(vectors, dtype=np.float32)))

    @property
    def delta_values(self) -> np.ndarray:
        return self.delta.values
