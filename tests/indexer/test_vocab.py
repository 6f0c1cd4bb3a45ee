"""The vocabulary data files: Places365 settings, more tones, lexicon hygiene, and the embedding fallback's margin."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import tomllib

from indexer.context import infer_contexts, scene_text
from indexer.encoders import SentenceTransformerEncoder
from indexer.errors import VocabularyError
from indexer.schema import Scene
from indexer.vocab import DEFAULT_VOCAB, PLACES365, Vocabulary, resolve
from search.intent import IntentParser

# sha256 of the 365 Places365-Standard category names in index order (categories_places365.txt, lines 0-364,
# without the "/x/" prefix), one a line: the data file holds exactly the official list.
PLACES365_SHA256 = "e24855d92f3e297f55fbbb4adde53f6e191189bf74aa59876ffaf63610ffb5ef"
CORE_COUNTS = {"setting": 14, "time_of_day": 6, "weather": 6, "tone": 10, "category": 10}
# Terms that contain another slot's term on purpose: the longer phrase names something else
# ("a powder room" is no snow, "ice cream" no skincare, "a shoe shop" is a place).
HIDES_ON_PURPOSE = {
    "sunny day",
    "date night",
    "powder room",
    "wet bar",
    "ice cream parlor",
    "ice cream parlour",
    "ice cream shop",
    "shoe shop",
    "shoe store",
    "sneaker shop",
    "sneaker store",
    "zen garden",
}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.load()


@pytest.fixture(scope="module")
def parser(text_encoder: SentenceTransformerEncoder, vocab: Vocabulary) -> IntentParser:
    return IntentParser(vocab, text_encoder)


def _terms(vocab: Vocabulary) -> list[tuple[str, str, str]]:
    """(term, slot, label) for every lexicon phrase, a label's own words included."""
    return [(t, item.slot, item.name) for item in vocab.labels for t in dict.fromkeys((*item.terms, item.words))]


def test_all_365_places_categories_map_to_a_setting(vocab: Vocabulary) -> None:
    categories = list(tomllib.loads(PLACES365.read_text(encoding="utf-8")))
    assert hashlib.sha256("\n".join(categories).encode()).hexdigest() == PLACES365_SHA256
    assert len(vocab.places) == 365
    settings = {item.name for item in vocab.by_slot["setting"]}
    assert set(vocab.places.values()) <= settings
    assert len(settings) > 300  # real places, not 14
    assert {vocab.places[c] for c in ("beach", "coast", "ocean", "wave")} == {"beach"}  # duplicates merged
    assert vocab.places["botanical_garden"] == "botanical_garden"


def test_hand_written_labels_keep_their_names_and_descriptions(vocab: Vocabulary) -> None:
    core = tomllib.loads(DEFAULT_VOCAB.read_text(encoding="utf-8"))
    assert {slot: len(entries) for slot, entries in core.items()} == CORE_COUNTS
    by_name = {(item.slot, item.name): item for item in vocab.labels}
    for slot, entries in core.items():
        for name, spec in entries.items():
            item = by_name[(slot, name)]
            assert item.description == spec["description"]
            assert set(spec.get("terms", [])) <= set(item.terms)  # merged categories only add terms
    assert len(vocab.by_slot["tone"]) >= 25


def test_every_label_is_described_and_named_plainly(vocab: Vocabulary) -> None:
    for item in vocab.labels:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", item.name), item.name
        assert len(item.description.split()) >= 3, item.name
        assert all(t == t.strip() and t for t in item.terms), item.name


def test_no_term_names_two_labels(vocab: Vocabulary) -> None:
    owners: dict[str, set[tuple[str, str]]] = {}
    for term, slot, name in _terms(vocab):
        owners.setdefault(term, set()).add((slot, name))
    assert {t: o for t, o in owners.items() if len(o) > 1} == {}


def test_no_term_hides_another_slot_unless_it_means_something_else(vocab: Vocabulary) -> None:
    terms = _terms(vocab)
    hiding = set()
    for term, slot, _ in terms:
        for inner, other, _ in terms:
            if other != slot and inner != term and re.search(rf"(?<!\w){re.escape(inner)}(?!\w)", term):
                hiding.add(term)
    assert hiding == HIDES_ON_PURPOSE


