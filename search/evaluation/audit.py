"""Exposure-fairness audit: run queries through each ranking variant and measure who gets the attention.

Per variant: exposure share per group, the Gini coefficient of exposure over creators (every creator with an
eligible scene counts, zero exposure included), AWRF against the groups' share of the eligible catalog, and,
with judgments, expected-exposure loss/disparity/relevance (Diaz et al. 2020) next to nDCG@10, so a ranking
change shows its fairness cost. Formulas: `search/evaluation/fairness.py`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from indexer.schema import Query, SceneCol
from search.engine import PRESETS, Engine
from search.evaluation import fairness
from search.evaluation.metrics import Qrels, evaluate_run
from search.evaluation.plots import COLORS, _figure, _save

GROUPINGS = {
    "creator": SceneCol.CREATOR,
    "generator": SceneCol.GENERATOR,
    "tone": SceneCol.TONES,
    "category": SceneCol.CATEGORIES,
}


@dataclass
class AuditSettings:
    group_by: str = "creator"
    k: int = 10
    attention: str = "log"
    patience: float = 0.5  # geometric attention (AWRF, expected exposure)
    now: datetime | None = None


@dataclass
class VariantAudit:
    variant: str
    queries: int
    exposure_share: dict[str, float]  # group -> share of all attention
    creator_gini: float
    awrf: float
    ndcg: float | None = None
    expected_exposure: dict[str, float] | None = None  # mean over judged queries
    creator_exposure: list[float] = field(default_factory=list)  # for the Lorenz curve


def scene_groups(engine: Engine, group_by: str) -> dict[str, list[str]]:
    if group_by not in GROUPINGS:
        raise ValueError(f"unknown group '{group_by}' (choose {', '.join(GROUPINGS)})")
    snap = engine.snapshot
    values = snap.columns[GROUPINGS[group_by]]
    return {
        sid: ([str(v) for v in value] if isinstance(value, list) else [str(value)]) if value else []
        for sid, value, alive in zip(snap.ids, values, snap.alive, strict=True)
        if alive
    }


def audit_variant(
    engine: Engine, queries: list[Query], variant: str, settings: AuditSettings, qrels: Qrels | None = None
) -> VariantAudit:
    rankings: dict[str, list[str]] = {}
    scores: dict[str, list[tuple[str, float]]] = {}
    for query in queries:
        response = engine.search(
            query.text, sku=query.sku, use=query.use, k=settings.k, options=PRESETS[variant], now=settings.now
        )
        rankings[query.query_id] = [hit.scene_id for hit in response.scenes]
        scores[query.query_id] = [(hit.scene_id, hit.score) for hit in response.scenes]
    groups = scene_groups(engine, settings.group_by)
    lists = list(rankings.values())
    exposure = fairness.group_exposure(lists, groups, settings.attention, settings.patience)
    total = sum(exposure.values()) or 1.0
    creators = _creator_exposure(engine, lists, settings)
    result = VariantAudit(
        variant=variant,
        queries=len(queries),
        exposure_share={g: round(v / total, 6) for g, v in sorted(exposure.items(), key=lambda kv: -kv[1])},
        creator_gini=round(fairness.gini(list(creators.values())), 6),
        awrf=round(fairness.awrf(lists, groups, _population(engine, groups, settings), settings.patience), 6),
        creator_exposure=sorted(creators.values()),
    )
    if qrels:
        result.ndcg = round(evaluate_run(qrels, scores).primary_score, 6)
        judged = [q for q in rankings if any(g > 0 for g in qrels.get(q, {}).values())]
        ee = [fairness.expected_exposure(rankings[q], qrels[q], groups, settings.patience) for q in judged]
        if ee:
            result.expected_exposure = {
                name: round(float(np.mean([getattr(e, name) for e in ee])), 6)
                for name in ("loss", "disparity", "relevance", "group_loss")
            }
    return result


def _eligible_ids(engine: Engine, settings: AuditSettings) -> list[str]:
    from search.consent import now_utc

    snap = engine.snapshot
    mask = snap.eligible("search", settings.now or now_utc())
    return [sid for sid, keep in zip(snap.ids, mask, strict=True) if keep]


def _population(engine: Engine, groups: dict[str, list[str]], settings: AuditSettings) -> dict[str, float]:
    """Each group's share of the eligible catalog: the AWRF target."""
    counts: dict[str, float] = {}
    for sid in _eligible_ids(engine, settings):
        members = groups.get(sid) or [fairness.UNKNOWN]
        for group in members:
            counts[group] = counts.get(group, 0.0) + 1.0 / len(members)
    return counts


