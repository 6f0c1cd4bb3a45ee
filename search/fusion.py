"""Fusing channel rankings into one score per scene row.

`rrf`: reciprocal rank fusion (Cormack et al. 2009) of the retrieval channels, robust when channel scores are
not comparable. `weighted`: each retrieval channel's scores divided by its best score, weighted and summed.

Slot agreement (`search.evidence`) is not a ranking of its own: its scores are already in [0, 1] and weighted
by confidence, so both strategies add them as they are, never divided by the best (which would turn a weak
guess into a full match). In `rrf`, full agreement is worth what a first place in one channel is worth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from search.channels import ChannelResult

RRF_K = 60
LEARNED = "learned"  # a LightGBM ranker over candidate features (search.ltr), run by the engine
STRATEGIES = ("rrf", "weighted", LEARNED)
EVIDENCE = frozenset({"slots"})  # channels whose scores are absolute evidence, not a ranking


def rrf(results: Sequence[ChannelResult], weights: Mapping[str, float], k: int = RRF_K) -> dict[int, float]:
    fused: dict[int, float] = {}
    for result in results:
        w = weights.get(result.name, 1.0)
        if result.name in EVIDENCE:
            for row, value in zip(result.rows, result.scores, strict=True):
                fused[int(row)] = fused.get(int(row), 0.0) + w * float(value) / (k + 1)
            continue
        for rank, row in enumerate(result.rows, start=1):
            fused[int(row)] = fused.get(int(row), 0.0) + w / (k + rank)
    return fused


def weighted(results: Sequence[ChannelResult], weights: Mapping[str, float]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for result in results:
        if not len(result.scores):
            continue
        w = weights.get(result.name, 1.0)
        top = 1.0 if result.name in EVIDENCE else float(np.max(result.scores))
        norm = np.clip(result.scores / top, 0.0, 1.0) if top > 0 else np.zeros_like(result.scores)
        for row, value in zip(result.rows, norm, strict=True):
            fused[int(row)] = fused.get(int(row), 0.0) + w * float(value)
    return fused


def fuse(strategy: str, results: Sequence[ChannelResult], weights: Mapping[str, float]) -> dict[int, float]:
    if strategy == "rrf":
        return rrf(results, weights)
    if strategy == "weighted":
        return weighted(results, weights)
    if strategy == LEARNED:
        raise ValueError("learned fusion needs the frame and the snapshot: the engine runs it (search.ltr)")
    raise ValueError(f"unknown fusion strategy '{strategy}' (choose {', '.join(STRATEGIES)})")
