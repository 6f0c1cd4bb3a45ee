"""Scene context: the text a scene is searched by, and the slots inferred where the record leaves them out.

A slot the record gives is kept as is. A missing one is taken from the lexicon when the prompt or caption
names it (product names and brands excepted: a "Harbor Leather Sofa" names no harbor; when the text names
several settings, the one whose description is closest to the scene wins), else from the nearest *core* label
description (the hand-written labels of labels.toml) when the similarity clears a floor (tone always gets its
nearest label: every scene has a mood). Places365 settings and the extra tones are fine-grained: a whole prompt
mixes subject, product, camera and place, and its embedding lands near many of them for the wrong reason, so
they are inferred only when the text names them. Inferred slots are listed so explanations can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from indexer.encoders import Encoder
from indexer.schema import Ad, Scene
from indexer.vocab import Hit, Label, Vocabulary, resolve

# Cosine floors for MiniLM similarity to a core label description (below them the slot stays empty).
SIMILARITY_FLOOR = {"setting": 0.35, "time_of_day": 0.35, "weather": 0.45, "tone": 0.15, "category": 0.40}
MAX_TONES = 2


@dataclass
class SceneContext:
    setting: str | None
    time_of_day: str | None
    weather: str | None
    tones: list[str]
    categories: list[str]
    inferred: list[str] = field(default_factory=list)

    def labels(self) -> list[str]:
        values = [self.setting, self.time_of_day, self.weather, *self.tones, *self.categories]
        return [v.replace("_", " ") for v in values if v]


def given_context(scene: Scene) -> SceneContext:
    """The slots exactly as the record gives them, nothing inferred."""
    return SceneContext(
        setting=scene.setting,
        time_of_day=scene.time_of_day,
        weather=scene.weather,
        tones=list(scene.tone),
        categories=sorted({p.category for p in scene.products if p.category}),
    )


def scene_text(scene: Scene) -> str:
    """What the dense text channel embeds: the prompt, the caption and the products shown."""
    products = "; ".join(" ".join(filter(None, (p.brand, p.name))) for p in scene.products)
    return " ".join(filter(None, (scene.prompt, scene.caption, products)))


def doc_text(scene: Scene, context: SceneContext) -> str:
    """What full-text search indexes: the embedded text plus the context labels in words."""
    return " ".join([scene_text(scene), *context.labels()])


def ad_text(ad: Ad) -> str:
    parts = [ad.headline, ad.description, " ".join(ad.keywords), " ".join(ad.categories), ad.advertiser]
    return " ".join(p for p in parts if p)


def _best(sims: np.ndarray, labels: list[Label], slot: str) -> str | None:
    hit = resolve(sims[None, :], SIMILARITY_FLOOR[slot])
    return labels[hit.column].name if hit else None


def _product_spans(text: str, scene: Scene) -> list[tuple[int, int]]:
    """Where the lowered text names one of the scene's products or brands."""
    names = {n.lower() for p in scene.products for n in (p.name, p.brand) if n and n.strip()}
    return [(m.start(), m.end()) for name in names for m in re.finditer(re.escape(name), text)]


def _lexicon_hits(scene: Scene, vocab: Vocabulary) -> list[Hit]:
    """Lexicon hits in the prompt and caption; context slots named only inside a product name do not count."""
    text = f"{scene.prompt} {scene.caption or ''}".lower()
    spans = _product_spans(text, scene)
    return [
        h
        for h in vocab.find(text)
        if h.label.slot == "category" or not any(a <= h.start and h.end <= b for a, b in spans)
    ]


def _named_setting(hits: list[Hit], labels: list[Label], sims: np.ndarray) -> str | None:
    """The setting the text names; of several, the one whose description is closest to the scene."""
    named = list(dict.fromkeys(h.label.name for h in hits if h.label.slot == "setting"))
    if len(named) < 2:
        return named[0] if named else None
    column = {item.name: i for i, item in enumerate(labels)}
    return max(named, key=lambda name: float(sims[column[name]]))


def infer_contexts(scenes: list[Scene], vectors: np.ndarray, vocab: Vocabulary, encoder: Encoder) -> list[SceneContext]:
    """One context per scene; `vectors` are the scenes' text embeddings (from `scene_text`)."""
    if not len(scenes):
        return []
    sims = {slot: vocab.nearest(vectors, slot, encoder, core_only=True) for slot in SIMILARITY_FLOOR}
    named_sims = vocab.nearest(vectors, "setting", encoder)  # every setting, to choose among those a text names
    contexts = []
    for row, scene in enumerate(scenes):
        found = _lexicon_hits(scene, vocab)  # one lexicon pass per scene, filtered per slot below
        ctx = given_context(scene)
        for slot in ("setting", "time_of_day", "weather"):
            if getattr(ctx, slot) is None:
                labels, slot_sims = sims[slot]
                hits = [h for h in found if h.label.slot == slot]
                if slot == "setting":
                    value = _named_setting(hits, named_sims[0], named_sims[1][row])
                else:
                    value = hits[0].label.name if hits else None
                value = value or _best(slot_sims[row], labels, slot)
                if value:
                    setattr(ctx, slot, value)
                    ctx.inferred.append(slot)
        if not ctx.tones:
            named = list(dict.fromkeys(h.label.name for h in found if h.label.slot == "tone"))[:MAX_TONES]
            labels, tone_sims = sims["tone"]
            ctx.tones = named or [t for t in [_best(tone_sims[row], labels, "tone")] if t]
            ctx.inferred.append("tone")
        if not ctx.categories:
            ctx.categories = sorted({h.label.name for h in found if h.label.slot == "category"})
            if ctx.categories:
                ctx.inferred.append("category")
        contexts.append(ctx)
    return contexts
