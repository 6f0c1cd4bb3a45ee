"""The tolerant shapes of optional catalog fields: each accepted alternative is named and counted.

Real exports disagree on shapes: `tone` as one string, `products` as one object, `created_at` without a zone
or as epoch seconds, `ai_disclosure` as a label, numbers as numeric strings. `indexer/schema.py` stays the one
schema; its fields run the `before` validators below, which normalise a value and note the change in the
validation context. Three kinds of change:

- `normalised`: a documented alternative shape, nothing lost (string -> list, object -> list, a disclosure
  label kept next to its derived bool, a naive or epoch timestamp read as UTC);
- `coerced`: a type conversion (`"1200"` -> 1200, `"true"` -> true, 12.0 -> 12, 7 -> "7");
- `dropped`: the value fits no accepted shape; the record is kept without that field's typed value.

The record as given is stored verbatim next to the normalised one, so nothing is ever lost. `--strict` rejects
records with `coerced` or `dropped` changes (and dangling parents); `normalised` shapes are part of the format.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationInfo

NORMALISED, COERCED, DROPPED = "normalised", "coerced", "dropped"
STRICT_REJECTS = (COERCED, DROPPED)
EXAMPLES_PER_REASON = 3

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TRUE, _FALSE = {"true", "yes", "1", "y", "on"}, {"false", "no", "0", "n", "off"}
# Disclosure labels that say the clip is *not* synthetic; any other label discloses AI involvement.
_NOT_AI = {"none", "no", "false", "not ai-generated", "human-made", "human made", "not ai generated"}


@dataclass(frozen=True)
class Change:
    field: str  # dotted path without list positions, e.g. "provenance.ai_disclosure"
    kind: str  # normalised, coerced or dropped
    reason: str


class DropValue(ValueError):
    """Raised by a validator whose value fits no accepted shape: the reader drops the field and retries."""


def note(info: ValidationInfo, path: str, kind: str, reason: str) -> None:
    changes = (info.context or {}).get("changes")
    if changes is not None:
        changes.append(Change(path, kind, reason))


def _path(info: ValidationInfo, prefix: str) -> str:
    return f"{prefix}.{info.field_name}" if prefix else str(info.field_name)


# --- validators (bound to a field path by the schema) ---------------------------------------------------------


def as_list(prefix: str = "") -> Any:
    """A single value where a list is expected becomes a one-item list."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return []
        if isinstance(value, (str, dict, int, float)) and not isinstance(value, bool):
            shape = "object" if isinstance(value, dict) else "text" if isinstance(value, str) else "number"
            note(info, _path(info, prefix), NORMALISED, f"one {shape} taken as a one-item list")
            return [value]
        return value

    return check


def as_text(prefix: str = "") -> Any:
    """Numbers where text is expected become text; other shapes are dropped."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            note(info, _path(info, prefix), COERCED, "number taken as text")
            return str(value)
        raise DropValue(f"expected text, got {type(value).__name__}")

    return check


def as_int(prefix: str = "") -> Any:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        number = _number(value)
        if number is None or not number.is_integer():
            raise DropValue(f"expected a whole number, got {value!r}")
        shape = "numeric string" if isinstance(value, str) else "decimal number"
        note(info, _path(info, prefix), COERCED, f"{shape} taken as a whole number")
        return int(number)

    return check


def as_float(prefix: str = "") -> Any:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
        number = _number(value)
        if number is None:
            raise DropValue(f"expected a number, got {value!r}")
        note(info, _path(info, prefix), COERCED, "numeric string taken as a number")
        return number

    return check


def as_bool(prefix: str = "") -> Any:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            note(info, _path(info, prefix), COERCED, "text or number taken as a boolean")
            return text in _TRUE
        raise DropValue(f"expected true or false, got {value!r}")

    return check


def as_datetime(prefix: str = "", strict: bool = False) -> Any:
    """ISO-8601 with or without a zone (none = UTC), or epoch seconds. `strict`: unreadable is an error, not a
    drop (consent dates: dropping a revocation would widen consent)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        parsed = parse_datetime(value)
        if parsed is None:
            message = f"expected an ISO-8601 date-time or epoch seconds, got {value!r}"
            raise ValueError(message) if strict else DropValue(message)
        when, how = parsed
        if how:
            note(info, _path(info, prefix), NORMALISED, how)
        return when

    return check


def parse_datetime(value: Any) -> tuple[datetime, str] | None:
    """The instant `value` names (UTC) and how it was read ("" when it was a zoned ISO string)."""
    number = _number(value)
    if number is not None:
        if not math.isfinite(number) or abs(number) > 1e11:  # beyond year 5000: surely not epoch seconds
            return None
        return datetime.fromtimestamp(number, tz=timezone.utc), "epoch seconds read as UTC"
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc), "no time zone: read as UTC"
    return when.astimezone(timezone.utc), ""


def disclosure(value: Any, info: ValidationInfo) -> Any:
    """`provenance.ai_disclosure`: a bool, or a label kept in `ai_disclosure_label` with a derived bool."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE | _FALSE:
            note(info, "provenance.ai_disclosure", COERCED, "'true'/'false' text taken as a boolean")
            return text in _TRUE
        note(info, "provenance.ai_disclosure", NORMALISED, "disclosure label kept; ai_disclosure derived from it")
        return text not in _NOT_AI
    raise DropValue(f"expected a boolean or a disclosure label, got {type(value).__name__}")


def disclosure_label(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip().lower() not in _TRUE | _FALSE else None


def cameo_ids(value: Any, info: ValidationInfo) -> Any:
    """Cameos as persona ids or objects with `persona_id`. Unreadable cameos reject the record: dropping one
    would make a scene eligible without that persona's consent."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, dict)) else value
    if not isinstance(items, list):
        raise ValueError("expected persona ids or objects with 'persona_id'")
    out = []
    for item in items:
        if isinstance(item, dict):
            if not isinstance(item.get("persona_id"), str):
                raise ValueError("a cameo object needs a 'persona_id' string")
            note(info, "cameos", NORMALISED, "cameo object taken as its persona_id")
            item = item["persona_id"]
        out.append(item)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value.strip())
    return None


# --- the run summary ------------------------------------------------------------------------------------------


@dataclass
class ChangeLog:
    """Changes counted by (kind, field, reason), with the first few `file:line (id)` examples of each."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)  # kind -> records with at least one such change

    def add(self, where: str, changes: list[Change]) -> None:
        for kind in {c.kind for c in changes}:
            self.records[kind] += 1
        for change in changes:
            key = (change.kind, change.field, change.reason)
            self.counts[key] += 1
            shown = self.examples.setdefault(key, [])
            if len(shown) < EXAMPLES_PER_REASON:
                shown.append(where)

    def merge(self, other: ChangeLog) -> None:
        self.counts.update(other.counts)
        self.records.update(other.records)
        for key, shown in other.examples.items():
            mine = self.examples.setdefault(key, [])
            mine.extend(shown[: EXAMPLES_PER_REASON - len(mine)])

    def to_list(self) -> list[dict[str, Any]]:
        return [
            {"kind": k, "field": f, "reason": r, "count": n, "examples": self.examples.get((k, f, r), [])}
            for (k, f, r), n in sorted(self.counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
        ]
