"""The engine end to end on a real index: consent on every path, collapse, negations, ads, filters, shots."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from indexer.encoders import SentenceTransformerEncoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog, put_consents
from indexer.schema import Consent
from search.engine import PRESETS, Engine, SearchOptions
from search.filters import SceneFilters
from tests.helpers import ADS, CONSENTS, SCENES, write_jsonl

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
INELIGIBLE = {"search": {"s3", "s5", "s6"}, "ads": {"s3", "s5", "s6", "s8"}}
QUERIES = [
    ("red parka on a snowy mountain", None),
    ("show me how this jacket looks in the Alps at night", "SKU-J1"),
    ("cozy evening with a leather sofa", "SKU-S1"),
    ("sofa by a window with a woman reading", None),
    ("sneakers on a rainy neon street at night, energetic", "SKU-K1"),
    ("sneakers downtown after dark", None),
]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, text_encoder: SentenceTransformerEncoder) -> Path:
    root = tmp_path_factory.mktemp("engine")
    scenes = [{k: v for k, v in s.items() if k != "media"} for s in SCENES]
    paths = [write_jsonl(root / f"{n}.jsonl", r) for n, r in (("s", scenes), ("a", ADS), ("c", CONSENTS))]
    index_catalog(IndexOptions(db=root / "index", progress=False), *paths, encoders=Encoders(text_encoder, None, None))
    return root / "index"


@pytest.fixture(scope="module")
def engine(index_dir: Path, text_encoder: SentenceTransformerEncoder) -> Engine:
    return Engine.open(index_dir, text=text_encoder)


@pytest.mark.parametrize("use", ["search", "ads"])
@pytest.mark.parametrize("variant", ["dense", "fts", "slots", "fusion", "full", "full+collapse"])
def test_no_ineligible_scene_or_ad_on_any_path(engine: Engine, use: str, variant: str) -> None:
    options = PRESETS[variant]
    for text, sku in QUERIES:
        response = engine.search(text, sku=sku, use=use, k=20, options=options, now=NOW)
        returned = {h.scene_id for h in response.scenes} | {v for h in response.scenes for v in h.variants}
        assert not returned & INELIGIBLE[use], (variant, text)
        ads = {a.ad_id for a in response.ads}
        assert "a-sneaker" not in ads, text  # its creative s6 has no consent record


def test_search_only_consent_is_eligible_for_search_not_ads(engine: Engine) -> None:
    search = engine.search("sneakers downtown after dark", use="search", k=10, now=NOW)
    ads = engine.search("sneakers downtown after dark", use="ads", k=10, now=NOW)
    assert "s8" in [h.scene_id for h in search.scenes]
    assert "s8" not in [h.scene_id for h in ads.scenes]


def test_consent_expiry_is_judged_at_query_time(engine: Engine) -> None:
    before = engine.search("leather sofa", use="search", k=10, now=NOW)
    after = engine.search("leather sofa", use="search", k=10, now=datetime(2031, 1, 1, tzinfo=timezone.utc))
    assert "s4" in [h.scene_id for h in before.scenes] and "a-sofa" in [a.ad_id for a in before.ads]
    assert "s4" not in [h.scene_id for h in after.scenes] and "a-sofa" not in [a.ad_id for a in after.ads]


def test_revocation_takes_effect_on_the_next_search(
    index_dir: Path, tmp_path: Path, text_encoder: SentenceTransformerEncoder
) -> None:
    db = tmp_path / "copy"
    shutil.copytree(index_dir, db)
    engine = Engine.open(db, text=text_encoder)
    assert "s4" in [h.scene_id for h in engine.search("leather sofa", k=10, now=NOW).scenes]
    put_consents(engine.store, [Consent(persona_id="p-ok", scopes=["search", "ads"], revoked_at=NOW)])
    assert engine.refresh()
    response = engine.search("leather sofa", k=10, now=NOW)
    assert "s4" not in [h.scene_id for h in response.scenes]
    assert "a-sofa" not in [a.ad_id for a in response.ads]


def test_remixes_that_change_the_time_stay_results_of_their_own(engine: Engine) -> None:
    collapsed = engine.search("red parka on the mountain ridge", k=10, now=NOW)
    parka = {h.scene_id: h for h in collapsed.scenes if h.family_id == "s1"}
    assert set(parka) == {"s1", "s2"}  # night and golden hour: two scenarios; s3 is ineligible
    assert not any(h.variants for h in parka.values())
    flat = engine.search("red parka on the mountain ridge", k=10, options=SearchOptions(collapse=False), now=NOW)
    assert {"s1", "s2"} <= {h.scene_id for h in flat.scenes}


def test_negation_excludes_or_demotes(engine: Engine) -> None:
    text = "red parka in the mountains, not at night"
    excluded = engine.search(text, k=10, options=SearchOptions(collapse=False), now=NOW)
    assert "s1" not in [h.scene_id for h in excluded.scenes]  # s1 is inferred to be at night
    assert excluded.scenes[0].scene_id == "s2"
    demoted = engine.search(text, k=10, options=SearchOptions(collapse=False, negation="demote"), now=NOW)
    ids = [h.scene_id for h in demoted.scenes]
    assert ids.index("s2") < ids.index("s1")
    assert "negated: time_of_day=night" in demoted.scenes[ids.index("s1")].explanation.notes


def test_high_bid_never_buys_an_irrelevant_slot(engine: Engine) -> None:
    parka = engine.search("show me how this jacket looks in the Alps at night", sku="SKU-J1", k=5, now=NOW)
    ads = [a.ad_id for a in parka.ads]
    assert ads[0] == "a-parka" and "a-drink" not in ads
    assert parka.ads[0].relevance >= 0.3 and "sku SKU-J1" in parka.ads[0].explanation
    drink = engine.search("an ice cold energy drink", k=5, now=NOW)
    assert [a.ad_id for a in drink.ads][:1] == ["a-drink"]


def test_results_explain_channels_and_slots(engine: Engine) -> None:
    response = engine.search("show me how this jacket looks in the Alps at night", sku="SKU-J1", k=3, now=NOW)
    top = response.scenes[0]
    assert top.scene_id == "s1"
    assert set(top.explanation.channels) >= {"dense", "fts", "slots"}
    assert top.explanation.matched == {
        "sku": "SKU-J1",
        "category": "outerwear",
        "setting": "alpine",
        "time_of_day": "night",
    }
    assert "setting" in top.explanation.inferred
    assert response.frame["setting"]["value"] == "alpine" and response.clip_status.startswith("no visual channel")


def test_structured_filters_restrict_results(engine: Engine) -> None:
    response = engine.search("something nice", k=10, filters=SceneFilters(categories=("footwear",)), now=NOW)
    assert response.scenes and all("footwear" in h.categories for h in response.scenes)
    response = engine.search("' OR 1=1 --", k=10, filters=SceneFilters(settings=("alpine' OR '1'='1",)), now=NOW)
    assert response.scenes == []


def test_mmr_and_dwell_prior_reorder_without_losing_results(engine: Engine) -> None:
    base = engine.search("sneakers", k=3, options=SearchOptions(collapse=False), now=NOW)
    diverse = engine.search("sneakers", k=3, options=SearchOptions(collapse=False, mmr_lambda=0.3), now=NOW)
    assert len(diverse.scenes) == len(base.scenes) == 3
    assert diverse.scenes[0].scene_id == base.scenes[0].scene_id
