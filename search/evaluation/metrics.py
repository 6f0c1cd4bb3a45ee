"""IR metrics through ranx: judgments + a ranked run -> named metrics, one of them primary.

A run is `{query_id: [(doc_id, score), ...]}` in the engine's rank order. ranx and trec_eval re-sort by
score and order ties their own way, so `ranx_run` nudges tied scores down by a hair to keep the engine's
order. Queries without any relevant judgment are left out of the averages (trec_eval's convention); a query
that is judged but missing from the run scores 0.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import CatalogError

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> grade (0 = judged not relevant)
RankedRun = dict[str, list[tuple[str, float]]]  # query id -> (doc id, score), best first

PRIMARY = "ndcg@10"
DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map")
TIE_STEP = 1e-6
LABELS = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "precision": "P"}


@dataclass
class Evaluation:
    """Mean metrics over the judged queries, with per-query values for tests and plots."""

    scores: dict[str, float]
    per_query: dict[str, dict[str, float]]  # metric -> query id -> value
    primary: str = PRIMARY
    queries: int = 0
    skipped: list[str] = field(default_factory=list)  # judged queries with no relevant document

    @property
    def primary_score(self) -> float:
        return self.scores[self.primary]


def label(metric: str) -> str:
    """Display name of a ranx metric: 'ndcg@10' -> 'nDCG@10'."""
    name, _, k = metric.partition("@")
    return f"{LABELS.get(name, name)}@{k}" if k else LABELS.get(name, name)


def read_trec_qrels(path: Path) -> Qrels:
    """TREC qrels: `query_id iteration doc_id grade`, whitespace separated (CRLF tolerated)."""
    qrels: Qrels = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: qrels file not found") from exc
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4 or not _is_int(parts[3]):
            raise CatalogError(f"{path}:{number}: expected 'query_id 0 doc_id grade', got {line.strip()!r}")
        qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def read_tsv_qrels(path: Path) -> Qrels:
    """BEIR qrels: a `query-id corpus-id score` header, then tab-separated rows (CRLF tolerated)."""
    qrels: Qrels = {}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: qrels file not found") from exc
    for number, row in enumerate(rows, start=1):
        row = [cell.strip() for cell in row]
        if not any(row) or (number == 1 and not _is_int(row[-1])):
            continue  # blank line or header
        if len(row) != 3 or not _is_int(row[2]):
            raise CatalogError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {row!r}")
        qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def relevant_only(qrels: Qrels) -> Qrels:
    """The queries that have at least one relevant (grade >= 1) document."""
    return {q: docs for q, docs in qrels.items() if any(g > 0 for g in docs.values())}


def strictly_decreasing(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The same ranking with scores lowered just enough that no two tie (rank order is kept)."""
    out: list[tuple[str, float]] = []
    for doc_id, score in pairs:
        value = float(score)
        if out and value >= out[-1][1]:
            value = out[-1][1] - max(TIE_STEP, abs(out[-1][1]) * TIE_STEP)
        out.append((doc_id, value))
    return out


def ranx_run(run: RankedRun, name: str | None = None):  # type: ignore[no-untyped-def]
    from ranx import Run

    return Run.from_dict({q: dict(strictly_decreasing(pairs)) for q, pairs in run.items() if pairs}, name=name)


def ranx_qrels(qrels: Qrels):  # type: ignore[no-untyped-def]
    from ranx import Qrels as RanxQrels

    return RanxQrels.from_dict({q: dict(docs) for q, docs in qrels.items()})


def evaluate_run(
    qrels: Qrels, run: RankedRun, metrics: Iterable[str] = DEFAULT_METRICS, primary: str = PRIMARY
) -> Evaluation:
    """ranx metrics of one run over the queries of `qrels` that have a relevant document."""
    from ranx import evaluate

    names = list(dict.fromkeys([primary, *metrics]))
    judged = relevant_only(qrels)
    skipped = sorted(set(qrels) - set(judged))
    if not judged:
        raise CatalogError("the judgments name no relevant document (grade >= 1); nothing to evaluate")
    answered = {q: pairs for q, pairs in run.items() if q in judged and pairs}
    if not answered:  # ranx cannot hold an empty run; every query scores 0
        zeros = {m: dict.fromkeys(judged, 0.0) for m in names}
        return Evaluation(dict.fromkeys(names, 0.0), zeros, primary, len(judged), skipped)
    ranx_result = ranx_run(answered)
    evaluate(ranx_qrels(judged), ranx_result, names, make_comparable=True)
    per_query = {m: {q: float(v) for q, v in ranx_result.scores[m].items()} for m in names}
    means = {m: float(sum(per_query[m].values()) / len(per_query[m])) for m in names}
    return Evaluation(means, per_query, primary, len(judged), skipped)


def subset(evaluation: Evaluation, query_ids: Iterable[str]) -> dict[str, float]:
    """Mean of each metric over some of the evaluated queries (a slice); empty dict if none were evaluated."""
    wanted = [q for q in query_ids if q in evaluation.per_query[evaluation.primary]]
    if not wanted:
        return {}
    return {m: sum(values[q] for q in wanted) / len(wanted) for m, values in evaluation.per_query.items()}


def write_trec_run(path: Path, run: RankedRun, tag: str) -> None:
    """TREC run format, `query_id Q0 doc_id rank score tag`, readable by trec_eval, ranx and ir-measures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for query_id in sorted(run):
            for rank, (doc_id, score) in enumerate(strictly_decreasing(run[query_id]), start=1):
                fh.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n")


def mean_of(values: Mapping[str, float]) -> float:
    return float(sum(values.values()) / len(values)) if values else 0.0
