"""The controlled vocabulary of scene context (settings, time of day, weather, tone, product category).

Loaded from `vocab/labels.toml`. Lexicon matching finds labels named in text; `nearest` resolves what the
lexicon misses by embedding similarity to the label descriptions. The indexer uses it to infer missing
slots and the query layer to parse intent frames, so both sides speak the same labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import tomllib

from indexer.encoders import Encoder

DEFAULT_VOCAB = Path(__file__).parent / "vocab" / "labels.toml"
SLOTS = ("setting", "time_of_day", "weather", "tone", "category")


@dataclass(frozen=True)
class Label:
    slot: str
    name: str
    description: str
    terms: tuple[str, ...]

    @property
    def words(self) -> str:
        """Readable form used in document text: 'golden_hour' -> 'golden hour'."""
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class Hit:
    label: Label
    term: str
    start: int
    end: int


class Vocabulary:
    def __init__(self, labels: list[Label]):
        self.labels = labels
        self.by_slot: dict[str, list[Label]] = {slot: [] for slot in SLOTS}
        for item in labels:
            self.by_slot.setdefault(item.slot, []).append(item)
        self._vectors: dict[str, dict[str, np.ndarray]] = {}

    @classmethod
    def load(cls, path: Path = DEFAULT_VOCAB) -> Vocabulary:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        labels = [
            Label(slot, name, spec["description"], tuple(t.lower() for t in spec.get("terms", [])))
            for slot, entries in data.items()
            for name, spec in entries.items()
        ]
        return cls(labels)

    @cached_property
    def _pattern(self) -> tuple[re.Pattern[str], dict[str, list[Label]]]:
        owners: dict[str, list[Label]] = {}
        for item in self.labels:
            for term in dict.fromkeys((*item.terms, item.words)):  # a label named as its own term counts once
                owners.setdefault(term, []).append(item)
        # longest first, so "late afternoon" wins over "afternoon"
        alternation = "|".join(re.escape(t) for t in sorted(owners, key=len, reverse=True))
        # a hyphen is a boundary ("drizzle-slick" names drizzle); longer hyphenated terms still win
        return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)"), owners

    def find(self, text: str, slot: str | None = None) -> list[Hit]:
        """Lexicon hits in reading order, non-overlapping."""
        pattern, owners = self._pattern
        hits = []
        for match in pattern.finditer(text.lower()):
            for item in owners[match.group(0)]:
                if slot is None or item.slot == slot:
                    hits.append(Hit(item, match.group(0), match.start(), match.end()))
        return hits

    def label_vectors(self, slot: str, encoder: Encoder) -> tuple[list[Label], np.ndarray]:
        labels = self.by_slot[slot]
        cache = self._vectors.setdefault(encoder.id, {})
        if slot not in cache:
            cache[slot] = encoder.encode([f"{item.words}: {item.description}" for item in labels])
        return labels, cache[slot]

    def nearest(self, vectors: np.ndarray, slot: str, encoder: Encoder) -> tuple[list[Label], np.ndarray]:
        """Similarity of each row of `vectors` to every label of `slot` (rows x labels)."""
        labels, label_vecs = self.label_vectors(slot, encoder)
        return labels, np.asarray(vectors, dtype=np.float32) @ label_vecs.T
