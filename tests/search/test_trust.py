"""Disclosure rules, trust filters, credential requirements and credit on a real index of signed media."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.provenance import INVALID, TRUSTED
from search.disclosure import load_rules
from search.engine import Engine, SearchOptions
from search.filters import SceneFilters
from search.trust import ad_credentialed
from tests.trust_support import make_signer, trust_catalog

ALL = {"t-jpg", "t-mp4", "t-mov", "t-tampered", "t-unsigned", "t-cameo", "t-text"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Engine:
    root = tmp_path_factory.mktemp("trust")
    files = trust_catalog(root / "catalog", make_signer())
    options = IndexOptions(db=root / "index", progress=False, use_clip=False, c2pa_trust_anchors=files["anchors"])
    index_catalog(options, files["scenes"], files["ads"], files["consents"], Encoders(text_encoder, None, None))
    return Engine.open(root / "index", text=text_encoder, use_clip=False)


def _hits(engine: Engine, use: str = "search", filters: SceneFilters | None = None) -> dict[str, dict[str, Any]]:
    options = SearchOptions(collapse=False)
    response = engine.search("neon city poster studio alpine", use=use, k=20, options=options, filters=filters)
    return {h.scene_id: h.disclosure or {} for h in response.scenes}


def test_rules_file_is_valid_and_every_rule_fires_somewhere(engine: Engine) -> None:
    fired = {rule for use in ("search", "ads") for d in _hits(engine, use).values() for rule in d["rules"]}
    assert fired == {rule.id for rule in load_rules()}


def test_a_real_persons_likeness_needs_the_deepfake_label(engine: Engine) -> None:
    cameo = _hits(engine)["t-cameo"]
    assert cameo["required"] is True and cameo["label"] == "AI-generated: depicts a real person"
    assert "ai-act-50-4-deepfake-label" in cameo["rules"] and cameo["machine_readable_mark"] is True
    assert cameo["ok"] is True


def test_synthetic_media_without_a_verified_mark_is_not_ok(engine: Engine) -> None:
    hits = _hits(engine)
    for sid in ("t-unsigned", "t-text"):
        assert hits[sid]["mark_required"] is True and hits[sid]["machine_readable_mark"] is False
        assert hits[sid]["ok"] is False and hits[sid]["required"] is False  # search: no visible label rule
    assert hits["t-mp4"]["ok"] is True and hits["t-mp4"]["machine_readable_mark"] is True
    tampered = hits["t-tampered"]
    assert tampered["ok"] is False and "invalid-credential" in tampered["rules"]


def test_ads_use_adds_the_ad_policy_label(engine: Engine) -> None:
    ads = _hits(engine, "ads")
    assert ads["t-mp4"]["required"] is True and ads["t-mp4"]["label"] == "AI-generated"
    assert ads["t-cameo"]["label"] == "AI-generated: depicts a real person"  # the higher-priority label wins


def test_trust_filters(engine: Engine) -> None:
    def ids(filters: SceneFilters) -> set[str]:
        return set(_hits(engine, filters=filters))

    assert ids(SceneFilters(disclosure_ok=True)) == {"t-jpg", "t-mp4", "t-mov", "t-cameo"}
    assert ids(SceneFilters(disclosure_ok=False)) == {"t-tampered", "t-unsigned", "t-text"}
    assert ids(SceneFilters(c2pa_states=(INVALID,))) == {"t-tampered"}
    assert ids(SceneFilters(c2pa_states=("none",))) == {"t-unsigned", "t-text"}
    assert ids(SceneFilters(c2pa_states=(TRUSTED,))) == {"t-jpg", "t-mp4", "t-mov", "t-cameo"}
    assert ids(SceneFilters(ai_generated=True)) == ALL and ids(SceneFilters(ai_generated=False)) == set()


def test_results_show_claims_next_to_facts_and_credit(engine: Engine) -> None:
    response = engine.search("neon city", k=20, options=SearchOptions(collapse=False))
    hit = next(h for h in response.scenes if h.scene_id == "t-mov")
    assert hit.provenance is not None
    assert hit.provenance["claimed"]["generator"] == "sora-2"
    assert hit.provenance["verified"]["claim_generator"] == "veo-3"
    assert hit.provenance["mismatches"] == ["generator_mismatch"]
    cameo = next(h for h in response.scenes if h.scene_id == "t-cameo")
    assert cameo.credit == ["creator-t-mp4", "creator-t-cameo"]


def test_require_credentials_keeps_ads_and_scenes_to_credentialed_clips(engine: Engine) -> None:
    snap = engine.snapshot
    assert ad_credentialed(snap, next(a for a in snap.ads if a.ad_id == "ad-neon"))
    assert not ad_credentialed(snap, next(a for a in snap.ads if a.ad_id == "ad-poster"))
    free = engine.search("blue studio poster", use="ads", k=5, options=SearchOptions(collapse=False))
    assert "ad-poster" in {a.ad_id for a in free.ads}
    poster_ad = next(a for a in free.ads if a.ad_id == "ad-poster")
    assert poster_ad.disclosure is not None and poster_ad.disclosure["creatives"] == {"t-unsigned": "none"}
    strict = engine.search(
        "blue studio poster", use="ads", k=5, options=SearchOptions(collapse=False, require_credentials=True)
    )
    assert "ad-poster" not in {a.ad_id for a in strict.ads}
    assert {h.scene_id for h in strict.scenes} <= {"t-jpg", "t-mp4", "t-mov", "t-cameo"}
