"""What a search returns: ranked scenes (with best shot and explanation), ranked ads, the intent frame."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ShotRef:
    index: int
    start_s: float | None
    end_s: float | None
    thumbnail: str | None  # path relative to the index folder
    media_path: str
    similarity: float | None = None
    basis: str = "clip"  # "clip": best CLIP match; "first": no visual model, the clip's first shot


@dataclass
class Explanation:
    channels: dict[str, float] = field(default_factory=dict)  # channel -> raw score
    ranks: dict[str, int] = field(default_factory=dict)  # channel -> rank in that channel
    matched: dict[str, str] = field(default_factory=dict)  # slot -> the scene's value that matched
    mismatched: dict[str, str] = field(default_factory=dict)  # slot -> "asked X, scene has Y"
    inferred: list[str] = field(default_factory=list)  # slots the indexer inferred for this scene
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{k}#{v}" for k, v in sorted(self.ranks.items(), key=lambda kv: kv[1])]
        if self.matched:
            parts.append("matched " + ", ".join(f"{k}={v}" for k, v in self.matched.items()))
        if self.mismatched:
            parts.append("missed " + ", ".join(f"{k} ({v})" for k, v in self.mismatched.items()))
        return "; ".join(parts + self.notes)


@dataclass
class SceneHit:
    scene_id: str
    score: float
    prompt: str
    caption: str | None
    setting: str | None
    time_of_day: str | None
    weather: str | None
    tones: list[str]
    categories: list[str]
    skus: list[str]
    parent_id: str | None
    parent_missing: bool  # a lineage gap: parent_id names a scene that is not in the index (yet)
    family_id: str
    variants: list[str]
    best_shot: ShotRef | None
    explanation: Explanation
    # trust layer (`search/trust.py`): what to disclose, claims vs verified credential, who to credit
    disclosure: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    credit: list[str | None] = field(default_factory=list)  # creator ids, lineage root first, this scene last


@dataclass
class AdHit:
    ad_id: str
    score: float
    relevance: float
    bid_cpm: float
    advertiser: str | None
    headline: str | None
    landing_url: str | None
    components: dict[str, float]
    explanation: str
    disclosure: dict[str, Any] | None = None  # combined over the ad's creative scenes (`search/trust.py`)


@dataclass
class SearchResponse:
    query: str
    use: str
    frame: dict[str, Any]
    scenes: list[SceneHit]
    ads: list[AdHit]
    channels: list[str]
    fusion: str
    clip_status: str
    index_versions: dict[str, int]
    text_encoder: str = ""  # the encoder id, with a warning when it is the non-semantic stand-in

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
