"""Reading JSON Lines catalogs into validated records, with file and line numbers on every error."""

from __future__ import annotations

import codecs
import copy
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from indexer.coerce import DROPPED, Change, ChangeLog
from indexer.errors import CatalogError, RecordError
from indexer.schema import STRICT_FIELDS, Ad, Consent, Query, Scene

R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Inline:
    """Records that arrive in memory (an API batch): numbered from 1 in errors like file lines."""

    name: str  # shown where a file name would be, e.g. "request"
    items: Sequence[Any]  # JSON objects, or JSON text
    base: Path  # the folder media paths are relative to

    def __str__(self) -> str:
        return self.name


Source = Path | Inline


def base_folder(source: Source) -> Path:
    return source.base if isinstance(source, Inline) else source.parent


@dataclass
class Loaded(Generic[R]):
    """Valid records (with line numbers and the objects as given) and the errors of the rejected ones."""

    source: Source
    records: list[R] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # record id -> line number
    errors: list[RecordError] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # record id -> the JSON object as given
    changes: dict[str, list[Change]] = field(default_factory=dict)  # record id -> tolerated shape changes

    def reject(self, record_id: str, error: RecordError) -> None:
        """Drop an already accepted record (a cross-record check failed)."""
        self.records = [r for r in self.records if record_id_of(r) != record_id]
        self.lines.pop(record_id, None)
        self.sources.pop(record_id, None)
        self.changes.pop(record_id, None)
        self.errors.append(error)

    def change_log(self) -> ChangeLog:
        log = ChangeLog()
        for record_id, changes in self.changes.items():
            log.add(f"{self.source}:{self.lines[record_id]} ({record_id})", changes)
        return log


@dataclass
class Parsed(Generic[R]):
    """One catalog line: a record (with the changes its shapes needed), or the error that rejected it."""

    line: int
    record: R | None = None
    source: dict[str, Any] | None = None
    changes: list[Change] = field(default_factory=list)
    error: RecordError | None = None


ID_FIELDS = ("scene_id", "ad_id", "persona_id", "query_id")
MAX_DROPS = 32  # a record needing more dropped fields than this is rejected as unreadable


def record_id_of(record: BaseModel) -> str:
    for name in ID_FIELDS:
        if name in type(record).model_fields:
            return str(getattr(record, name))
    raise TypeError(f"{type(record).__name__} has no id field")


def id_field(model: type[BaseModel]) -> str:
    return next(n for n in ID_FIELDS if n in model.model_fields)


def _iter_lines(path: Source) -> Iterator[tuple[int, Any]]:
    if isinstance(path, Inline):
        yield from enumerate(path.items, start=1)
        return
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    yield number, line
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def scan(path: Source) -> int:
    """Lines in a catalog (for the progress bar), counted without parsing; a missing or non-UTF-8 file fails
    here, before anything is written."""
    if isinstance(path, Inline):
        return len(path.items)
    decoder, lines, offset = codecs.getincrementaldecoder("utf-8")(), 0, 0
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                decoder.decode(block)
                lines, offset = lines + block.count(b"\n"), offset + len(block)
            decoder.decode(b"", final=True)
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text ({exc.reason} at byte {offset + exc.start})") from exc
    return lines


