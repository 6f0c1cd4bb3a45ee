"""Disclosure labels: what a publisher must show with a scene, by the documented rules in `rules/disclosure.toml`.

Facts per scene (verified provenance, catalog claims, cameos) are computed once per snapshot as boolean arrays;
each rule fires where all its facts hold. `ok` means every obligation the index can check is met: a required
machine-readable mark is present and no blocking rule fired. A visible label is the publisher's job to show; the
index says which one (`label`) and why (`reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from indexer.provenance import AI_SOURCE_TYPES, INVALID, NO_CREDENTIAL, TRUSTED, VALID
from indexer.schema import SceneCol
from search.snapshot import ROWWISE, Snapshot

RULES_FILE = Path(__file__).with_name("rules") / "disclosure.toml"
FACTS = ("synthetic", "real_person", "credential_invalid")


@dataclass(frozen=True)
class Rule:
    id: str
    when: tuple[str, ...]
    reason: str
    uses: tuple[str, ...] = ()
    label: str | None = None
    priority: int = 0
    mark_required: bool = False
    blocks: bool = False

    def applies_to(self, use: str) -> bool:
        return not self.uses or use in self.uses


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    rules = []
    for raw in tomllib.loads(path.read_text(encoding="utf-8")).get("rule", []):
        unknown = set(raw.get("when", [])) - set(FACTS)
        if unknown:
            raise ValueError(f"{path}: rule {raw.get('id')} uses unknown facts {sorted(unknown)} (known: {FACTS})")
        rules.append(Rule(**{**raw, "when": tuple(raw["when"]), "uses": tuple(raw.get("uses", ()))}))
    return rules


@dataclass
class Disclosure:
    required: bool  # a visible label must be shown
    label: str | None
    reasons: list[str]  # "rule-id: why", one per rule that fired
    machine_readable_mark: bool  # the scene carries one (verified credential declaring AI)
    mark_required: bool = False
    ok: bool = True  # every obligation the index can check is met
    rules: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "label": self.label,
            "reasons": self.reasons,
            "machine_readable_mark": self.machine_readable_mark,
            "mark_required": self.mark_required,
            "ok": self.ok,
            "rules": self.rules,
        }


@dataclass
class TrustFacts:
    """Per-row facts of one snapshot (built once, cached on the snapshot)."""

    facts: dict[str, np.ndarray]
    credentialed: np.ndarray  # a verified credential (Trusted or Valid) on every media file
    mark: np.ndarray
    state: np.ndarray  # object array: Trusted / Valid / Invalid / "none"
    rules: list[Rule]

    def extended(self, more: TrustFacts) -> TrustFacts:
        """These facts followed by `more` (facts of the rows appended since)."""
        return TrustFacts(
            {name: np.concatenate([values, more.facts[name]]) for name, values in self.facts.items()},
            np.concatenate([self.credentialed, more.credentialed]),
            np.concatenate([self.mark, more.mark]),
            np.concatenate([self.state, more.state]),
            self.rules,
        )

    def fired(self, rule: Rule) -> np.ndarray:
        fired: np.ndarray = np.logical_and.reduce([self.facts[name] for name in rule.when])
        return fired

    @property
    def ok(self) -> np.ndarray:
        ok = np.ones(len(self.mark), dtype=bool)
        for rule in self.rules:
            if rule.blocks or rule.mark_required:
                fired = self.fired(rule)
                ok &= ~fired if rule.blocks else ~fired | self.mark
        return ok

    def for_row(self, row: int, use: str) -> Disclosure:
        fired = [r for r in self.rules if r.applies_to(use) and all(self.facts[f][row] for f in r.when)]
        labelled = sorted((r for r in fired if r.label), key=lambda r: -r.priority)
        mark_required = any(r.mark_required for r in fired)
        mark = bool(self.mark[row])
        ok = not any(r.blocks for r in fired) and (mark or not mark_required)
        return Disclosure(
            required=bool(labelled),
            label=labelled[0].label if labelled else None,
            reasons=[f"{r.id}: {r.reason}" for r in fired],
            machine_readable_mark=mark,
            mark_required=mark_required,
            ok=ok,
            rules=[r.id for r in fired],
        )


def combine(parts: list[Disclosure]) -> Disclosure:
    """One disclosure for several scenes shown together (an ad's creatives): the strictest of each part."""
    if not parts:
        return Disclosure(required=False, label=None, reasons=[], machine_readable_mark=False)
    labelled = [p.label for p in parts if p.label]
    return Disclosure(
        required=any(p.required for p in parts),
        label=max(labelled, key=len) if labelled else None,  # the longer label says more (e.g. real person)
        reasons=list(dict.fromkeys(r for p in parts for r in p.reasons)),
        machine_readable_mark=all(p.machine_readable_mark for p in parts),
        mark_required=any(p.mark_required for p in parts),
        ok=all(p.ok for p in parts),
        rules=list(dict.fromkeys(r for p in parts for r in p.rules)),
    )


def trust_facts(snap: Snapshot) -> TrustFacts:
    """Per-row facts; rows never change once written, so facts built for an earlier snapshot are extended."""
    key = ROWWISE + "trust_facts"
    cached: TrustFacts | None = snap.derived.get(key)
    if cached is None or len(cached.mark) != len(snap):
        start = 0 if cached is None else len(cached.mark)
        part = _build(snap, start)
        cached = part if cached is None else cached.extended(part)
        snap.derived[key] = cached
    return cached


def _build(snap: Snapshot, start: int) -> TrustFacts:
    cols = {name: snap.columns[name][start:] if start else list(snap.columns[name]) for name in _FACT_COLUMNS}
    states = np.array([s or NO_CREDENTIAL for s in cols[SceneCol.C2PA_STATE]], dtype=object)
    sources = cols[SceneCol.C2PA_SOURCE_TYPE]
    credentialed = np.isin(states, [TRUSTED, VALID])
    ai_source = np.array([s in AI_SOURCE_TYPES for s in sources], dtype=bool)
    synthetic = np.array(
        [bool(d) or bool(g) for d, g in zip(cols[SceneCol.AI_DISCLOSURE], cols[SceneCol.GENERATOR], strict=True)],
        dtype=bool,
    )
    facts = {
        "synthetic": synthetic | ai_source,
        "real_person": np.array([bool(c) for c in cols[SceneCol.CAMEOS]], dtype=bool),
        "credential_invalid": states == INVALID,
    }
    return TrustFacts(facts, credentialed, credentialed & ai_source, states, load_rules())


_FACT_COLUMNS = (
    SceneCol.C2PA_STATE,
    SceneCol.C2PA_SOURCE_TYPE,
    SceneCol.AI_DISCLOSURE,
    SceneCol.GENERATOR,
    SceneCol.CAMEOS,
)


def provenance_view(snap: Snapshot, row: int) -> dict[str, Any]:
    """Claims (the catalog's provenance fields) next to facts (read from the media), and where they disagree."""
    cols = snap.columns
    state = cols[SceneCol.C2PA_STATE][row]
    return {
        "claimed": {
            "generator": cols[SceneCol.GENERATOR][row],
            "ai_disclosure": cols[SceneCol.AI_DISCLOSURE][row],
            "ai_disclosure_label": cols[SceneCol.DISCLOSURE_LABEL][row],
        },
        "verified": {
            "c2pa_state": state,
            "codes": list(cols[SceneCol.C2PA_CODES][row] or []),
            "claim_generator": cols[SceneCol.C2PA_GENERATOR][row],
            "digital_source_type": cols[SceneCol.C2PA_SOURCE_TYPE][row],
            "training_mining": list(cols[SceneCol.C2PA_TRAINING][row] or []),
            "binding_ok": cols[SceneCol.C2PA_BINDING][row],
        },
        "mismatches": list(cols[SceneCol.PROVENANCE_FLAGS][row] or []),
    }
