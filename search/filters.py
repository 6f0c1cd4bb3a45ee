"""Structured scene filters (API and CLI): validated values turned into a boolean row mask, never SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from indexer.schema import SceneCol, label
from search.disclosure import trust_facts
from search.snapshot import Snapshot


@dataclass(frozen=True)
class SceneFilters:
    tones: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    times_of_day: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()
    generators: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    # trust layer: disclosure obligations met, credential states (Trusted, Valid, Invalid, none), AI-generated
    disclosure_ok: bool | None = None
    c2pa_states: tuple[str, ...] = ()
    ai_generated: bool | None = None

    def mask(self, snap: Snapshot) -> np.ndarray:
        """Rows passing every given filter; within one filter, any listed value passes."""
        keep = np.ones(len(snap), dtype=bool)
        if self.tones:
            keep &= np.any([snap.tones.column(label(t)) for t in self.tones], axis=0)
        if self.categories:
            keep &= np.any([snap.categories.column(label(c)) for c in self.categories], axis=0)
        if self.brands:
            keep &= np.any([snap.brands.column(b) for b in self.brands], axis=0)
        if self.settings:
            keep &= np.isin(snap.setting.codes, [snap.setting.code(label(s)) for s in self.settings])
        if self.times_of_day:
            keep &= np.isin(snap.time_of_day.codes, [snap.time_of_day.code(label(t)) for t in self.times_of_day])
        for values, column in ((self.creators, SceneCol.CREATOR), (self.generators, SceneCol.GENERATOR)):
            if values:
                keep &= np.array([v in values for v in snap.columns[column]], dtype=bool)
        if self.created_from is not None:
            keep &= snap.created >= np.datetime64(self.created_from.replace(tzinfo=None), "us")
        if self.created_to is not None:
            keep &= snap.created <= np.datetime64(self.created_to.replace(tzinfo=None), "us")
        keep &= self._trust_mask(snap)
        return keep

    def _trust_mask(self, snap: Snapshot) -> np.ndarray:
        keep = np.ones(len(snap), dtype=bool)
        if self.disclosure_ok is None and not self.c2pa_states and self.ai_generated is None:
            return keep
        facts = trust_facts(snap)
        if self.disclosure_ok is not None:
            keep &= facts.ok == self.disclosure_ok
        if self.c2pa_states:
            keep &= np.isin(facts.state, list(self.c2pa_states))
        if self.ai_generated is not None:
            keep &= facts.facts["synthetic"] == self.ai_generated
        return keep
