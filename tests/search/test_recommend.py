"""Recommend by example on the real engine: the average_vector query, negatives steering away, examples never
returned, consent and filters as in search, and examples the caller may not see treated as unknown."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from indexer.encoders import SentenceTransformerEncoder
from indexer.errors import NotFoundError, VisualIntentError
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from search.engine import Engine, SearchOptions
from search.filters import SceneFilters
from search.recommend import Examples, average_vector, recommend
from tests.api.api_support import CATALOG, FIXTURES

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
FLAT = SearchOptions(collapse=False, ads_k=0)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Engine:
    db = tmp_path_factory.mktemp("recommend") / "index"
    options = IndexOptions(db=db, use_clip=False, media_root=FIXTURES, progress=False)
    files = (CATALOG / "scenes.jsonl", CATALOG / "ads.jsonl", CATALOG / "consents.jsonl")
    index_catalog(options, *files, encoders=Encoders(text_encoder, None, None))
    return Engine.open(db, text=text_encoder)


def _eligible(engine: Engine, use: str = "search") -> list[str]:
    snap = engine.snapshot
    return [sid for sid in snap.ids if snap.scene_eligible(sid, use, NOW)]


def _sims(engine: Engine, ids: list[str], to: str) -> np.ndarray:
    snap = engine.snapshot
    return snap.text_vecs[[snap.row[i] for i in ids]] @ snap.text_vecs[snap.row[to]]


def test_average_vector() -> None:
    pos = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    np.testing.assert_allclose(average_vector(pos, np.zeros((0, 2))), [2**-0.5, 2**-0.5], atol=1e-6)
    # avg(pos) + (avg(pos) - avg(neg)) = (0.5, 0.5) + (0.5, 0.5) - (1, 0) = (0, 1)
    np.testing.assert_allclose(average_vector(pos, np.array([[1.0, 0.0]])), [0.0, 1.0], atol=1e-6)


def test_results_resemble_the_positive_and_exclude_it(engine: Engine) -> None:
    snap, eligible = engine.snapshot, _eligible(engine)
    for positive in eligible[:12]:
        found = [h.scene_id for h in recommend(engine, Examples((positive,)), k=5, options=FLAT, now=NOW).scenes]
        assert found and positive not in found
        others = [s for s in eligible if s != positive]
        # the dense channel leads: results sit far above the typical scene in similarity to the example
        assert _sims(engine, found, positive).mean() > np.median(_sims(engine, others, positive)) + 0.1
        assert set(found) <= set(eligible) and len(snap.ids) > len(eligible)


def test_negatives_steer_away(engine: Engine) -> None:
    eligible = _eligible(engine)
    moved = 0
    for positive in eligible[:12]:
        before = [h.scene_id for h in recommend(engine, Examples((positive,)), k=10, options=FLAT, now=NOW).scenes]
        negative = before[0]  # the closest scene becomes the example to avoid
        examples = Examples((positive,), (negative,))
        after = [h.scene_id for h in recommend(engine, examples, k=10, options=FLAT, now=NOW).scenes]
        assert negative not in after
        moved += _sims(engine, after, negative).mean() < _sims(engine, before[1:], negative).mean()
    assert moved >= 10  # away from the negative for (nearly) every example


def test_filters_and_consent_apply_as_in_search(engine: Engine) -> None:
    positive = _eligible(engine)[0]
    night = SceneFilters(times_of_day=("night",))
    response = recommend(engine, Examples((positive,)), k=20, options=FLAT, filters=night, now=NOW)
    assert response.scenes and all(h.time_of_day == "night" for h in response.scenes)
    ads_ok = set(_eligible(engine, "ads"))
    for_ads = recommend(engine, Examples((positive,)), use="ads", k=50, options=FLAT, now=NOW)
    assert {h.scene_id for h in for_ads.scenes} <= ads_ok


def test_examples_the_caller_may_not_see_are_not_found(engine: Engine) -> None:
    snap, eligible = engine.snapshot, set(_eligible(engine))
    hidden = next(sid for sid in snap.ids if sid not in eligible)
    visible = sorted(eligible)[0]
    for examples in (Examples((hidden,)), Examples((visible,), (hidden,)), Examples(("scn-none",))):
        with pytest.raises(NotFoundError) as caught:
            recommend(engine, examples, now=NOW)
        missing = hidden if "scn-none" not in examples.positive else "scn-none"
        assert str(caught.value) == f"no scene '{missing}' in the index"  # the same words for both cases
    shown = recommend(engine, Examples((hidden,)), k=20, options=FLAT, now=NOW, any_example=True)
    assert {h.scene_id for h in shown.scenes} <= eligible  # an admin's example never unlocks results


def test_text_steers_and_bad_examples_are_rejected(engine: Engine) -> None:
    positive = _eligible(engine)[0]
    steered = recommend(engine, Examples((positive,)), "a beach at sunset", k=5, options=FLAT, now=NOW)
    assert "fts" in steered.channels and steered.frame["setting"]["value"] == "beach"
    with pytest.raises(VisualIntentError):
        recommend(engine, Examples(()), now=NOW)
    with pytest.raises(VisualIntentError):
        recommend(engine, Examples((positive,), (positive,)), now=NOW)
