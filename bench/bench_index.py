"""Index and query benchmark on a synthetic catalog (default 100,000 scenes).

Measures, in one run on one machine:
  ingest     rows/s through the real pipeline (validation, context inference, MiniLM encoding, LanceDB, FTS, FAISS),
             with the time per phase
  ann        FAISS build time, flat vs HNSW, and HNSW recall@10 / @100 against exact search on real query vectors
  query      in-process Engine.search latency p50 / p99 (models loaded beforehand) for single channels and the
             full intent-aware ranking

    python bench/bench_index.py                  # 100,000 scenes (MiniLM on CPU dominates: expect many minutes)
    python bench/bench_index.py --scenes 5000 --queries 100 --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from indexer import ann
from indexer.encoders import load_text_encoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import SCENES
from indexer.vocab import Vocabulary
from search.engine import PRESETS, Engine

CAMERA = ["slow dolly-in", "handheld close-up", "aerial drone pass", "locked-off wide shot", "orbiting crane shot"]
SUBJECTS = ["a woman", "two friends", "a runner", "a family", "a couple", "nobody, just the product"]
CAMEO_SHARE, PERSONAS = 0.02, 50


def synthetic_catalog(n: int, folder: Path, seed: int = 0) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Plausible scenes built from the vocabulary terms; 10% remixes, 2% cameos (of 50 personas, whose consents
    are written to `consents.jsonl` next to the scenes: all granted). Returns scenes, ads, queries."""
    rng = random.Random(seed)
    vocab = Vocabulary.load(extra=(), places=None)  # the hand-written labels: the same catalog as before Places365
    terms = {slot: [(item.name, item.terms) for item in items] for slot, items in vocab.by_slot.items()}
    scenes_path, ads_path = folder / "scenes.jsonl", folder / "ads.jsonl"
    queries = []
    with scenes_path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            pick = {slot: rng.choice(terms[slot]) for slot in terms}
            words = {slot: rng.choice(pick[slot][1]) for slot in pick}
            prompt = (
                f"{rng.choice(SUBJECTS)} with a {words['category']} in a {words['setting']} scene, "
                f"{words['time_of_day']}, {words['weather']}, {words['tone']} mood, {rng.choice(CAMERA)}, item {i}"
            )
            record: dict[str, Any] = {
                "scene_id": f"syn-{i:06d}",
                "prompt": prompt,
                "products": [
                    {
                        "sku": f"SKU-{i % 500:04d}",
                        "name": f"{words['category']} {i % 500}",
                        "category": pick["category"][0],
                    }
                ],
                "engagement": {"dwell_ms": rng.randint(0, 60000)},
            }
            if i > 100 and rng.random() < 0.1:
                record["parent_id"] = f"syn-{rng.randrange(i):06d}"
            if rng.random() < CAMEO_SHARE:
                record["cameos"] = [f"persona-{rng.randrange(PERSONAS):02d}"]
            fh.write(json.dumps(record) + "\n")
            if len(queries) < 2000 and rng.random() < 0.05:
                text = f"{words['category']} in the {words['setting']} at {words['time_of_day']}, {words['tone']}"
                queries.append({"text": text})
    with (folder / "consents.jsonl").open("w", encoding="utf-8") as fh:
        for p in range(PERSONAS):
            fh.write(json.dumps({"persona_id": f"persona-{p:02d}", "scopes": ["search", "ads"]}) + "\n")
    with ads_path.open("w", encoding="utf-8") as fh:
        for j in range(500):
            cat = rng.choice(terms["category"])
            fh.write(
                json.dumps(
                    {
                        "ad_id": f"ad-{j:04d}",
                        "headline": f"Best {cat[1][0]} deals",
                        "categories": [cat[0]],
                        "skus": [f"SKU-{j:04d}"],
                        "bid_cpm": round(rng.uniform(0.5, 25), 2),
                    }
                )
                + "\n"
            )
    return scenes_path, ads_path, queries


def bench_ann(db: Path, query_vecs: np.ndarray) -> dict[str, Any]:
    from indexer.store import Store

    store = Store.open(db)
    version = int(store.table(SCENES).version)
    source = ann._source(store, ann.SCENE_TEXT, version)  # the same vectors the index serves
    assert source is not None
    keys, vectors = source
    out: dict[str, Any] = {"rows": len(keys), "dim": int(vectors.shape[1])}
    for kind in ("flat", "hnsw"):
        started = time.perf_counter()
        layer = ann.build(vectors, keys, version, kind=kind)
        out[f"{kind}_build_s"] = round(time.perf_counter() - started, 2)
        out[f"{kind}_params"] = layer.params
        if kind == "hnsw":
            for k in (10, 100):
                exact = ann.exact_search(vectors, query_vecs, k)
                started = time.perf_counter()
                approx = layer.search(query_vecs, k)[1]
                out[f"hnsw_query_ms@{k}"] = round(1000 * (time.perf_counter() - started) / len(query_vecs), 3)
                out[f"hnsw_recall@{k}"] = round(ann.recall_at_k(approx, exact), 4)
    return out


def bench_queries(engine: Engine, queries: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    out = {}
    for name in variants:
        engine.search(queries[0]["text"], options=PRESETS[name])  # warm caches
        times = []
        for query in queries:
            started = time.perf_counter()
            engine.search(query["text"], k=10, options=PRESETS[name])
            times.append(1000 * (time.perf_counter() - started))
        times.sort()
        out[name] = {
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[int(0.99 * (len(times) - 1))], 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=100_000, help="synthetic scenes (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="queries timed per variant (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    encoder = load_text_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scenes, ads, queries = synthetic_catalog(args.scenes, folder)
        queries = queries[: args.queries]
        options = IndexOptions(db=folder / "index", use_clip=False, progress=False)
        report = index_catalog(options, scenes, ads, encoders=Encoders(encoder, None, None))
        result: dict[str, Any] = {
            "scenes": report.scenes,
            "ingest_s": round(report.seconds, 1),
            "ingest_rows_per_s": round(report.scenes / report.seconds, 1),
            "phases_s": {k: round(v, 1) for k, v in report.timings.items()},
        }
        result["ann"] = bench_ann(options.db, encoder.encode([q["text"] for q in queries]))
        engine = Engine.open(options.db, text=encoder, use_clip=False)
        result["query"] = bench_queries(engine, queries, ["dense", "fts", "slots", "full+collapse"])
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
