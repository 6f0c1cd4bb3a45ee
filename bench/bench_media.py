"""Throughput of indexer.media: decode + shot detection + keyframe extraction, serial vs prefetch.

Copies every fixture clip `--copies` times into a temporary directory, then runs `extract_shots` over all of them
serially and through `prefetch` with `--workers` threads, best of `--repeat` runs each. Frame counts come from
fixtures/clips/cuts.json (duration x fps), so frames/s counts every decoded frame, not just the analysed ones.
`--consume-ms` adds a simulated consumer (e.g. waiting on an encoder) per clip, to show prefetch hiding decode time.

Usage (from the repository root): python bench/bench_media.py [--copies 20] [--workers 2] [--json]
Ratios matter more than absolute numbers: clips are tiny and the machine may have only two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from indexer.errors import MediaError
from indexer.media import extract_shots, prefetch

CLIPS = Path(__file__).resolve().parents[1] / "fixtures" / "clips"


def _copy_clips(dest: Path, copies: int) -> tuple[list[Path], int]:
    manifest: dict[str, dict[str, Any]] = json.loads((CLIPS / "cuts.json").read_text(encoding="utf-8"))
    paths: list[Path] = []
    frames = 0
    for copy in range(copies):
        for name, info in sorted(manifest.items()):
            path = dest / f"{copy:03d}_{name}"
            shutil.copyfile(CLIPS / name, path)
            paths.append(path)
            frames += round(info["duration"] * info["fps"])
    return paths, frames


def _serial(paths: list[Path], consume_s: float) -> int:
    shots = 0
    for path in paths:
        shots += len(extract_shots(path))
        time.sleep(consume_s)
    return shots


def _prefetched(paths: list[Path], consume_s: float, workers: int) -> int:
    shots = 0
    for path, result in prefetch(paths, extract_shots, workers=workers, depth=max(8, 2 * workers)):
        if isinstance(result, MediaError):
            raise RuntimeError(f"fixture clip failed to decode: {path}: {result.reason}")
        shots += len(result)
        time.sleep(consume_s)
    return shots


def _best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    best, shots = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        shots = run()
        best = min(best, time.perf_counter() - started)
    return best, shots


def measure(copies: int, workers: int, repeat: int, consume_ms: float) -> dict[str, Any]:
    consume_s = consume_ms / 1000.0
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        paths, frames = _copy_clips(Path(tmp), copies)
        _serial(paths[:5], 0.0)  # warm up imports, codecs and the page cache outside the timings
        modes: dict[str, Callable[[], int]] = {
            "serial": lambda: _serial(paths, consume_s),
            f"prefetch x{workers}": lambda: _prefetched(paths, consume_s, workers),
        }
        rows = []
        for mode, run in modes.items():
            seconds, shots = _best_of(repeat, run)
            rate = {"clips_per_s": len(paths) / seconds, "frames_per_s": frames / seconds}
            rows.append({"mode": mode, "seconds": seconds, **rate, "shots": shots})
    for row in rows:
        row["speedup"] = rows[0]["seconds"] / row["seconds"]
    setup = {"copies": copies, "workers": workers, "repeat": repeat, "consume_ms": consume_ms}
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "av": av.__version__}
    return {"clips": len(paths), "frames": frames, **setup, **machine, "rows": rows}


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['clips']} clips / {result['frames']} frames, best of {result['repeat']}, "
        f"consumer {result['consume_ms']:g} ms/clip, {result['cpus']} CPUs, PyAV {result['av']}",
        f"{'mode':<14}{'seconds':>10}{'clips/s':>10}{'frames/s':>11}{'speedup':>9}",
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['mode']:<14}{row['seconds']:>10.3f}{row['clips_per_s']:>10.1f}"
            f"{row['frames_per_s']:>11.0f}{row['speedup']:>8.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark indexer.media decode + shot detection throughput.")
    parser.add_argument("--copies", type=int, default=20, help="copies of each fixture clip (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="prefetch worker threads (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best is kept (default 3)")
    parser.add_argument("--consume-ms", type=float, default=0.0, help="simulated consumer time per clip")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    if args.copies < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--copies, --workers and --repeat must be >= 1")
    result = measure(args.copies, args.workers, args.repeat, args.consume_ms)
    print(json.dumps(result, indent=2) if args.json else _table(result))


if __name__ == "__main__":
    main()
