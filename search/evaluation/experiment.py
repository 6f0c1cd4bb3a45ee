"""Relevance experiments: a TOML file names a query set with judgments, the variants and their parameters.

    name = "ad-relevance"
    kind = "ads"                      # "scenes" (PRESETS + overrides) or "ads" (keyword, dense, hybrid, intent)
    queries = "../catalog/ad_queries.jsonl"   # paths are relative to the TOML file
    qrels = "../catalog/ad_qrels.txt"
    baseline = "keyword"
    seed = 7
    now = 2026-11-25T00:00:00Z        # consent is evaluated at this time, so reruns agree
    [index]                           # built into a temporary folder unless a --db is given
    scenes = "../catalog/scenes.jsonl"
    [[variants]]
    name = "keyword"
    ranking = "keyword"               # scenes: preset = "full", params = { fusion = "rrf" }

`run_experiment` evaluates every variant, adds bootstrap intervals, paired tests against the baseline,
per-slice scores, ANN recall (scene experiments) and what is needed to reproduce the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomllib

from indexer.catalog import read_queries
from indexer.errors import CatalogError
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import Query
from search.engine import Engine
from search.evaluation import provenance
from search.evaluation.ann_recall import AnnRecall, engine_ann_recall
from search.evaluation.evaluator import EvalResult, RetrievalEvaluator
from search.evaluation.metrics import DEFAULT_METRICS, PRIMARY, Qrels, read_trec_qrels
from search.evaluation.runs import DEFAULT_DEPTH, Variant, make_variant
from search.evaluation.stats import Comparison, Interval, bootstrap_interval, compare_to_baseline

INDEX_KEYS = ("scenes", "ads", "consents", "media_root")


@dataclass
class ExperimentSpec:
    name: str
    kind: str
    queries: Path
    qrels: Path
    variants: list[Variant]
    baseline: str
    description: str = ""
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    primary: str = PRIMARY
    depth: int = DEFAULT_DEPTH
    seed: int = 0
    alpha: float = 0.05
    now: datetime | None = None
    index: dict[str, Path] = field(default_factory=dict)
    use_clip: bool = True
    ann_recall: bool = True
    source: Path | None = None


@dataclass
class ExperimentResult:
    spec: ExperimentSpec
    evaluation: EvalResult
    intervals: dict[str, dict[str, Interval]]  # variant -> metric -> bootstrap CI
    comparisons: dict[str, list[Comparison]]  # metric -> variant vs baseline
    ann: AnnRecall | None
    provenance: dict[str, Any]


def _variant(raw: dict[str, Any], kind: str, where: str) -> Variant:
    if "name" not in raw:
        raise CatalogError(f"{where}: every [[variants]] entry needs a name")
    base = raw.get("ranking" if kind == "ads" else "preset")
    return make_variant(str(raw["name"]), kind, str(base) if base else None, raw.get("params"))


def parse_time(value: Any, where: str = "now") -> datetime | None:
    """An ISO date-time (TOML datetime or text); naive values are UTC."""
    if value is None:
        return None
    when: datetime
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise CatalogError(f"{where}: 'now' must be an ISO date-time, got {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_spec(data: dict[str, Any], base: Path, where: str = "experiment") -> ExperimentSpec:
    """Check an experiment description (a parsed TOML table); paths resolve against `base`."""
    missing = [k for k in ("name", "queries", "qrels", "variants") if k not in data]
    if missing:
        raise CatalogError(f"{where}: missing key '{missing[0]}' (see fixtures/experiments/ for examples)")
    kind = str(data.get("kind", "scenes"))
    variants = [_variant(v, kind, where) for v in data["variants"]]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise CatalogError(f"{where}: variant names must be unique, got {', '.join(names)}")
    baseline = str(data.get("baseline", names[0]))
    if baseline not in names:
        raise CatalogError(f"{where}: baseline '{baseline}' is not a variant (choose {', '.join(names)})")
    index = {k: (base / str(v)).resolve() for k, v in data.get("index", {}).items() if k in INDEX_KEYS}
    return ExperimentSpec(
        name=str(data["name"]),
        kind=kind,
        description=str(data.get("description", "")),
        queries=(base / str(data["queries"])).resolve(),
        qrels=(base / str(data["qrels"])).resolve(),
        variants=variants,
        baseline=baseline,
        metrics=[str(m) for m in data.get("metrics", DEFAULT_METRICS)],
        primary=str(data.get("primary", PRIMARY)),
        depth=int(data.get("depth", DEFAULT_DEPTH)),
        seed=int(data.get("seed", 0)),
        alpha=float(data.get("alpha", 0.05)),
        now=parse_time(data.get("now"), where),
        index=index,
        use_clip=bool(data.get("index", {}).get("clip", True)),
        ann_recall=bool(data.get("ann_recall", kind == "scenes")),
    )


def load_spec(path: Path) -> ExperimentSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: experiment file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: invalid TOML ({exc})") from exc
    spec = parse_spec(data, path.parent, str(path))
    spec.source = path.resolve()
    return spec


@contextmanager
def experiment_index(spec: ExperimentSpec, db: Path | None, encoders: Encoders | None = None) -> Iterator[Path]:
    """The given index, or one built from the spec's [index] catalog in a temporary folder."""
    if db is not None:
        yield db
        return
    if "scenes" not in spec.index and "ads" not in spec.index:
        raise CatalogError(f"experiment '{spec.name}' has no [index] catalog; pass an index with --db")
    with tempfile.TemporaryDirectory(prefix="visual-intent-exp-") as tmp:
        db = Path(tmp) / "index"
        options = IndexOptions(
            db=db,
            use_clip=spec.use_clip,
            media_root=spec.index.get("media_root"),
            progress=False,
        )
        index_catalog(options, spec.index.get("scenes"), spec.index.get("ads"), spec.index.get("consents"), encoders)
        yield db


