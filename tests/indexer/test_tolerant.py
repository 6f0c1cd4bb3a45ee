"""Real-export shapes: every record of a messy but documented-format catalog is indexed, and what changed is said."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from indexer.catalog import parse_record
from indexer.encoders import load_text_encoder
from indexer.errors import CatalogError
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.schema import ADS, CONSENTS, SCENES, Scene, SceneCol
from indexer.store import Store
from indexer.validation import validate_catalog
from indexer.vocab import Vocabulary
from search.live import load_base
from tests.helpers import write_jsonl

LABEL = "AI-generated; synthetic likeness with consent"
# The shapes a generation platform's export uses (see the README's input table).
MESSY = [
    {
        "scene_id": "e1",
        "prompt": "A red parka on a snowy alpine ridge at night",
        "provenance": {"generator": "sora-2", "ai_disclosure": "AI-generated"},
        "tone": "Adventurous",
        "products": {"sku": "SKU-1", "name": "Summit Parka", "category": "outerwear"},
        "created_at": "2026-05-01T10:00:00",
        "engagement": {"views": "1200", "dwell_ms": 3400.0, "remixes": "true?"},
    },
    {
        "scene_id": "e2",
        "parent_id": "e3",  # the parent comes later in the same file
        "prompt": "Remix: the parka in a neon city",
        "provenance": {"ai_disclosure": LABEL},
        "cameos": [{"persona_id": "p1", "display_name": "Ana"}],
        "created_at": 1767225600,
        "media": [],
    },
    {"scene_id": "e3", "prompt": "The parka by a lake at dawn", "provenance": {"ai_disclosure": "false"}},
    {"scene_id": "e4", "parent_id": "e9", "prompt": "A remix whose parent arrives in a later batch"},
    {"scene_id": "e5", "prompt": "Odd fields", "setting": {"nested": 1}, "caption": 42, "products": ["SKU-2"]},
]


def _catalog(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    ads = [{"ad_id": "a1", "skus": "SKU-1", "bid_cpm": "2.50", "creative_scene_ids": "e1", "headline": "Parka"}]
    consents = [{"persona_id": "p1", "scopes": "search", "expires_at": "2031-01-01"}]
    return {
        "scenes": write_jsonl(root / "scenes.jsonl", MESSY),
        "ads": write_jsonl(root / "ads.jsonl", ads),
        "consents": write_jsonl(root / "consents.jsonl", consents),
    }


@pytest.fixture(scope="module")
def hashing() -> Encoders:
    return Encoders(load_text_encoder("hash:384"), None, None)


def test_every_record_of_a_messy_catalog_is_indexed_and_the_changes_are_counted(
    tmp_path: Path, hashing: Encoders
) -> None:
    files = _catalog(tmp_path / "cat")
    db = tmp_path / "index"
    report = index_catalog(
        IndexOptions(db=db, progress=False), files["scenes"], files["ads"], files["consents"], hashing
    )
    assert report.errors == []
    assert (report.scenes, report.ads, report.consents) == (5, 1, 1)
    assert report.lineage_gaps == {"e4": "e9"}  # e2's parent arrived later in the file: no gap
    counts: Counter[tuple[str, str]] = Counter()
    for change in report.to_dict()["changes"]:
        counts[(change["kind"], change["field"])] += change["count"]
    assert counts[("normalised", "provenance.ai_disclosure")] == 2
    assert counts[("coerced", "provenance.ai_disclosure")] == 1  # "false" text
    assert counts[("coerced", "engagement.views")] == 1
    assert counts[("dropped", "engagement.remixes")] == 1
    assert counts[("dropped", "setting")] == 1
    assert counts[("coerced", "caption")] == 1
    assert counts[("normalised", "products")] == 2  # one object; a bare sku

    store = Store.open(db)
    rows = {r[SceneCol.ID]: r for r in store.columns(SCENES, list(store._schemas[SCENES].names)).to_pylist()}
    assert rows["e1"][SceneCol.DISCLOSURE_LABEL] == "AI-generated" and rows["e1"][SceneCol.AI_DISCLOSURE] is True
    assert rows["e2"][SceneCol.DISCLOSURE_LABEL] == LABEL and rows["e2"][SceneCol.CAMEOS] == ["p1"]
    assert rows["e3"][SceneCol.AI_DISCLOSURE] is False
    assert rows["e1"][SceneCol.CREATED] == datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
    assert rows["e1"][SceneCol.TONES] == ["adventurous"] and rows["e1"][SceneCol.SKUS] == ["SKU-1"]
    assert rows["e5"][SceneCol.SKUS] == ["SKU-2"] and rows["e5"][SceneCol.CAPTION] == "42"
    # lossless: the record exactly as given is stored, including the values that were dropped
    assert json.loads(rows["e5"][SceneCol.SOURCE]) == MESSY[4]
    assert json.loads(rows["e1"][SceneCol.SOURCE])["engagement"]["remixes"] == "true?"
    assert store.count(ADS) == 1 and store.count(CONSENTS) == 1


def test_a_parent_arriving_in_a_later_batch_links_the_family(tmp_path: Path, hashing: Encoders) -> None:
    files = _catalog(tmp_path / "cat")
    db = tmp_path / "index"
    index_catalog(IndexOptions(db=db, progress=False), files["scenes"], encoders=hashing)
    snap = load_base(Store.open(db), Vocabulary.load())
    e4 = snap.scene_fields(snap.row["e4"])
    assert e4["parent_missing"] and e4["family_id"] == "e4"
    later = write_jsonl(tmp_path / "cat" / "later.jsonl", [{"scene_id": "e9", "prompt": "The original at dusk"}])
    report = index_catalog(IndexOptions(db=db, progress=False), later, encoders=hashing)
    assert report.lineage_gaps == {}
    snap = load_base(Store.open(db), Vocabulary.load())
    e4 = snap.scene_fields(snap.row["e4"])
    assert not e4["parent_missing"] and e4["family_id"] == "e9"
    assert snap.scene_fields(snap.row["e2"])["family_id"] == "e3"


def test_strict_rejects_coercions_and_dangling_parents_and_writes_nothing(tmp_path: Path, hashing: Encoders) -> None:
    files = _catalog(tmp_path / "cat")
    db = tmp_path / "index"
    with pytest.raises(CatalogError) as err:
        index_catalog(IndexOptions(db=db, strict=True, progress=False), files["scenes"], encoders=hashing)
    found = {(e.line, e.field) for e in err.value.errors}
    assert (1, "engagement.views") in found or (1, "engagement.remixes") in found
    assert (4, "parent_id") in found and (5, "setting") in found
    assert not db.exists()


def test_validate_reports_what_index_would_do_and_writes_nothing(tmp_path: Path) -> None:
    files = _catalog(tmp_path / "cat")
    result = validate_catalog(files["scenes"], files["ads"], files["consents"], set())
    assert result.errors == [] and result.accepted == {"consents": 1, "scenes": 5, "ads": 1}
    assert result.lineage_gaps == {"e4": "e9"}
    bad = write_jsonl(
        tmp_path / "cat" / "bad.jsonl", [*MESSY, {"prompt": "no id"}, {"scene_id": "e1", "prompt": "dup"}]
    )
    result = validate_catalog(bad, None, None, set())
    assert [(e.line, e.field) for e in result.errors] == [(6, "scene_id"), (7, "scene_id")]
    assert "duplicate id 'e1' (first on line 1)" in result.errors[1].reason


CASES: list[tuple[dict[str, Any], str, Any]] = [
    ({"created_at": "2026-01-02T03:04:05+02:00"}, "created_at", datetime(2026, 1, 2, 1, 4, 5, tzinfo=timezone.utc)),
    ({"created_at": "1767225600"}, "created_at", datetime(2026, 1, 1, tzinfo=timezone.utc)),
    ({"tone": ["calm", 7, "Warm"]}, "tone", ["calm", "warm"]),  # the number is dropped, the rest kept
    ({"media": "clip.mp4"}, "media", ["clip.mp4"]),
    ({"cameos": "p-1"}, "cameos", ["p-1"]),
    ({"engagement": {"views": 3.5}}, "engagement", None),  # not a whole number: dropped, record kept
]


@pytest.mark.parametrize(("extra", "field", "expected"), CASES)
def test_optional_field_shapes(extra: dict[str, Any], field: str, expected: Any) -> None:
    parsed = parse_record("t.jsonl", 1, {"scene_id": "x", "prompt": "p", **extra}, Scene)
    assert parsed.error is None and parsed.record is not None
    value = getattr(parsed.record, field)
    assert (value.views if field == "engagement" else value) == expected


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"scene_id": "x", "prompt": "p", "cameos": [{"name": "no id"}]}, "cameos"),  # would widen consent
        ({"scene_id": "x", "prompt": "p", "parent_id": "bad id!"}, "parent_id"),
        ({"scene_id": "x", "prompt": 5}, "prompt"),
    ],
)
def test_unsafe_or_required_fields_still_reject_the_record(record: dict[str, Any], field: str) -> None:
    parsed = parse_record("t.jsonl", 3, record, Scene)
    assert parsed.record is None and parsed.error is not None
    assert parsed.error.field.split(".")[0] == field and str(parsed.error).startswith("t.jsonl:3 (x)")


def test_an_unreadable_consent_date_rejects_the_consent() -> None:
    """Dropping a revocation or expiry would widen consent, so the consent record is rejected instead."""
    from indexer.schema import Consent

    parsed = parse_record("c.jsonl", 2, {"persona_id": "p", "scopes": ["search"], "revoked_at": "soon"}, Consent)
    assert parsed.record is None and parsed.error is not None and parsed.error.field == "revoked_at"
