"""Trust-layer benchmark on the synthetic catalog (default 100,000 scenes): remix graph, families, credit,
exposure audit.

The catalog is `bench_index.synthetic_catalog` (10% remixes) plus what lineage needs: 2,000 creators, creation
times spread over 180 days (a remix is always newer than its parent) and 2% of scenes showing a persona whose
consent was revoked (so the consent-filtered graph contracts them away). Text is encoded with `hash:384`, the
non-semantic stand-in encoder: timings of the graph and fairness work do not depend on the text model, and the
audit's rankings are only a load for the arithmetic, not a relevance result.

    python bench/bench_trust.py                      # 100,000 scenes
    python bench/bench_trust.py --scenes 5000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_index import synthetic_catalog  # noqa: E402
from indexer.encoders import load_text_encoder  # noqa: E402
from indexer.pipeline import Encoders, IndexOptions, index_catalog  # noqa: E402
from indexer.schema import Query  # noqa: E402
from search.engine import Engine  # noqa: E402
from search.evaluation.audit import AuditSettings, run_audit  # noqa: E402
from search.families import family_table, top_families  # noqa: E402
from search.lineage import credit_chain, remix_forest  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def with_lineage_fields(scenes: Path, n: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    out = scenes.with_name("scenes_lineage.jsonl")
    step = 180 * 86400 / max(n, 1)
    with scenes.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            record = json.loads(line)
            record["creator_id"] = f"creator-{rng.randrange(2000):04d}"
            record["created_at"] = (T0 + timedelta(seconds=i * step)).isoformat()
            if rng.random() < 0.02:
                record["cameos"] = ["persona-revoked"]
            dst.write(json.dumps(record) + "\n")
    return out


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - started, 3)


def run(n: int, queries: int, folder: Path) -> dict[str, Any]:
    scenes, ads, query_list = synthetic_catalog(n, folder)
    scenes = with_lineage_fields(scenes, n)
    consents = folder / "consents.jsonl"
    consents.write_text(
        json.dumps({"persona_id": "persona-revoked", "scopes": ["search"], "revoked_at": "2025-01-01T00:00:00Z"}) + "\n"
    )
    text = load_text_encoder("hash:384")
    options = IndexOptions(db=folder / "index", progress=False, use_clip=False)
    report, ingest_s = timed(lambda: index_catalog(options, scenes, ads, consents, Encoders(text, None, None)))
    engine, open_s = timed(lambda: Engine.open(folder / "index", text=text, use_clip=False))
    snap = engine.snapshot
    visible = snap.eligible("search", datetime.now(timezone.utc))
    out: dict[str, Any] = {"scenes": n, "hidden_by_consent": int((~visible).sum()), "ingest_s": ingest_s}
    out["engine_open_s"] = open_s
    forest, out["forest_all_s"] = timed(lambda: remix_forest(snap))
    _, out["forest_consent_s"] = timed(lambda: remix_forest(snap, visible))
    table, out["family_table_s"] = timed(lambda: family_table(snap, visible))
    families, out["top20_velocity_s"] = timed(lambda: top_families(snap, table, "velocity", 20))
    _, out["top20_virality_s"] = timed(lambda: top_families(snap, table, "virality", 20))
    rows = np.random.default_rng(0).choice(np.flatnonzero(visible), size=1000, replace=False)
    _, credit_s = timed(lambda: [credit_chain(snap, int(r), visible) for r in rows])
    out["credit_chain_ms_each"] = round(credit_s, 3)  # 1000 calls: seconds == ms per call
    out["families"] = len(table.roots)
    out["largest_family"] = int(table.size[table.roots].max())
    out["deepest_family"] = int(table.depth[table.roots].max())
    out["top_velocity"] = families[0].to_dict() if families else None
    picked = [Query(query_id=f"q{i}", text=q["text"]) for i, q in enumerate(query_list[:queries])]
    results, out["audit_s"] = timed(lambda: run_audit(engine, picked, ["full+collapse"], AuditSettings(k=10)))
    out["audit_queries"] = len(picked)
    out["audit_creator_gini"] = results[0].creator_gini
    out["audit_awrf"] = results[0].awrf
    out["forest_nodes"] = len(forest)
    out["written"] = report.scenes
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-trust-") as tmp:
        result = run(args.scenes, args.queries, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
