"""Text-encoder backends side by side in one run: short-query latency and batched throughput.

Each backend (default: `st:` torch, `onnx:` fp32 and `onnx-int8:` on ONNX Runtime, all all-MiniLM-L6-v2) encodes
the same texts, interleaved round by round so that machine noise hits every backend alike:
  query   one short scenario query per call (what a search pays), p50 / p99 in ms
  batch   scene texts from the synthetic catalog in calls of 256 (what ingest pays), texts/s
and the agreement of each backend's vectors with the first one's (min cosine).

    python bench/bench_encoders.py [--texts 2000] [--queries 200] [--rounds 3] [--json]

Relevance is measured separately (SciFact nDCG@10): `visual-intent eval-beir --text-model onnx:all-MiniLM-L6-v2`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_index import synthetic_catalog  # noqa: E402

from indexer.context import scene_text  # noqa: E402
from indexer.encoders import Encoder, load_text_encoder  # noqa: E402
from indexer.schema import Scene  # noqa: E402

BACKENDS = ["st:all-MiniLM-L6-v2", "onnx:all-MiniLM-L6-v2", "onnx-int8:all-MiniLM-L6-v2"]


def workload(texts: int, queries: int) -> tuple[list[str], list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        scenes, _, qs = synthetic_catalog(texts, Path(tmp))
        docs = [scene_text(Scene.model_validate(json.loads(line))) for line in scenes.open(encoding="utf-8")]
    return docs, [q["text"] for q in qs[:queries]]


def query_latencies(encoder: Encoder, queries: list[str]) -> list[float]:
    out = []
    for text in queries:
        started = time.perf_counter()
        encoder.encode([text])
        out.append((time.perf_counter() - started) * 1000)
    return out


def batch_seconds(encoder: Encoder, docs: list[str]) -> float:
    started = time.perf_counter()
    for i in range(0, len(docs), 256):
        encoder.encode(docs[i : i + 256])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", help=f"encoder id (repeatable). Default: {', '.join(BACKENDS)}")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    docs, queries = workload(args.texts, args.queries)
    encoders = {name: load_text_encoder(name) for name in args.backend or BACKENDS}
    for enc in encoders.values():
        enc.encode(docs[:64])  # warm-up: first-call allocations and graph optimisation
    latencies: dict[str, list[float]] = {name: [] for name in encoders}
    seconds: dict[str, float] = dict.fromkeys(encoders, 0.0)
    for _ in range(args.rounds):
        for name, enc in encoders.items():
            latencies[name] += query_latencies(enc, queries)
            seconds[name] += batch_seconds(enc, docs)
    reference = next(iter(encoders.values())).encode(docs[:500])
    result: dict[str, Any] = {"texts": len(docs), "queries": len(queries), "rounds": args.rounds, "backends": {}}
    first = next(iter(encoders))
    for name, enc in encoders.items():
        result["backends"][name] = {
            "query_p50_ms": round(statistics.median(latencies[name]), 2),
            "query_p99_ms": round(float(np.percentile(latencies[name], 99)), 2),
            "batch_texts_per_s": round(len(docs) * args.rounds / seconds[name], 1),
            "min_cosine_vs_first": round(float(np.min(np.sum(enc.encode(docs[:500]) * reference, axis=1))), 4),
        }
    base = result["backends"][first]
    for row in result["backends"].values():
        row["query_speedup"] = round(base["query_p50_ms"] / row["query_p50_ms"], 2)
        row["batch_speedup"] = round(row["batch_texts_per_s"] / base["batch_texts_per_s"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(docs)} scene texts in batches of 256, {len(queries)} one-text queries, {args.rounds} rounds")
    print(f"{'backend':32} {'query p50':>10} {'p99':>8} {'x':>6} {'texts/s':>9} {'x':>6} {'min cos':>8}")
    for name, r in result["backends"].items():
        print(
            f"{name:32} {r['query_p50_ms']:>8.2f}ms {r['query_p99_ms']:>6.2f}ms {r['query_speedup']:>6.2f} "
            f"{r['batch_texts_per_s']:>9.1f} {r['batch_speedup']:>6.2f} {r['min_cosine_vs_first']:>8.4f}"
        )


if __name__ == "__main__":
    main()
