"""When one replica cannot hold the whole ANN layer: LanceDB's own disk-based IVF_PQ index on object storage.

The serving engine keeps its FAISS HNSW layer in memory (every vector plus the graph). Past one machine's
memory, the existing engine to lean on is Lance's IVF_PQ index: it lives in the table's folder on object
storage next to the data, a query reads the centroids, the PQ codes of the `nprobes` closest partitions and,
with `refine_factor`, the full vectors of the best candidates, so a replica holds caches, not the layer.

This script measures that path side by side with the in-memory layer on the same vectors: the scene text
vectors of an index built by `bench/bench_live.py` (the `hash:384` stand-in encoder, NOT a semantic model),
copied with their ids into a table on a local S3-compatible server (moto, loopback), IVF_PQ built there.
Reported per variant, each in a fresh process: peak RSS, p50/p99 latency for k=10, recall@10 against exact
search over the same vectors.

    python bench/bench_live.py --scenes 100000 --workdir /tmp/bench-live-100k   # once, builds the index
    python bench/bench_lance_ivf.py --db /tmp/bench-live-100k/index
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_live import MODEL, queries, rss_gb  # noqa: E402
from load_api import free_port  # noqa: E402
from load_replicas import BUCKET  # noqa: E402
from local_stack import start_s3  # noqa: E402

from indexer import ann  # noqa: E402
from indexer.encoders import load_text_encoder  # noqa: E402
from indexer.schema import SCENES  # noqa: E402
from indexer.store import Store  # noqa: E402

TABLE = "scene_vectors"


def _query_vectors(n: int) -> np.ndarray:
    return np.asarray(load_text_encoder(MODEL).encode(queries(n)), dtype=np.float32)


def _vectors(db: Path) -> tuple[list[str], np.ndarray]:
    store = Store.open(db)
    source = ann._source(store, ann.SCENE_TEXT, int(store.table(SCENES).version))
    assert source is not None
    return source


def _timed(search: Any, qs: np.ndarray) -> tuple[list[float], list[list[str]]]:
    times, hits = [], []
    for q in qs:
        started = time.perf_counter()
        hits.append(search(q))
        times.append(1000 * (time.perf_counter() - started))
    return times, hits


def phase_faiss(db: Path, n: int) -> dict[str, Any]:
    layer = ann.load(db / ann.ANN_DIR, ann.SCENE_TEXT)
    assert layer is not None

    def search(q: np.ndarray) -> list[str]:
        return [layer.keys[p] for p in layer.search(q[None, :], 10)[1][0] if p >= 0]

    times, hits = _timed(search, _query_vectors(n))
    return {"times": times, "hits": hits, "rss_gb": rss_gb(), "params": layer.params}


def phase_lance(uri: str, options: dict[str, str], n: int, nprobes: int, refine: int) -> dict[str, Any]:
    import lancedb

    table = lancedb.connect(uri, storage_options=options).open_table(TABLE)

    def search(q: np.ndarray) -> list[str]:
        out = table.search(q).nprobes(nprobes).refine_factor(refine).select(["scene_id"]).limit(10).to_arrow()
        return [str(k) for k in out.column("scene_id").to_pylist()]

    times, hits = _timed(search, _query_vectors(n))
    return {"times": times, "hits": hits, "rss_gb": rss_gb(), "params": {"nprobes": nprobes, "refine": refine}}


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="an index built by bench_live.py")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=256)
    parser.add_argument("--phase", choices=["faiss", "lance"], help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)  # JSON storage options
    parser.add_argument("--nprobes", type=int, default=20)
    parser.add_argument("--refine", type=int, default=10)
    args = parser.parse_args()
    if args.phase == "faiss":
        print(json.dumps(phase_faiss(args.db, args.queries)))
        return
    if args.phase == "lance":
        print(json.dumps(phase_lance(args.uri, json.loads(args.options), args.queries, args.nprobes, args.refine)))
        return

    import lancedb
    import pyarrow as pa
    from lancedb.index import IvfPq

    keys, vectors = _vectors(args.db)
    qs = _query_vectors(args.queries)
    exact = ann.exact_search(vectors, qs, 10)
    port = free_port()
    moto, options = start_s3(port, BUCKET, quiet=True)
    position = {k: i for i, k in enumerate(keys)}
    result: dict[str, Any] = {"rows": len(keys), "encoder": f"{MODEL} (stand-in, NOT semantic)"}
    try:
        uri = f"s3://{BUCKET}/ivf"
        db = lancedb.connect(uri, storage_options=options)
        data = pa.table({
            "scene_id": pa.array(keys),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
        })  # fmt: skip
        started = time.perf_counter()
        table = db.create_table(TABLE, data=data)
        result["upload_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        sub = vectors.shape[1] // 8
        config = IvfPq(distance_type="cosine", num_partitions=args.partitions, num_sub_vectors=sub)
        table.create_index("vector", config=config)
        result["ivf_pq_build_s"] = round(time.perf_counter() - started, 1)
        result["ivf_pq"] = {"partitions": args.partitions, "sub_vectors": sub}
        variants = {"faiss_in_memory": ["--db", str(args.db), "--phase", "faiss"]}
        for nprobes, refine in ((10, 1), (20, 10), (40, 10)):
            variants[f"lance_ivf_pq_s3_nprobes{nprobes}_refine{refine}"] = [
                "--db", str(args.db), "--phase", "lance", "--uri", uri, "--options", json.dumps(options),
                "--nprobes", str(nprobes), "--refine", str(refine),
            ]  # fmt: skip
        for name, child_args in variants.items():
            out = _child([*child_args, "--queries", str(args.queries)])
            hits = np.array([[position[k] for k in h] + [-1] * (10 - len(h)) for h in out["hits"]], dtype=np.int64)
            result[name] = {
                "p50_ms": round(statistics.median(out["times"]), 2),
                "p99_ms": round(sorted(out["times"])[int(0.99 * (len(out["times"]) - 1))], 2),
                "recall@10_vs_exact": round(ann.recall_at_k(hits, exact), 3),
                "process_rss_gb": out["rss_gb"],
                "params": out["params"],
            }
    finally:
        moto.terminate()
        moto.wait()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
