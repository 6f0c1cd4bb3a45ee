"""Consent eligibility as per-use bitmaps, kept up to date by the rows a change touches, not by the catalog.

The mask for a use is valid over a time window: between the last consent boundary (an expiry or a revocation
time) before it was computed and the next one after. A search inside the window reuses it; the first search
past a boundary recomputes only the rows of the personas whose consent crossed it. A consent write flips
the rows of that persona (persona -> rows index) and publishes a new mask: milliseconds at any catalog size.
Every decision still goes through `search.consent.is_eligible`, the one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from search.consent import ConsentState, is_eligible
from search.segments import Overlay


@dataclass(frozen=True)
class _Mask:
    allowed: np.ndarray  # bool per row: every persona shown consents to the use
    valid_from: datetime
    valid_until: datetime | None  # None: until a consent changes


@dataclass
class ConsentMasks:
    consents: Mapping[str, ConsentState]
    persona_rows: Overlay[str, np.ndarray]  # persona -> rows showing them (dead rows included; masked elsewhere)
    cameos: Sequence[list[str] | None]  # per row: personas shown
    n: int
    _masks: dict[str, _Mask] = field(default_factory=dict)

    @classmethod
    def build(cls, cameos: Sequence[list[str] | None], consents: Mapping[str, ConsentState]) -> ConsentMasks:
        rows: dict[str, list[int]] = {}
        for r, people in enumerate(cameos):
            for persona in people or []:
                rows.setdefault(persona, []).append(r)
        index = Overlay({p: np.array(r, dtype=np.int64) for p, r in rows.items()})
        return cls(consents, index, cameos, len(cameos))

    def eligible(self, use: str, now: datetime) -> np.ndarray:
        """Rows whose cameo consents cover `use` at `now` (read-only: callers copy before changing it)."""
        mask = self._masks.get(use)
        if mask is not None and _inside(mask, now):
            return mask.allowed
        allowed = np.ones(self.n, dtype=bool)
        rows = self._rows_of(self.persona_rows.keys())
        allowed[rows] = self._check(rows, use, now)
        mask = _Mask(allowed, *_window(self.consents.values(), now))
        self._masks[use] = mask
        return allowed

    def extended(
        self, cameos: Sequence[list[str] | None], new_cameos: Sequence[list[str] | None], now: datetime
    ) -> ConsentMasks:
        """The masks with rows appended (`cameos`: the whole column after the append), evaluated at `now`."""
        start, added = self.n, dict[str, list[int]]()
        for r, people in enumerate(new_cameos, start):
            for persona in people or []:
                added.setdefault(persona, []).append(r)
        empty = np.zeros(0, np.int64)
        changes = {p: np.concatenate([self.persona_rows.get(p, empty), r]) for p, r in added.items()}
        out = ConsentMasks(self.consents, self.persona_rows.with_changes(changes), cameos, len(cameos))
        rows = np.array([r for rs in added.values() for r in rs], dtype=np.int64)
        for use, mask in self._masks.items():
            if _inside(mask, now):  # else the next search recomputes it
                new = np.ones(len(cameos) - start, dtype=bool)
                new[rows - start] = out._check(rows, use, now)
                out._masks[use] = _Mask(np.concatenate([mask.allowed, new]), mask.valid_from, mask.valid_until)
        return out

    def with_consents(
        self, consents: Mapping[str, ConsentState], changed: Iterable[str], now: datetime
    ) -> ConsentMasks:
        """New consent records for `changed` personas: only their rows are evaluated again (at `now`)."""
        out = ConsentMasks(consents, self.persona_rows, self.cameos, self.n)
        rows = self._rows_of(changed)
        for use, mask in self._masks.items():
            if _inside(mask, now):  # the other personas answer at `now` as they did when it was computed
                allowed = mask.allowed.copy()
                allowed[rows] = out._check(rows, use, now)
                out._masks[use] = _Mask(allowed, *_window(consents.values(), now))
        return out

    def _rows_of(self, personas: Iterable[str]) -> np.ndarray:
        parts = [self.persona_rows[p] for p in personas if p in self.persona_rows]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def _check(self, rows: np.ndarray, use: str, now: datetime) -> np.ndarray:
        return np.array([is_eligible(self.cameos[int(r)] or [], use, self.consents, now) for r in rows], dtype=bool)


def _inside(mask: _Mask, now: datetime) -> bool:
    return now >= mask.valid_from and (mask.valid_until is None or now < mask.valid_until)


def _window(consents: Iterable[ConsentState], now: datetime) -> tuple[datetime, datetime | None]:
    """[last boundary <= now, first boundary > now): every consent answers the same anywhere inside it."""
    times = [t for c in consents for t in (c.expires_at, c.revoked_at) if t is not None]
    earlier = [t for t in times if t <= now]
    later = [t for t in times if t > now]
    return (max(earlier) if earlier else datetime.min.replace(tzinfo=now.tzinfo)), (min(later) if later else None)
