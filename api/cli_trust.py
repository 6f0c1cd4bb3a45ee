"""The trust-layer commands of `visual-intent`: `lineage` (remix families, credit) and `audit` (exposure
fairness). Registered on the main app by `api/cli.py`; errors follow the same one-line convention."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

DbOption = Annotated[Path, typer.Option("--db", help="Index folder (created by `index`).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON. Default: text.")]


def lineage(
    db: DbOption,
    scene: Annotated[
        str | None, typer.Option(help="One scene: its lineage, credit chain and family. Default: none.")
    ] = None,
    sort: Annotated[
        str, typer.Option(help="velocity, size, depth, virality, mutation or recent. Default: velocity.")
    ] = "velocity",
    limit: Annotated[int, typer.Option(min=1, help="Families listed. Default: 20.")] = 20,
    min_size: Annotated[int, typer.Option(min=1, help="Smallest family listed. Default: 2.")] = 2,
    window_days: Annotated[float, typer.Option(min=0.001, help="Velocity window in days. Default: 7.")] = 7.0,
    as_of: Annotated[str | None, typer.Option(help="End of the velocity window (ISO). Default: newest scene.")] = None,
    all_scenes: Annotated[
        bool, typer.Option("--all", help="Include scenes not eligible for search (admin view). Default: off.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remix families ranked by a lineage metric (or one scene's lineage with --scene); ineligible scenes are
    left out unless --all."""
    import time

    from indexer.store import Store
    from indexer.vocab import Vocabulary
    from search.consent import now_utc
    from search.evaluation.experiment import parse_time
    from search.families import SORTS, family_of, family_table, top_families
    from search.lineage import credit_chain, descendants
    from search.live import load_base

    if sort not in SORTS:
        raise typer.BadParameter(f"choose one of {', '.join(SORTS)}", param_hint="--sort")
    started = time.perf_counter()
    snap = load_base(Store.open(db), Vocabulary.load())
    loaded = time.perf_counter()
    visible = None if all_scenes else snap.eligible("search", now_utc())
    table = family_table(snap, visible, parse_time(as_of, "--as-of"), window_days)
    if scene is not None:
        row = snap.row.get(scene)
        if row is None or (visible is not None and not visible[row]):
            raise typer.BadParameter(f"no scene '{scene}' visible in the index", param_hint="--scene")
        family = family_of(snap, table, row)
        payload = {
            "scene_id": scene,
            "credit": credit_chain(snap, row, visible),
            "descendants": descendants(snap, row, visible),
            "family": family.to_dict() if family else None,
        }
        print(json.dumps(payload, indent=2) if as_json else _scene_text(payload))
        return
    families = top_families(snap, table, sort, limit, min_size)
    took = {"load_s": round(loaded - started, 3), "graph_s": round(time.perf_counter() - loaded, 3)}
    print(f"lineage: {len(table.roots)} families over {len(table.forest)} scenes; {took}", file=sys.stderr)
    if as_json:
        print(json.dumps({"sort": sort, "families": [f.to_dict() for f in families]}, indent=2))
        return
    print(f"{'family':<16} {'size':>5} {'depth':>5} {'vel/day':>8} {'virality':>8} {'mutation':>8}  root creator")
    for f in families:
        virality = "-" if f.structural_virality is None else f"{f.structural_virality:.2f}"
        mutation = "-" if f.prompt_mutation is None else f"{f.prompt_mutation:.2f}"
        print(
            f"{f.family_id:<16} {f.size:>5} {f.depth:>5} {f.velocity_per_day:>8.3f} {virality:>8} {mutation:>8}  "
            f"{f.root_creator or '-'}"
        )


def _scene_text(payload: dict[str, Any]) -> str:
    credit = " > ".join(str(c or "?") for c in payload["credit"])
    lines = [f"scene {payload['scene_id']}", f"credit: {credit}", f"descendants: {len(payload['descendants'])}"]
    family = payload["family"]
    if isinstance(family, dict):
        lines.append("family: " + ", ".join(f"{k}={v}" for k, v in family.items()))
    return "\n".join(lines)


def audit(
    db: DbOption,
    queries: Annotated[Path, typer.Option(help="Queries JSONL (query_id, text, sku, use).")],
    group: Annotated[str, typer.Option(help="creator, generator, tone or category. Default: creator.")] = "creator",
    qrels: Annotated[
        Path | None, typer.Option(help="TREC qrels: adds expected exposure (Diaz et al.) and nDCG@10. Default: none.")
    ] = None,
    variant: Annotated[
        list[str] | None, typer.Option("--variant", help="Ranking preset; repeat to compare. Default: full+collapse.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="Ranks audited per query. Default: 10.")] = 10,
    attention: Annotated[str, typer.Option(help="log (1/log2(1+rank)) or geometric. Default: log.")] = "log",
    patience: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Geometric attention patience (AWRF, EE). Default: 0.5.")
    ] = 0.5,
    now: Annotated[str | None, typer.Option(help="Check consent at this ISO time. Default: the current time.")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write summary.md, results.json and PNG plots here. Default: none.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Exposure fairness of the ranking: exposure per group, Gini over creators, AWRF, and with --qrels
    expected-exposure loss and nDCG@10 per variant."""
    from indexer.catalog import read_queries
    from search.engine import PRESETS, Engine
    from search.evaluation.audit import GROUPINGS, AuditSettings, run_audit, to_json, to_text, write_report
    from search.evaluation.experiment import parse_time
    from search.evaluation.fairness import ATTENTION
    from search.evaluation.metrics import read_trec_qrels

    if group not in GROUPINGS:
        raise typer.BadParameter(f"choose one of {', '.join(GROUPINGS)}", param_hint="--group")
    if attention not in ATTENTION:
        raise typer.BadParameter(f"choose one of {', '.join(ATTENTION)}", param_hint="--attention")
    names = variant or ["full+collapse"]
    for name in names:
        if name not in PRESETS:
            raise typer.BadParameter(f"choose from {', '.join(PRESETS)}", param_hint="--variant")
    settings = AuditSettings(group, k, attention, patience, parse_time(now))
    engine = Engine.open(db, use_clip=False)
    results = run_audit(engine, read_queries(queries), names, settings, read_trec_qrels(qrels) if qrels else None)
    for path in write_report(results, settings, report) if report else []:
        print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(to_json(results, settings), indent=2) if as_json else to_text(results, settings))