def adhoc_spec(
    name: str,
    kind: str,
    queries: Path,
    qrels: Path,
    variants: list[str],
    depth: int = DEFAULT_DEPTH,
    seed: int = 0,
    now: datetime | None = None,
    ann_recall: bool = True,
) -> ExperimentSpec:
    """The spec behind `visual-intent eval`: the named variants with default parameters, the first as baseline."""
    key = "ranking" if kind == "ads" else "preset"
    data = {
        "name": name,
        "kind": kind,
        "queries": str(queries.resolve()),
        "qrels": str(qrels.resolve()),
        "variants": [{"name": v, key: v} for v in variants],
        "depth": depth,
        "seed": seed,
        "ann_recall": ann_recall and kind == "scenes",
    }
    spec = parse_spec(data, Path.cwd(), name)
    spec.now = now
    return spec


def evaluate_spec(
    spec: ExperimentSpec, engine: Engine, queries: list[Query] | None = None, qrels: Qrels | None = None
) -> ExperimentResult:
    """Every variant of `spec` on `engine`, with intervals, paired tests and provenance.

    `queries` and `qrels` default to the spec's files (JSONL queries, TREC qrels); BEIR passes its own.
    """
    queries = queries if queries is not None else read_queries(spec.queries)
    qrels = qrels if qrels is not None else read_trec_qrels(spec.qrels)
    evaluator = RetrievalEvaluator(queries, qrels, spec.variants, spec.metrics, spec.primary, spec.depth, spec.now)
    result = evaluator(engine)
    evaluated = result.evaluated()
    intervals = {
        name: {m: bootstrap_interval(list(ev.per_query[m].values()), spec.seed) for m in result.metrics}
        for name, ev in evaluated.items()
    }
    comparisons: dict[str, list[Comparison]] = {}
    if spec.baseline in evaluated:
        for metric in result.metrics:
            per_query = {name: ev.per_query[metric] for name, ev in evaluated.items()}
            comparisons[metric] = compare_to_baseline(per_query, spec.baseline, metric, spec.seed, spec.alpha)
    ann = engine_ann_recall(engine, [q.text for q in queries]) if spec.ann_recall else None
    return ExperimentResult(spec, result, intervals, comparisons, ann, provenance.collect(spec, engine))


def run_experiment(spec: ExperimentSpec, db: Path | None = None, encoders: Encoders | None = None) -> ExperimentResult:
    """Evaluate `spec` on the index at `db`, or on one built from the spec's catalog."""
    with experiment_index(spec, db, encoders) as path:
        text = encoders.text if encoders else None
        engine = Engine.open(path, text=text, use_clip=spec.use_clip)
        return evaluate_spec(spec, engine)
