"""LanceDB tables (the source of truth) and the index manifest.

A write to several tables goes through `Store.transaction()`: the table versions are noted first and
restored if anything fails, so a failed run never leaves a half-applied catalog behind.
The manifest (encoders, dimensions, schema version, CLIP status) is a JSON file replaced atomically (one PUT on
object storage; see `indexer/location.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from indexer import schema
from indexer.errors import IndexMismatchError, IndexNotFoundError, WriteConflictError
from indexer.lance_ann import LanceAnn
from indexer.location import IndexLocation

log = logging.getLogger(__name__)
READERS_KEPT = 8  # read-only handles at fixed versions (`Store.reader`)
MANIFEST = "manifest.json"
# Lance records the keys a merge-insert adds when its ON column carries this field metadata, so two writers
# inserting the same new id concurrently conflict (and Lance retries one as an update) instead of both
# appending a row. Tables created before it lack the metadata and keep the old behaviour.
PRIMARY_KEY = {"lance-schema:unenforced-primary-key": "true"}
MERGE_ALL_ROWS = 1_000  # batches up to this size (API writes) upsert every row: safe against racing writers
_FTS_COLUMNS = ((schema.SCENES, schema.SceneCol.DOC), (schema.ADS, schema.AdCol.DOC))
TABLES_DIR = "tables"


@dataclass
class ClipInfo:
    arch: str
    pretrained: str  # an open_clip tag or an absolute checkpoint path
    id: str | None = None  # None when the weights could not be loaded
    dim: int | None = None
    status: str = "loaded"


@dataclass
class Manifest:
    schema_version: int
    text_encoder: str
    text_dim: int
    clip: ClipInfo | None = None
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    updated_at: str = ""
    table_versions: dict[str, int] = field(default_factory=dict)

    @property
    def clip_dim(self) -> int | None:
        return self.clip.dim if self.clip and self.clip.id else None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        clip = ClipInfo(**data["clip"]) if data.get("clip") else None
        return cls(**{**data, "clip": clip})


def write_json_atomic(path: Path, data: Any) -> None:
    IndexLocation.of(path.parent).write_json(path.name, data)


def read_manifest(db: Path | IndexLocation) -> Manifest:
    path = IndexLocation.of(db)
    data = path.read_json(MANIFEST)
    if data is None:
        raise IndexNotFoundError(f"no visual-intent index at {path} (missing {MANIFEST}); run `visual-intent index`")
    manifest = Manifest.from_json(data)
    if manifest.schema_version != schema.SCHEMA_VERSION:
        raise IndexMismatchError(
            f"index at {path} has schema version {manifest.schema_version}, this visual-intent reads "
            f"{schema.SCHEMA_VERSION}; re-index with `visual-intent index --rebuild`"
        )
    return manifest


def check_compatible(manifest: Manifest, path: Path | IndexLocation, text_encoder: str, clip_id: str | None) -> None:
    """Vectors from different encoders cannot share an index."""
    if manifest.text_encoder != text_encoder:
        raise IndexMismatchError(
            f"index at {path} was built with text encoder '{manifest.text_encoder}', not '{text_encoder}'; "
            "use another --db or pass --rebuild"
        )
    stored = manifest.clip.id if manifest.clip else None
    if stored != clip_id:
        raise IndexMismatchError(
            f"index at {path} was built with CLIP '{stored or 'none (text only)'}', "
            f"now '{clip_id or 'none (text only)'}'; use another --db or pass --rebuild"
        )


class Store:
    """Open tables of one index (a folder, or a prefix on object storage)."""

    def __init__(self, path: Path | IndexLocation, manifest: Manifest):
        self.location = IndexLocation.of(path)
        self.manifest = manifest
        # strong consistency: every handle sees the latest commit of any writer (a version check, ~0.3 ms
        # locally, one LIST on object storage), which also makes opening a handle cheap enough to do per call
        self.db = lancedb.connect(**self.location.connect_args(TABLES_DIR), read_consistency_interval=timedelta(0))
        self._handles: dict[str, Any] = {}
        self._readers: dict[tuple[str, int], Any] = {}  # see `reader`
        self._seen: dict[str, int] = {}  # the versions last read
        # how this process serves the dense text base: None = the FAISS layer in memory, else Lance's IVF_PQ
        # index on the scenes table (`Engine.open(ann="lance")`; see indexer.lance_ann)
        self.lance_ann: LanceAnn | None = None
        self._transactions: list[dict[str, set[int]]] = []  # versions committed inside each open transaction
        self._schemas = {
            schema.SCENES: _keyed(schema.scenes_schema(manifest.text_dim, manifest.clip_dim), schema.SceneCol.ID),
            schema.SHOTS: schema.shots_schema(manifest.clip_dim),
            schema.ADS: _keyed(schema.ads_schema(manifest.text_dim), schema.AdCol.ID),
            schema.CONSENTS: _keyed(schema.consents_schema(), schema.ConsentCol.ID),
        }

    @property
    def path(self) -> Path:
        """The index folder (local indexes only; see `location`)."""
        return self.location.local_path

    @classmethod
    def open(cls, path: Path | IndexLocation) -> Store:
        return cls(path, read_manifest(path))

    @classmethod
    def create(cls, path: Path | IndexLocation, manifest: Manifest) -> Store:
        location = IndexLocation.of(path)
        location.require_conditional_put()
        if location.is_local:
            location.local_path.mkdir(parents=True, exist_ok=True)
        store = cls(location, manifest)
        for name, table_schema in store._schemas.items():
            store.db.create_table(name, schema=table_schema, exist_ok=True)
        store.save_manifest()
        return store

    def table(self, name: str) -> Any:
        """A handle on the latest version (shared: never check it out; see `pinned`)."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = self.db.open_table(name)
        return handle

    def side_table(self, name: str, table_schema: pa.Schema) -> Any:
        """A table next to the catalog tables (e.g. the write log), created on first use."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = self.db.create_table(name, schema=table_schema, exist_ok=True)
        return handle

    def pinned(self, name: str, version: int) -> Any:
        """A handle of its own, checked out at `version`."""
        handle = self.db.open_table(name)
        handle.checkout(version)
        return handle

    def reader(self, name: str, version: int) -> Any:
        """A shared read-only handle checked out at `version`. A version never changes, so the last few are kept
        (a write's reader re-reads and the next snapshot's searches share one; opening costs a few ms). Never
        write or restore through it (see `pinned`)."""
        key = (name, int(version))
        handle = self._readers.get(key)
        if handle is None:
            handle = self._readers[key] = self.pinned(name, version)
            while len(self._readers) > READERS_KEPT:
                self._readers.pop(next(iter(self._readers)))
        return handle

    def versions(self) -> dict[str, int]:
        try:
            current = {name: int(self.table(name).version) for name in schema.TABLES}
        except Exception:  # the folder was replaced (a rebuild swapped it in): open the tables again
            self._handles.clear()
            current = {name: int(self.table(name).version) for name in schema.TABLES}
        if any(current[name] < self._seen.get(name, 0) for name in current):
            self._readers.clear()  # a rebuilt folder numbers its versions anew: kept readers are of the old one
        self._seen = current
        return current

    @property
    def last_versions(self) -> dict[str, int]:
        """The table versions this store read last (no LanceDB call; `versions` reads them)."""
        return self._seen or self.versions()

    def save_manifest(self, versions: dict[str, int] | None = None) -> None:
        """Save the manifest with the table versions it reflects (`versions`, when the caller just read them)."""
        self.manifest.updated_at = datetime.now(timezone.utc).isoformat()
        self.manifest.table_versions = versions or self.versions()
        self.location.write_json(MANIFEST, asdict(self.manifest))

    def ids(self, name: str) -> list[str]:
        column = schema.ID_COLUMN[name]
        return [str(v) for v in self.columns(name, [column]).column(column).to_pylist()]

    def columns(self, name: str, cols: list[str], where: str | None = None, version: int | None = None) -> pa.Table:
        """Read some columns of every row (or of the rows matching `where`), at `version` or the latest."""
        table = self.table(name) if version is None else self.reader(name, version)
        query = table.search().select(cols)
        if where:
            query = query.where(where)
        return query.limit(None).to_arrow()

    def count(self, name: str) -> int:
        return int(self.table(name).count_rows())

    def upsert(self, name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._merge(name, pa.Table.from_pylist(rows, schema=self._schemas[name]))

    def write_scenes(self, rows: list[dict[str, Any]], text_vecs: np.ndarray, new: list[int]) -> None:
        """Scene rows plus their text vectors (column-wise: no Python float lists); rows at the positions in
        `new` are not in the table yet and are appended, the others replace their stored row by id."""
        if not rows:
            return
        table_schema = self._schemas[schema.SCENES]
        scalar = pa.Table.from_pylist(
            rows, schema=pa.schema([f for f in table_schema if f.name != schema.SceneCol.TEXT_VEC])
        )
        flat = pa.array(np.ascontiguousarray(text_vecs, dtype=np.float32).ravel())
        vectors = pa.FixedSizeListArray.from_arrays(flat, self.manifest.text_dim)
        data = scalar.append_column(table_schema.field(schema.SceneCol.TEXT_VEC), vectors).select(table_schema.names)
        is_new = np.zeros(len(rows), dtype=bool)
        if len(rows) > MERGE_ALL_ROWS and self.location.is_local:  # bulk ingest: appending is cheaper
            is_new[new] = True
        table = self.table(schema.SCENES)
        if is_new.any():
            self._note(schema.SCENES, table.add(data.filter(pa.array(is_new)), on_bad_vectors="null"))
        if not is_new.all():
            self._merge(schema.SCENES, data.filter(pa.array(~is_new)))

    def _merge(self, name: str, data: pa.Table) -> None:
        with conflicts(name):
            result = (
                self.table(name)
                .merge_insert(schema.ID_COLUMN[name])
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(
                    data,
                    on_bad_vectors="null",  # a scene without visual media has a null CLIP vector, by design
                )
            )
        self._note(name, result)

    def replace_shots(self, scene_ids: list[str], rows: list[dict[str, Any]]) -> None:
        table = self.table(schema.SHOTS)
        # a delete commits a version even when nothing matches, and readers re-read shots when the table
        # moved: a text-only write of scenes without stored shots (the usual API write) leaves it alone
        if scene_ids and (rows or table.count_rows(in_filter(schema.ShotCol.SCENE, scene_ids))):
            with conflicts(schema.SHOTS):
                self._note(schema.SHOTS, table.delete(in_filter(schema.ShotCol.SCENE, scene_ids)))
        if rows:
            shots = pa.Table.from_pylist(rows, schema=self._schemas[schema.SHOTS])
            self._note(schema.SHOTS, table.add(shots, on_bad_vectors="null"))

    def delete(self, name: str, ids: list[str]) -> None:
        if ids:
            self._note(name, self.table(name).delete(in_filter(schema.ID_COLUMN[name], ids)))
            if name == schema.SCENES:
                self._note(schema.SHOTS, self.table(schema.SHOTS).delete(in_filter(schema.ShotCol.SCENE, ids)))

    def rebuild_fts(self) -> None:
        from lancedb.index import FTS

        for name, column in _FTS_COLUMNS:
            if self.count(name):
                self.table(name).create_index(column, config=FTS(), replace=True)

    def index_keys(self) -> None:
        """B-tree indexes on the scene id columns, so a small write or a reader following it looks up its rows
        instead of scanning the table (at 1M scenes: ~15 ms instead of ~300 ms per lookup)."""
        from lancedb.index import BTree

        for name, column in ((schema.SCENES, schema.SceneCol.ID), (schema.SHOTS, schema.ShotCol.SCENE)):
            table = self.table(name)
            if self.count(name) and not any(column in i.columns for i in table.list_indices()):
                table.create_index(column, config=BTree())

    def fts_stale(self) -> bool:
        """True when a table has rows its full-text index does not cover (or no index at all), e.g. after a
        run that stopped between its last chunk and the index build."""
        for name, _ in _FTS_COLUMNS:
            table = self.table(name)
            if not self.count(name):
                continue
            fts = [i for i in table.list_indices() if i.index_type == "FTS"]
            if not fts or table.index_stats(fts[0].name).num_unindexed_rows:
                return True
        return False

    def _note(self, name: str, result: Any) -> None:
        """Remember a version this store committed, for the open transactions (see `transaction`)."""
        version = result if isinstance(result, int) else getattr(result, "version", None)
        for frame in self._transactions:
            frame.setdefault(name, set()).add(int(version) if version is not None else -1)

    @contextmanager
    def transaction(self, before: dict[str, int] | None = None) -> Iterator[None]:
        """Restore every table to its version before the block (`before`, when the caller just read them) if
        the block raises. A table another writer (a replica) committed to meanwhile is left as it is: restoring
        it would undo that writer's commit."""
        before = before or self.versions()
        ours: dict[str, set[int]] = {}
        self._transactions.append(ours)
        try:
            yield
        except BaseException:
            for name, version in before.items():
                current = int(self.table(name).version)
                if current == version:
                    continue
                if set(range(version + 1, current + 1)) <= ours.get(name, set()):
                    self.pinned(name, version).restore()
                    self._note(name, int(self.table(name).version))  # an enclosing transaction's, too
                else:
                    log.warning("not rolling back '%s' (%d -> %d): another writer committed meanwhile",
                                name, version, current)  # fmt: skip
            raise
        finally:
            self._transactions = [frame for frame in self._transactions if frame is not ours]


@contextmanager
def conflicts(name: str) -> Iterator[None]:
    """Lance's commit conflict (after its own retries) as a typed error the API answers with 409."""
    try:
        yield
    except (OSError, RuntimeError, ValueError) as exc:
        if "conflict" not in str(exc).lower():
            raise
        raise WriteConflictError(
            f"another writer changed the same rows of '{name}' at the same time; nothing of this write was "
            "kept, retry it"
        ) from exc


def _keyed(table_schema: pa.Schema, column: str) -> pa.Schema:
    """The schema with `column` declared as Lance's (unenforced) primary key."""
    index = table_schema.get_field_index(column)
    return table_schema.set(index, table_schema.field(index).with_metadata(PRIMARY_KEY))


def to_matrix(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A fixed-size-list vector column as a (rows, dim) float32 matrix."""
    rows = len(column)
    if rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.asarray(array.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(rows, dim)


def sql_string(value: str) -> str:
    """Quote a value for a LanceDB filter; ids are also pattern-checked by the schema."""
    return "'" + value.replace("'", "''") + "'"


def in_filter(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(sql_string(v) for v in values)})"
