"""Index-time slot inference against the fixture catalog's hidden truth (fixtures/truth/scene_labels.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

from indexer.catalog import read_scenes
from indexer.context import infer_contexts, scene_text
from indexer.encoders import SentenceTransformerEncoder
from indexer.vocab import Vocabulary

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_omitted_slots_are_recovered(text_encoder: SentenceTransformerEncoder) -> None:
    scenes = read_scenes(FIXTURES / "catalog" / "scenes.jsonl").records
    truth = {}
    for line in (FIXTURES / "truth" / "scene_labels.jsonl").read_text().splitlines():
        record = json.loads(line)
        truth[record["scene_id"]] = record
    vectors = text_encoder.encode([scene_text(s) for s in scenes])
    contexts = infer_contexts(scenes, vectors, Vocabulary.load(), text_encoder)
    right = {"setting": 0, "time_of_day": 0, "tone": 0}
    asked = dict.fromkeys(right, 0)
    for scene, ctx in zip(scenes, contexts, strict=True):
        for slot in truth[scene.scene_id]["omitted"]:
            if slot not in right:
                continue
            asked[slot] += 1
            want = truth[scene.scene_id][slot]
            right[slot] += bool(set(ctx.tones) & set(want)) if slot == "tone" else getattr(ctx, slot) == want
    assert min(asked.values()) >= 10  # the fixture really omits these slots
    assert right["setting"] / asked["setting"] >= 0.9, (right, asked)
    assert right["time_of_day"] / asked["time_of_day"] >= 0.9, (right, asked)
    assert right["tone"] / asked["tone"] >= 0.7, (right, asked)
