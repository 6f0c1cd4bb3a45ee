"""Request and response models of the HTTP API.

`...Request` models validate what clients send (unknown fields are rejected); `...Public` models are views
built from `search` results and the current snapshot, never a second copy of the data schema.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, computed_field, model_validator

from api.schemas_trust import C2paState, DisclosurePublic, FamilyPublic, ProvenancePublic
from indexer.schema import ID_PATTERN, Use, utc
from indexer.vocab import Vocabulary
from search.ads import AD_VARIANTS
from search.engine import PRESETS
from search.filters import SceneFilters

_VOCAB = {slot: [label.name for label in items] for slot, items in Vocabulary.load().by_slot.items()}
Variant = Literal["dense", "fts", "clip", "slots", "fusion", "full", "full+collapse"]
AdVariant = Literal["keyword", "dense", "hybrid", "intent"]
assert set(get_args(Variant)) == set(PRESETS) and set(get_args(AdVariant)) == set(AD_VARIANTS)

RecordIdStr = Annotated[str, Field(pattern=ID_PATTERN, examples=["scn-0001"])]
# At least one character that is whitespace neither to JSON Schema (ECMA `\s`) nor to Python's str.strip (which
# also strips \x1c-\x1f and \x85): text the spec calls valid is never stripped to nothing here.
VISIBLE = r"[^\s\x1c-\x1f\x85]"
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=VISIBLE)]
QueryText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        pattern=VISIBLE,
        examples=["cozy evening with this sofa, no people, warm lamps"],
    ),
]


def _one_of(slot: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in _VOCAB[slot]:
            raise ValueError(f"unknown {slot} '{value}' (choose {', '.join(_VOCAB[slot])})")
        return value

    return check


Tone = Annotated[str, AfterValidator(_one_of("tone")), Field(json_schema_extra={"enum": _VOCAB["tone"]})]
Category = Annotated[str, AfterValidator(_one_of("category")), Field(json_schema_extra={"enum": _VOCAB["category"]})]
Setting = Annotated[str, AfterValidator(_one_of("setting")), Field(json_schema_extra={"enum": _VOCAB["setting"]})]
TimeOfDay = Annotated[
    str, AfterValidator(_one_of("time_of_day")), Field(json_schema_extra={"enum": _VOCAB["time_of_day"]})
]


def _iso_text(value: Any) -> Any:
    if not isinstance(value, (str, datetime)):
        raise ValueError("expected an ISO 8601 date-time string, e.g. 2026-01-31T00:00:00Z")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, (str, bytes, bool)):
        raise ValueError("expected a number")
    return value


# Strict types (no "5" for 5, no 0 for false), except that a date-time arrives as ISO text and an integer
# may be written 5.0 (JSON Schema's integer).
Timestamp = Annotated[datetime, BeforeValidator(_iso_text), Field(strict=False)]
Integer = Annotated[int, BeforeValidator(_number), Field(strict=False)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class FiltersRequest(_Request):
    """Structured scene filters: any listed value passes within a field, every given field must pass."""

    tones: list[Tone] = Field(default_factory=list, max_length=10, examples=[["cozy"]])
    categories: list[Category] = Field(default_factory=list, max_length=10)
    brands: list[Name] = Field(default_factory=list, max_length=20)
    settings: list[Setting] = Field(default_factory=list, max_length=14, examples=[["living_room"]])
    times_of_day: list[TimeOfDay] = Field(default_factory=list, max_length=6)
    creators: list[Name] = Field(default_factory=list, max_length=20)
    generators: list[Name] = Field(default_factory=list, max_length=20, examples=[["sora-2"]])
    created_from: Timestamp | None = None
    created_to: Timestamp | None = None
    disclosure_ok: bool | None = Field(default=None, description="Disclosure obligations met (or not).")
    c2pa_states: list[C2paState] = Field(default_factory=list, max_length=4, examples=[["Trusted", "Valid"]])
    ai_generated: bool | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FiltersRequest:
        start, end = utc(self.created_from), utc(self.created_to)
        if start is not None and end is not None and start > end:
            raise ValueError("created_from is after created_to")
        return self

    def to_filters(self) -> SceneFilters:
        return SceneFilters(
            tones=tuple(self.tones),
            categories=tuple(self.categories),
            brands=tuple(self.brands),
            settings=tuple(self.settings),
            times_of_day=tuple(self.times_of_day),
            creators=tuple(self.creators),
            generators=tuple(self.generators),
            created_from=utc(self.created_from),
            created_to=utc(self.created_to),
            disclosure_ok=self.disclosure_ok,
            c2pa_states=tuple(self.c2pa_states),
            ai_generated=self.ai_generated,
        )


class SearchRequest(_Request):
    query: QueryText
    sku: RecordIdStr | None = Field(default=None, description="Product meant by 'this ...' in the query.")
    use: Literal["search", "ads"] = Field(default="search", description="Consent use the scenes must allow.")
    k: Integer = Field(default=10, ge=1, le=100)
    variant: Variant = Field(default="full+collapse", description="Ranking preset (for experiments).")
    collapse: bool | None = Field(default=None, description="One scene per remix family. Default: the variant's.")
    explain: bool = Field(default=False, description="Add per-channel ranks and scores to each scene.")
    ads_k: Integer = Field(default=5, ge=0, le=20)
    mmr_lambda: float | None = Field(default=None, ge=0.0, le=1.0, description="MMR diversity; default off.")
    dwell_weight: float | None = Field(default=None, ge=0.0, le=10.0, description="Engagement prior; default 0.")
    filters: FiltersRequest | None = None
    require_credentials: bool = Field(
        default=False, description="Only scenes and ad creatives with a verified C2PA credential."
    )
    min_version: Integer = Field(
        default=0,
        ge=0,
        description="Wait (up to 5 s) until the serving index has reached this `index_version`, e.g. the one a "
        "write returned: read-your-writes across replicas. 409 `version_not_reached` if it is not reached in time.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "cozy evening with this sofa, no people",
                    "sku": "SKU-SOF-001",
                    "k": 5,
                    "filters": {"tones": ["cozy"], "settings": ["living_room"]},
                }
            ]
        }
    )


ExampleIds = Annotated[list[RecordIdStr], Field(max_length=20)]


class RecommendRequest(_Request):
    """Scenes like the positive examples and unlike the negative ones (strategy: average_vector)."""

    positive: ExampleIds = Field(min_length=1, description="Scene ids to find more of (1 to 20).")
    negative: ExampleIds = Field(default_factory=list, description="Scene ids to steer away from (0 to 20).")
    query: str = Field(default="", max_length=500, description="Optional text that steers the examples.")
    sku: RecordIdStr | None = Field(default=None, description="Product meant by 'this ...' in the query.")
    use: Literal["search", "ads"] = Field(default="search", description="Consent use the scenes must allow.")
    k: Integer = Field(default=10, ge=1, le=100)
    collapse: bool | None = Field(default=None, description="One scene per remix family. Default: on.")
    explain: bool = Field(default=False, description="Add per-channel ranks and scores to each scene.")
    ads_k: Integer = Field(default=5, ge=0, le=20)
    filters: FiltersRequest | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"positive": ["scn-0068"], "k": 5},
                {
                    "positive": ["scn-0068", "scn-0039"],
                    "negative": ["scn-0072"],
                    "query": "no people",
                    "k": 5,
                    "filters": {"times_of_day": ["night"]},
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _disjoint(self) -> RecommendRequest:
        both = sorted(set(self.positive) & set(self.negative))
        if both:
            raise ValueError(f"scene(s) {', '.join(both)} cannot be both positive and negative")
        return self


class AdsMatchRequest(_Request):
    query: QueryText
    sku: RecordIdStr | None = None
    variant: AdVariant = Field(default="intent", description="keyword, dense, hybrid, or intent (full matcher).")
    k: Integer = Field(default=5, ge=1, le=50)
    require_credentials: bool = Field(
        default=False, description="Intent matcher: only ads whose creatives carry a verified C2PA credential."
    )


class ScenesUpsertRequest(_Request):
    scenes: list[dict[str, Any]] = Field(
        min_length=1,
        description="Scene records (the catalog contract); media paths must lie inside the index folder.",
        examples=[[{"scene_id": "scn-9001", "prompt": "a leather sofa by the fire at night", "tone": ["cozy"]}]],
    )
    strict: bool = Field(default=False, description="Reject the whole batch (422) if any record is invalid.")


class ConsentRequest(_Request):
    scopes: list[Use] = Field(max_length=3, examples=[["search", "ads"]])
    expires_at: Timestamp | None = None


# --- responses --------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    field: str | None = None
    reason: str
    line: int | None = Field(default=None, description="Record number in the batch (from 1).")
    record_id: str | None = None


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class Versioned(BaseModel):
    """A response that names the index version it reflects (pass it as `min_version` to read your writes)."""

    index_versions: dict[str, int]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def index_version(self) -> int:
        """One number that grows with every committed write (the sum of the table versions)."""
        return sum(self.index_versions.values())


class ErrorPublic(BaseModel):
    error: ErrorBody


class ShotPublic(BaseModel):
    index: int
    start_s: float | None
    end_s: float | None
    thumbnail_url: str | None = Field(description="GET it with the same API key.")
    similarity: float | None = None
    basis: str = "first"


class ExplanationPublic(BaseModel):
    channels: dict[str, float]
    ranks: dict[str, int]
    matched: dict[str, str]
    mismatched: dict[str, str]
    inferred: list[str]
    notes: list[str]
    summary: str


class SceneFieldsPublic(BaseModel):
    """What every scene view shows (built from `Snapshot.scene_fields`)."""

    scene_id: str
    prompt: str
    caption: str | None
    setting: str | None
    time_of_day: str | None
    weather: str | None
    tones: list[str]
    categories: list[str]
    skus: list[str]
    parent_id: str | None
    parent_missing: bool = Field(default=False, description="parent_id names a scene not in the index (yet).")
    family_id: str


class SceneHitPublic(SceneFieldsPublic):
    score: float
    variants: list[str]
    best_shot: ShotPublic | None
    matched_slots: dict[str, str]
    explanation: ExplanationPublic | None = None
    disclosure: DisclosurePublic | None = None
    provenance: ProvenancePublic | None = None
    credit: list[str | None] = Field(default_factory=list, description="Creator ids, lineage root first.")


class AdPublic(BaseModel):
    ad_id: str
    score: float
    relevance: float | None = None
    bid_cpm: float | None = None
    advertiser: str | None = None
    headline: str | None = None
    landing_url: str | None = None
    components: dict[str, float] = Field(default_factory=dict)
    explanation: str | None = None
    disclosure: DisclosurePublic | None = None


class SlotValuePublic(BaseModel):
    value: str
    source: str
    evidence: str
    score: float | None = None
    confidence: float = Field(default=1.0, description="1 for lexicon/product slots; lower for embedding guesses.")


class NegationPublic(BaseModel):
    slot: str
    value: str
    evidence: str


class IntentFramePublic(BaseModel):
    text: str
    sku: str | None = None
    product: dict[str, Any] | None = None
    reference: str | None = None
    category: SlotValuePublic | None = None
    setting: SlotValuePublic | None = None
    time_of_day: SlotValuePublic | None = None
    weather: SlotValuePublic | None = None
    tones: list[SlotValuePublic] = Field(default_factory=list)
    action: SlotValuePublic | None = None
    style: SlotValuePublic | None = None
    negations: list[NegationPublic] = Field(default_factory=list)
    search_text: str = ""
    notes: list[str] = Field(default_factory=list)


class SearchPublic(Versioned):
    query: str
    use: str
    variant: str
    frame: IntentFramePublic
    scenes: list[SceneHitPublic]
    ads: list[AdPublic]
    channels: list[str]
    fusion: str
    clip_status: str
    text_encoder: str = ""
    reference_image: bool = False
    took_ms: float


class RecommendPublic(SearchPublic):
    positive: list[str]
    negative: list[str]
    strategy: str = Field(description="How the examples became a query: average_vector (see the README).")


class AdsMatchPublic(Versioned):
    query: str
    variant: str
    ads: list[AdPublic]
    frame: IntentFramePublic | None = None


class ScenesUpsertPublic(Versioned):
    accepted: list[str]
    rejected: list[ErrorDetail]
    changes: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerated shape changes by kind, field and reason (records kept)."
    )
    lineage_gaps: dict[str, str] = Field(
        default_factory=dict, description="Accepted scene id -> remix parent not in the index (yet)."
    )


class ScenePublic(SceneFieldsPublic):
    creator_id: str | None
    created_at: datetime | None
    brands: list[str]
    cameos: list[str]
    generator: str | None
    inferred: list[str] = Field(description="Slots the indexer inferred from the prompt.")
    shots: list[ShotPublic]
    eligible: dict[str, bool] = Field(description="Whether cameo consents allow each use right now.")
    provenance: ProvenancePublic | None = None
    media_credentials: list[dict[str, Any]] = Field(
        default_factory=list, description="Per media file: the Content Credential facts read at index time."
    )


class SceneDeletedPublic(Versioned):
    scene_id: str
    deleted: bool


class LineageNodePublic(BaseModel):
    scene_id: str
    parent_id: str | None
    depth: int = Field(description="Generations away from the asked scene.")
    eligible: bool = Field(description="Eligible for search now.")


class LineagePublic(BaseModel):
    scene_id: str
    root: str
    ancestors: list[LineageNodePublic] = Field(description="Parent first, root last.")
    descendants: list[LineageNodePublic] = Field(description="Breadth first.")
    credit: list[str | None] = Field(default_factory=list, description="Creator ids, lineage root first.")
    family: FamilyPublic | None = Field(default=None, description="Metrics of the scene's (visible) remix family.")


class ConsentPublic(Versioned):
    persona_id: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None


class HealthPublic(Versioned):
    status: Literal["ok"]
    scenes: int
    clip_status: str


class StatsPublic(Versioned):
    scenes: int
    shots: int
    ads: int
    consents: int
    families: int
    remixes: int
    text_encoder: str
    visual_channel: bool
    clip_status: str
    updated_at: str
