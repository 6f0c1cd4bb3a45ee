"""Offline evaluation: IR metrics through ranx, BEIR datasets, ANN recall, relevance experiments and reports.

Uses `search` as a library (never `api`): an evaluator takes an engine and returns named metrics per variant,
with one metric marked primary (nDCG@10 unless told otherwise).
"""

from search.evaluation.evaluator import EvalResult, RetrievalEvaluator
from search.evaluation.metrics import DEFAULT_METRICS, PRIMARY, Evaluation, evaluate_run
from search.evaluation.runs import Variant, make_variant

__all__ = [
    "DEFAULT_METRICS",
    "PRIMARY",
    "EvalResult",
    "Evaluation",
    "RetrievalEvaluator",
    "Variant",
    "evaluate_run",
    "make_variant",
]
