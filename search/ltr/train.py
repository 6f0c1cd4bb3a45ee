"""Training learned fusion: collect candidate features per judged query, cross-validate by query, fit, save.

Each judged set is run through the engine's own retrieval (the `full` preset's channels and frame), so the
model sees exactly the candidates and features it will score at search time. Cross-validation splits by query
(every query's candidates stay in one fold) and is stratified by dataset, so each fold's held-out queries come
from every set; only held-out folds are reported. The shipped model is then fit on every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexer.schema import Query
from search.engine import PRESETS, Engine
from search.evaluation.metrics import Qrels, RankedRun, evaluate_run
from search.ltr.features import FEATURES, candidate_features
from search.ltr.model import MODEL_NAME, PARAMS, ROUNDS, LearnedFusion, fit_booster
from search.rerank import apply_negations


@dataclass
class QueryGroup:
    dataset: str
    query_id: str
    doc_ids: list[str]  # candidates, negation-excluded ones already dropped
    features: np.ndarray  # candidates x FEATURES
    grades: np.ndarray  # judged grade per candidate (0 when unjudged)


def collect(
    dataset: str, engine: Engine, queries: Sequence[Query], qrels: Qrels, now: datetime | None = None
) -> list[QueryGroup]:
    """One group per judged query: the candidates the `full` preset retrieves, their features and grades."""
    options = PRESETS["full"]
    groups = []
    for query in queries:
        judged = qrels.get(query.query_id)
        if not judged or not any(g > 0 for g in judged.values()):
            continue
        found = engine.retrieve(query.text, query.sku, query.use, options, now=now)
        rows, features = candidate_features(found.snap, found.frame, found.results, found.terms, found.allowed)
        kept = apply_negations(found.snap, found.frame, dict.fromkeys((int(r) for r in rows), 0.0), "exclude")
        keep = np.array([int(r) in kept for r in rows], dtype=bool)
        ids = [found.snap.ids[int(r)] for r in rows[keep]]
        grades = np.array([max(judged.get(i, 0), 0) for i in ids], dtype=np.int32)
        groups.append(QueryGroup(dataset, query.query_id, ids, features[keep], grades))
    return groups


def folds(groups: Sequence[QueryGroup], k: int, seed: int) -> np.ndarray:
    """Fold number per group: queries shuffled within each dataset, then dealt round-robin."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(groups), dtype=np.int64)
    for name in sorted({g.dataset for g in groups}):
        members = np.flatnonzero([g.dataset == name for g in groups])
        rng.shuffle(members)
        out[members] = np.arange(len(members)) % k
    return out


def ranked(groups: Sequence[QueryGroup], scores: Sequence[np.ndarray], depth: int = 100) -> RankedRun:
    run: RankedRun = {}
    for group, score in zip(groups, scores, strict=True):
        order = np.lexsort((np.array(group.doc_ids), -score))[:depth]
        run[group.query_id] = [(group.doc_ids[i], float(score[i])) for i in order]
    return run


def feature_baseline(groups: Sequence[QueryGroup], name: str) -> list[np.ndarray]:
    """Scores of a fixed scheme read off the features (e.g. `rrf_sum`, RRF of the retrieval channels)."""
    col = FEATURES.index(name)
    return [g.features[:, col] for g in groups]


@dataclass
class CrossValidation:
    held_out: list[np.ndarray]  # per group, the score from the model that did not see its query
    fold_of: np.ndarray


def cross_validate(groups: Sequence[QueryGroup], k: int = 5, seed: int = 0, **params: Any) -> CrossValidation:
    fold_of = folds(groups, k, seed)
    held_out: list[np.ndarray] = [np.zeros(0)] * len(groups)
    for fold in range(k):
        train = [g for g, f in zip(groups, fold_of, strict=True) if f != fold]
        model = LearnedFusion(fit_booster(train, seed=seed, **params))
        for i in np.flatnonzero(fold_of == fold):
            held_out[int(i)] = model.score(groups[int(i)].features)
    return CrossValidation(held_out, fold_of)


def per_dataset_ndcg(
    groups: Sequence[QueryGroup], scores: Sequence[np.ndarray], qrels: dict[str, Qrels]
) -> dict[str, float]:
    out = {}
    for name, judged in qrels.items():
        pick = [i for i, g in enumerate(groups) if g.dataset == name]
        run = ranked([groups[i] for i in pick], [scores[i] for i in pick])
        out[name] = evaluate_run(judged, run).primary_score
    return out


@dataclass
class JudgedSet:
    name: str
    engine: Engine
    queries: list[Query]
    qrels: Qrels
    now: datetime | None = None
    source: str = ""  # where the judgments come from, for the manifest


@dataclass
class TrainReport:
    held_out: dict[str, dict[str, float]]  # dataset -> scheme -> nDCG@10 over held-out folds
    queries: dict[str, int]
    files: list[Path]

    def to_json(self) -> dict[str, Any]:
        return {"held_out_ndcg@10": self.held_out, "queries": self.queries, "files": [str(p) for p in self.files]}


def train(sets: Sequence[JudgedSet], out: Path, name: str = MODEL_NAME, k: int = 5, seed: int = 0) -> TrainReport:
    """Cross-validate by query over every set, report held-out nDCG@10 against RRF, fit on all, save."""
    groups = [g for s in sets for g in collect(s.name, s.engine, s.queries, s.qrels, s.now)]
    judged = {s.name: s.qrels for s in sets}
    cv = cross_validate(groups, k, seed)
    held_out = {
        name: {"learned": learned, "rrf": rrf}
        for (name, learned), rrf in zip(
            per_dataset_ndcg(groups, cv.held_out, judged).items(),
            per_dataset_ndcg(groups, feature_baseline(groups, "rrf_sum"), judged).values(),
            strict=True,
        )
    }
    model = LearnedFusion(fit_booster(groups, seed=seed))
    counts = {s.name: sum(g.dataset == s.name for g in groups) for s in sets}
    manifest = {
        "model": name,
        "library": f"lightgbm {_version('lightgbm')}",
        "objective": "lambdarank (LambdaMART), label = judged grade",
        "params": PARAMS,
        "rounds": ROUNDS,
        "seed": seed,
        "trained_on": {s.name: {"queries": counts[s.name], "judgments": s.source} for s in sets},
        "cross_validation": {"folds": k, "split": "by query, stratified by dataset", "held_out_ndcg@10": held_out},
        "text_encoders": sorted({s.engine.text.id for s in sets}),
    }
    return TrainReport(held_out, counts, model.save(out, name, manifest))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
