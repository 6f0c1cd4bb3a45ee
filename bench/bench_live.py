"""Live-index benchmark: open, memory, per-query cost, writes until searchable, revocation, compaction.

Everything is measured in one process on one index, side by side, with the deterministic stand-in encoder
`hash:384` (NOT a semantic model: the numbers exclude MiniLM; add its encoding time to the write figures).
The catalog is `bench_index.synthetic_catalog` (10% remixes, 2% cameos under consent).

    python bench/bench_live.py --scenes 100000
    python bench/bench_live.py --scenes 1000000 --workdir /tmp/bench-live-1m   # keeps the index for reruns

Reported: open seconds and RSS; p50/p99 per preset (query encodings cached, so the encoder is excluded); the
dense channel against the raw FAISS search it wraps (same k and efSearch) and LanceDB's own vector search on
the same table; write 1 / write 100 / delete until a search sees it; a revocation until searches exclude the persona
(withheld before its commit starts) and until it is committed and read back; compaction; recall@10 of the
dense channel against exact search over the same allowed rows; a re-open after the writes (a service
restart: the saved base plus the logged writes).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_index import synthetic_catalog  # noqa: E402

from indexer.catalog import Inline  # noqa: E402
from indexer.encoders import load_text_encoder  # noqa: E402
from indexer.pipeline import Encoders, IndexOptions, delete_scenes, index_catalog, put_consents  # noqa: E402
from indexer.schema import SCENES, Consent  # noqa: E402
from indexer.vocab import Vocabulary  # noqa: E402
from search import channels  # noqa: E402
from search.consent import ConsentState, now_utc  # noqa: E402
from search.engine import PRESETS, Engine  # noqa: E402

MODEL = "hash:384"
PRESET_NAMES = ("dense", "fts", "fusion", "full", "full+collapse")


def rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024**2, 2)
    return float("nan")


def pct(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(0.99 * (len(times) - 1))], 2)}


def queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    terms = {slot: [t for item in items for t in item.terms] for slot, items in Vocabulary.load().by_slot.items()}
    return [
        f"{rng.choice(terms['category'])} in the {rng.choice(terms['setting'])} at {rng.choice(terms['time_of_day'])}, "
        f"{rng.choice(terms['tone'])}"
        for _ in range(n)
    ]


def build(work: Path, scenes: int) -> tuple[Path, float]:
    db = work / "index"
    if (db / "manifest.json").is_file():
        return db, float("nan")
    catalog, ads, _ = synthetic_catalog(scenes, work)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "api", "index", "--db", str(db), "--scenes", str(catalog), "--ads", str(ads),
         "--consents", str(work / "consents.jsonl"), "--text-model", MODEL, "--no-clip", "--quiet"],
        check=True,
    )  # fmt: skip
    return db, time.perf_counter() - started


def time_queries(engine: Engine, texts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PRESET_NAMES:
        for text in texts[:20]:
            engine.search(text, options=PRESETS[name])  # warm: encodings cached from here on
        times = []
        for text in texts:
            started = time.perf_counter()
            engine.search(text, k=10, options=PRESETS[name])
            times.append(1000 * (time.perf_counter() - started))
        out[name] = pct(times)
    return out


def dense_vs_raw(engine: Engine, texts: list[str], depth: int = 200) -> dict[str, Any]:
    """The dense channel (consent mask, tombstones, delta) against FAISS alone, same k and efSearch."""
    import faiss

    snap = engine.snapshot
    vecs = engine.text.encode(texts)
    allowed = snap.eligible("search", now_utc())
    layer = snap.text_ann
    ef = max(int(layer.params.get("ef_search", 0)), depth)
    params = faiss.SearchParametersHNSW(efSearch=ef) if layer.params.get("kind") == "hnsw" else None
    channel, raw, hits = [], [], []
    exact = _exact_top10(snap.text_vecs, allowed, vecs[:50])
    for i, vec in enumerate(vecs):
        q = vec.reshape(1, -1)
        started = time.perf_counter()
        found = channels.dense_text(snap, q, allowed, depth)
        channel.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        layer.index.search(q, depth, params=params)
        raw.append(1000 * (time.perf_counter() - started))
        if i < len(exact):
            hits.append(len(set(found.rows[:10].tolist()) & set(exact[i].tolist())) / 10)
    return {
        "dense_channel": pct(channel),
        "raw_faiss": pct(raw),
        "ratio_p50": round(statistics.median(channel) / statistics.median(raw), 2),
        "recall@10_vs_exact": round(float(np.mean(hits)), 4),
        "k": depth,
        "ef_search": ef,
    }


def _exact_top10(vectors: Any, allowed: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Brute-force top 10 allowed rows per query (base and delta scored in blocks: no copy of the matrix)."""
    base, delta = vectors.base, vectors.delta_values
    scores = np.concatenate([base @ queries.T, delta @ queries.T]) if len(delta) else base @ queries.T
    scores[~allowed] = -np.inf
    top = np.argpartition(-scores, 10, axis=0)[:10].T
    return np.array([row[np.argsort(-scores[row, i])] for i, row in enumerate(top)])


