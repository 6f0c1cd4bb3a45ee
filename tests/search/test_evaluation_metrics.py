"""Metric arithmetic (ranx) on a hand-checked toy run, qrels parsing, TREC runs, paired statistics, spec checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.errors import CatalogError
from search.evaluation.experiment import parse_spec
from search.evaluation.metrics import (
    evaluate_run,
    read_trec_qrels,
    read_tsv_qrels,
    strictly_decreasing,
    subset,
    write_trec_run,
)
from search.evaluation.runs import make_variant
from search.evaluation.stats import bootstrap_interval, compare_to_baseline

# q1 judges d1 (grade 3), d2 (grade 1) and d3 (grade 0: judged, not relevant); q2 has two grade-1 documents.
QRELS = {"q1": {"d1": 3, "d2": 1, "d3": 0}, "q2": {"d4": 1, "d5": 1}}
RUN = {
    "q1": [("d2", 0.9), ("d1", 0.8), ("d9", 0.1)],  # relevant at ranks 1 (grade 1) and 2 (grade 3)
    "q2": [("d6", 0.9), ("d4", 0.8), ("d7", 0.7), ("d8", 0.6), ("d5", 0.5)],  # relevant at ranks 2 and 5
}
# nDCG (linear gain, log2(rank + 1) discount, as trec_eval):
#   q1: DCG = 1/log2(2) + 3/log2(3) = 1 + 1.892789 = 2.892789; ideal (3 then 1) = 3 + 0.630930 = 3.630930
#       nDCG@10 = 2.892789 / 3.630930 = 0.796708
#   q2: DCG = 1/log2(3) + 1/log2(6) = 0.630930 + 0.386853 = 1.017783; ideal = 1 + 0.630930 = 1.630930
#       nDCG@10 = 1.017783 / 1.630930 = 0.624051
#   mean = (0.796708 + 0.624051) / 2 = 0.710379
# Recall@2: q1 2/2 = 1, q2 1/2 = 0.5 -> 0.75.  Recall@10: both 1 -> 1.
# MRR@10: q1 1/1, q2 1/2 -> 0.75.
# MAP: q1 (1/1 + 2/2) / 2 = 1; q2 (1/2 + 2/5) / 2 = 0.45 -> 0.725.
EXPECTED = {"ndcg@10": 0.710379, "recall@2": 0.75, "recall@10": 1.0, "mrr@10": 0.75, "map": 0.725}
PER_QUERY_NDCG = {"q1": 0.796708, "q2": 0.624051}


def test_metrics_match_the_hand_computed_values() -> None:
    result = evaluate_run(QRELS, RUN, ["recall@2", "recall@10", "mrr@10", "map"])
    assert result.primary == "ndcg@10"
    assert result.primary_score == pytest.approx(EXPECTED["ndcg@10"], abs=1e-6)
    assert result.scores == pytest.approx(EXPECTED, abs=1e-6)
    assert result.per_query["ndcg@10"] == pytest.approx(PER_QUERY_NDCG, abs=1e-6)
    assert result.queries == 2


def test_tied_scores_keep_the_engine_order() -> None:
    # All three tie: ranx would otherwise order them its own way; the run order (d1 first) must count.
    tied = {"q1": [("d1", 1.0), ("d2", 1.0), ("d9", 1.0)], "q2": [("d4", 0.5), ("d5", 0.5)]}
    result = evaluate_run(QRELS, tied, ["mrr@10"])
    assert result.per_query["ndcg@10"]["q1"] == pytest.approx(1.0)  # d1 (3) then d2 (1) is the ideal order
    assert result.per_query["ndcg@10"]["q2"] == pytest.approx(1.0)
    scores = [s for _, s in strictly_decreasing([("a", 2.0), ("b", 2.0), ("c", 2.0), ("d", 1.0)])]
    assert scores[0] == 2.0 and scores[0] > scores[1] > scores[2] > scores[3] == 1.0


def test_unanswered_query_scores_zero_and_unjudged_query_is_skipped() -> None:
    qrels = {**QRELS, "q3": {"d1": 0}}  # q3 has no relevant document: not averaged
    result = evaluate_run(qrels, {"q1": RUN["q1"]}, ["map"])  # q2 is judged but has no results
    assert result.skipped == ["q3"]
    assert result.per_query["ndcg@10"] == pytest.approx({"q1": 0.796708, "q2": 0.0}, abs=1e-6)
    assert result.primary_score == pytest.approx(0.796708 / 2, abs=1e-6)
    assert subset(result, ["q1"]) == pytest.approx({"ndcg@10": 0.796708, "map": 1.0}, abs=1e-6)
    empty = evaluate_run(QRELS, {}, ["map"])
    assert empty.scores == {"ndcg@10": 0.0, "map": 0.0}


def test_trec_run_file_scores_the_same_in_pytrec_eval(tmp_path: Path) -> None:
    import ir_measures
    from ir_measures import AP, RR, R, nDCG

    path = tmp_path / "toy.trec"
    write_trec_run(path, RUN, "toy")
    first = path.read_text().splitlines()[0].split()
    assert first == ["q1", "Q0", "d2", "1", "0.9", "toy"]
    qrels = [ir_measures.Qrel(q, d, g) for q, docs in QRELS.items() for d, g in docs.items()]
    got = ir_measures.calc_aggregate([nDCG @ 10, R @ 2, RR @ 10, AP], qrels, list(ir_measures.read_trec_run(str(path))))
    assert got[nDCG @ 10] == pytest.approx(EXPECTED["ndcg@10"], abs=1e-6)
    assert got[R @ 2] == pytest.approx(EXPECTED["recall@2"])
    assert got[RR @ 10] == pytest.approx(EXPECTED["mrr@10"])
    assert got[AP] == pytest.approx(EXPECTED["map"])


def test_qrels_readers_accept_crlf_and_report_bad_lines(tmp_path: Path) -> None:
    tsv = tmp_path / "test.tsv"
    tsv.write_bytes(b"query-id\tcorpus-id\tscore\r\n1\t31715818\t1\r\n3\t14717500\t1\r\n3\t2\t0\r\n")
    assert read_tsv_qrels(tsv) == {"1": {"31715818": 1}, "3": {"14717500": 1, "2": 0}}
    trec = tmp_path / "qrels.txt"
    trec.write_bytes(b"q1 0 d1 3\r\nq1 0 d2 1\r\n\r\nq2 0 d4 1\r\n")
    assert read_trec_qrels(trec) == {"q1": {"d1": 3, "d2": 1}, "q2": {"d4": 1}}
    trec.write_text("q1 0 d1 high\n")
    with pytest.raises(CatalogError, match=r"qrels.txt:1: expected 'query_id 0 doc_id grade'"):
        read_trec_qrels(trec)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = list(np.linspace(0.0, 1.0, 40))
    a, b = bootstrap_interval(values, seed=3), bootstrap_interval(values, seed=3)
    assert a == b
    assert a.mean == pytest.approx(0.5)
    assert a.low < a.mean < a.high
    assert bootstrap_interval([0.4, 0.4, 0.4], seed=3).low == pytest.approx(0.4)


def test_paired_comparison_counts_and_significance() -> None:
    queries = [f"q{i}" for i in range(30)]
    base = dict.fromkeys(queries, 0.5)
    better = {q: 0.5 + (0.3 if i < 25 else -0.1) for i, q in enumerate(queries)}
    same = dict(base)
    result = {c.variant: c for c in compare_to_baseline({"base": base, "better": better, "same": same}, "base", "m", 1)}
    assert (result["better"].wins, result["better"].ties, result["better"].losses) == (25, 0, 5)
    assert result["better"].delta == pytest.approx((25 * 0.3 - 5 * 0.1) / 30)
    assert result["better"].significant and result["better"].p_value < 0.01
    assert (result["same"].ties, result["same"].p_value, result["same"].significant) == (30, 1.0, False)


def test_variant_and_spec_errors_name_the_choices(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="unknown preset 'densest' \\(choose dense, fts"):
        make_variant("densest")
    with pytest.raises(CatalogError, match="unknown parameter 'fusions'"):
        make_variant("x", base="full", params={"fusions": "rrf"})
    with pytest.raises(CatalogError, match="unknown ad ranking 'clip' \\(choose keyword, dense, hybrid, intent\\)"):
        make_variant("clip", kind="ads")
    rrf = make_variant("full-rrf", base="full", params={"fusion": "rrf", "weights": {"fts": 2.0}}).options()
    assert rrf.fusion == "rrf" and rrf.weights["fts"] == 2.0 and rrf.weights["dense"] == 1.0 and rrf.ads_k == 0
    base = {"name": "e", "queries": "q.jsonl", "qrels": "q.txt", "variants": [{"name": "dense", "preset": "dense"}]}
    with pytest.raises(CatalogError, match="missing key 'qrels'"):
        parse_spec({k: v for k, v in base.items() if k != "qrels"}, tmp_path)
    with pytest.raises(CatalogError, match="baseline 'full' is not a variant \\(choose dense\\)"):
        parse_spec({**base, "baseline": "full"}, tmp_path)
    spec = parse_spec({**base, "now": "2026-11-25T00:00:00"}, tmp_path)
    assert spec.queries == (tmp_path / "q.jsonl").resolve() and spec.baseline == "dense"
    assert spec.now is not None and spec.now.tzinfo is not None
