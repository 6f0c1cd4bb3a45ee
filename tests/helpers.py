"""Test data and small helpers shared by the test modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


PARKA = {"sku": "SKU-J1", "name": "Summit Parka", "category": "outerwear", "brand": "Northpeak"}
SOFA = {"sku": "SKU-S1", "name": "Aria Leather Sofa", "category": "furniture", "brand": "Casa"}
SNEAKER = {"sku": "SKU-K1", "name": "Volt Runner", "category": "footwear", "brand": "Strida"}

SCENES = [
    {
        "scene_id": "s1",
        "prompt": "A hiker in a red down parka on snow-dusted peaks under a starry sky",
        "products": [PARKA],
        "tone": ["adventurous"],
        "media": ["media/s1.png"],
        "created_at": "2026-03-01T10:00:00Z",
    },
    {
        "scene_id": "s2",
        "parent_id": "s1",
        "prompt": "The same red parka on the mountain ridge at golden hour",
        "products": [PARKA],
        "setting": "alpine",
        "time_of_day": "golden_hour",
    },
    {
        "scene_id": "s3",
        "parent_id": "s2",
        "prompt": "Red parka on the ridge at dawn, fog rolling in",
        "products": [PARKA],
        "setting": "alpine",
        "time_of_day": "dawn",
        "weather": "fog",
        "cameos": ["p-revoked"],  # an ineligible remix inside an eligible family
    },
    {
        "scene_id": "s4",
        "prompt": "A leather sofa in a cosy living room, fireplace crackling in the evening",
        "products": [SOFA],
        "cameos": ["p-ok"],
        "media": ["media/s4.png"],
    },
    {
        "scene_id": "s5",
        "prompt": "A leather sofa by a bright window on a quiet morning, a woman reading",
        "products": [SOFA],
        "cameos": ["p-revoked"],
    },
    {
        "scene_id": "s6",
        "prompt": "Sneakers splash through puddles on a rainy neon street at night, energetic",
        "products": [SNEAKER],
        "cameos": ["p-unknown"],
    },
    {"scene_id": "s7", "prompt": "Sneakers on a rooftop at dawn, skyline behind, upbeat", "products": [SNEAKER]},
    {
        "scene_id": "s8",
        "prompt": "Sneakers on a wet downtown street glowing with signs after dark",
        "products": [SNEAKER],
        "cameos": ["p-search-only"],
    },
]
CONSENTS = [
    {"persona_id": "p-ok", "scopes": ["search", "ads"], "expires_at": "2030-01-01T00:00:00Z"},
    {"persona_id": "p-revoked", "scopes": ["search", "ads"], "revoked_at": "2026-01-01T00:00:00Z"},
    {"persona_id": "p-search-only", "scopes": ["search"]},
]
ADS = [
    {
        "ad_id": "a-parka",
        "advertiser": "Northpeak",
        "headline": "Summit Parka: warm at minus thirty",
        "skus": ["SKU-J1"],
        "categories": ["outerwear"],
        "target_tones": ["adventurous"],
        "bid_cpm": 4.0,
    },
    {
        "ad_id": "a-drink",
        "advertiser": "Fizz",
        "headline": "Voltage energy drink",
        "categories": ["beverages"],
        "keywords": ["energy", "drink"],
        "bid_cpm": 25.0,
    },
    {
        "ad_id": "a-sofa",
        "advertiser": "Casa",
        "headline": "The Aria leather sofa",
        "skus": ["SKU-S1"],
        "categories": ["furniture"],
        "target_tones": ["cozy"],
        "bid_cpm": 6.0,
        "creative_scene_ids": ["s4"],
    },
    {
        "ad_id": "a-sneaker",
        "advertiser": "Strida",
        "headline": "Volt Runner: own the night",
        "skus": ["SKU-K1"],
        "categories": ["footwear"],
        "bid_cpm": 3.0,
        "creative_scene_ids": ["s6"],
    },
]