def _creator_exposure(engine: Engine, rankings: list[list[str]], settings: AuditSettings) -> dict[str, float]:
    creators = scene_groups(engine, "creator")
    known = {c for sid in _eligible_ids(engine, settings) for c in creators.get(sid, [])}
    exposure = fairness.group_exposure(rankings, creators, settings.attention, settings.patience)
    return {c: exposure.get(c, 0.0) for c in sorted(known)}


def run_audit(
    engine: Engine, queries: list[Query], variants: list[str], settings: AuditSettings, qrels: Qrels | None = None
) -> list[VariantAudit]:
    return [audit_variant(engine, queries, v, settings, qrels) for v in variants]


def to_json(results: list[VariantAudit], settings: AuditSettings) -> dict[str, Any]:
    return {
        "settings": {**asdict(settings), "now": settings.now.isoformat() if settings.now else None},
        "variants": {r.variant: {k: v for k, v in asdict(r).items() if k != "creator_exposure"} for r in results},
    }


def to_text(results: list[VariantAudit], settings: AuditSettings, top: int = 5) -> str:
    lines = [
        f"exposure audit: group by {settings.group_by}, top {settings.k}, attention {settings.attention}"
        + (f" (patience {settings.patience})" if settings.attention == "geometric" else " = 1/log2(1+rank)")
    ]
    for r in results:
        head = f"{r.variant}: {r.queries} queries  Gini(creators) {r.creator_gini:.3f}  AWRF {r.awrf:.3f}"
        if r.ndcg is not None:
            head += f"  nDCG@10 {r.ndcg:.3f}"
        if r.expected_exposure:
            head += f"  EE-L {r.expected_exposure['loss']:.3f}  EE-D {r.expected_exposure['disparity']:.3f}"
        lines.append(head)
        shares = list(r.exposure_share.items())[:top]
        lines.append("  most exposed: " + ", ".join(f"{g} {s:.1%}" for g, s in shares))
    return "\n".join(lines)


def write_report(results: list[VariantAudit], settings: AuditSettings, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "summary.md"]
    written[0].write_text(json.dumps(to_json(results, settings), indent=2), encoding="utf-8")
    written[1].write_text(_markdown(results, settings), encoding="utf-8")
    written.append(_exposure_plot(results, settings, out / f"exposure_by_{settings.group_by}.png"))
    written.append(_lorenz_plot(results, out / "lorenz_creators.png"))
    return written


def _markdown(results: list[VariantAudit], settings: AuditSettings) -> str:
    lines = ["# Exposure-fairness audit", "", "```", to_text(results, settings, top=10), "```", ""]
    lines += ["| variant | Gini (creators) | AWRF | nDCG@10 | EE-L | EE-D | EE-R |", "|---|---|---|---|---|---|---|"]
    for r in results:
        ee = r.expected_exposure or {}
        cells = [r.ndcg, ee.get("loss"), ee.get("disparity"), ee.get("relevance")]
        shown = ["-" if c is None else f"{c:.4f}" for c in cells]
        lines.append(f"| {r.variant} | {r.creator_gini:.4f} | {r.awrf:.4f} | " + " | ".join(shown) + " |")
    lines += ["", f"![exposure](exposure_by_{settings.group_by}.png)", "", "![Lorenz](lorenz_creators.png)", ""]
    return "\n".join(lines)


def _exposure_plot(results: list[VariantAudit], settings: AuditSettings, path: Path, top: int = 15) -> Path:
    groups = list(results[0].exposure_share)[:top] if results else []
    fig = _figure(max(6.0, 0.5 * len(groups) + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        x = np.arange(len(groups)) + i * width
        ax.bar(x, [r.exposure_share.get(g, 0.0) for g in groups], width, label=r.variant, color=COLORS[i % len(COLORS)])
    ax.set_xticks(np.arange(len(groups)) + width * (len(results) - 1) / 2, groups, rotation=60, ha="right")
    ax.set_ylabel("share of exposure")
    ax.set_title(f"Exposure by {settings.group_by} (top {top} groups)")
    ax.legend()
    return Path(_save(fig, path))


def _lorenz_plot(results: list[VariantAudit], path: Path) -> Path:
    fig = _figure(4.6, 4.4)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="equal exposure")
    for i, r in enumerate(results):
        x, y = fairness.lorenz(r.creator_exposure)
        ax.plot(x, y, color=COLORS[i % len(COLORS)], label=f"{r.variant} (Gini {r.creator_gini:.2f})")
    ax.set_xlabel("share of creators (least exposed first)")
    ax.set_ylabel("share of exposure")
    ax.set_title("Lorenz curve of creator exposure")
    ax.legend(loc="upper left")
    return Path(_save(fig, path))
