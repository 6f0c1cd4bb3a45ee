"""Scene context: the text a scene is searched by, and the slots inferred where the record leaves them out.

A slot the record gives is kept as is. A missing one is taken from the lexicon when the prompt or caption
names it, else from the nearest label description when the similarity clears a floor (tone always gets its
nearest label: every scene has a mood). Inferred slots are listed so explanations can say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from indexer.encoders import Encoder
from indexer.schema import Ad, Scene
from indexer.vocab import Label, Vocabulary

# Cosine floors for MiniLM similarity to a label description (below them the slot stays empty).
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


def _best(sims: np.ndarray, labels: list[Label], floor: float) -> str | None:
    i = int(np.argmax(sims))
    return str(labels[i].name) if sims[i] >= floor else None


def infer_contexts(scenes: list[Scene], vectors: np.ndarray, vocab: Vocabulary, encoder: Encoder) -> list[SceneContext]:
    """One context per scene; `vectors` are the scenes' text embeddings (from `scene_text`)."""
    sims = {slot: vocab.nearest(vectors, slot, encoder) for slot in SIMILARITY_FLOOR} if len(scenes) else {}
    contexts = []
    for row, scene in enumerate(scenes):
        text = f"{scene.prompt} {scene.caption or ''}"
        found = vocab.find(text)  # one lexicon pass per scene, filtered per slot below
        ctx = given_context(scene)
        for slot in ("setting", "time_of_day", "weather"):
            if getattr(ctx, slot) is None:
                hits = [h for h in found if h.label.slot == slot]
                labels, slot_sims = sims[slot]
                value = hits[0].label.name if hits else _best(slot_sims[row], labels, SIMILARITY_FLOOR[slot])
                if value:
                    setattr(ctx, slot, value)
                    ctx.inferred.append(slot)
        if not ctx.tones:
            named = list(dict.fromkeys(h.label.name for h in found if h.label.slot == "tone"))[:MAX_TONES]
            labels, tone_sims = sims["tone"]
            ctx.tones = named or [t for t in [_best(tone_sims[row], labels, SIMILARITY_FLOOR["tone"])] if t]
            ctx.inferred.append("tone")
        if not ctx.categories:
            ctx.categories = sorted({h.label.name for h in found if h.label.slot == "category"})
            if ctx.categories:
                ctx.inferred.append("category")
        contexts.append(ctx)
    return contexts
