"""`index --engine ray` against the local path, on a real local Ray (2 CPUs, loopback; no mocks): the same rows in
every table, the same thumbnails, write log, error report and search results; a rerun skips what is unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer import catalog, ray_blocks
from indexer.encoders import ClipModel, SentenceTransformerEncoder
from indexer.errors import DistributedUnavailableError
from indexer.pipeline import Encoders, IndexOptions, IndexReport, index_catalog
from indexer.schema import ADS, CHANGES, CONSENTS, SCENES, SHOTS, ChangeCol, ShotCol
from indexer.store import ClipInfo, Store
from search.engine import PRESETS, Engine
from tests.helpers import write_jsonl

ray = pytest.importorskip("ray", reason="needs the distributed extra: pip install -e '.[distributed]'")
from indexer import ray_ingest  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CATALOG = FIXTURES / "catalog"
CHUNK = 64  # four chunks of the 202 fixture scenes, each spread over two actors
KEYS = {SCENES: ("scene_id",), SHOTS: (ShotCol.SCENE, ShotCol.INDEX), ADS: ("ad_id",), CONSENTS: ("persona_id",)}
VECTORS = {"text_vec", "clip_vec"}  # MiniLM batches differ between the paths: equal to float rounding


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory,
    local_ray: Any,
    text_encoder: SentenceTransformerEncoder,
    tiny_clip: ClipModel,
) -> tuple[Path, Path, IndexReport, IndexReport]:
    """The bundled fixtures (scenes with images and clips, ads, consents) indexed with MiniLM and the tiny test
    CLIP (random weights) by the local path and by two Ray actors: (local db, ray db, their reports)."""
    root = tmp_path_factory.mktemp("ray-vs-local")
    spec = tiny_clip.spec
    options = IndexOptions(
        db=root / "local", media_root=FIXTURES, progress=False, chunk_size=CHUNK, clip_arch=spec.arch,
        clip_pretrained=spec.pretrained,
    )  # fmt: skip
    encoders = Encoders(text_encoder, tiny_clip, ClipInfo(spec.arch, spec.pretrained, tiny_clip.id, tiny_clip.dim))
    files = (CATALOG / "scenes.jsonl", CATALOG / "ads.jsonl", CATALOG / "consents.jsonl")
    local = index_catalog(options, *files, encoders=encoders)
    on_ray = ray_ingest.index_catalog(
        replace(options, db=root / "ray"), ray_ingest.RayOptions(encode_actors=2), *files, encoders=encoders
    )
    return root / "local", root / "ray", local, on_ray


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("db", "seconds", "timings")}


def _rows(db: Path, table: str) -> list[dict[str, Any]]:
    rows = Store.open(db).table(table).to_arrow().to_pylist()
    return sorted(rows, key=lambda r: tuple(r[k] for k in KEYS[table]))


def test_every_stored_row_and_the_report_match_the_local_path(
    indexed: tuple[Path, Path, IndexReport, IndexReport],
) -> None:
    local_db, ray_db, local, on_ray = indexed
    assert (on_ray.scenes, on_ray.ads, on_ray.consents, on_ray.errors) == (202, 48, 5, [])
    assert on_ray.shots > 0 and on_ray.credentials  # media were decoded, CLIP-encoded and read for credentials
    assert _comparable(on_ray.to_dict()) == _comparable(local.to_dict())
    for table in (SCENES, SHOTS, ADS, CONSENTS):
        want, got = _rows(local_db, table), _rows(ray_db, table)
        assert len(got) == len(want) > 0, table
        for a, b in zip(got, want, strict=True):
            assert a.keys() == b.keys()
            for column in a:
                if column in VECTORS and a[column] is not None and b[column] is not None:
                    assert np.allclose(a[column], b[column], atol=1e-5), (table, column)
                else:
                    assert a[column] == b[column], (table, column, a.get("scene_id"))
    thumbs = sorted(p.relative_to(local_db) for p in (local_db / "thumbs").rglob("*.jpg"))
    assert thumbs and thumbs == sorted(p.relative_to(ray_db) for p in (ray_db / "thumbs").rglob("*.jpg"))
    assert all((local_db / t).read_bytes() == (ray_db / t).read_bytes() for t in thumbs)
    # one transaction per chunk, the same write-log entries (their timestamps aside)
    log = [{k: v for k, v in r.items() if k != ChangeCol.SEQ} for r in _log(local_db)]
    assert log == [{k: v for k, v in r.items() if k != ChangeCol.SEQ} for r in _log(ray_db)]
    assert Store.open(ray_db).versions() == Store.open(local_db).versions()


def _log(db: Path) -> list[dict[str, Any]]:
    return sorted(Store.open(db).table(CHANGES).to_arrow().to_pylist(), key=lambda r: r[ChangeCol.SEQ])


@pytest.mark.parametrize("preset", ["dense", "fts", "full+collapse"])
def test_search_results_match_the_local_path(
    indexed: tuple[Path, Path, IndexReport, IndexReport],
    text_encoder: SentenceTransformerEncoder,
    tiny_clip: ClipModel,
    preset: str,
) -> None:
    local_db, ray_db, _, _ = indexed
    engines = [Engine.open(db, text=text_encoder, clip=tiny_clip) for db in (local_db, ray_db)]
    queries = [json.loads(line) for line in (CATALOG / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    for query in queries[:8]:
        want, got = (e.search(query["text"], sku=query.get("sku"), k=10, options=PRESETS[preset]) for e in engines)
        assert [h.scene_id for h in got.scenes] == [h.scene_id for h in want.scenes], query["query_id"]
        assert [h.scene_id for h in got.scenes]  # not vacuous
        assert np.allclose([h.score for h in got.scenes], [h.score for h in want.scenes], atol=1e-5)
        assert [a.ad_id for a in got.ads] == [a.ad_id for a in want.ads]


def test_rerun_on_ray_skips_every_unchanged_scene(
    indexed: tuple[Path, Path, IndexReport, IndexReport], tiny_clip: ClipModel, text_encoder: SentenceTransformerEncoder
) -> None:
    _, ray_db, _, _ = indexed
    before = Store.open(ray_db).versions()
    spec = tiny_clip.spec
    options = IndexOptions(
        db=ray_db, media_root=FIXTURES, progress=False, chunk_size=CHUNK, clip_arch=spec.arch,
        clip_pretrained=spec.pretrained,
    )  # fmt: skip
    encoders = Encoders(text_encoder, tiny_clip, ClipInfo(spec.arch, spec.pretrained, tiny_clip.id, tiny_clip.dim))
    again = ray_ingest.index_catalog(options, ray_ingest.RayOptions(), CATALOG / "scenes.jsonl", encoders=encoders)
    assert (again.scenes, again.shots, again.unchanged, again.errors) == (0, 0, 202, [])
    after = Store.open(ray_db).versions()
    assert after[SCENES] == before[SCENES] and after[SHOTS] == before[SHOTS]


def _bad_catalog(root: Path) -> Path:
    """Every kind of rejection, coercion and lineage case, over chunks of 3 lines: the reports must agree."""
    (root / "media").mkdir(parents=True)
    Image.new("RGB", (48, 32), (10, 20, 60)).save(root / "media" / "ok.png")
    (root / "media" / "broken.mp4").write_bytes(b"not a video at all")
    lines: list[Any] = [
        {"scene_id": "a1", "prompt": "A parka on a glacier at dawn", "media": ["media/ok.png"]},
        {"scene_id": "a2", "prompt": "A sofa in a loft", "provenance": {"ai_disclosure": "AI-generated"}},
        "",  # a blank line: numbering goes on
        "{not json",
        {"scene_id": "a3"},  # no prompt
        {"scene_id": "a1", "prompt": "a duplicate of the first line"},
        {"scene_id": "m1", "prompt": "a broken clip", "media": ["media/broken.mp4"]},
        {"scene_id": "m2", "prompt": "the remix of the broken clip", "parent_id": "m1"},
        {"scene_id": "m3", "prompt": "a missing file", "media": ["media/nowhere.png"]},
        {"scene_id": "m4", "prompt": "a path out of the catalog", "media": ["../../etc/passwd"]},
        {"scene_id": "c1", "prompt": "loop one", "parent_id": "c2"},
        {"scene_id": "c2", "prompt": "loop two", "parent_id": "c1"},
        {"scene_id": "g1", "prompt": "a remix of a scene not indexed", "parent_id": "elsewhere"},
        {"scene_id": "n1", "prompt": "numbers as text", "engagement": {"views": "1200", "dwell_ms": "x"}},
        {"scene_id": "t1", "prompt": "tones as a string", "tone": "cozy", "created_at": 1767225600},
    ]
    scenes = write_jsonl(root / "scenes.jsonl", lines)
    scenes.write_bytes(scenes.read_bytes().replace(b"\n", b"\r\n", 3))  # Windows line ends on the first lines
    ads = [
        {"ad_id": "ad1", "advertiser": "Northpeak", "headline": "Parkas", "creative_scene_ids": ["a1"]},
        {"ad_id": "ad2", "advertiser": "Casa", "headline": "Clips", "creative_scene_ids": ["m1"]},
    ]
    write_jsonl(root / "ads.jsonl", ads)
    return root


def test_bad_records_give_the_local_error_report_through_the_cli(tmp_path: Path, local_ray: Any) -> None:
    from api.cli import app

    root = _bad_catalog(tmp_path / "catalog")
    reports = {}
    for engine in ("local", "ray"):
        args = ["index", "--db", str(tmp_path / engine), "--scenes", str(root / "scenes.jsonl"), "--ads",
                str(root / "ads.jsonl"), "--text-model", "hash:384", "--no-clip", "--chunk-size", "3", "--quiet",
                "--json", "--engine", engine]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        reports[engine] = _comparable(json.loads(result.stdout))
    assert reports["ray"] == reports["local"]
    report = reports["ray"]
    fields = {e.split("field '")[1].split("'")[0] for e in report["errors"]}
    assert {"(line)", "prompt", "scene_id", "media.0", "parent_id", "creative_scene_ids"} <= fields
    assert report["lineage_gaps"]["count"] == 3  # g1; c1 (its parent closed a cycle); m2 (parent failed to decode)
    assert report["changes"] and report["written"]["scenes"] == 7


def test_blocks_read_lines_and_numbers_as_the_catalog_does(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    text = '{"a": 1}\r\n\n  \n{"b": 2}\r{"c": 3}\n\u3000\n{"d": "\u00e9"}\n{"e": 5}'  # CR, CRLF, blank, no final LF
    path.write_bytes(text.encode("utf-8"))
    want = list(catalog._iter_lines(path))  # noqa: SLF001 - the reader the blocks must agree with
    for per_block in (1, 2, 10):
        blocks = ray_blocks.plan_blocks(path, per_block, chunk_size=3)
        got = [item for block in blocks for item in ray_blocks.read_block(path, block)]
        assert got == want, per_block
    assert [n for n, _ in want] == [1, 4, 5, 7, 8]


def test_gpu_actors_on_a_cluster_without_gpus_is_a_clear_error(tmp_path: Path, local_ray: Any) -> None:
    options = IndexOptions(db=tmp_path / "db", progress=False, text_model="hash:384", use_clip=False)
    scenes = write_jsonl(tmp_path / "s.jsonl", [{"scene_id": "x1", "prompt": "a lamp"}])
    with pytest.raises(DistributedUnavailableError, match="--gpus-per-actor 1, but the Ray cluster has 0 GPU"):
        ray_ingest.index_catalog(options, ray_ingest.RayOptions(gpus_per_actor=1), scenes)
    assert not (tmp_path / "db").exists()
