"""The evaluator: give it an engine, get named metrics per variant with one primary (ST's `evaluation/` shape).

    evaluator = RetrievalEvaluator(queries, qrels, [make_variant("dense"), make_variant("full")])
    result = evaluator(Engine.open(db))
    result.scores()  # {"dense": {"ndcg@10": ..., ...}, "full": {...}}

A variant the index cannot run (CLIP on an index without CLIP vectors) is reported as unavailable with the
reason, never scored as zeros.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from indexer.schema import Query
from search.engine import Engine
from search.evaluation.metrics import (
    DEFAULT_METRICS,
    PRIMARY,
    Evaluation,
    Qrels,
    RankedRun,
    evaluate_run,
    relevant_only,
    subset,
)
from search.evaluation.runs import DEFAULT_DEPTH, Variant, partial_note, run_variant, unavailable_reason

SLICE_FIELD = "slice"


@dataclass
class VariantResult:
    variant: Variant
    run: RankedRun = field(default_factory=dict)
    evaluation: Evaluation | None = None
    unavailable: str | None = None
    note: str | None = None
    seconds: float = 0.0


@dataclass
class EvalResult:
    variants: dict[str, VariantResult]
    metrics: list[str]
    primary: str
    slices: dict[str, list[str]]  # slice name -> judged query ids
    skipped_queries: list[str]
    depth: int

    def evaluated(self) -> dict[str, Evaluation]:
        return {n: r.evaluation for n, r in self.variants.items() if r.evaluation is not None}

    def scores(self) -> dict[str, dict[str, float]]:
        return {name: dict(ev.scores) for name, ev in self.evaluated().items()}

    def unavailable(self) -> dict[str, str]:
        return {n: r.unavailable for n, r in self.variants.items() if r.unavailable}

    def slice_scores(self) -> dict[str, dict[str, dict[str, float]]]:
        """variant -> slice -> metric -> mean over the slice's judged queries."""
        return {
            name: {s: subset(ev, ids) for s, ids in self.slices.items() if subset(ev, ids)}
            for name, ev in self.evaluated().items()
        }

    def to_json(self) -> dict[str, Any]:
        """`{"variants": {NAME: {METRIC: value}}}` plus the primary metric and unavailable variants."""
        out: dict[str, Any] = {"variants": self.scores(), "primary": self.primary}
        if self.unavailable():
            out["unavailable"] = self.unavailable()
        if len(self.slices) > 1:
            out["slices"] = self.slice_scores()
        return out


def query_slices(queries: Iterable[Query], judged: Iterable[str]) -> dict[str, list[str]]:
    """Judged query ids grouped by the queries' optional `slice` field ("all" holds every one)."""
    keep = set(judged)
    slices: dict[str, list[str]] = {"all": []}
    for query in queries:
        if query.query_id not in keep:
            continue
        slices["all"].append(query.query_id)
        name = (query.model_extra or {}).get(SLICE_FIELD)
        if name:
            slices.setdefault(str(name), []).append(query.query_id)
    return slices


class RetrievalEvaluator:
    """Runs each variant over the queries and scores it against the judgments with ranx."""

    def __init__(
        self,
        queries: Sequence[Query],
        qrels: Qrels,
        variants: Sequence[Variant],
        metrics: Sequence[str] = DEFAULT_METRICS,
        primary: str = PRIMARY,
        depth: int = DEFAULT_DEPTH,
        now: datetime | None = None,
    ):
        self.queries = list(queries)
        self.qrels = qrels
        self.variants = list(variants)
        self.metrics = list(dict.fromkeys([primary, *metrics]))
        self.primary = primary
        self.depth = depth
        self.now = now
        self.primary_metric = primary  # the name ST's evaluators expose

    def __call__(self, engine: Engine) -> EvalResult:
        results = {v.name: self.run_one(engine, v) for v in self.variants}
        judged = relevant_only(self.qrels)
        return EvalResult(
            variants=results,
            metrics=self.metrics,
            primary=self.primary,
            slices=query_slices(self.queries, judged),
            skipped_queries=sorted(set(self.qrels) - set(judged)),
            depth=self.depth,
        )

    def run_one(self, engine: Engine, variant: Variant) -> VariantResult:
        reason = unavailable_reason(engine, variant)
        if reason:
            return VariantResult(variant, unavailable=reason)
        started = time.perf_counter()
        run = run_variant(engine, self.queries, variant, self.depth, self.now)
        seconds = time.perf_counter() - started
        evaluation = evaluate_run(self.qrels, run, self.metrics, self.primary)
        return VariantResult(variant, run, evaluation, note=partial_note(engine, variant), seconds=seconds)
