"""Evaluation against a real engine and index: variants, consent in runs, ANN recall, and the BEIR loader."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from indexer import ann
from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import Query, SceneCol
from search.engine import Engine
from search.evaluation import RetrievalEvaluator, evaluate_run, make_variant
from search.evaluation.ann_recall import engine_ann_recall, measure
from search.evaluation.beir import beir_index, holds_corpus, load_beir, scene_record
from tests.helpers import ADS, CONSENTS, SCENES, write_jsonl

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
SCIFACT = Path(os.environ.get("VISUAL_INTENT_SCIFACT", Path(__file__).resolve().parents[3] / "shared/datasets/scifact"))
QUERIES = [
    Query(query_id="e1", text="red parka on a snowy mountain", slice="scenario"),
    Query(query_id="e2", text="leather sofa in a cozy living room", sku="SKU-S1", slice="scenario"),
    Query(query_id="e3", text="sneakers on a city street at night", slice="paraphrase"),
    Query(query_id="e4", text="a bowl of ramen", slice="paraphrase"),
]
QRELS = {
    "e1": {"s1": 3, "s2": 2, "s3": 2, "s4": 0},  # s3 has a revoked cameo: judged, never returned
    "e2": {"s4": 3, "s5": 1},
    "e3": {"s8": 3, "s6": 3, "s7": 1},
    "e4": {"s1": 0},  # nothing relevant: left out of the averages
}
AD_QUERIES = [
    Query(query_id="a1", text="warm parka for a mountain trip", use="ads"),
    Query(query_id="a2", text="a leather sofa for the living room", use="ads"),
]
AD_QRELS = {"a1": {"a-parka": 3, "a-drink": 0, "a-sneaker": 0}, "a2": {"a-sofa": 3, "a-drink": 0}}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Engine:
    root = tmp_path_factory.mktemp("evaluation")
    scenes = [{k: v for k, v in s.items() if k != "media"} for s in SCENES]
    paths = [write_jsonl(root / f"{n}.jsonl", r) for n, r in (("s", scenes), ("a", ADS), ("c", CONSENTS))]
    options = IndexOptions(db=root / "index", use_clip=False, progress=False)
    index_catalog(options, *paths, encoders=Encoders(text_encoder, None, None))
    return Engine.open(root / "index", text=text_encoder)


def test_evaluator_scores_each_variant_and_reports_clip_unavailable(engine: Engine) -> None:
    names = ["dense", "fts", "clip", "fusion", "full"]
    evaluator = RetrievalEvaluator(QUERIES, QRELS, [make_variant(n) for n in names], depth=5, now=NOW)
    result = evaluator(engine)
    assert evaluator.primary_metric == result.primary == "ndcg@10"
    assert list(result.scores()) == ["dense", "fts", "fusion", "full"]
    assert "no visual channel" in result.unavailable()["clip"]  # not scored as zeros
    assert "without the clip channel" in str(result.variants["fusion"].note)
    assert result.skipped_queries == ["e4"]
    assert result.slices == {"all": ["e1", "e2", "e3"], "scenario": ["e1", "e2"], "paraphrase": ["e3"]}
    for name, scores in result.scores().items():
        run = result.variants[name].run
        assert all(len(hits) <= 5 for hits in run.values())
        assert not {doc for hits in run.values() for doc, _ in hits} & {"s3", "s5", "s6"}  # consent holds
        assert scores == pytest.approx(evaluate_run(QRELS, run, result.metrics).scores)
        assert set(scores) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map"}
    assert result.scores()["full"]["mrr@10"] == pytest.approx(1.0)  # the top hit is relevant for every query
    payload = result.to_json()
    assert json.loads(json.dumps(payload))["variants"]["dense"]["ndcg@10"] == pytest.approx(
        result.scores()["dense"]["ndcg@10"]
    )
    assert set(payload["slices"]["full"]) == {"all", "scenario", "paraphrase"}


def test_ad_variants_rank_eligible_ads_only(engine: Engine) -> None:
    variants = [make_variant(n, kind="ads") for n in ("keyword", "dense", "hybrid", "intent")]
    result = RetrievalEvaluator(AD_QUERIES, AD_QRELS, variants, now=NOW)(engine)
    assert list(result.scores()) == ["keyword", "dense", "hybrid", "intent"]
    for vr in result.variants.values():
        assert "a-sneaker" not in {ad for hits in vr.run.values() for ad, _ in hits}  # creative lacks consent
    assert result.scores()["dense"]["mrr@10"] == pytest.approx(1.0)
    assert result.scores()["intent"]["ndcg@10"] == pytest.approx(1.0)


def test_ann_recall_reports_the_hnsw_parameters(engine: Engine) -> None:
    tiny = engine_ann_recall(engine, [q.text for q in QUERIES])
    assert tiny.serving["kind"] == "flat" and tiny.rows == len(SCENES) and tiny.queries == len(QUERIES)
    assert tiny.recall == {len(SCENES): 1.0}  # k is capped at the collection size
    params = {"kind": "hnsw", "M": ann.HNSW_M, "ef_construction": ann.HNSW_EF_CONSTRUCTION}
    assert tiny.params == {**params, "ef_search": ann.HNSW_EF_SEARCH}
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result = measure(vectors, vectors[:50] + 0.01, ks=(10, 100), ef_sweep=(8, 256))
    assert set(result.recall) == {10, 100} and 0.9 < result.recall[10] <= 1.0
    assert result.sweep[8][100] < result.sweep[256][100] <= 1.0  # a smaller beam finds fewer true neighbours


def _scifact_slice(folder: Path, queries: int = 6, distractors: int = 40) -> Path:
    """A small BEIR folder cut from the real SciFact files: a few test queries, their documents, distractors."""
    lines = (SCIFACT / "qrels" / "test.tsv").read_bytes().split(b"\r\n")
    rows = [line for line in lines[1:] if line]
    wanted = list(dict.fromkeys(r.split(b"\t")[0] for r in rows))[:queries]
    kept = [r for r in rows if r.split(b"\t")[0] in wanted]
    docs = {r.split(b"\t")[1].decode() for r in kept}
    corpus = [line for line in (SCIFACT / "corpus.jsonl").read_text().splitlines() if line]
    chosen = [c for c in corpus if json.loads(c)["_id"] in docs] + corpus[:distractors]
    (folder / "qrels").mkdir(parents=True)
    (folder / "qrels" / "test.tsv").write_bytes(b"\r\n".join([lines[0], *kept]) + b"\r\n")
    (folder / "corpus.jsonl").write_text("\n".join(dict.fromkeys(chosen)) + "\n")
    ids = {w.decode() for w in wanted}
    lines_q = [q for q in (SCIFACT / "queries.jsonl").read_text().splitlines() if q]
    judged = [q for q in lines_q if json.loads(q)["_id"] in ids]
    (folder / "queries.jsonl").write_text("\n".join([*lines_q[:5], *judged]) + "\n")  # plus unjudged (train) ones
    return folder


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason="BEIR SciFact is not at ../shared/datasets")
def test_beir_loader_and_evaluation_on_a_scifact_slice(
    tmp_path: Path, text_encoder: SentenceTransformerEncoder
) -> None:
    data = load_beir(_scifact_slice(tmp_path / "scifact"))
    assert len(data.queries) == 6 and set(data.qrels) == {q.query_id for q in data.queries}
    assert all("\r" not in d for docs in data.qrels.values() for d in docs)  # CRLF stripped
    first = json.loads((tmp_path / "scifact" / "corpus.jsonl").read_text().splitlines()[0])
    record = next(r for r in data.corpus if r["scene_id"] == first["_id"])
    joiner = " " if first["title"].endswith(".") else ". "
    assert record["prompt"] == f"{first['title']}{joiner}{first['text']}"
    assert scene_record({"_id": "7", "title": "Trial", "text": "Done."})["prompt"] == "Trial. Done."
    assert scene_record({"_id": "8", "title": "Does it work?", "text": "Yes."})["prompt"] == "Does it work? Yes."
    db = tmp_path / "index"
    with beir_index(data, db, encoders=Encoders(text_encoder, None, None)) as path:
        assert path == db and holds_corpus(db, data)
        engine = Engine.open(db, text=text_encoder)
        assert list(engine.snapshot.columns[SceneCol.SETTING]) == [None] * len(data.corpus)  # no slot inference
        result = RetrievalEvaluator(data.queries, data.qrels, [make_variant("dense"), make_variant("fts")])(engine)
    assert result.scores()["dense"]["ndcg@10"] > 0.6 and result.scores()["fts"]["recall@100"] > 0.8
