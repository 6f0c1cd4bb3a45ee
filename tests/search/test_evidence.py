"""Slots as evidence: slot agreement re-ranks what retrieval found, weighs guesses by confidence, and collapse
folds only near-duplicate remixes; learned fusion over the same candidates. A real index (LanceDB, FAISS,
MiniLM) of a small catalog, a real LightGBM model."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import Query
from search.engine import PRESETS, Engine, SearchOptions
from search.intent import EMBED_FLOOR, embedding_confidence
from search.ltr import model as model_module
from search.ltr.features import FEATURES
from search.ltr.model import MODEL_NAME, LearnedFusion, ModelError
from search.ltr.train import JudgedSet, collect, cross_validate, train
from tests.helpers import ADS, CONSENTS, SCENES, SNEAKER, write_jsonl

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
EXTRA = [
    # a near-duplicate remix of s7 (same rooftop at dawn, reworded) and one that moves it to night
    {"scene_id": "s9", "parent_id": "s7", "prompt": "Sneakers on a rooftop at dawn, the skyline behind, upbeat mood",
     "products": [SNEAKER]},
    {"scene_id": "s10", "parent_id": "s7", "prompt": "Sneakers on a rooftop at night, skyline lights behind, upbeat",
     "products": [SNEAKER]},
    # lakeside scenes that share nothing with the queries below but the label
    *({"scene_id": f"lake{i}", "prompt": f"A wooden dock on a calm lake, reflections, shot {i}", "setting": "lakeside"}
      for i in range(6)),
]  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Engine:
    root = tmp_path_factory.mktemp("evidence")
    scenes = [{k: v for k, v in s.items() if k != "media"} for s in SCENES] + EXTRA
    paths = [write_jsonl(root / f"{n}.jsonl", r) for n, r in (("s", scenes), ("a", ADS), ("c", CONSENTS))]
    db = root / "index"
    index_catalog(IndexOptions(db=db, progress=False), *paths, encoders=Encoders(text_encoder, None, None))
    return Engine.open(db, text=text_encoder)


def _ids(engine: Engine, text: str, options: SearchOptions, sku: str | None = None) -> list[str]:
    return [h.scene_id for h in engine.search(text, sku=sku, k=30, options=options, now=NOW).scenes]


def test_slot_agreement_only_reranks_retrieved_candidates(engine: Engine) -> None:
    options = SearchOptions(collapse=False, depth=2)
    response = engine.search("red parka by the lake", k=30, options=options, now=NOW)
    assert response.frame["setting"]["value"] == "lakeside"
    for hit in response.scenes:  # every result was found by a retrieval channel, none by its label alone
        assert {"dense", "fts"} & set(hit.explanation.ranks), hit.scene_id
    assert 0 < len(response.scenes) <= 4  # at most two per channel, although six more scenes are lakeside


def test_exact_sku_matches_are_candidates_even_when_retrieval_misses_them(engine: Engine) -> None:
    options = SearchOptions(collapse=False, depth=1)
    ids = _ids(engine, "a calm lake with a wooden dock", options, sku="SKU-K1")
    assert {"s7", "s8", "s9", "s10"} <= set(ids)  # eligible scenes showing the sku (s6 has no consent)
    assert "s6" not in ids


def test_embedding_guesses_weigh_by_confidence(engine: Engine) -> None:
    floor = EMBED_FLOOR["setting"]
    assert embedding_confidence(floor, floor - 0.2, floor) == 0.0  # just at the floor: nothing
    assert embedding_confidence(floor + 0.3, floor, floor) == 1.0  # clear and well apart: full weight
    assert embedding_confidence(floor + 0.3, floor + 0.29, floor) < 0.2  # tied with a neighbour: little
    frame = engine.parse("a sofa where the family unwinds after dinner")
    assert frame.setting is not None and frame.setting.source == "embedding"
    assert 0.0 < frame.setting.confidence < 1.0
    lexical = engine.parse("a sofa in the living room")
    assert lexical.setting is not None and lexical.setting.confidence == 1.0


def test_without_a_frame_the_ranking_is_the_semantic_channels(engine: Engine) -> None:
    text = "something to look at"
    assert not engine.parse(text).asked()
    semantic = SearchOptions(channels=("dense", "fts", "clip"), collapse=False)
    assert _ids(engine, text, PRESETS["full"]) == _ids(engine, text, semantic)


def test_collapse_folds_near_duplicates_and_keeps_other_scenarios(engine: Engine) -> None:
    collapsed = engine.search("sneakers on a rooftop, upbeat", k=10, now=NOW).scenes
    by_id = {h.scene_id: h for h in collapsed}
    assert "s10" in by_id  # the remix at night is another scenario: a result of its own
    dawn = [h for h in collapsed if h.scene_id in ("s7", "s9")]
    assert len(dawn) == 1 and {dawn[0].scene_id, *dawn[0].variants} == {"s7", "s9"}
    flat = _ids(engine, "sneakers on a rooftop, upbeat", PRESETS["full"])
    assert {"s7", "s9", "s10"} <= set(flat)


def test_matched_terms_match_the_explained_slots(engine: Engine) -> None:
    found = engine.retrieve("sneakers on a rooftop at dawn", now=NOW)
    rows = np.array([engine.snapshot.row[s] for s in ("s7", "s10")])
    matched = found.matched_terms(rows)
    assert matched is not None and len(found.terms) >= 3
    assert matched[int(rows[0])] == b"\x01" * len(found.terms)  # s7 matches category, setting and time
    assert matched[int(rows[1])] != matched[int(rows[0])]  # s10 is the night remix: its time differs


JUDGED = {  # a few graded queries over the small catalog, for learned fusion
    "q1": ("red parka on a snowy mountain", {"s1": 3, "s2": 2}),
    "q2": ("sneakers on a rooftop, upbeat", {"s7": 3, "s9": 3, "s10": 1}),
    "q3": ("leather sofa by the fireplace", {"s4": 3}),
    "q4": ("sneakers on a wet street after dark", {"s8": 3, "s10": 1}),
    "q5": ("a wooden dock on a lake", {f"lake{i}": 2 for i in range(6)}),
}


def _judged() -> tuple[list[Query], dict[str, dict[str, int]]]:
    queries = [Query(query_id=q, text=text) for q, (text, _) in JUDGED.items()]
    return queries, {q: grades for q, (_, grades) in JUDGED.items()}


def test_learned_fusion_features_are_per_candidate_and_scale_free(engine: Engine) -> None:
    queries, qrels = _judged()
    groups = collect("tiny", engine, queries, qrels, NOW)
    assert [g.query_id for g in groups] == list(JUDGED)
    for group in groups:
        assert group.features.shape == (len(group.doc_ids), len(FEATURES))
        scores = group.features[:, [FEATURES.index(f"{c}_score") for c in ("dense", "fts")]]
        assert scores.min() >= 0.0 and scores.max() <= 1.0 + 1e-6
    parka = groups[0]
    assert parka.grades[parka.doc_ids.index("s1")] == 3
    assert "s3" not in parka.doc_ids  # ineligible scenes are never candidates


def test_learned_fusion_trains_cross_validates_saves_and_ranks(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries, qrels = _judged()
    groups = collect("tiny", engine, queries, qrels, NOW)
    cv = cross_validate(groups, k=5, seed=0, min_data_in_leaf=1, min_data_in_bin=1, rounds=20)
    assert sorted(cv.fold_of.tolist()) == [0, 1, 2, 3, 4]  # one query held out per fold
    assert all(len(s) == len(g.doc_ids) for s, g in zip(cv.held_out, groups, strict=True))
    report = train([JudgedSet("tiny", engine, queries, qrels, NOW, "inline")], tmp_path, k=5)
    manifest = json.loads((tmp_path / f"{MODEL_NAME}.json").read_text())
    assert manifest["features"] == list(FEATURES) and manifest["trained_on"]["tiny"]["queries"] == 5
    assert set(report.held_out["tiny"]) == {"learned", "rrf"}
    loaded = LearnedFusion.load(tmp_path)
    assert np.allclose(
        loaded.score(groups[0].features), LearnedFusion(report_booster(tmp_path)).score(groups[0].features)
    )
    monkeypatch.setattr(model_module, "MODELS", tmp_path)
    model_module.default_model.cache_clear()
    try:
        learned = engine.search("red parka on a snowy mountain", k=5, options=SearchOptions(fusion="learned"), now=NOW)
        assert learned.scenes and learned.fusion == "learned"
    finally:
        model_module.default_model.cache_clear()


def test_the_shipped_model_matches_the_code_and_ranks(engine: Engine) -> None:
    """`search/ltr/models/fusion-v1` (trained by `visual-intent train-fusion` on the fixtures and SciFact) loads
    with today's features, says what it was trained on, and ranks with `--fusion learned` out of the box."""
    manifest = json.loads((model_module.MODELS / f"{MODEL_NAME}.json").read_text())
    assert set(manifest["trained_on"]) == {"fixtures", "scifact"}
    assert set(manifest["cross_validation"]["held_out_ndcg@10"]["scifact"]) == {"learned", "rrf"}
    model_module.default_model.cache_clear()
    try:
        learned = engine.search("red parka on a snowy mountain", k=5, options=SearchOptions(fusion="learned"), now=NOW)
    finally:
        model_module.default_model.cache_clear()
    assert learned.fusion == "learned" and {s.scene_id for s in learned.scenes[:2]} & {"s1", "s2"}


def test_a_model_trained_on_other_features_is_refused(tmp_path: Path) -> None:
    (tmp_path / f"{MODEL_NAME}.txt").write_text("tree\n")
    (tmp_path / f"{MODEL_NAME}.json").write_text(json.dumps({"features": ["something_else"]}))
    with pytest.raises(ModelError, match="retrain"):
        LearnedFusion.load(tmp_path)
    with pytest.raises(ModelError, match="train-fusion"):
        LearnedFusion.load(tmp_path / "missing")


def report_booster(folder: Path) -> object:
    import lightgbm as lgb

    return lgb.Booster(model_file=str(folder / f"{MODEL_NAME}.txt"))
