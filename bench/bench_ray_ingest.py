"""Ray ingest (`index --engine ray`) against the local path, side by side in one run, on one synthetic catalog.

Each engine runs as a real `visual-intent index` subprocess into its own fresh folder (the Ray run starts and
stops its own local Ray, so its start-up is in its end-to-end time). Reported per engine: end-to-end seconds and
rows/s, the scene phase alone (read, validate, decode, encode, commit), and Ray against local: the throughput
ratio and the overhead per row. `hash:384` is the deterministic stand-in encoder, NOT a semantic model: with it
the numbers show the pipelines' own costs; MiniLM shows an encoder-bound run.

    python bench/bench_ray_ingest.py --scenes 100000 --text-model hash:384
    python bench/bench_ray_ingest.py --scenes 10000 --text-model st:all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_index import synthetic_catalog  # noqa: E402
from bench_ingest import run_child  # noqa: E402


def _command(scenes: Path, db: Path, model: str, chunk: int, engine: str, actors: int | None) -> list[str]:
    command = [
        sys.executable, "-m", "api", "index", "--db", str(db), "--scenes", str(scenes), "--text-model", model,
        "--no-clip", "--quiet", "--json", "--chunk-size", str(chunk), "--engine", engine,
    ]  # fmt: skip
    return command + (["--encode-actors", str(actors)] if engine == "ray" and actors else [])


def run_engine(scenes: Path, db: Path, model: str, chunk: int, engine: str, actors: int | None) -> dict[str, Any]:
    stdout, seconds, peak_gb = run_child(_command(scenes, db, model, chunk, engine, actors))
    report = json.loads(stdout)
    rows = report["written"]["scenes"]
    scene_s = report["timings"]["scenes"]
    return {
        "seconds": round(seconds, 1),
        "rows": rows,
        "rows_per_s": round(rows / seconds, 1),
        "scene_phase_s": round(scene_s, 1),
        "scene_phase_rows_per_s": round(rows / scene_s, 1),
        "timings_s": report["timings"],
        "errors": len(report["errors"]),
        "peak_rss_gb_driver": peak_gb,  # the Ray run's actors are other processes: not in this figure
    }


def compare(local: dict[str, Any], ray: dict[str, Any]) -> dict[str, Any]:
    rows = local["rows"]
    return {
        "throughput_ratio_end_to_end": round(ray["rows_per_s"] / local["rows_per_s"], 3),
        "throughput_ratio_scene_phase": round(ray["scene_phase_rows_per_s"] / local["scene_phase_rows_per_s"], 3),
        "overhead_ms_per_row_end_to_end": round(1000 * (ray["seconds"] - local["seconds"]) / rows, 3),
        "overhead_ms_per_row_scene_phase": round(1000 * (ray["scene_phase_s"] - local["scene_phase_s"]) / rows, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=100_000)
    parser.add_argument("--text-model", default="hash:384", help="encoder id. Default: hash:384 (stand-in)")
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--encode-actors", type=int, action="append", help="Ray actor counts to run, repeatable. "
                        "Default: the engine's default (CPUs less one)")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ray-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    scenes, _, _ = synthetic_catalog(args.scenes, work)
    stand_in = args.text_model.startswith("hash:")
    result: dict[str, Any] = {
        "scenes": args.scenes,
        "text_model": args.text_model,
        "note": "hash:* is a deterministic stand-in encoder, NOT a semantic model" if stand_in else "",
        "cpus": os.cpu_count(),
        "chunk_size": args.chunk_size,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    result["local"] = run_engine(scenes, work / "local", args.text_model, args.chunk_size, "local", None)
    print(json.dumps({"local": result["local"]}), file=sys.stderr, flush=True)
    for actors in args.encode_actors or [None]:
        name = f"ray_{actors or 'default'}_actors"
        ray = run_engine(scenes, work / name, args.text_model, args.chunk_size, "ray", actors)
        result[name] = {**ray, "vs_local": compare(result["local"], ray)}
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
