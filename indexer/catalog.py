"""Reading JSON Lines catalogs into validated records, with file and line numbers on every error."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from indexer.errors import CatalogError, RecordError
from indexer.schema import Ad, Consent, Query, Scene

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
    """Valid records (with their line numbers) and the errors of the rejected ones."""

    source: Source
    records: list[R] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # record id -> line number
    errors: list[RecordError] = field(default_factory=list)

    def reject(self, record_id: str, error: RecordError) -> None:
        """Drop an already accepted record (a cross-record check failed)."""
        self.records = [r for r in self.records if _record_id(r) != record_id]
        self.lines.pop(record_id, None)
        self.errors.append(error)


def _record_id(record: BaseModel) -> str:
    for name in ("scene_id", "ad_id", "persona_id", "query_id"):
        if name in type(record).model_fields:
            return str(getattr(record, name))
    raise TypeError(f"{type(record).__name__} has no id field")


def _id_field(model: type[BaseModel]) -> str:
    return next(n for n in ("scene_id", "ad_id", "persona_id", "query_id") if n in model.model_fields)


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


def _validation_error(path: Source, line: int, exc: ValidationError, record_id: str | None) -> RecordError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(record)"
    reason = first["msg"]
    if first["type"] == "missing":
        reason = "required field is missing"
    return RecordError(path, line, where, reason, record_id)


def read_records(path: Source, model: type[R]) -> Loaded[R]:
    """Parse and validate every line; duplicates of an id within the file are errors."""
    loaded: Loaded[R] = Loaded(source=path)
    id_name = _id_field(model)
    for number, line in _iter_lines(path):
        try:
            raw = json.loads(line) if isinstance(line, (str, bytes)) else line
        except json.JSONDecodeError as exc:
            loaded.errors.append(RecordError(path, number, "(line)", f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(raw, dict):
            loaded.errors.append(RecordError(path, number, "(line)", "expected a JSON object"))
            continue
        raw_id = raw.get(id_name) if isinstance(raw.get(id_name), str) else None
        try:
            record = model.model_validate(raw)
        except ValidationError as exc:
            loaded.errors.append(_validation_error(path, number, exc, raw_id))
            continue
        record_id = _record_id(record)
        if record_id in loaded.lines:
            first = loaded.lines[record_id]
            loaded.errors.append(
                RecordError(path, number, id_name, f"duplicate id '{record_id}' (first on line {first})", record_id)
            )
            continue
        loaded.lines[record_id] = number
        loaded.records.append(record)
    return loaded


def check_parents(scenes: Loaded[Scene], stored_ids: Iterable[str]) -> None:
    """Reject scenes whose parent_id is neither in this file nor already indexed, and lineage cycles."""
    known = set(stored_ids) | set(scenes.lines)
    parents = {s.scene_id: s.parent_id for s in scenes.records}
    for scene in list(scenes.records):
        line = scenes.lines[scene.scene_id]
        if scene.parent_id and scene.parent_id not in known:
            reason = f"remix parent '{scene.parent_id}' is not in this catalog or the index"
            scenes.reject(scene.scene_id, RecordError(scenes.source, line, "parent_id", reason, scene.scene_id))
        elif _in_cycle(scene.scene_id, parents):
            reason = "remix lineage forms a cycle"
            scenes.reject(scene.scene_id, RecordError(scenes.source, line, "parent_id", reason, scene.scene_id))


def _in_cycle(start: str, parents: dict[str, str | None]) -> bool:
    seen = {start}
    node = parents.get(start)
    while node is not None:
        if node in seen:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


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
