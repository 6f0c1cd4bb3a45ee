"""The commands end to end: `experiment run` on the fixture experiment, `eval` and `eval-beir` on small indexes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from tests.helpers import ADS, CONSENTS, SCENES, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
AD_EXPERIMENT = ROOT / "fixtures" / "experiments" / "ad_relevance.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _invoke(*args: str) -> tuple[str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout, result.stderr


def test_experiment_run_writes_every_report_file(tmp_path: Path) -> None:
    out = tmp_path / "report"
    stdout, stderr = _invoke("experiment", "run", str(AD_EXPERIMENT), "--out", str(out))
    names = {p.name for p in out.iterdir()}
    assert names == {"summary.md", "results.json", "metrics.png", "winloss.png", "slices.png"}
    for png in out.glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) < 100_000, png.name
    assert "| **keyword** (baseline) |" in stdout and f"wrote {out / 'summary.md'}" in stderr
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"]["baseline"] == "keyword" and results["judged_queries"] == 24
    assert list(results["variants"]) == ["keyword", "dense", "hybrid", "hybrid+intent"]
    for variant in results["variants"].values():
        assert set(variant["metrics"]) == {"ndcg@10", "recall@10", "mrr@10", "map"}
        low, high = variant["ci95"]["ndcg@10"]
        assert low <= variant["metrics"]["ndcg@10"] <= high
        assert len(variant["per_query"]["ndcg@10"]) == 24
    tests = results["comparisons"]["ndcg@10"]
    assert [c["variant"] for c in tests] == ["dense", "hybrid", "hybrid+intent"]
    assert all(0 < c["p_value"] <= 1 and c["wins"] + c["ties"] + c["losses"] == 24 for c in tests)
    assert set(results["slices"]["dense"]) == {"all", "scenario", "paraphrase", "negation"}
    prov = results["provenance"]
    assert prov["seed"] == 7 and prov["index"]["text_encoder"] == "st:all-MiniLM-L6-v2"
    assert prov["consent_time"].startswith("2026-11-25T00:00:00")
    assert prov["packages"]["ranx"] != "not installed" and len(prov["inputs"]["experiment"]["sha256"]) == 64
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Experiment: ad-relevance") and "![winloss](winloss.png)" in summary


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Path:
    root = tmp_path_factory.mktemp("eval-cli")
    scenes = [{k: v for k, v in s.items() if k != "media"} for s in SCENES]
    paths = [write_jsonl(root / f"{n}.jsonl", r) for n, r in (("s", scenes), ("a", ADS), ("c", CONSENTS))]
    index_catalog(
        IndexOptions(db=root / "index", use_clip=False, progress=False),
        *paths,
        encoders=Encoders(text_encoder, None, None),
    )
    return root / "index"


def test_eval_prints_json_and_writes_a_trec_run(tmp_path: Path, small_index: Path) -> None:
    queries = write_jsonl(
        tmp_path / "q.jsonl",
        [{"query_id": "e1", "text": "red parka on a snowy mountain"}, {"query_id": "e2", "text": "leather sofa"}],
    )
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("e1 0 s1 3\ne1 0 s2 2\ne2 0 s4 3\n")
    run = tmp_path / "run.trec"
    args = ["--db", str(small_index), "--queries", str(queries), "--qrels", str(qrels), "--json"]
    stdout, _ = _invoke("eval", *args, "--variant", "dense", "--variant", "clip", "--run-out", str(run))
    payload = json.loads(stdout)
    assert list(payload["variants"]) == ["dense"] and payload["primary"] == "ndcg@10"
    assert payload["variants"]["dense"]["mrr@10"] == pytest.approx(1.0)
    assert "no visual channel" in payload["unavailable"]["clip"]
    assert payload["ann_recall"]["params"]["kind"] == "hnsw"
    lines = run.read_text().splitlines()
    assert lines[0].split()[:2] == ["e1", "Q0"] and lines[0].split()[2] in {"s1", "s2"}
    assert lines[0].split()[3] == "1" and lines[0].endswith(" dense")
    bad = CliRunner().invoke(app, ["eval", *args, "--variant", "densest"])
    assert bad.exit_code != 0


def test_eval_beir_indexes_once_and_reuses_the_index(tmp_path: Path) -> None:
    data = tmp_path / "mini"
    (data / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Vitamin D", "Vitamin D deficiency is linked to bone loss in older adults."),
        ("d2", "Sleep", "Short sleep duration raises the risk of obesity in children."),
        ("d3", "Statins", "Statins lower LDL cholesterol and cardiovascular events."),
        ("d4", "Coffee", "Coffee intake is not associated with higher mortality."),
    ]
    write_jsonl(data / "corpus.jsonl", [{"_id": i, "title": t, "text": x, "metadata": {}} for i, t, x in docs])
    queries = [("1", "vitamin D and bone health"), ("2", "sleep and childhood obesity"), ("9", "unjudged train claim")]
    write_jsonl(data / "queries.jsonl", [{"_id": i, "text": t, "metadata": {}} for i, t in queries])
    (data / "qrels" / "test.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n2\td2\t1\r\n")
    db = tmp_path / "index"
    args = ["eval-beir", "--dataset", str(data), "--db", str(db), "--variant", "dense", "--variant", "fts", "--json"]
    first = json.loads(_invoke(*args)[0])
    assert first["variants"]["dense"]["ndcg@10"] == pytest.approx(1.0)
    assert first["variants"]["fts"]["recall@10"] == pytest.approx(1.0)
    manifest = (db / "manifest.json").stat().st_mtime_ns
    second = json.loads(_invoke(*args)[0])
    assert (db / "manifest.json").stat().st_mtime_ns == manifest  # the index already held this corpus
    assert second["variants"] == first["variants"]
