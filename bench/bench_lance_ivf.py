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

`--engine COPY` measures the engine's dense channel instead (`Engine.open(ann="faiss")` against `ann="lance"`,
the `dense` preset, k=10, channel depth `--depth`), on a copy of `--db` made at COPY (the original is never
changed: the IVF_PQ index is built in the copy), each engine in a fresh process: open time, peak RSS,
p50/p99, recall@10 against exact search over the same allowed rows (consent applies), overlap with FAISS.

    python bench/bench_lance_ivf.py --db /tmp/bench-live-100k/index --engine /tmp/wt-lance-100k
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
from pyarrow import fs as pafs

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_live import MODEL, queries, rss_gb  # noqa: E402
from load_api import free_port  # noqa: E402
from load_replicas import BUCKET  # noqa: E402
from local_stack import start_s3  # noqa: E402

from indexer import ann  # noqa: E402
from indexer.encoders import load_text_encoder  # noqa: E402
from indexer.location import IndexLocation  # noqa: E402
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


def peak_rss_gb() -> float:
    """The process's peak resident memory (VmHWM), not the current one."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024**2, 3)
    return 0.0


def phase_engine(db: Any, backend: str, n: int, depth: int, nprobes: int, refine: int) -> dict[str, Any]:
    """One engine's dense channel, timed per query; FAISS also reports the exact top-10 (after the timing)."""
    from dataclasses import replace
    from datetime import datetime, timezone

    from indexer.lance_ann import LanceAnn
    from search.engine import PRESETS, Engine

    encoder = load_text_encoder(MODEL)
    started = time.perf_counter()
    choice: Any = LanceAnn(nprobes, refine or None) if backend == "lance" else "faiss"
    engine = Engine.open(db, text=encoder, use_clip=False, ann=choice)
    open_s = time.perf_counter() - started
    options, now = replace(PRESETS["dense"], depth=depth), datetime(2026, 12, 1, tzinfo=timezone.utc)
    texts = queries(n)
    engine.search(texts[0], k=10, options=options, now=now)  # warm-up (first query pays lazy imports)

    def search(text: str) -> list[str]:
        return [s.scene_id for s in engine.search(text, k=10, options=options, now=now).scenes]

    times, hits = [], []
    for text in texts:
        t0 = time.perf_counter()
        hits.append(search(text))
        times.append(1000 * (time.perf_counter() - t0))
    out = {"times": times, "hits": hits, "peak_rss_gb": peak_rss_gb(), "rss_gb": rss_gb(), "open_s": open_s}
    out["params"] = dict(engine.snapshot.text_ann.params)
    if backend == "faiss":  # exact top-10 among the rows the dense channel may return (consent, tombstones)
        snap = engine.snapshot
        allowed = np.flatnonzero(snap.eligible("search", now))
        vectors = snap.text_vecs[allowed]
        qs = np.asarray(encoder.encode(texts), dtype=np.float32)
        top = np.argsort(-(qs @ vectors.T), axis=1)[:, :10]
        out["exact"] = [[snap.ids[int(allowed[i])] for i in row] for row in top]
    return out


def main_engine(args: argparse.Namespace) -> None:
    import shutil

    from indexer import lance_ann

    copy: Path = args.engine
    if not copy.exists():
        shutil.copytree(args.db, copy)
    result: dict[str, Any] = {"encoder": f"{MODEL} (stand-in, NOT semantic)", "depth": args.depth}
    store = Store.open(copy)
    result["rows"] = store.count(SCENES)
    if lance_ann.vector_index(store.table(SCENES)) is None:
        result["ivf_pq"] = lance_ann.build(store)
    common = ["--db", str(copy), "--queries", str(args.queries), "--depth", str(args.depth)]
    faiss = _child([*common, "--phase", "engine-faiss"])
    exact = faiss["exact"]
    variants = {"engine_faiss_hnsw": faiss}
    for nprobes, refine in ((args.nprobes, args.refine), *((p, r) for p, r in args.sweep)):
        lance = _child([*common, "--phase", "engine-lance", "--nprobes", str(nprobes), "--refine", str(refine)])
        variants[f"engine_lance_ivf_pq_nprobes{nprobes}_refine{refine}"] = lance
    if args.s3_queries:  # the copy (IVF_PQ index included) on moto's S3: a few queries, moto is slow
        from indexer.location import filesystem

        moto, options = start_s3(free_port(), BUCKET, quiet=True)
        try:
            remote = IndexLocation.of(f"s3://{BUCKET}/engine", options)
            started = time.perf_counter()
            pafs.copy_files(str(copy), remote.uri.removeprefix("s3://"), destination_filesystem=filesystem(remote))
            result["s3_upload_s"] = round(time.perf_counter() - started, 1)
            s3 = ["--db", str(copy), "--uri", remote.uri, "--options", json.dumps(options)]
            s3 += ["--queries", str(args.s3_queries)]
            s3 += ["--depth", str(args.depth), "--phase", "engine-lance", "--nprobes", str(args.nprobes)]
            out = _child([*s3, "--refine", str(args.refine)])
            exact_part = exact[: args.s3_queries]
            variants[f"engine_lance_on_moto_s3_nprobes{args.nprobes}_refine{args.refine}"] = out
            out["exact_part"] = exact_part
        finally:
            moto.terminate()
            moto.wait()
    for name, out in variants.items():
        truth = out.get("exact_part", exact)
        faiss_hits = faiss["hits"][: len(truth)]
        result[name] = {
            "open_s": round(out["open_s"], 1),
            "p50_ms": round(statistics.median(out["times"]), 2),
            "p99_ms": round(sorted(out["times"])[int(0.99 * (len(out["times"]) - 1))], 2),
            "queries": len(out["hits"]),
            "recall@10_vs_exact": round(_overlap(out["hits"], truth), 3),
            "overlap@10_with_faiss": round(_overlap(out["hits"], faiss_hits), 3),
            "peak_rss_gb": out["peak_rss_gb"],
            "params": out["params"],
        }
    print(json.dumps(result, indent=2))


def _overlap(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / max(1, len(t)) for f, t in zip(found, truth, strict=True)]))


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="an index built by bench_live.py")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=256)
    parser.add_argument("--engine", type=Path, help="measure the engine's dense channel on a copy made here")
    parser.add_argument("--s3-queries", type=int, default=0, help="--engine: also this many queries on moto S3")
    parser.add_argument("--depth", type=int, default=200, help="--engine: the dense channel's candidate depth")
    parser.add_argument(
        "--sweep", type=lambda v: tuple(int(x) for x in v.split(",")), action="append", default=[],
        help="--engine: another NPROBES,REFINE to measure (repeatable)",
    )  # fmt: skip
    parser.add_argument("--phase", choices=["faiss", "lance", "engine-faiss", "engine-lance"], help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)  # JSON storage options
    parser.add_argument("--nprobes", type=int, default=20)
    parser.add_argument("--refine", type=int, default=10)
    args = parser.parse_args()
    if args.phase == "faiss":
        print(json.dumps(phase_faiss(args.db, args.queries)))
        return
    if args.phase in ("engine-faiss", "engine-lance"):
        backend = args.phase.removeprefix("engine-")
        db = IndexLocation.of(args.uri, json.loads(args.options)) if args.uri else args.db
        print(json.dumps(phase_engine(db, backend, args.queries, args.depth, args.nprobes, args.refine)))
        return
    if args.engine is not None:
        main_engine(args)
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
