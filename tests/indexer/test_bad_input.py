"""Bad catalogs: exact errors naming file, line and field; the index stays exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from indexer.errors import CatalogError
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import SCENES, SHOTS
from indexer.store import Store
from tests.helpers import write_jsonl


def _state(db: Path) -> tuple[dict[str, int], list[dict[str, Any]]]:
    store = Store.open(db)
    rows = store.columns(SCENES, ["scene_id", "prompt", "parent_id"]).to_pylist()
    return store.versions(), sorted(rows, key=lambda r: r["scene_id"])


@pytest.fixture
def indexed(catalog: dict[str, Path], options: IndexOptions, text_only: Encoders) -> Path:
    index_catalog(options, catalog["scenes"], catalog["ads"], catalog["consents"], encoders=text_only)
    return options.db


CASES = [
    ('{"scene_id": "n1", "prompt": "ok"', "(line)", "invalid JSON"),
    ({"scene_id": "n1"}, "prompt", "required field is missing"),
    ({"prompt": "no id"}, "scene_id", "required field is missing"),
    ({"scene_id": "bad id!", "prompt": "x"}, "scene_id", "String should match pattern"),
    ({"scene_id": "n1", "prompt": "x", "parent_id": "ghost"}, "parent_id", "remix parent 'ghost' is not in this"),
    (
        {"scene_id": "n1", "prompt": "x", "media": ["media/missing.png"]},
        "media.0",
        "file 'media/missing.png' does not exist",
    ),
    ({"scene_id": "n1", "prompt": "x", "media": ["../../etc/passwd"]}, "media.0", "escapes the catalog folder"),
    ({"scene_id": "n1", "prompt": "x", "created_at": "yesterday"}, "created_at", "dropped: expected an ISO-8601"),
    ({"scene_id": "n1", "prompt": "x", "engagement": {"views": "12"}}, "engagement.views", "coerced: numeric string"),
    ({"scene_id": "n1", "prompt": "x", "cameos": [{"name": "no id"}]}, "cameos", "needs a 'persona_id'"),
]


@pytest.mark.parametrize(("record", "field", "reason"), CASES)
def test_strict_bad_record_names_line_and_field_and_writes_nothing(
    record: Any, field: str, reason: str, indexed: Path, catalog: dict[str, Path], text_only: Encoders
) -> None:
    before = _state(indexed)
    good = {"scene_id": "n0", "prompt": "a valid new scene on a beach"}
    path = write_jsonl(catalog["root"] / "new.jsonl", [good, record])
    with pytest.raises(CatalogError) as err:
        index_catalog(IndexOptions(db=indexed, strict=True, progress=False), path, encoders=text_only)
    first = err.value.errors[0]
    assert (first.source, first.line, first.field) == (str(path), 2, field)
    assert reason in first.reason
    assert f"{path}:2" in str(first) and f"field '{field}'" in str(first)
    assert _state(indexed) == before


def test_duplicate_id_in_file_is_rejected_with_first_line(
    indexed: Path, catalog: dict[str, Path], text_only: Encoders
) -> None:
    path = write_jsonl(
        catalog["root"] / "dup.jsonl", [{"scene_id": "d1", "prompt": "a"}, {"scene_id": "d1", "prompt": "b"}]
    )
    report = index_catalog(IndexOptions(db=indexed, progress=False), path, encoders=text_only)
    assert [(e.line, e.field, e.reason) for e in report.errors] == [
        (2, "scene_id", "duplicate id 'd1' (first on line 1)")
    ]
    store = Store.open(indexed)
    row = store.columns(SCENES, ["prompt"], where="scene_id = 'd1'").to_pylist()
    assert row == [{"prompt": "a"}]


def test_lenient_mode_skips_bad_records_and_keeps_good_ones(
    indexed: Path, catalog: dict[str, Path], text_only: Encoders
) -> None:
    path = write_jsonl(
        catalog["root"] / "mixed.jsonl",
        [
            {"scene_id": "g1", "prompt": "a cafe at dawn"},
            "not json",
            {"scene_id": "g2", "parent_id": "nope", "prompt": "x"},  # a lineage gap, kept
        ],
    )
    report = index_catalog(IndexOptions(db=indexed, progress=False), path, encoders=text_only)
    assert report.scenes == 2 and report.lineage_gaps == {"g2": "nope"}
    assert [(e.line, e.field) for e in report.errors] == [(2, "(line)")]
    assert {"g1", "g2"} <= set(Store.open(indexed).ids(SCENES))


def test_failure_during_a_chunk_write_restores_every_table(
    indexed: Path, catalog: dict[str, Path], text_only: Encoders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the chunk's table writes (shots written, scenes not) rolls the shots back too."""
    before = _state(indexed)
    shots_before = Store.open(indexed).count(SHOTS)

    def explode(self: Store, *args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Store, "write_scenes", explode)
    path = write_jsonl(catalog["root"] / "more.jsonl", [{"scene_id": "s1", "prompt": "a desert at noon"}])
    with pytest.raises(RuntimeError, match="disk full"):
        index_catalog(IndexOptions(db=indexed, progress=False), path, encoders=text_only)
    assert _state(indexed)[1] == before[1] and Store.open(indexed).count(SHOTS) == shots_before


def test_a_run_that_died_before_the_fulltext_build_is_finished_by_the_next(
    indexed: Path, catalog: dict[str, Path], text_only: Encoders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are durable once committed; the next run (nothing left to encode) still brings FTS up to date."""
    path = write_jsonl(catalog["root"] / "more.jsonl", [{"scene_id": "m1", "prompt": "a zebra crossing the desert"}])
    real = Store.rebuild_fts
    monkeypatch.setattr(Store, "rebuild_fts", lambda self: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError, match="killed"):
        index_catalog(IndexOptions(db=indexed, progress=False), path, encoders=text_only)
    assert Store.open(indexed).fts_stale()
    monkeypatch.setattr(Store, "rebuild_fts", real)
    report = index_catalog(IndexOptions(db=indexed, progress=False), path, encoders=text_only)
    assert (report.scenes, report.unchanged) == (0, 1)
    assert not Store.open(indexed).fts_stale()


def test_unreadable_and_non_utf8_files_are_clear_errors(tmp_path: Path, text_only: Encoders) -> None:
    with pytest.raises(CatalogError, match="file not found"):
        index_catalog(IndexOptions(db=tmp_path / "i", progress=False), tmp_path / "nope.jsonl", encoders=text_only)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps({"scene_id": "x", "prompt": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(CatalogError, match="not UTF-8"):
        index_catalog(IndexOptions(db=tmp_path / "i", progress=False), latin, encoders=text_only)
    assert not (tmp_path / "i").exists()  # a rejected catalog leaves no empty index behind


def test_all_rejected_batch_writes_nothing_at_all(indexed: Path, catalog: dict[str, Path], text_only: Encoders) -> None:
    before = _state(indexed)
    path = write_jsonl(catalog["root"] / "bad.jsonl", [{"scene_id": "x"}, "[]"])
    report = index_catalog(IndexOptions(db=indexed, progress=False), path, encoders=text_only)
    assert report.scenes == 0 and len(report.errors) == 2
    assert _state(indexed) == before  # not even a new table version
