"""Experiment reports: `summary.md` (readable), `results.json` (every number) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from search.evaluation import plots
from search.evaluation.experiment import ExperimentResult
from search.evaluation.metrics import label, write_trec_run
from search.evaluation.provenance import shown
from search.evaluation.stats import Comparison

SUMMARY, RESULTS = "summary.md", "results.json"


def to_json(result: ExperimentResult) -> dict[str, Any]:
    spec, ev = result.spec, result.evaluation
    variants = {}
    for name, vr in ev.variants.items():
        entry: dict[str, Any] = {**vr.variant.describe(), "seconds": round(vr.seconds, 3)}
        if vr.unavailable:
            entry["unavailable"] = vr.unavailable
        if vr.note:
            entry["note"] = vr.note
        if vr.evaluation is not None:
            entry["metrics"] = vr.evaluation.scores
            entry["ci95"] = {m: [i.low, i.high] for m, i in result.intervals[name].items()}
            entry["per_query"] = vr.evaluation.per_query
        variants[name] = entry
    return {
        "experiment": {
            "name": spec.name,
            "description": spec.description,
            "kind": spec.kind,
            "queries": shown(spec.queries),
            "qrels": shown(spec.qrels),
            "baseline": spec.baseline,
            "primary": spec.primary,
            "metrics": ev.metrics,
            "depth": spec.depth,
            "alpha": spec.alpha,
        },
        "judged_queries": len(ev.slices.get("all", [])),
        "skipped_queries": ev.skipped_queries,
        "variants": variants,
        "slices": ev.slice_scores(),
        "comparisons": {m: [c.to_dict() for c in cs] for m, cs in result.comparisons.items()},
        "ann_recall": result.ann.to_dict() if result.ann else None,
        "provenance": result.provenance,
    }


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _results_table(result: ExperimentResult) -> list[str]:
    ev, spec = result.evaluation, result.spec
    scores = ev.scores()
    best = {m: max(s[m] for s in scores.values()) for m in ev.metrics} if scores else {}
    by_variant = {c.variant: c for c in result.comparisons.get(spec.primary, [])}
    head = ["variant", *[label(m) for m in ev.metrics], f"Δ {label(spec.primary)}", "p", "W/T/L"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in scores.items():
        cells = [f"**{name}** (baseline)" if name == spec.baseline else name]
        for m in ev.metrics:
            ci = result.intervals[name][m]
            text = f"{_fmt(values[m])} [{_fmt(ci.low)}, {_fmt(ci.high)}]"
            cells.append(f"**{text}**" if values[m] == best[m] else text)
        cells.extend(_comparison_cells(by_variant.get(name)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _comparison_cells(c: Comparison | None) -> list[str]:
    if c is None:
        return ["", "", ""]
    mark = " *" if c.significant else ""
    return [f"{c.delta:+.3f}", f"{_p(c.p_value)} (BH {_p(c.p_adjusted)}){mark}", f"{c.wins}/{c.ties}/{c.losses}"]


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _slice_tables(result: ExperimentResult) -> list[str]:
    """One table per query slice: every variant's metrics over that slice's queries."""
    ev = result.evaluation
    table = ev.slice_scores()
    lines: list[str] = []
    for name in [s for s in ev.slices if s != "all"]:
        head = ["variant", *[label(m) for m in ev.metrics]]
        lines += ["", f"### {name} (n={len(ev.slices[name])})", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant, by_slice in table.items():
            cells = [_fmt(by_slice.get(name, {}).get(m, float("nan"))) for m in ev.metrics]
            lines.append("| " + " | ".join([variant, *cells]) + " |")
    return lines


def _ann_lines(result: ExperimentResult) -> list[str]:
    ann = result.ann
    if ann is None:
        return []
    params = ", ".join(f"{k}={v}" for k, v in ann.params.items())
    recall = ", ".join(f"recall@{k} = {v:.4f}" for k, v in ann.recall.items())
    return [
        "## ANN recall",
        "",
        f"FAISS HNSW ({params}) against exact inner-product search over the index's {ann.rows} scene text vectors,",
        f"for the {ann.queries} query texts: {recall}. The index serves with `{ann.serving.get('kind')}` "
        f"(exact up to {ann.serving.get('exact_limit')} rows).",
        "",
    ]


def _provenance_lines(result: ExperimentResult) -> list[str]:
    prov = result.provenance
    index = prov["index"]
    packages = ", ".join(f"{k} {v}" for k, v in prov["packages"].items())
    inputs = "; ".join(f"`{v['path']}` sha256 {str(v['sha256'])[:12]}" for v in prov["inputs"].values())
    rerun = prov["inputs"].get("experiment")
    command = [f"- `visual-intent experiment run {rerun['path']} --out <dir>`"] if rerun else []
    return [
        "## Reproduce",
        "",
        *command,
        f"- seed {prov['seed']}; consent evaluated at {prov['consent_time']}; ran at {prov['ran_at']}",
        f"- text encoder `{index['text_encoder']}` (dim {index['text_dim']}); CLIP: {index['clip_status']}",
        f"- index schema v{index['schema_version']}, table versions {index['table_versions']}, "
        f"{index['scenes']} scenes, {index['ads']} ads",
        f"- inputs: {inputs}",
        f"- packages: {packages}; Python {prov['python']}",
        "",
    ]


def to_markdown(result: ExperimentResult, images: list[str]) -> str:
    spec, ev = result.spec, result.evaluation
    judged = len(ev.slices.get("all", []))
    lines = [f"# Experiment: {spec.name}", ""]
    if spec.description:
        lines += [spec.description, ""]
    lines += [
        f"{judged} judged queries ({spec.kind}), depth {spec.depth}; baseline **{spec.baseline}**; "
        f"primary metric {label(spec.primary)}. Brackets: 95% bootstrap interval over queries. "
        f"p: paired randomization test against the baseline on {label(spec.primary)} "
        f"(BH: Benjamini-Hochberg adjusted; * = significant at {spec.alpha}). W/T/L: queries won, tied, lost.",
        "",
        *_results_table(result),
        "",
    ]
    lines += [f"- **{n}**: unavailable ({reason})" for n, reason in ev.unavailable().items()]
    lines += [f"- **{n}**: {vr.note}" for n, vr in ev.variants.items() if vr.note]
    if ev.skipped_queries:
        lines.append(f"- {len(ev.skipped_queries)} queries have no relevant judgment and are not averaged")
    slice_lines = _slice_tables(result)
    if slice_lines:
        lines += ["", "## Per query slice", *slice_lines]
    lines += ["", *_ann_lines(result)]
    lines += [f"![{Path(img).stem}]({img})" for img in images] + [""]
    lines += _provenance_lines(result)
    return "\n".join(lines)


def write_report(result: ExperimentResult, out: Path) -> list[Path]:
    """Write summary.md, results.json and the plots into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    images = plots.write_plots(result, out)
    json_path, md_path = out / RESULTS, out / SUMMARY
    json_path.write_text(json.dumps(to_json(result), indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(result, [p.name for p in images]), encoding="utf-8")
    return [md_path, json_path, *images]


def to_text(result: ExperimentResult) -> str:
    """What `visual-intent eval` prints: the results table, unavailable variants and ANN recall."""
    lines = _results_table(result)
    lines += [f"{n}: unavailable ({reason})" for n, reason in result.evaluation.unavailable().items()]
    lines += [f"{n}: {vr.note}" for n, vr in result.evaluation.variants.items() if vr.note]
    ann = result.ann
    if ann is not None:
        recall = ", ".join(f"recall@{k} {v:.4f}" for k, v in ann.recall.items())
        params = ", ".join(f"{k}={v}" for k, v in ann.params.items() if k != "kind")
        lines.append(f"ANN recall (HNSW {params} vs exact, {ann.rows} vectors, {ann.queries} queries): {recall}")
    return "\n".join(lines)


def run_paths(path: Path, names: list[str]) -> dict[str, Path]:
    """One TREC run file per variant: `path` itself for one variant, else `<stem>.<variant><suffix>` beside it."""
    if len(names) == 1:
        return {names[0]: path}
    return {name: path.with_name(f"{path.stem}.{name}{path.suffix}") for name in names}


def write_runs(result: ExperimentResult, path: Path) -> list[Path]:
    """The ranked results of every evaluated variant in TREC run format (tag = variant name)."""
    runs = {name: vr.run for name, vr in result.evaluation.variants.items() if vr.evaluation is not None}
    paths = run_paths(path, list(runs))
    for name, run in runs.items():
        write_trec_run(paths[name], run, name)
    return list(paths.values())
