"""`visual-intent validate`: every check `index` makes, streamed over the catalog, writing nothing.

Also the first pass of `index --strict`, which must see the whole catalog before it writes anything: strict
mode additionally rejects type coercions, dropped values and remix parents found in neither the catalog nor
the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer import catalog
from indexer.catalog import Loaded, Source
from indexer.coerce import STRICT_REJECTS, ChangeLog
from indexer.errors import RecordError
from indexer.schema import Ad, Consent, Scene
from indexer.stream import chunked, media_root

CHUNK = 5_000


@dataclass
class ValidationResult:
    accepted: dict[str, int] = field(default_factory=dict)  # "scenes"/"ads"/"consents" -> records accepted
    errors: list[RecordError] = field(default_factory=list)
    changes: ChangeLog = field(default_factory=ChangeLog)
    lineage_gaps: dict[str, str] = field(default_factory=dict)  # scene id -> parent not in catalog or index

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": rejected_summary(self.errors),
            "changes": self.changes.to_list(),
            "lineage_gaps": len(self.lineage_gaps),
            "errors": [str(e) for e in self.errors],
        }


def rejected_summary(errors: list[RecordError]) -> list[dict[str, Any]]:
    """Rejections grouped by field and reason (the reason without the record-specific values)."""
    groups: dict[tuple[str, str], list[RecordError]] = {}
    for error in errors:
        groups.setdefault((error.field, _generic(error.reason)), []).append(error)
    return [
        {"field": f, "reason": r, "count": len(errs), "examples": [f"{e.source}:{e.line}" for e in errs[:3]]}
        for (f, r), errs in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    ]


def _generic(reason: str) -> str:
    return re.sub(r"'[^']*'", "'…'", reason)


def reject_strict_changes(loaded: Loaded[Any]) -> None:
    """--strict: a record that needed a type coercion or lost a value is rejected, naming the field."""
    for record_id, changes in list(loaded.changes.items()):
        bad = next((c for c in changes if c.kind in STRICT_REJECTS), None)
        if bad is not None:
            reason = f"{bad.kind}: {bad.reason} (--strict accepts no coercions)"
            loaded.reject(record_id, RecordError(loaded.source, loaded.lines[record_id], bad.field, reason, record_id))


def validate_catalog(
    scenes: Source | None,
    ads: Source | None,
    consents: Source | None,
    stored_ids: set[str],
    root: Path | None = None,
    strict: bool = False,
) -> ValidationResult:
    """`stored_ids`: the scenes already in the target index (parents and ad creatives may name them)."""
    result = ValidationResult()
    for path in (p for p in (scenes, ads, consents) if p is not None):
        catalog.scan(path)
    if consents is not None:
        _accept(result, "consents", catalog.read_records(consents, Consent), strict)
    lineage = catalog.Lineage({}, set(stored_ids))
    if scenes is not None:
        seen: dict[str, int] = {}
        result.accepted["scenes"] = 0
        for lines in chunked(catalog.iter_records(scenes, Scene), CHUNK):
            loaded = catalog.collect(scenes, lines, seen)
            catalog.check_media(loaded, media_root(scenes, root))
            if strict:
                reject_strict_changes(loaded)  # before the lineage check: a rejected scene is no parent
            lineage.check(loaded)
            _accept(result, "scenes", loaded, strict)
        result.lineage_gaps = lineage.gaps()
        if strict:
            for scene_id, parent in sorted(result.lineage_gaps.items(), key=lambda kv: seen[kv[0]]):
                reason = f"remix parent '{parent}' is not in this catalog or the index (--strict)"
                result.errors.append(RecordError(scenes, seen[scene_id], "parent_id", reason, scene_id))
                result.accepted["scenes"] -= 1
    if ads is not None:
        loaded_ads = catalog.read_records(ads, Ad)
        catalog.check_creatives(loaded_ads, lineage.known)
        _accept(result, "ads", loaded_ads, strict)
    return result


def _accept(result: ValidationResult, kind: str, loaded: Loaded[Any], strict: bool) -> None:
    if strict:
        reject_strict_changes(loaded)
    result.accepted[kind] = result.accepted.get(kind, 0) + len(loaded.records)
    result.errors.extend(loaded.errors)
    result.changes.merge(loaded.change_log())
