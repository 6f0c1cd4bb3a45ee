"""Fusing channel rankings into one score per scene row.

`rrf`: reciprocal rank fusion (Cormack et al. 2009), robust when channel scores are not comparable.
`weighted`: each channel's scores divided by its best score, weighted and summed; a strong signal (slot
agreement) counts by how strong it is, not only by its rank, and the weakest candidate keeps a non-zero share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from search.channels import ChannelResult

RRF_K = 60
STRATEGIES = ("rrf", "weighted")


def rrf(results: Sequence[ChannelResult], weights: Mapping[str, float], k: int = RRF_K) -> dict[int, float]:
    fused: dict[int, float] = {}
    for result in results:
        w = weights.get(result.name, 1.0)
        for rank, row in enumerate(result.rows, start=1):
            fused[int(row)] = fused.get(int(row), 0.0) + w / (k + rank)
    return fused


def weighted(results: Sequence[ChannelResult], weights: Mapping[str, float]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for result in results:
        if not len(result.scores):
            continue
        w = weights.get(result.name, 1.0)
        top = float(np.max(result.scores))
        norm = np.clip(result.scores / top, 0.0, 1.0) if top > 0 else np.zeros_like(result.scores)
        for row, value in zip(result.rows, norm, strict=True):
            fused[int(row)] = fused.get(int(row), 0.0) + w * float(value)
    return fused


def fuse(strategy: str, results: Sequence[ChannelResult], weights: Mapping[str, float]) -> dict[int, float]:
    if strategy == "rrf":
        return rrf(results, weights)
    if strategy == "weighted":
        return weighted(results, weights)
    raise ValueError(f"unknown fusion strategy '{strategy}' (choose {', '.join(STRATEGIES)})")
