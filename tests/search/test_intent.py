"""The intent parser on real-sounding queries (real MiniLM for the embedding fallback)."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.encoders import SentenceTransformerEncoder
from indexer.vocab import Vocabulary
from search.intent import IntentParser

PRODUCTS = {
    "SKU-J1": {"sku": "SKU-J1", "name": "Summit Parka", "category": "outerwear", "brand": "Northpeak"},
    "SKU-S1": {"sku": "SKU-S1", "name": "Aria Leather Sofa", "category": "furniture", "brand": "Casa"},
}


@pytest.fixture(scope="module")
def parser(text_encoder: SentenceTransformerEncoder) -> IntentParser:
    return IntentParser(Vocabulary.load(), text_encoder)


# (query, sku, expected slots; "tone" is a set, the rest single labels)
TABLE: list[tuple[str, str | None, dict[str, Any]]] = [
    (
        "show me how this jacket looks in the Alps at night",
        "SKU-J1",
        {"category": "outerwear", "setting": "alpine", "time_of_day": "night"},
    ),
    (
        "what would my living room look like with this sofa",
        "SKU-S1",
        {"category": "furniture", "setting": "living_room"},
    ),
    ("cozy evening vibe for a leather sofa", None, {"category": "furniture", "time_of_day": "dusk", "tone": {"cozy"}}),
    (
        "sneakers on a rainy neon street, energetic",
        None,
        {"category": "footwear", "setting": "city_street", "weather": "rain", "tone": {"energetic"}},
    ),
    (
        "sunglasses at the beach, golden hour, playful",
        None,
        {"category": "eyewear", "setting": "beach", "time_of_day": "golden_hour", "tone": {"playful"}},
    ),
    ("snow-dusted peaks under a starry sky", None, {"setting": "alpine", "time_of_day": "night", "weather": "snow"}),
    ("a drizzle-slick downtown glowing with signs", None, {"setting": "city_street", "weather": "rain"}),
    (
        "luxury watch close-up in a minimal studio, slow motion",
        None,
        {"category": "watches", "setting": "studio", "style": "close_up", "tone": {"luxurious", "minimalist"}},
    ),
    (
        "headphones while jogging through the woods at dawn",
        None,
        {"category": "audio", "setting": "forest", "time_of_day": "dawn", "action": "running"},
    ),
]


@pytest.mark.parametrize(("query", "sku", "expected"), TABLE)
def test_parser_fills_the_slots_people_mean(
    parser: IntentParser, query: str, sku: str | None, expected: dict[str, Any]
) -> None:
    frame = parser.parse(query, sku, PRODUCTS)
    for slot, want in expected.items():
        if slot == "tone":
            assert {t.value for t in frame.tones} >= want, (query, frame.tones)
        else:
            value = getattr(frame, slot)
            assert value is not None and value.value == want, (query, slot, value)


def test_reference_takes_the_product_from_the_sku(parser: IntentParser) -> None:
    frame = parser.parse("show me how this jacket looks in the Alps at night", "SKU-J1", PRODUCTS)
    assert frame.reference == "this jacket"
    assert frame.product == PRODUCTS["SKU-J1"]
    assert frame.category is not None and frame.category.source == "product"
    assert "Summit Parka" in frame.search_text


def test_unknown_sku_is_noted_not_invented(parser: IntentParser) -> None:
    frame = parser.parse("this jacket in the snow", "SKU-NOPE", PRODUCTS)
    assert frame.product is None and any("SKU-NOPE" in n for n in frame.notes)


@pytest.mark.parametrize(
    ("query", "slot", "value", "absent_slot"),
    [
        ("parka in the mountains, not at night", "time_of_day", "night", "time_of_day"),
        ("beach scenes but no sunset", "time_of_day", "golden_hour", "time_of_day"),
        ("alpine jacket, no snow", "weather", "snow", "weather"),
        ("sofa scenes without people", "people", "people", None),
        ("a cafe morning, nothing dramatic", "tone", "dramatic", None),
    ],
)
def test_negations_are_recorded_and_not_asked_for(
    parser: IntentParser, query: str, slot: str, value: str, absent_slot: str | None
) -> None:
    frame = parser.parse(query)
    assert value in frame.negated(slot), frame.negations
    if absent_slot:
        assert value not in frame.asked().get(absent_slot, [])
    assert value.replace("_", " ") not in frame.search_text or slot == "people"


def test_embedding_fallback_is_marked_as_such(parser: IntentParser) -> None:
    frame = parser.parse("a sofa where the family unwinds after dinner")
    assert frame.setting is not None and frame.setting.source == "embedding"
    assert frame.setting.value == "living_room" and frame.setting.score is not None


def test_a_label_deep_inside_a_statement_is_not_excluded(parser: IntentParser) -> None:
    frame = parser.parse("Teaching hospitals do not provide better care than non-teaching hospitals.")
    assert frame.negations == []
    assert frame.setting is not None and frame.setting.value == "hospital"  # the claim is about hospitals
    assert "non-teaching hospitals" in frame.search_text
