"""Uncertainty and paired comparisons over per-query metric values (scipy, seeded so runs repeat exactly).

- Confidence interval of a mean: percentile bootstrap over queries.
- Variant vs baseline: a paired randomization (sign-flip permutation) test on the per-query differences,
  the paired t-test for reference, and Benjamini-Hochberg adjusted p-values across the variants compared.
- Win / tie / loss: per query, whether the variant beats the baseline (ties within 1e-9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TIE = 1e-9


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    level: float


@dataclass
class Comparison:
    variant: str
    baseline: str
    metric: str
    delta: float  # variant mean - baseline mean
    p_value: float  # paired randomization test, two-sided
    p_ttest: float
    p_adjusted: float  # Benjamini-Hochberg over the variants compared with the baseline
    wins: int
    ties: int
    losses: int
    significant: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def aligned(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Values of the queries both mappings hold, in one order."""
    keys = sorted(set(a) & set(b))
    return np.array([a[k] for k in keys], np.float64), np.array([b[k] for k in keys], np.float64)


def bootstrap_interval(values: Sequence[float], seed: int, level: float = 0.95, resamples: int = 2000) -> Interval:
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean()) if len(data) else 0.0
    if len(data) < 2 or np.ptp(data) == 0:
        return Interval(mean, mean, mean, level)
    result = bootstrap(
        (data,), np.mean, confidence_level=level, n_resamples=resamples, method="percentile", random_state=seed
    )
    return Interval(mean, float(result.confidence_interval.low), float(result.confidence_interval.high), level)


def paired_p_values(
    variant: np.ndarray, baseline: np.ndarray, seed: int, resamples: int = 10_000
) -> tuple[float, float]:
    """(randomization-test p, t-test p) for the paired per-query values; 1.0 when the runs never differ."""
    from scipy.stats import permutation_test, ttest_rel

    if len(variant) < 2 or np.allclose(variant, baseline, atol=TIE):
        return 1.0, 1.0
    perm = permutation_test(
        (variant, baseline),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=resamples,
        alternative="two-sided",
        random_state=seed,
    )
    t_p = ttest_rel(variant, baseline).pvalue
    return float(perm.pvalue), float(t_p) if np.isfinite(t_p) else 1.0


def win_tie_loss(variant: np.ndarray, baseline: np.ndarray) -> tuple[int, int, int]:
    diff = variant - baseline
    return int((diff > TIE).sum()), int((np.abs(diff) <= TIE).sum()), int((diff < -TIE).sum())


def compare_to_baseline(
    per_query: Mapping[str, Mapping[str, float]], baseline: str, metric: str, seed: int, alpha: float = 0.05
) -> list[Comparison]:
    """Every variant in `per_query` (name -> query -> value) against `baseline` on one metric."""
    base = per_query[baseline]
    out = []
    for name, values in per_query.items():
        if name == baseline:
            continue
        v, b = aligned(values, base)
        p, t_p = paired_p_values(v, b, seed)
        w, t, loss = win_tie_loss(v, b)
        delta = float(v.mean() - b.mean()) if len(v) else 0.0
        out.append(Comparison(name, baseline, metric, delta, p, t_p, p, w, t, loss))
    _adjust(out, alpha)
    return out


def _adjust(comparisons: list[Comparison], alpha: float) -> None:
    from scipy.stats import false_discovery_control

    if not comparisons:
        return
    adjusted = false_discovery_control([c.p_value for c in comparisons], method="bh")
    for c, q in zip(comparisons, np.atleast_1d(adjusted), strict=True):
        c.p_adjusted = float(q)
        c.significant = bool(q <= alpha)
