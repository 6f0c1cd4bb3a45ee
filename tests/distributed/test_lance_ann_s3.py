"""The dense channel served from the scenes table's IVF_PQ index on S3 (a real moto server on loopback): the
same top results as the FAISS engine on a local folder, and a live write found. moto answers every range
request in Python (seconds per query with refine), so the query count is small and the channel depth 10."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from indexer import lance_ann
from indexer.catalog import Inline
from indexer.encoders import SentenceTransformerEncoder
from indexer.location import IndexLocation
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import SCENES
from search.engine import PRESETS, Engine
from search.lance_vectors import LanceVectors
from tests.api.api_support import index_fixture_catalog
from tests.distributed.conftest import S3Server, copy_index
from tests.search.test_lance_ann import EXTRA, RECALL_BOUND, _generated, _queries

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
DENSE = replace(PRESETS["dense"], depth=10)
QUERIES = 4


def _write(db: Path | IndexLocation, scenes: list[dict[str, object]], encoder: SentenceTransformerEncoder) -> None:
    """Text-only scenes (no media to resolve, so any media root does)."""
    root = Path(__file__).parent
    options = IndexOptions(db=db, use_clip=False, progress=False, media_root=root, live=True)
    index_catalog(options, Inline("w", scenes, base=root), encoders=Encoders(encoder, None, None))


def test_lance_ivf_pq_on_s3_serves_the_dense_channel(
    s3_server: S3Server, s3_index: IndexLocation, tmp_path: Path, text_encoder: SentenceTransformerEncoder
) -> None:
    remote_db = copy_index(s3_server, s3_index)
    _write(remote_db, _generated(), text_encoder)  # past 256 rows, so PQ trains
    remote = Engine.open(remote_db, text=text_encoder, use_clip=False, ann="lance")  # builds the index on S3
    table = remote.store.table(SCENES)
    stats = table.index_stats(lance_ann.vector_index(table).name)
    assert stats.index_type == "IVF_PQ" and stats.num_indexed_rows == 202 + EXTRA
    assert isinstance(remote.snapshot.text, LanceVectors)
    # the same rows on a local folder, searched by the FAISS engine (flat at this size: exact)
    local_db = tmp_path / "index"
    index_fixture_catalog(local_db, text_encoder)
    _write(local_db, _generated(), text_encoder)
    local = Engine.open(local_db, text=text_encoder, use_clip=False)
    recalls = []
    for query in _queries()[:QUERIES]:
        want = [s.scene_id for s in local.search(query, k=10, options=DENSE, now=NOW).scenes]
        got = [s.scene_id for s in remote.search(query, k=10, options=DENSE, now=NOW).scenes]
        recalls.append(len(set(want) & set(got)) / len(want))
    assert float(np.mean(recalls)) >= RECALL_BOUND, recalls
    # a live write on S3 is served from the in-memory delta
    prompt = "a purple kayak drifting past glaciers under the aurora"
    _write(remote_db, [{"scene_id": "new-kayak", "prompt": prompt}], text_encoder)
    assert remote.refresh()
    assert remote.search(prompt, k=3, options=DENSE, now=NOW).scenes[0].scene_id == "new-kayak"
