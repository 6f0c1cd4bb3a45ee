"""Do no harm, enforced: on every judged set the default preset's nDCG@10 is at least the best single
channel's and at least RRF fusion's minus 0.005. Slow: each set is indexed with MiniLM and fully evaluated.

SciFact runs through the full pipeline with context inference on (slots inferred for every abstract, the
frame parsed for every claim). It is read from VISUAL_INTENT_SCIFACT (default ../shared/datasets/scifact next
to the repository) and indexed into VISUAL_INTENT_SCIFACT_DB when set (reused when it holds the corpus),
else into a temporary folder (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from indexer.catalog import read_queries
from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import Query, SceneCol
from search.engine import Engine
from search.evaluation import RetrievalEvaluator, make_variant
from search.evaluation.beir import beir_index, load_beir
from search.evaluation.experiment import parse_time
from search.evaluation.metrics import Qrels, read_trec_qrels

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "fixtures" / "catalog"
SCIFACT = Path(os.environ.get("VISUAL_INTENT_SCIFACT", ROOT.parent / "shared" / "datasets" / "scifact"))
DEFAULT = "full+collapse"
SINGLE = ("dense", "fts")
TOLERANCE = 0.005


def _scores(engine: Engine, queries: Sequence[Query], qrels: Qrels, now: datetime | None = None) -> dict[str, float]:
    variants = [make_variant(n) for n in (*SINGLE, "fusion", DEFAULT)]
    result = RetrievalEvaluator(queries, qrels, variants, now=now)(engine)
    return {name: scores["ndcg@10"] for name, scores in result.scores().items()}


def _assert_no_harm(scores: dict[str, float]) -> None:
    best_single = max(scores[n] for n in SINGLE)
    assert scores[DEFAULT] >= best_single, scores
    assert scores[DEFAULT] >= scores["fusion"] - TOLERANCE, scores


@pytest.mark.slow
def test_default_preset_does_no_harm_on_the_fixtures(tmp_path: Path, text_encoder: SentenceTransformerEncoder) -> None:
    options = IndexOptions(db=tmp_path / "fx", media_root=ROOT / "fixtures", use_clip=False, progress=False)
    paths = [CATALOG / f for f in ("scenes.jsonl", "ads.jsonl", "consents.jsonl")]
    index_catalog(options, *paths, encoders=Encoders(text_encoder, None, None))
    engine = Engine.open(tmp_path / "fx", text=text_encoder, use_clip=False)
    queries, qrels = read_queries(CATALOG / "queries.jsonl"), read_trec_qrels(CATALOG / "qrels.txt")
    _assert_no_harm(_scores(engine, queries, qrels, parse_time("2026-11-25T00:00:00Z")))


@pytest.mark.slow
@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason=f"SciFact not found at {SCIFACT}")
def test_default_preset_does_no_harm_on_scifact_with_context_inference(
    text_encoder: SentenceTransformerEncoder,
) -> None:
    data = load_beir(SCIFACT)
    cached = os.environ.get("VISUAL_INTENT_SCIFACT_DB")
    encoders = Encoders(text_encoder, None, None)
    with beir_index(data, Path(cached) if cached else None, encoders=encoders, context=True) as db:
        engine = Engine.open(db, text=text_encoder, use_clip=False)
        assert any(engine.snapshot.columns[SceneCol.INFERRED]), f"{db} was indexed without context inference"
        _assert_no_harm(_scores(engine, data.queries, data.qrels))
