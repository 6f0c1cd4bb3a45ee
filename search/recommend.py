"""Recommend by example: scenes like the positive examples and unlike the negative ones.

Strategy `average_vector` (Qdrant's recommend API): query = avg(positive) + (avg(positive) - avg(negative)),
L2-normalised, built from the examples' own vectors, so no example is re-encoded. It is formed in the text space
(dense channel, ad similarity) and, when the index has CLIP vectors, in the shot space (visual channel, best
shot), where a scene stands as the mean of its shots. An optional text adds its encoding to the text query and
runs the full-text and slot channels through its intent frame (Marqo-style weighted query terms, weight 1); an
optional reference image adds its CLIP vector to the shot query. Everything after is the search pipeline: the
consent mask and filters inside retrieval, fusion, negations, collapse, explanations and ads. The examples
themselves are never returned.

An example the caller may not see (unknown, or not eligible for the use) is "not found", with the same message
either way, so a recommendation never reveals that an ineligible scene exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from indexer.errors import NotFoundError, VisualIntentError
from search.consent import now_utc
from search.engine import Engine, SearchOptions
from search.filters import SceneFilters
from search.results import SearchResponse
from search.snapshot import Snapshot

STRATEGY = "average_vector"


@dataclass(frozen=True)
class Examples:
    positive: tuple[str, ...]
    negative: tuple[str, ...] = ()

    def check(self) -> None:
        if not self.positive:
            raise VisualIntentError("give at least one positive example scene")
        both = sorted(set(self.positive) & set(self.negative))
        if both:
            raise VisualIntentError(f"scene(s) {', '.join(both)} cannot be both positive and negative examples")


def average_vector(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """avg(pos) + (avg(pos) - avg(neg)), L2-normalised; with no negatives, the normalised avg(pos)."""
    query = positive.mean(axis=0)
    if len(negative):
        query = query + (query - negative.mean(axis=0))
    return _unit(query)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    out: np.ndarray = (vector / norm if norm > 0 else vector).astype(np.float32)
    return out


def example_rows(snap: Snapshot, ids: tuple[str, ...], use: str, now: datetime, any_example: bool) -> list[int]:
    """Snapshot rows of the example ids; unknown or (unless `any_example`) ineligible ones are not found."""
    rows = []
    for scene_id in ids:
        row = snap.row.get(scene_id)
        if row is None or not (any_example or snap.scene_eligible(scene_id, use, now)):
            raise NotFoundError(f"no scene '{scene_id}' in the index")
        rows.append(row)
    return rows


def _shot_vectors(snap: Snapshot, rows: list[int]) -> np.ndarray:
    """One CLIP vector per example that has shots: the mean of its shots."""
    if snap.clip is None:
        return np.zeros((0, 0), np.float32)
    vectors = snap.clip.vectors.vectors
    means = [vectors[snap.clip.of_row(r)].mean(axis=0) for r in rows if snap.clip.of_row(r)]
    return np.stack(means) if means else np.zeros((0, vectors.shape[1]), np.float32)


def recommend(
    engine: Engine,
    examples: Examples,
    text: str = "",
    sku: str | None = None,
    use: str = "search",
    k: int = 10,
    options: SearchOptions | None = None,
    filters: SceneFilters | None = None,
    now: datetime | None = None,
    image_vector: np.ndarray | None = None,
    any_example: bool = False,
) -> SearchResponse:
    """Scenes like `examples.positive` and unlike `examples.negative` (see the module notes)."""
    examples.check()
    options = options or SearchOptions()
    snap, now = engine.snapshot, now or now_utc()
    pos = example_rows(snap, examples.positive, use, now, any_example)
    neg = example_rows(snap, examples.negative, use, now, any_example)
    text_query = average_vector(snap.text_vecs[pos], snap.text_vecs[neg])
    if text.strip():
        frame = engine.parse(text, sku)
        text_query = _unit(text_query + engine.queries.encode([frame.search_text])[0])
    clip_query = None
    if engine.clip is not None and "clip" in options.channels:
        shots_pos, shots_neg = _shot_vectors(snap, pos), _shot_vectors(snap, neg)
        if len(shots_pos):
            clip_query = average_vector(shots_pos, shots_neg)
        if image_vector is not None:
            image = np.asarray(image_vector, dtype=np.float32).reshape(-1)
            clip_query = _unit(image if clip_query is None else clip_query + image)
    if clip_query is None:  # no visual query to make: never let the visual channel encode the (empty) text
        options = replace(options, channels=tuple(c for c in options.channels if c != "clip"))
    return engine.search(
        text,
        sku=sku,
        use=use,
        k=k,
        options=options,
        filters=filters,
        now=now,
        clip_query=clip_query,
        text_query=text_query,
        exclude={*examples.positive, *examples.negative},
    )
