"""Report plots, drawn with matplotlib's object API on the Agg canvas (no display, no global backend change)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.evaluation.metrics import label

if TYPE_CHECKING:
    from search.evaluation.experiment import ExperimentResult

DPI = 100
COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def metric_bars(result: ExperimentResult, path: Path) -> Path:
    """Each metric's mean per variant, with the 95% bootstrap interval as error bars."""
    scores = result.evaluation.scores()
    metrics, names = result.evaluation.metrics, list(scores)
    fig = _figure(max(6.0, 1.4 * len(metrics) + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(names))
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        means = np.array([scores[name][m] for m in metrics])
        cis = result.intervals[name]
        err = np.array([[means[j] - cis[m].low, cis[m].high - means[j]] for j, m in enumerate(metrics)]).T
        ax.bar(
            x + i * width - 0.4 + width / 2,
            means,
            width,
            yerr=err,
            capsize=2,
            label=name,
            color=COLORS[i % len(COLORS)],
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(x, [label(m) for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean over queries")
    ax.set_title(f"{result.spec.name}: metrics with 95% bootstrap intervals", fontsize=10)
    ax.legend(fontsize=7, ncols=min(4, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def win_loss(result: ExperimentResult, path: Path) -> Path | None:
    """Per query on the primary metric against the baseline: win/tie/loss counts, and every query's difference."""
    primary, comparisons = result.spec.primary, result.comparisons.get(result.spec.primary, [])
    if not comparisons:
        return None
    fig = _figure(8.0, 0.45 * len(comparisons) + 1.5)
    counts_ax, delta_ax = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.2))
    names, y = [c.variant for c in comparisons], np.arange(len(comparisons))
    left = np.zeros(len(names))
    for field, color, text in (("wins", "#55A868", "win"), ("ties", "#BBBBBB", "tie"), ("losses", "#C44E52", "loss")):
        counts = np.array([getattr(c, field) for c in comparisons], dtype=float)
        bars = counts_ax.barh(y, counts, left=left, color=color, label=text)
        counts_ax.bar_label(bars, labels=[str(int(v)) if v else "" for v in counts], label_type="center", fontsize=7)
        left += counts
    counts_ax.set_yticks(y, names)
    counts_ax.invert_yaxis()
    counts_ax.set_xlabel("queries")
    counts_ax.legend(fontsize=7, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    _delta_strip(delta_ax, result, names, primary)
    fig.suptitle(f"per-query {label(primary)} vs baseline '{result.spec.baseline}'", fontsize=10)
    return _save(fig, path)


def _delta_strip(ax: Any, result: ExperimentResult, names: list[str], metric: str) -> None:
    """One dot per query: the variant's value minus the baseline's (jittered vertically)."""
    evaluated = result.evaluation.evaluated()
    base = evaluated[result.spec.baseline].per_query[metric]
    jitter = np.random.default_rng(result.spec.seed)
    for i, name in enumerate(names):
        values = evaluated[name].per_query[metric]
        deltas = np.array([values[q] - base[q] for q in sorted(set(values) & set(base))])
        colors = np.where(deltas > 0, "#55A868", np.where(deltas < 0, "#C44E52", "#999999"))
        ax.scatter(deltas, i + jitter.uniform(-0.25, 0.25, len(deltas)), s=9, c=colors, alpha=0.8, linewidths=0)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"{label(metric)} difference per query")
    ax.grid(axis="x", alpha=0.3)


def slice_bars(result: ExperimentResult, path: Path) -> Path | None:
    """The primary metric per query slice and variant."""
    table = result.evaluation.slice_scores()
    slices = [s for s in result.evaluation.slices if s != "all"]
    if not slices or not table:
        return None
    primary, names = result.spec.primary, list(table)
    fig = _figure(max(6.0, 1.6 * len(slices) + 2), 3.2)
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(slices))
    for i, name in enumerate(names):
        values = [table[name].get(s, {}).get(primary, 0.0) for s in slices]
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=name, color=COLORS[i % len(COLORS)])
    sizes = {s: len(result.evaluation.slices[s]) for s in slices}
    ax.set_xticks(x, [f"{s} (n={sizes[s]})" for s in slices])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(label(primary))
    ax.set_title(f"{label(primary)} per query slice", fontsize=10)
    ax.legend(fontsize=7, ncols=min(4, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def write_plots(result: ExperimentResult, out: Path) -> list[Path]:
    if not result.evaluation.scores():
        return []
    drawn = [
        metric_bars(result, out / "metrics.png"),
        win_loss(result, out / "winloss.png"),
        slice_bars(result, out / "slices.png"),
    ]
    return [p for p in drawn if p is not None]
