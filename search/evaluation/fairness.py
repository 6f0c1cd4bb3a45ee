"""Exposure-fairness metrics of rankings; formulas in the README ("Fairness audit"), worked examples in tests.

Attention models (the probability a user looks at rank i = 1, 2, ...):
- "log":       1 / log2(1 + i), the DCG discount (no browsing model behind it, the usual default);
- "geometric": patience^(i - 1), the RBP browsing model (a user goes on to the next rank with probability
               `patience`); expected exposure (Diaz et al. 2020) is defined with it.

A scene may belong to several groups (tones, categories): its exposure is split equally among them, so group
exposures always sum to the ranking's total attention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ATTENTION = ("log", "geometric")
UNKNOWN = "unknown"

Ranking = Sequence[str]  # scene ids, best first
Groups = Mapping[str, Sequence[str]]  # scene id -> its groups


def attention(n: int, model: str = "log", patience: float = 0.5) -> np.ndarray:
    ranks = np.arange(1, n + 1, dtype=np.float64)
    if model == "log":
        weights: np.ndarray = 1.0 / np.log2(1.0 + ranks)
        return weights
    if model == "geometric":
        weights = patience ** (ranks - 1.0)
        return weights
    raise ValueError(f"unknown attention model '{model}' (choose {', '.join(ATTENTION)})")


def group_exposure(
    rankings: Sequence[Ranking], groups: Groups, model: str = "log", patience: float = 0.5
) -> dict[str, float]:
    """Total attention each group receives over all rankings."""
    out: dict[str, float] = {}
    for ranking in rankings:
        for scene, weight in zip(ranking, attention(len(ranking), model, patience), strict=True):
            members = groups.get(scene) or [UNKNOWN]
            for group in members:
                out[group] = out.get(group, 0.0) + float(weight) / len(members)
    return out


def gini(values: Sequence[float]) -> float:
    """Gini coefficient: 0 = every unit equal, (n-1)/n = one unit gets everything. Mean-difference form
    G = sum_i sum_j |x_i - x_j| / (2 n^2 mean), computed on the sorted values."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), float(x.sum()) if len(x) else 0.0
    if n == 0 or total == 0.0:
        return 0.0
    index = np.arange(1, n + 1)
    return float(np.sum((2 * index - n - 1) * x) / (n * total))


def lorenz(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve points: (share of units, share of exposure they get), poorest first, from (0, 0)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    total = x.sum() or 1.0
    return np.linspace(0.0, 1.0, len(x) + 1), np.concatenate([[0.0], np.cumsum(x) / total])


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint)."""
    a, b = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        keep = x > 0
        return float(np.sum(x[keep] * np.log2(x[keep] / y[keep])))

    return 0.5 * kl(a, m) + 0.5 * kl(b, m)


def awrf(rankings: Sequence[Ranking], groups: Groups, target: Mapping[str, float], patience: float = 0.5) -> float:
    """Attention-weighted rank fairness (Sapiezynski et al. 2019), as used at TREC Fair Ranking: per ranking,
    the Jensen-Shannon divergence between the geometric-attention-weighted group distribution and the target
    distribution (e.g. each group's share of the eligible catalog); the mean over rankings. 0 = fair."""
    names = sorted(set(target) | {g for r in rankings for s in r for g in (groups.get(s) or [UNKNOWN])})
    goal = [target.get(g, 0.0) for g in names]
    scores = []
    for ranking in rankings:
        if not ranking:
            continue
        exposure = group_exposure([ranking], groups, "geometric", patience)
        scores.append(jensen_shannon([exposure.get(g, 0.0) for g in names], goal))
    return float(np.mean(scores)) if scores else 0.0


@dataclass(frozen=True)
class ExpectedExposure:
    """Diaz et al. 2020, for one deterministic ranking per query: loss = disparity - 2 relevance + target."""

    loss: float  # EE-L = ||e - e*||^2
    disparity: float  # EE-D = ||e||^2 (lower = exposure spread more evenly)
    relevance: float  # EE-R = e . e* (higher = exposure goes where the target puts it)
    group_loss: float  # ||E - E*||^2 over groups (exposure and target summed per group)


def target_exposure(grades: Mapping[str, int], patience: float = 0.5) -> dict[str, float]:
    """Exposure under the ideal stochastic policy: relevant scenes ranked by grade, ties shuffled uniformly, so
    each scene of a grade gets the mean attention of the ranks that grade occupies. Non-relevant scenes share the
    ranks below all relevant ones, which carry (near) zero exposure in any large catalog; they get 0 here."""
    ranked = sorted(((g, s) for s, g in grades.items() if g > 0), key=lambda pair: -pair[0])
    weights = attention(len(ranked), "geometric", patience)
    out: dict[str, float] = {}
    start = 0
    while start < len(ranked):
        grade = ranked[start][0]
        end = start
        while end < len(ranked) and ranked[end][0] == grade:
            end += 1
        share = float(weights[start:end].mean())
        out.update({scene: share for _, scene in ranked[start:end]})
        start = end
    return out


def expected_exposure(
    ranking: Ranking, grades: Mapping[str, int], groups: Groups, patience: float = 0.5
) -> ExpectedExposure:
    exposure = dict(zip(ranking, attention(len(ranking), "geometric", patience).tolist(), strict=True))
    target = target_exposure(grades, patience)
    scenes = sorted(set(exposure) | set(target))
    e = np.array([exposure.get(s, 0.0) for s in scenes])
    t = np.array([target.get(s, 0.0) for s in scenes])
    by_group_e = _by_group(scenes, e, groups)
    by_group_t = _by_group(scenes, t, groups)
    names = sorted(set(by_group_e) | set(by_group_t))
    ge = np.array([by_group_e.get(g, 0.0) for g in names])
    gt = np.array([by_group_t.get(g, 0.0) for g in names])
    return ExpectedExposure(
        loss=float(np.sum((e - t) ** 2)),
        disparity=float(e @ e),
        relevance=float(e @ t),
        group_loss=float(np.sum((ge - gt) ** 2)),
    )


def _by_group(scenes: Sequence[str], values: np.ndarray, groups: Groups) -> dict[str, float]:
    out: dict[str, float] = {}
    for scene, value in zip(scenes, values, strict=True):
        members = groups.get(scene) or [UNKNOWN]
        for group in members:
            out[group] = out.get(group, 0.0) + float(value) / len(members)
    return out
