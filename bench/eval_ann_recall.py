"""ANN recall sweep: FAISS HNSW (indexer.ann parameters) vs exact search on an index's scene text vectors.

    python bench/eval_ann_recall.py --db DIR --queries fixtures/catalog/queries.jsonl
    python bench/eval_ann_recall.py --db DIR --beir ../shared/datasets/scifact

Prints recall@k for k = 10, 100 and the engine's candidate depth (200), at efSearch values around the default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from indexer.catalog import read_queries
from search.engine import Engine, SearchOptions
from search.evaluation.ann_recall import engine_ann_recall
from search.evaluation.beir import load_beir

EF_SWEEP = (16, 32, 64, 128, 256, 512)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="index folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--queries", type=Path, help="queries.jsonl")
    source.add_argument("--beir", type=Path, help="BEIR dataset folder (its test queries)")
    args = parser.parse_args()
    texts = (
        [q.text for q in load_beir(args.beir).queries] if args.beir else [q.text for q in read_queries(args.queries)]
    )
    engine = Engine.open(args.db, use_clip=False)
    result = engine_ann_recall(engine, texts, ks=(10, 100, SearchOptions().depth), ef_sweep=EF_SWEEP)
    print(json.dumps(result.to_dict(), indent=2))


if __name__ == "__main__":
    main()
