"""Clips through the whole stack: shots, thumbnails and timestamps round-trip into search results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import SHOTS
from indexer.store import Store
from search.engine import Engine
from tests.helpers import write_jsonl

CLIPS = Path(__file__).resolve().parents[2] / "fixtures" / "clips"


def test_clip_shots_round_trip_to_results(tmp_path: Path, with_clip: Encoders) -> None:
    root = tmp_path / "catalog"
    (root / "clips").mkdir(parents=True)
    shutil.copy(CLIPS / "alpine_night_3shots.mp4", root / "clips")
    (root / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    scenes = [
        {
            "scene_id": "v1",
            "prompt": "Parka montage: night peaks, a beach, a neon city",
            "media": ["clips/alpine_night_3shots.mp4"],
        },
        {"scene_id": "v2", "prompt": "A broken upload", "media": ["clips/broken.mp4"]},
        {"scene_id": "v3", "prompt": "A text-only scene in a cafe"},
    ]
    path = write_jsonl(root / "scenes.jsonl", scenes)
    db = tmp_path / "index"
    report = index_catalog(IndexOptions(db=db, progress=False), path, encoders=with_clip)
    assert report.scenes == 2  # v2 skipped, the rest of the batch indexed
    assert [(e.record_id, e.field, e.line) for e in report.errors] == [("v2", "media.0", 2)]
    assert "corrupt" in report.errors[0].reason or "truncated" in report.errors[0].reason

    cuts = json.loads((CLIPS / "cuts.json").read_text())["alpine_night_3shots.mp4"]["cuts"]
    shots = sorted(
        Store.open(db).columns(SHOTS, ["scene_id", "shot_index", "start_s", "end_s", "thumb_path"]).to_pylist(),
        key=lambda r: r["shot_index"],
    )
    assert [s["shot_index"] for s in shots] == [0, 1, 2]
    for shot, cut in zip(shots[1:], cuts, strict=True):
        assert abs(shot["start_s"] - cut) <= 0.25
    for shot in shots:
        thumb = (db / shot["thumb_path"]).resolve()
        assert thumb.is_file() and thumb.is_relative_to(db.resolve())  # nothing written outside the index

    engine = Engine.open(db, text=with_clip.text, clip=with_clip.clip)
    response = engine.search("parka montage at night", k=3)
    hit = next(h for h in response.scenes if h.scene_id == "v1")
    assert hit.best_shot is not None and hit.best_shot.basis == "clip"
    assert (hit.best_shot.start_s, hit.best_shot.end_s) in {(s["start_s"], s["end_s"]) for s in shots}
    assert hit.best_shot.thumbnail in {s["thumb_path"] for s in shots}
    assert "clip" in response.channels and response.clip_status.startswith("loaded clip:tiny-test-clip")
