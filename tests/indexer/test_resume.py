"""Killing `index` (SIGKILL) mid-run and running it again leaves every scene stored exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import lancedb

from indexer.schema import SCENES, SceneCol
from indexer.store import TABLES_DIR, Store

TOTAL, CHUNK = 6000, 200
SETTINGS = ["beach", "alpine", "city street", "forest", "desert", "kitchen"]


def _synthetic(path: Path, total: int, edited: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(total):
            record = {
                "scene_id": f"r{i:05d}",
                "prompt": f"Scene {i}: a product shot in a {SETTINGS[i % 6]}" + (" (edited)" if i in edited else ""),
                "parent_id": f"r{i - 1:05d}" if i % 10 else None,
                "provenance": {"ai_disclosure": "AI-generated"},
            }
            fh.write(json.dumps(record) + "\n")
    return path


def _index(scenes: Path, db: Path) -> subprocess.Popen[str]:
    args = ["index", "--db", str(db), "--scenes", str(scenes), "--text-model", "hash:384", "--no-clip"]
    return subprocess.Popen(
        [sys.executable, "-m", "api", *args, "--chunk-size", str(CHUNK), "--quiet", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored(db: Path) -> int:
    try:
        return int(lancedb.connect(str(db / TABLES_DIR)).open_table(SCENES).count_rows())
    except Exception:  # the index folder or table does not exist yet
        return 0


def test_kill_9_mid_run_then_rerun_stores_every_scene_once(tmp_path: Path) -> None:
    scenes, db = _synthetic(tmp_path / "scenes.jsonl", TOTAL), tmp_path / "index"
    proc = _index(scenes, db)
    deadline = time.monotonic() + 240
    while _stored(db) < 5 * CHUNK and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = _stored(db)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 0 < at_kill < TOTAL and at_kill % CHUNK == 0  # whole chunks only: a chunk is one transaction

    resumed = _index(scenes, db)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    report = json.loads(out)
    assert report["unchanged_scenes"] == at_kill and report["written"]["scenes"] == TOTAL - at_kill
    store = Store.open(db)
    ids = store.ids(SCENES)
    assert len(ids) == len(set(ids)) == TOTAL
    assert not store.fts_stale()

    # a changed record is replaced, the others are skipped without re-encoding
    _synthetic(scenes, TOTAL, edited={7, 4242})
    again = _index(scenes, db)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    report = json.loads(out)
    assert (report["written"]["scenes"], report["unchanged_scenes"]) == (2, TOTAL - 2)
    edited = Store.open(db).columns(SCENES, [SceneCol.PROMPT], where="scene_id = 'r04242'").to_pylist()
    assert edited[0][SceneCol.PROMPT].endswith("(edited)")
    assert Store.open(db).count(SCENES) == TOTAL
