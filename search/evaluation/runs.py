"""Ranked runs from the engine: one variant (a scene preset with overrides, or an ad ranking) over a query set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from indexer.errors import CatalogError
from indexer.schema import Query
from search.ads import AD_VARIANTS
from search.engine import PRESETS, Engine, SearchOptions, with_overrides
from search.evaluation.metrics import RankedRun

KINDS = ("scenes", "ads")
DEFAULT_DEPTH = 100
OPTION_FIELDS = set(SearchOptions.__dataclass_fields__)
DEFAULT_VARIANTS = {"scenes": ("dense", "fts", "clip", "slots", "fusion", "full"), "ads": AD_VARIANTS}


@dataclass(frozen=True)
class Variant:
    """A named ranking to evaluate: `base` is a PRESETS name (scenes) or an ad variant (ads)."""

    name: str
    kind: str = "scenes"
    base: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)  # SearchOptions overrides (scenes only)

    def options(self) -> SearchOptions:
        """The preset with overrides; `weights` merges into the preset's weights; ads are left out of scene runs."""
        preset = PRESETS[self.base]
        changes = dict(self.params)
        if "weights" in changes:
            changes["weights"] = {**preset.weights, **changes["weights"]}
        if "channels" in changes:
            changes["channels"] = tuple(changes["channels"])
        return with_overrides(preset, ads_k=0, **changes)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "base": self.base, "params": dict(self.params)}
        if self.kind == "scenes":
            opts = self.options()
            out["resolved"] = {k: getattr(opts, k) for k in ("channels", "fusion", "weights", "intent", "collapse")}
        return out


def make_variant(
    name: str, kind: str = "scenes", base: str | None = None, params: Mapping[str, Any] | None = None
) -> Variant:
    """Check a variant description; errors list the valid choices."""
    base = base or name
    params = dict(params or {})
    if kind not in KINDS:
        raise CatalogError(f"variant '{name}': unknown kind '{kind}' (choose {', '.join(KINDS)})")
    if kind == "scenes":
        if base not in PRESETS:
            raise CatalogError(f"variant '{name}': unknown preset '{base}' (choose {', '.join(PRESETS)})")
        unknown = sorted(set(params) - OPTION_FIELDS)
        if unknown:
            raise CatalogError(
                f"variant '{name}': unknown parameter '{unknown[0]}' (choose {', '.join(sorted(OPTION_FIELDS))})"
            )
    else:
        if base not in AD_VARIANTS:
            raise CatalogError(f"variant '{name}': unknown ad ranking '{base}' (choose {', '.join(AD_VARIANTS)})")
        if params:
            raise CatalogError(f"variant '{name}': ad rankings take no parameters (got {', '.join(params)})")
    return Variant(name, kind, base, params)


def unavailable_reason(engine: Engine, variant: Variant) -> str | None:
    """Why a variant cannot run on this index (it would return empty rankings), or None."""
    if variant.kind != "scenes":
        return None
    channels = set(variant.options().channels)
    if engine.clip is None and channels <= {"clip"}:
        return engine.clip_status
    return None


def partial_note(engine: Engine, variant: Variant) -> str | None:
    """A note when a fused variant runs without some of its channels."""
    if variant.kind == "scenes" and engine.clip is None and "clip" in variant.options().channels:
        return "ran without the clip channel (no CLIP on this index)"
    return None


def scene_run(
    engine: Engine,
    queries: Sequence[Query],
    options: SearchOptions,
    k: int = DEFAULT_DEPTH,
    now: datetime | None = None,
) -> RankedRun:
    run: RankedRun = {}
    for query in queries:
        response = engine.search(query.text, sku=query.sku, use=query.use, k=k, options=options, now=now)
        run[query.query_id] = [(hit.scene_id, float(hit.score)) for hit in response.scenes]
    return run


def ad_run(
    engine: Engine, queries: Sequence[Query], variant: str, k: int = DEFAULT_DEPTH, now: datetime | None = None
) -> RankedRun:
    return {q.query_id: engine.rank_ads(q.text, sku=q.sku, variant=variant, k=k, now=now) for q in queries}


def run_variant(
    engine: Engine, queries: Sequence[Query], variant: Variant, k: int = DEFAULT_DEPTH, now: datetime | None = None
) -> RankedRun:
    if variant.kind == "ads":
        return ad_run(engine, queries, variant.base, k, now)
    return scene_run(engine, queries, variant.options(), k, now)