def _reason(error: Any) -> str:
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _drop(data: Any, loc: tuple[Any, ...]) -> bool:
    """Remove the value at `loc` from the nested object; False when there is nothing there to remove."""
    for key in loc[:-1]:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        del data[loc[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def parse_record(source: Source, number: int, line: Any, model: type[R]) -> Parsed[R]:
    """Validate one line. A bad optional field is dropped (and noted) and the rest validated again; a bad
    required or safety-relevant field (`schema.STRICT_FIELDS`) rejects the record."""
    try:
        raw = json.loads(line) if isinstance(line, (str, bytes)) else line
    except json.JSONDecodeError as exc:
        return Parsed(
            number, error=RecordError(source, number, "(line)", f"invalid JSON: {exc.msg} at column {exc.colno}")
        )
    if not isinstance(raw, dict):
        return Parsed(number, error=RecordError(source, number, "(line)", "expected a JSON object"))
    raw_id = raw.get(id_field(model)) if isinstance(raw.get(id_field(model)), str) else None
    strict, data = STRICT_FIELDS.get(model, frozenset()), raw
    dropped: list[Change] = []
    for _ in range(MAX_DROPS):
        changes: list[Change] = []
        try:
            record = model.model_validate(data, context={"changes": changes})
            return Parsed(number, record, raw, dropped + changes)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = tuple(first["loc"])
            where = ".".join(str(p) for p in loc) or "(record)"
            if not loc or loc[0] in strict:
                return Parsed(number, error=RecordError(source, number, where, _reason(first), raw_id))
            # a missing sub-field (a product without a sku) drops the item that lacks it
            target = loc[:-1] if first["type"] == "missing" and len(loc) > 1 else loc
            if data is raw:
                data = copy.deepcopy(raw)  # the record as given stays untouched for source_json
            if not _drop(data, target):
                return Parsed(number, error=RecordError(source, number, where, _reason(first), raw_id))
            path = ".".join(str(p) for p in target if not isinstance(p, int))
            dropped.append(Change(path, DROPPED, _reason(first)))
    return Parsed(number, error=RecordError(source, number, "(record)", "too many unreadable fields", raw_id))


def iter_records(path: Source, model: type[R]) -> Iterator[Parsed[R]]:
    for number, line in _iter_lines(path):
        yield parse_record(path, number, line, model)


def collect(path: Source, parsed: Iterable[Parsed[R]], seen: dict[str, int] | None = None) -> Loaded[R]:
    """Parsed lines into a Loaded batch; an id already in `seen` (earlier in the file) is a duplicate."""
    loaded: Loaded[R] = Loaded(source=path)
    seen = {} if seen is None else seen
    for item in parsed:
        if item.error is not None or item.record is None:
            loaded.errors.append(item.error or RecordError(path, item.line, "(line)", "unreadable"))
            continue
        record_id = record_id_of(item.record)
        if record_id in seen:
            reason = f"duplicate id '{record_id}' (first on line {seen[record_id]})"
            loaded.errors.append(RecordError(path, item.line, id_field(type(item.record)), reason, record_id))
            continue
        seen[record_id] = item.line
        loaded.lines[record_id] = item.line
        loaded.records.append(item.record)
        loaded.sources[record_id] = item.source or {}
        if item.changes:
            loaded.changes[record_id] = item.changes
    return loaded


def read_records(path: Source, model: type[R]) -> Loaded[R]:
    """Parse and validate every line of a (small) file at once; duplicates of an id are errors."""
    return collect(path, iter_records(path, model))


class Lineage:
    """Remix-parent checks across the chunks of a run. A cycle is rejected at the record that would close it;
    a parent that is not indexed (yet) is a lineage gap: the scene is kept with its parent_id, and its family
    links up when the parent arrives (later in the file or in a later run)."""

    def __init__(self, stored_parents: dict[str, str], stored_ids: set[str]):
        self.parents = dict(stored_parents)  # scene id -> parent id, stored and accepted in this run
        self.known = set(stored_ids)

    def check(self, scenes: Loaded[Scene]) -> None:
        for scene in list(scenes.records):
            line = scenes.lines[scene.scene_id]
            parent = scene.parent_id
            if parent and self._closes_cycle(scene.scene_id, parent):
                reason = "remix lineage forms a cycle"
                scenes.reject(scene.scene_id, RecordError(scenes.source, line, "parent_id", reason, scene.scene_id))
            else:
                self.known.add(scene.scene_id)
                if parent:
                    self.parents[scene.scene_id] = parent
                else:
                    self.parents.pop(scene.scene_id, None)

    def forget(self, scene_ids: Iterable[str]) -> None:
        """Scenes rejected after the lineage check (a media file failed to decode)."""
        for scene_id in scene_ids:
            self.known.discard(scene_id)
            self.parents.pop(scene_id, None)

    def _closes_cycle(self, scene_id: str, parent: str) -> bool:
        seen, node = {scene_id}, parent
        while node is not None:
            if node in seen:
                return True
            seen.add(node)
            node = self.parents.get(node)  # type: ignore[assignment]
        return False

    def gaps(self) -> dict[str, str]:
        """Scenes whose parent is in neither the index nor this run: scene id -> parent id."""
        return {s: p for s, p in self.parents.items() if p not in self.known}


def check_media(scenes: Loaded[Scene], root: Path) -> dict[str, list[Path]]:
    """Resolve media paths relative to the scenes file; they must exist inside `root`."""
    root = root.resolve()
    resolved: dict[str, list[Path]] = {}
    base = base_folder(scenes.source)
    for scene in list(scenes.records):
        paths: list[Path] = []
        for i, name in enumerate(scene.media):
            path = (base / name).resolve()
            reason = None
            if not path.is_relative_to(root):
                reason = f"path '{name}' escapes the catalog folder {root}"
            elif not path.is_file():
                reason = f"file '{name}' does not exist"
            if reason:
                line = scenes.lines[scene.scene_id]
                scenes.reject(scene.scene_id, RecordError(scenes.source, line, f"media.{i}", reason, scene.scene_id))
                break
            paths.append(path)
        else:
            resolved[scene.scene_id] = paths
    return resolved


def check_creatives(ads: Loaded[Ad], scene_ids: Iterable[str]) -> None:
    """Ads may only name creative scenes that exist."""
    known = set(scene_ids)
    for ad in list(ads.records):
        missing = [s for s in ad.creative_scene_ids if s not in known]
        if missing:
            line = ads.lines[ad.ad_id]
            reason = f"creative scene '{missing[0]}' is not in the catalog or the index"
            ads.reject(ad.ad_id, RecordError(ads.source, line, "creative_scene_ids", reason, ad.ad_id))


def read_scenes(path: Source) -> Loaded[Scene]:
    return read_records(path, Scene)


def read_ads(path: Source) -> Loaded[Ad]:
    return read_records(path, Ad)


def read_consents(path: Source) -> Loaded[Consent]:
    return read_records(path, Consent)


def read_queries(path: Path) -> list[Query]:
    """Queries feed batch search and evaluation, where a bad line is fatal."""
    loaded = read_records(path, Query)
    if loaded.errors:
        raise CatalogError(str(loaded.errors[0]), loaded.errors)
    return loaded.records
