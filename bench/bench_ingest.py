"""Ingest benchmark: streaming rows/s by phase, peak memory, index size, and a kill -9 at ~50% then resume.

Every run is a real `visual-intent index` subprocess (so its peak RSS is measured on its own), on a synthetic
catalog from `bench_index.synthetic_catalog`. With `--text-model hash:384` (the deterministic stand-in encoder,
NOT a semantic model) the numbers show the pipeline's own cost; with MiniLM they are compared against the raw
encoder's batched rows/s measured in the same run, on the same texts.

    python bench/bench_ingest.py --scenes 1000000 --text-model hash:384
    python bench/bench_ingest.py --scenes 100000 --text-model st:all-MiniLM-L6-v2 --no-kill
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lancedb

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_index import synthetic_catalog  # noqa: E402

from indexer.context import scene_text  # noqa: E402
from indexer.encoders import load_text_encoder  # noqa: E402
from indexer.schema import SCENES, Scene  # noqa: E402
from indexer.store import TABLES_DIR  # noqa: E402


def _command(scenes: Path, db: Path, model: str, chunk: int) -> list[str]:
    return [
        sys.executable, "-m", "api", "index", "--db", str(db), "--scenes", str(scenes), "--text-model", model,
        "--no-clip", "--quiet", "--json", "--chunk-size", str(chunk),
    ]  # fmt: skip


def _stored(db: Path) -> int:
    try:
        return int(lancedb.connect(str(db / TABLES_DIR)).open_table(SCENES).count_rows())
    except Exception:  # not created yet
        return 0


def _du_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024**2, 1)


def run_child(command: list[str]) -> tuple[str, float, float]:
    """(stdout, seconds, peak RSS in GB) of one subprocess; wait4 gives that child's own high-water mark."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, command)
        out.seek(0)
        return out.read(), seconds, round(usage.ru_maxrss / 1024**2, 2)


def clean_run(scenes: Path, db: Path, model: str, chunk: int) -> dict[str, Any]:
    stdout, seconds, peak_gb = run_child(_command(scenes, db, model, chunk))
    report = json.loads(stdout)
    rows = report["written"]["scenes"]
    return {
        "seconds": round(seconds, 1),
        "rows": rows,
        "rows_per_s": round(rows / seconds, 1),
        "scene_phase_rows_per_s": round(rows / report["timings"]["scenes"], 1),
        "timings_s": report["timings"],
        "peak_rss_gb": peak_gb,
        "index_mb": _du_mb(db),
    }


def killed_and_resumed(scenes: Path, db: Path, model: str, chunk: int, total: int) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(_command(scenes, db, model, chunk), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while _stored(db) < total // 2 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_after, at_kill = time.perf_counter() - started, _stored(db)
    stdout, _, peak_gb = run_child(_command(scenes, db, model, chunk))
    seconds = time.perf_counter() - started
    report = json.loads(stdout)
    table = lancedb.connect(str(db / TABLES_DIR)).open_table(SCENES)
    ids = table.search().select(["scene_id"]).limit(None).to_arrow().column("scene_id").to_pylist()
    return {
        "killed_after_s": round(killed_after, 1),
        "stored_at_kill": at_kill,
        "resume_skipped": report["unchanged_scenes"],
        "resume_written": report["written"]["scenes"],
        "total_seconds": round(seconds, 1),
        "resume_peak_rss_gb": peak_gb,
        "stored_rows": len(ids),
        "distinct_ids": len(set(ids)),
    }


def raw_encoder_rows_per_s(scenes: Path, model: str, sample: int) -> float:
    """The encoder alone, batched as ingest batches it, on the first `sample` scene texts."""
    texts = []
    with scenes.open(encoding="utf-8") as fh:
        for line in fh:
            texts.append(scene_text(Scene.model_validate(json.loads(line))))
            if len(texts) >= sample:
                break
    encoder = load_text_encoder(model)
    encoder.encode(texts[:64])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), 256):
        encoder.encode(texts[i : i + 256])
    return round(len(texts) / (time.perf_counter() - started), 1)


def measure_model(scenes: Path, work: Path, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """A clean ingest with `model`; for a real encoder, bracketed by the raw encoder's rows/s (before, after)."""
    name = model.replace(":", "_").replace("/", "_")
    semantic = not model.startswith("hash:")
    out: dict[str, Any] = {"note": "" if semantic else "hash:* is a deterministic stand-in, NOT a semantic model"}
    if semantic:
        out["raw_encoder_rows_per_s_before"] = raw_encoder_rows_per_s(scenes, model, args.raw_sample)
    out["clean"] = clean_run(scenes, work / f"clean-{name}", model, args.chunk_size)
    if semantic:
        out["raw_encoder_rows_per_s_after"] = raw_encoder_rows_per_s(scenes, model, args.raw_sample)
        raw = (out["raw_encoder_rows_per_s_before"] + out["raw_encoder_rows_per_s_after"]) / 2
        out["ingest_vs_raw_encoder"] = round(out["clean"]["scene_phase_rows_per_s"] / raw, 3)
    if not args.no_kill:
        kill = killed_and_resumed(scenes, work / f"kill-{name}", model, args.chunk_size, args.scenes)
        kill["vs_clean"] = round(kill["total_seconds"] / out["clean"]["seconds"], 3)
        out["kill_resume"] = kill
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=1_000_000)
    parser.add_argument("--text-model", action="append", help="encoder id, repeatable (one after the other, same "
                        "catalog). Default: hash:384")  # fmt: skip
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--raw-sample", type=int, default=5000, help="texts for the raw encoder measurement")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 / resume run")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    made = time.perf_counter()
    scenes, _, _ = synthetic_catalog(args.scenes, work)
    result: dict[str, Any] = {
        "scenes": args.scenes,
        "catalog_mb": round(scenes.stat().st_size / 1024**2, 1),
        "catalog_seconds": round(time.perf_counter() - made, 1),
        "cpus": os.cpu_count(),
        "models": {},
    }
    for model in args.text_model or ["hash:384"]:
        result["models"][model] = measure_model(scenes, work, model, args)
        print(json.dumps({model: result["models"][model]}), file=sys.stderr, flush=True)  # partial results
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
