"""Exposure-fairness formulas against worked examples, FairRankTune and scipy; the audit end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

from api.cli import app
from indexer.encoders import load_text_encoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import Query
from search.engine import Engine
from search.evaluation import fairness
from search.evaluation.audit import AuditSettings, run_audit, write_report
from tests.helpers import write_jsonl


def test_attention_models() -> None:
    assert fairness.attention(3, "log") == pytest.approx([1.0, 1 / np.log2(3), 0.5])
    assert fairness.attention(3, "geometric", 0.5) == pytest.approx([1.0, 0.5, 0.25])
    with pytest.raises(ValueError, match="choose log, geometric"):
        fairness.attention(3, "linear")


def test_group_exposure_splits_multi_group_scenes() -> None:
    groups = {"a": ["x"], "b": ["x", "y"], "c": []}
    exposure = fairness.group_exposure([["a", "b", "c"]], groups)
    assert exposure == pytest.approx({"x": 1 + 0.5 / np.log2(3), "y": 0.5 / np.log2(3), "unknown": 0.5})
    assert sum(exposure.values()) == pytest.approx(fairness.attention(3).sum())


def test_group_exposure_matches_fairranktune() -> None:
    from FairRankTune.Metrics import AWRF, EXP

    rankings = [["a", "b", "c", "d"], ["c", "a", "d", "b"], ["d", "c", "b", "a"]]
    groups = {"a": ["g1"], "b": ["g1"], "c": ["g2"], "d": ["g3"]}
    frame = pd.DataFrame(dict(enumerate(rankings)))
    item_group = {s: g[0] for s, g in groups.items()}
    counts = {"g1": 2, "g2": 1, "g3": 1}
    _, per_item = EXP(frame, item_group, "MinMaxRatio")  # mean 1/log2(1+rank) exposure per group member
    ours = fairness.group_exposure(rankings, groups, "log")
    assert {g: ours[g] / counts[g] for g in counts} == pytest.approx(per_item)
    _, attention = AWRF(frame, item_group, 0.5, "MinMaxRatio")  # 100 * p * (1-p)^(rank-1) per member
    geometric = fairness.group_exposure(rankings, groups, "geometric", 0.5)
    assert {g: 100 * 0.5 * geometric[g] / counts[g] for g in counts} == pytest.approx(attention)


def test_gini_worked_examples() -> None:
    assert fairness.gini([1, 1, 1, 1]) == 0.0
    assert fairness.gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert fairness.gini([1, 2, 3, 4]) == pytest.approx(0.25)  # sum |xi - xj| = 20 over 2 * 16 * 2.5
    rng = np.random.default_rng(0)
    x = rng.exponential(size=50)
    double_sum = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert fairness.gini(x.tolist()) == pytest.approx(double_sum)
    share, cumulative = fairness.lorenz([0, 0, 0, 1])
    assert share.tolist() == [0, 0.25, 0.5, 0.75, 1.0] and cumulative.tolist() == [0, 0, 0, 0, 1.0]


def test_awrf_is_jensen_shannon_against_the_target() -> None:
    assert fairness.jensen_shannon([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0)
    assert fairness.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    p, q = [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]
    assert fairness.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2)
    groups = {"a": ["x"], "b": ["x"]}
    one_sided = fairness.awrf([["a", "b"]], groups, {"x": 1, "y": 1})
    assert one_sided == pytest.approx(jensenshannon([1, 0], [0.5, 0.5], base=2) ** 2)
    assert fairness.awrf([["a", "b"]], groups, {"x": 1}) == pytest.approx(0.0)


def test_expected_exposure_worked_example() -> None:
    grades = {"a": 2, "b": 1, "c": 1, "d": 0}
    assert fairness.target_exposure(grades, 0.5) == {"a": 1.0, "b": 0.375, "c": 0.375}
    ee = fairness.expected_exposure(["a", "b", "c"], grades, {"a": ["x"], "b": ["y"], "c": ["y"]}, 0.5)
    assert ee.loss == pytest.approx(2 * 0.125**2)
    assert ee.disparity == pytest.approx(1 + 0.25 + 0.0625)
    assert ee.relevance == pytest.approx(1 + 0.5 * 0.375 + 0.25 * 0.375)
    assert ee.loss == pytest.approx(ee.disparity - 2 * ee.relevance + (1 + 2 * 0.375**2))  # Diaz et al. eq.
    assert ee.group_loss == pytest.approx(0.0)  # group y gets .75 and should get .75
    worse = fairness.expected_exposure(["c", "b", "a"], grades, {}, 0.5)
    assert worse.loss > ee.loss and worse.relevance < ee.relevance


SCENES = [
    {"scene_id": f"f{i}", "prompt": f"{word} sneakers on a city street", "creator_id": f"c{i % 3}", "tone": [tone]}
    for i, (word, tone) in enumerate(
        [("red", "energetic"), ("blue", "calm"), ("green", "playful"), ("red", "calm"), ("neon", "energetic")]
    )
]


@pytest.fixture(scope="module")
def audit_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audit")
    scenes = write_jsonl(root / "scenes.jsonl", SCENES)
    text = load_text_encoder("hash:384")  # the stand-in: fairness arithmetic does not need semantics
    index_catalog(
        IndexOptions(db=root / "index", progress=False, use_clip=False), scenes, encoders=Encoders(text, None, None)
    )
    queries = [{"query_id": "q1", "text": "red sneakers"}, {"query_id": "q2", "text": "calm street"}]
    qrels = root / "qrels.txt"
    qrels.write_text("q1 0 f0 2\nq1 0 f3 1\nq2 0 f1 1\n")
    return {"db": root / "index", "queries": write_jsonl(root / "queries.jsonl", queries), "qrels": qrels}


def test_audit_reports_exposure_gini_awrf_and_ee(audit_files: dict[str, Path], tmp_path: Path) -> None:
    engine = Engine.open(audit_files["db"], text=load_text_encoder("hash:384"), use_clip=False)
    queries = [Query(query_id="q1", text="red sneakers"), Query(query_id="q2", text="calm street")]
    from search.evaluation.metrics import read_trec_qrels

    settings = AuditSettings(group_by="creator", k=3)
    results = run_audit(engine, queries, ["full", "dense"], settings, read_trec_qrels(audit_files["qrels"]))
    for result in results:
        assert sum(result.exposure_share.values()) == pytest.approx(1.0, abs=1e-5)
        assert set(result.exposure_share) <= {"c0", "c1", "c2"}
        assert result.creator_gini == pytest.approx(fairness.gini(result.creator_exposure), abs=1e-6)
        assert result.ndcg is not None and 0 < result.ndcg <= 1 and result.expected_exposure is not None
    written = write_report(results, settings, tmp_path / "report")
    assert [p.name for p in written] == ["results.json", "summary.md", "exposure_by_creator.png", "lorenz_creators.png"]
    assert all(p.stat().st_size > 0 for p in written)


def test_cli_audit_and_lineage(audit_files: dict[str, Path]) -> None:
    runner = CliRunner()
    args = [
        "audit",
        "--db",
        str(audit_files["db"]),
        "--queries",
        str(audit_files["queries"]),
        "--group",
        "tone",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["variants"]["full+collapse"]["exposure_share"]) <= {"energetic", "calm", "playful"}
    bad = runner.invoke(app, [*args[:-3], "--group", "brand"])
    assert bad.exit_code != 0
    lineage = runner.invoke(app, ["lineage", "--db", str(audit_files["db"]), "--min-size", "1", "--json"])
    assert lineage.exit_code == 0, lineage.output
    assert len(json.loads(lineage.stdout)["families"]) == len(SCENES)
