"""Scenario query -> intent frame: product, category, setting, time, weather, tone, action, style, negations.

Lexicons (indexer/vocab/labels.toml for scene context, search/lexicons/intent.toml for the rest) fill what
the query names; slots a lexicon misses are resolved by embedding similarity between query phrases and the
label descriptions ("snow-dusted peaks under a starry sky" -> alpine + night). References such as
"this jacket" take the product from the request's sku. No model is downloaded: the text encoder is the one
the index was built with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import tomllib

from indexer.encoders import Encoder
from indexer.vocab import Vocabulary, resolve

LEXICON = Path(__file__).parent / "lexicons" / "intent.toml"
SINGLE_SLOTS = ("setting", "time_of_day", "weather", "category")
# Cosine floors for a query phrase to resolve a slot by embedding (higher than at index time: a query phrase is
# short and a wrong slot costs more than an empty one). Below its floor a phrase gets no slot. The setting floor
# rose from 0.45 to 0.50 with the Places365 vocabulary: the best of 322 labels is a near match by chance more
# often (phrases that name no place given one: 3 of 30 prompt fragments and 3 of 295 SciFact claims at 0.45, 1 and
# 1 at 0.50; `python bench/vocab_margins.py --sweep`). A hard margin over the runner-up label was measured and
# not adopted: it removed right slots and no wrong ones. The margin scales confidence instead (below), taken
# over the best label that is not a near-synonym of the winner (`indexer.vocab.NEAR_SYNONYM`): right answers
# often tie with one (bedroom / hotel_room), which is no doubt about the kind of place.
EMBED_FLOOR = {"setting": 0.50, "time_of_day": 0.45, "weather": 0.5, "tone": 0.42, "category": 0.5}
# An embedding-resolved slot is evidence in proportion to its confidence: how far its similarity clears the
# floor (full at floor + EMBED_SPAN) times how clearly it beats the runner-up label (full at EMBED_MARGIN).
# A guess just over the floor, or one tied with a neighbouring label, can reorder a little, never lead.
EMBED_SPAN = 0.15
EMBED_MARGIN = 0.06
# Cues that exclude a thing ("no logos") rather than deny a statement ("is not associated with"), and the most
# plain words such a cue may name for the frame to take it as an exclusion.
EXCLUSION_CUES = frozenset({"no", "without", "except", "excluding", "minus", "avoid", "nothing", "never"})
MAX_NEGATED_TERMS = 2
_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*")
_PHRASE_BREAK = re.compile(r",|;|\bwith\b|\bin\b|\bat\b|\bunder\b|\bon\b|\bfor\b")


@dataclass
class SlotValue:
    value: str
    source: str  # lexicon | embedding | product
    evidence: str  # the words that gave it
    score: float | None = None
    confidence: float = 1.0  # 1 for lexicon and product slots; see EMBED_SPAN for embedding ones


@dataclass
class Negation:
    slot: str  # a vocabulary slot, "people" or "term"
    value: str
    evidence: str


@dataclass
class IntentFrame:
    text: str
    sku: str | None = None
    product: dict[str, Any] | None = None
    reference: str | None = None
    category: SlotValue | None = None
    setting: SlotValue | None = None
    time_of_day: SlotValue | None = None
    weather: SlotValue | None = None
    tones: list[SlotValue] = field(default_factory=list)
    action: SlotValue | None = None
    style: SlotValue | None = None
    negations: list[Negation] = field(default_factory=list)
    search_text: str = ""
    notes: list[str] = field(default_factory=list)

    def slot_values(self) -> dict[str, list[SlotValue]]:
        """Slot -> the asked values with their source and confidence."""
        out = {slot: [getattr(self, slot)] for slot in SINGLE_SLOTS if getattr(self, slot) is not None}
        if self.tones:
            out["tone"] = list(self.tones)
        return out

    def asked(self) -> dict[str, list[str]]:
        """Slot -> wanted labels, for slot agreement and explanations."""
        out = {slot: [getattr(self, slot).value] for slot in SINGLE_SLOTS if getattr(self, slot) is not None}
        if self.tones:
            out["tone"] = [t.value for t in self.tones]
        return out

    def negated(self, slot: str) -> list[str]:
        return [n.value for n in self.negations if n.slot == slot]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IntentLexicon:
    negation_cues: tuple[str, ...]
    span_breaks: tuple[str, ...]
    negation_lead: frozenset[str]
    reference_cues: tuple[str, ...]
    people: frozenset[str]
    actions: dict[str, tuple[str, ...]]
    styles: dict[str, tuple[str, ...]]
    filler: frozenset[str]


@lru_cache(maxsize=4)
def load_lexicon(path: Path = LEXICON) -> IntentLexicon:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return IntentLexicon(
        negation_cues=tuple(data["negation"]["cues"]),
        span_breaks=tuple(data["negation"]["span_breaks"]),
        negation_lead=frozenset(data["negation"]["lead"]),
        reference_cues=tuple(data["reference"]["cues"]),
        people=frozenset(data["people"]["terms"]),
        actions={k: tuple(v) for k, v in data["action"].items()},
        styles={k: tuple(v) for k, v in data["style"].items()},
        filler=frozenset(data["filler"]["terms"]),
    )


def _negated_spans(text: str, lex: IntentLexicon) -> list[tuple[int, int, str]]:
    """(start, end, cue) of each negated span: from after the cue to the next break."""
    cues = "|".join(re.escape(c) for c in sorted(lex.negation_cues, key=len, reverse=True))
    spans = []
    for match in re.finditer(rf"(?<![\w-])(?:{cues})(?![\w-])", text):
        end = len(text)
        for brk in lex.span_breaks:
            found = text.find(brk, match.end() + 1)
            if found != -1:
                end = min(end, found)
        spans.append((match.end(), end, match.group(0)))
    return spans


def _inside(pos: int, spans: list[tuple[int, int, str]]) -> bool:
    return any(start <= pos < end for start, end, _ in spans)


def embedding_confidence(score: float, runner_up: float, floor: float) -> float:
    """Confidence in [0, 1] of a label resolved by similarity: clearance over the floor x margin over the next."""
    clearance = min(max((score - floor) / EMBED_SPAN, 0.0), 1.0)
    margin = min(max((score - runner_up) / EMBED_MARGIN, 0.0), 1.0)
    return clearance * margin


def _phrase_hit(text: str, table: dict[str, tuple[str, ...]]) -> SlotValue | None:
    for name, terms in table.items():
        for term in terms:
            if re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", text):
                return SlotValue(name, "lexicon", term)
    return None


def query_phrases(text: str, filler: frozenset[str]) -> list[str]:
    """The phrases of a query that the embedding fallback compares with label descriptions."""
    phrases = [p.strip() for p in _PHRASE_BREAK.split(text)]
    return [p for p in phrases if any(w not in filler for w in _WORD.findall(p))]


class IntentParser:
    def __init__(self, vocab: Vocabulary, encoder: Encoder | None, lexicon: IntentLexicon | None = None):
        self.vocab = vocab
        self.encoder = encoder
        self.lex = lexicon or load_lexicon()

    def parse(
        self, text: str, sku: str | None = None, products: Mapping[str, dict[str, Any]] | None = None
    ) -> IntentFrame:
        lowered = " ".join(text.lower().split())
        frame = IntentFrame(text=text, sku=sku)
        spans = self._understood(lowered, _negated_spans(lowered, self.lex))
        self._lexicon_slots(frame, lowered, spans)
        self._negated_words(frame, lowered, spans)
        self._reference(frame, lowered, sku, products or {})
        positive = self._positive_text(lowered, spans)
        product_words = " ".join(filter(None, [(frame.product or {}).get("brand"), (frame.product or {}).get("name")]))
        frame.search_text = " ".join(filter(None, [positive, product_words])).strip() or lowered
        if self.encoder is not None:
            self._embedding_slots(frame, positive)
        frame.action = _phrase_hit(positive, self.lex.actions)
        frame.style = _phrase_hit(positive, self.lex.styles)
        return frame

    def _lexicon_slots(self, frame: IntentFrame, text: str, spans: list[tuple[int, int, str]]) -> None:
        for hit in self.vocab.find(text):
            slot, value = hit.label.slot, hit.label.name
            if _inside(hit.end - 1, spans):
                frame.negations.append(Negation(slot, value, hit.term))
            elif slot == "tone":
                if value not in [t.value for t in frame.tones]:
                    frame.tones.append(SlotValue(value, "lexicon", hit.term))
            elif getattr(frame, slot) is None:
                setattr(frame, slot, SlotValue(value, "lexicon", hit.term))

    def _understood(self, text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
        """The negated spans the frame understands as exclusions.

        A span is understood when it starts with a vocabulary label ("not at night", "no snow"), names people
        ("without people"), or when an exclusion cue names one or two plain words ("no logos": terms to demote).
        Any other negation ("CRP is not predictive of mortality", "teaching hospitals do not provide better care
        than non-teaching hospitals") states a fact the frame cannot model: its words stay in the search text, its
        labels are asked for like any other, and nothing is excluded or demoted."""
        understood = []
        for start, end, cue in spans:
            span = text[start:end]
            words = self._span_words(span)
            people = any(w in self.lex.people for w in words)
            if (
                self._starts_with_label(span)
                or people
                or (cue in EXCLUSION_CUES and 0 < len(words) <= MAX_NEGATED_TERMS)
            ):
                understood.append((start, end, cue))
        return understood

    def _starts_with_label(self, span: str) -> bool:
        head = next((m.start() for m in _WORD.finditer(span) if m.group(0) not in self.lex.negation_lead), None)
        return head is not None and any(hit.start <= head for hit in self.vocab.find(span))  # "at night" too

    def _span_words(self, span: str) -> list[str]:
        return [w for w in _WORD.findall(span) if w not in self.lex.filler and len(w) > 2 and w != "any"]

    def _negated_words(self, frame: IntentFrame, text: str, spans: list[tuple[int, int, str]]) -> None:
        """Record what the understood spans exclude besides labels: people, and plain words to demote."""
        claimed = {n.evidence for n in frame.negations}
        for start, end, _ in spans:
            words = self._span_words(text[start:end])
            people = [w for w in words if w in self.lex.people]
            if people and not any(n.slot == "people" for n in frame.negations):
                frame.negations.append(Negation("people", "people", people[0]))
            for word in words:
                if word not in self.lex.people and word not in claimed and not any(word in c.split() for c in claimed):
                    frame.negations.append(Negation("term", word, word))

    def _reference(
        self, frame: IntentFrame, text: str, sku: str | None, products: Mapping[str, dict[str, Any]]
    ) -> None:
        cues = "|".join(re.escape(c) for c in self.lex.reference_cues)
        match = re.search(rf"\b(?:{cues})((?:\s+[a-z][\w-]*){{1,3}})", text)
        if match:
            # "this leather sofa looks" -> "this leather sofa": stop at the product word when there is one
            hits = self.vocab.find(match.group(0), "category")
            frame.reference = match.group(0)[: hits[0].end] if hits else " ".join(match.group(0).split()[:2])
        if sku is None:
            return
        product = products.get(sku)
        if product is None:
            frame.notes.append(f"unknown sku '{sku}': no scene in the index shows it")
            return
        frame.product = product
        if product.get("category"):
            frame.category = SlotValue(product["category"], "product", sku)

    def _positive_text(self, text: str, spans: list[tuple[int, int, str]]) -> str:
        """The query without its understood negated spans and their cues (unchanged when there are none)."""
        if not spans:
            return text
        keep, cursor = [], 0
        for start, end, cue in sorted(spans):
            keep.append(text[cursor : start - len(cue)])
            cursor = end
        keep.append(text[cursor:])
        return " ".join(" ".join(keep).replace(",", " , ").split()).replace(" ,", ",").strip(" ,")

    def _embedding_slots(self, frame: IntentFrame, positive: str) -> None:
        phrases = query_phrases(positive, self.lex.filler)
        if not phrases:
            return
        assert self.encoder is not None
        # The search text rides along: one encoder call per query (a caching encoder then serves the engine).
        vectors = self.encoder.encode([*phrases, frame.search_text])[: len(phrases)]
        for slot in ("setting", "time_of_day", "weather", "tone", "category"):
            if (slot == "tone" and frame.tones) or (slot != "tone" and getattr(frame, slot) is not None):
                continue
            labels, sims = self.vocab.nearest(vectors, slot, self.encoder)
            hit = resolve(sims, EMBED_FLOOR[slot], neighbours=self.vocab.neighbours(slot, self.encoder))
            if hit is not None and labels[hit.column].name not in frame.negated(slot):
                confidence = embedding_confidence(hit.score, hit.runner_up, EMBED_FLOOR[slot])
                value, phrase = labels[hit.column].name, phrases[hit.row]
                found = SlotValue(value, "embedding", phrase, round(hit.score, 3), round(confidence, 3))
                if slot == "tone":
                    frame.tones.append(found)
                else:
                    setattr(frame, slot, found)