def test_broken_data_files_are_refused(tmp_path: Path) -> None:
    base = tmp_path / "labels.toml"
    base.write_text('[setting.beach]\ndescription = "a sandy beach by the ocean"\n')
    twice = tmp_path / "places.toml"
    twice.write_text('["beach"]\nname = "beach"\ndescription = "a beach again, a near-duplicate"\n')
    with pytest.raises(VocabularyError, match="defined twice"):
        Vocabulary.load(base, extra=(), places=twice)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('["coast"]\nsame_as = "seaside"\n')
    with pytest.raises(VocabularyError, match="same_as 'seaside'"):
        Vocabulary.load(base, extra=(), places=unknown)
    merged = tmp_path / "merged.toml"
    merged.write_text('["coast"]\nsame_as = "beach"\nterms = ["coastline"]\n')
    vocab = Vocabulary.load(base, extra=(), places=merged)
    assert vocab.places == {"coast": "beach"} and [h.label.name for h in vocab.find("a rocky coastline")] == ["beach"]


def test_resolve_needs_a_floor_and_a_margin() -> None:
    sims = np.array([[0.50, 0.48, 0.10], [0.30, 0.20, 0.10]], dtype=np.float32)
    assert resolve(sims, floor=0.45, margin=0.0) is not None
    assert resolve(sims, floor=0.45, margin=0.05) is None  # two labels as close: no slot
    assert resolve(sims, floor=0.55, margin=0.0) is None
    hit = resolve(np.array([[0.2, 0.6, 0.4]], dtype=np.float32), floor=0.45, margin=0.1)
    assert hit is not None and (hit.row, hit.column) == (0, 1) and hit.runner_up == pytest.approx(0.4)
    # a near-synonym of the winner is no runner-up: the tie says which kind of place, not whether
    near = np.array([[True, True, False], [True, True, False], [False, False, True]])
    hit = resolve(sims, floor=0.45, margin=0.05, neighbours=near)
    assert hit is not None and hit.column == 0 and hit.runner_up == pytest.approx(0.10)


@pytest.mark.parametrize(
    ("query", "setting"),
    [
        ("a botanical garden full of trees", "botanical_garden"),
        ("variety of trees and plants in a botanical garden", "botanical_garden"),
        ("top view of a high rise building", "skyscraper"),
        ("sneakers on a basketball court", "basketball_court"),
        ("a latte on the counter of a coffee shop", "cafe"),  # a Places duplicate answers with the core label
        ("jacket on a ski slope", "alpine"),
    ],
)
def test_places_are_named_in_queries(parser: IntentParser, query: str, setting: str) -> None:
    frame = parser.parse(query)
    assert frame.setting is not None and frame.setting.value == setting, (query, frame.setting)


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("dozens of screens and blinking lights in a room full of humming servers", {"server_room", "computer_room"}),
        ("kids racing down twisting tubes into splash pools", {"water_park", "playground"}),
        ("a cowboy roping a calf inside a dusty arena", {"rodeo_arena", "corral"}),
    ],
)
def test_described_places_resolve_by_embedding(parser: IntentParser, query: str, allowed: set[str]) -> None:
    frame = parser.parse(query)
    assert frame.setting is not None and frame.setting.source == "embedding", (query, frame.setting)
    assert frame.setting.value in allowed, (query, frame.setting)


@pytest.mark.parametrize(
    "query",
    [
        "purple monkey dishwasher",
        "lorem ipsum dolor sit amet",
        "the quarterly revenue grew by twelve percent",
        "a woman smiling at the camera",
        "Vitamin D deficiency is associated with higher mortality",
    ],
)
def test_a_phrase_that_matches_no_label_gets_no_slot(parser: IntentParser, query: str) -> None:
    frame = parser.parse(query)
    assert frame.asked() == {}, (query, frame.slot_values())


def test_product_names_do_not_name_the_setting(text_encoder: SentenceTransformerEncoder, vocab: Vocabulary) -> None:
    scene = Scene.model_validate(
        {
            "scene_id": "s1",
            "prompt": "A reader curled up on the Harbor Leather Sofa with a blanket and a novel",
            "products": [{"sku": "SKU-1", "name": "Harbor Leather Sofa", "brand": "Casa"}],
        }
    )
    [ctx] = infer_contexts([scene], text_encoder.encode([scene_text(scene)]), vocab, text_encoder)
    assert ctx.setting in {None, "living_room"}, ctx  # not "harbor"
    assert ctx.categories == ["furniture"]  # the product name still gives the category


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("ice cream parlor at the beach", ["ice_cream_parlor", "beach"]),  # not skincare "cream"
        ("a restaurant kitchen at night", ["restaurant_kitchen", "night"]),
        ("late afternoon on the pier", ["golden_hour", "lakeside"]),
        ("kids' bedrooms", []),  # whole words only
        ("a drizzle-slick street", ["rain", "city_street"]),
    ],
)
def test_the_longest_whole_term_wins(vocab: Vocabulary, text: str, named: list[str]) -> None:
    assert [h.label.name for h in vocab.find(text)] == named