def lancedb_vector_search(engine: Engine, texts: list[str]) -> dict[str, float]:
    table = engine.store.table(SCENES)
    times = []
    for vec in engine.text.encode(texts):
        started = time.perf_counter()
        table.search(vec).limit(10).select(["scene_id"]).to_list()
        times.append(1000 * (time.perf_counter() - started))
    return pct(times)


def _revoke(engine: Engine, revoked: Consent, rows: np.ndarray | None) -> tuple[float, float]:
    """What `Engine.put_consents` does, timed: until searches exclude the persona (the commit starts once it is
    withheld), and until the revocation is committed and read back."""
    effective: list[float] = []

    def commit() -> None:
        effective.append(1000 * (time.perf_counter() - started))
        if rows is not None:
            assert not engine.snapshot.eligible("search", now_utc())[rows].any()
        put_consents(engine.store, [revoked])

    started = time.perf_counter()
    engine.live.change_consents({revoked.persona_id: ConsentState.of(revoked)}, commit)
    return effective[0], 1000 * (time.perf_counter() - started)


def writes(engine: Engine, db: Path, repeats: int) -> dict[str, Any]:
    encoders = Encoders(engine.text, None, None)
    options = IndexOptions(db=db, text_model=MODEL, use_clip=False, progress=False, live=True, media_root=db)
    run = int(time.time())  # new ids each run: a rerun on a kept index must not skip unchanged scenes
    out: dict[str, list[float]] = {
        "write_1": [], "write_100": [], "delete_1": [], "revoke_effective": [], "revoke_committed": []
    }  # fmt: skip
    for r in range(repeats):
        for size in (1, 100):
            prompt = f"live write {r} {size} {{}} neon alpine jacket"
            batch = [{"scene_id": f"live-{run}-{r}-{size}-{i}", "prompt": prompt.format(i)} for i in range(size)]
            started = time.perf_counter()
            index_catalog(options, Inline("bench", batch, base=db), encoders=encoders)
            engine.refresh()
            out[f"write_{size}"].append(1000 * (time.perf_counter() - started))
            assert batch[0]["scene_id"] in engine.snapshot.row
        started = time.perf_counter()
        delete_scenes(engine.store, [f"live-{run}-{r}-1-0"])
        engine.refresh()
        out["delete_1"].append(1000 * (time.perf_counter() - started))
        persona = f"persona-{r:02d}"
        rows = engine.snapshot.masks.persona_rows.get(persona)
        revoked = Consent.model_validate({"persona_id": persona, "scopes": ["search", "ads"],
                                          "revoked_at": datetime.now(timezone.utc)})  # fmt: skip
        effective_ms, committed_ms = _revoke(engine, revoked, rows)
        out["revoke_effective"].append(effective_ms)
        out["revoke_committed"].append(committed_ms)
        if rows is not None:
            assert not engine.snapshot.eligible("search", now_utc())[rows].any()
    return {name: {"median_ms": round(statistics.median(v), 1), "max_ms": round(max(v), 1)} for name, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each write measurement")
    parser.add_argument("--workdir", type=Path, default=None, help="keep (or reuse) the index here")
    parser.add_argument("--skip-compaction", action="store_true", help="(its cost is the HNSW build: see bench_ingest)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-live-"))
    work.mkdir(parents=True, exist_ok=True)
    db, build_s = build(work, args.scenes)
    result: dict[str, Any] = {
        "scenes": args.scenes,
        "encoder": f"{MODEL} (stand-in, NOT semantic)",
        "build_s": round(build_s, 1),
    }
    result["rss_before_open_gb"] = rss_gb()
    encoder = load_text_encoder(MODEL)
    started = time.perf_counter()
    engine = Engine.open(db, text=encoder, use_clip=False)
    result["open_s"] = round(time.perf_counter() - started, 2)
    result["rss_after_open_gb"] = rss_gb()
    engine.live.auto_compact = True  # as `serve` runs it: small files merged in the background every 32 writes
    result["ann"] = dict(engine.snapshot.text_ann.params)
    texts = queries(args.queries)
    result["query"] = time_queries(engine, texts)
    result["dense_vs_raw_faiss"] = dense_vs_raw(engine, texts)
    result["lancedb_vector_search"] = lancedb_vector_search(engine, texts[:5])
    result["writes"] = writes(engine, db, args.repeats)
    result["query_after_writes"] = time_queries(engine, texts[:100])
    result["delta_rows_before_compaction"] = engine.snapshot.delta_rows
    started = time.perf_counter()
    restarted = Engine.open(db, text=encoder, use_clip=False)  # a service restart after live writes
    result["reopen_after_writes_s"] = round(time.perf_counter() - started, 2)
    result["reopen_from"] = restarted.opened_from
    del restarted
    if not args.skip_compaction:
        started = time.perf_counter()
        engine.compact()
        result["compaction_s"] = round(time.perf_counter() - started, 1)
        result["query_after_compaction"] = time_queries(engine, texts[:100])
    result["rss_end_gb"] = rss_gb()
    result["disk_mb"] = round(sum(f.stat().st_size for f in db.rglob("*") if f.is_file()) / 1024**2, 1)
    result["ann_after_compaction"] = {
        "rows": len(engine.snapshot.text_ann),
        "kind": engine.snapshot.text_ann.params.get("kind"),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
