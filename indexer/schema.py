"""The one place that knows the record shapes, the table columns and the schema version.

Input records (JSON Lines) are validated by the pydantic models below; the LanceDB
tables are described by the Arrow schemas built here. Other modules use the column
constants instead of writing column names as bare strings.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from indexer import coerce

SCHEMA_VERSION = 3  # 2: content hashes, the source record verbatim, disclosure label; 3: verified C2PA provenance

# Ids end up in LanceDB filters and file names, so they are restricted to a safe alphabet.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
_ID_RE = re.compile(ID_PATTERN)
RecordId = Annotated[str, Field(pattern=ID_PATTERN)]

USES = ("search", "ads", "remix")
Use = Literal["search", "ads", "remix"]
QueryUse = Literal["search", "ads"]


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def label(value: str) -> str:
    """Normalise a vocabulary label: 'Golden Hour' -> 'golden_hour'."""
    return re.sub(r"[\s-]+", "_", value.strip().lower())


def utc(value: datetime | None) -> datetime | None:
    """Naive timestamps are taken as UTC so comparisons never mix naive and aware values."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class _Record(BaseModel):
    # Unknown extra fields are kept (the catalog contract) and round-trip through record_json.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


# Optional descriptive fields accept the shapes real exports use (`indexer/coerce.py` names and counts each
# change); required fields, ids, cameos, media paths and consent dates keep strict rules (STRICT_FIELDS).
_text = coerce.as_text
_empty_is_none = field_validator("parent_id", mode="before")(lambda v: None if v == "" else v)


class Product(_Record):
    sku: RecordId
    name: str | None = None
    category: str | None = None
    brand: str | None = None

    _texts = field_validator("name", "category", "brand", mode="before")(_text("products"))
    _norm_category = field_validator("category")(lambda v: label(v) if v else v)


class Provenance(_Record):
    generator: str | None = None
    watermark: str | None = None
    c2pa_manifest: str | None = None
    ai_disclosure: bool | None = None  # derived from the label when the catalog gives one
    ai_disclosure_label: str | None = None  # the disclosure text as the catalog gave it

    _texts = field_validator("generator", "watermark", "c2pa_manifest", mode="before")(_text("provenance"))
    _disclosure = field_validator("ai_disclosure", mode="before")(coerce.disclosure)

    @model_validator(mode="before")
    @classmethod
    def _keep_label(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ai_disclosure_label") is None:
            text = coerce.disclosure_label(data.get("ai_disclosure"))
            if text is not None:
                data = {**data, "ai_disclosure_label": text}
        return data


class Engagement(_Record):
    views: int | None = Field(default=None, ge=0)
    dwell_ms: int | None = Field(default=None, ge=0)
    remixes: int | None = Field(default=None, ge=0)

    _ints = field_validator("views", "dwell_ms", "remixes", mode="before")(coerce.as_int("engagement"))


def _products(value: Any, info: ValidationInfo) -> Any:
    """One product object, or a list whose items may be bare skus."""
    value = coerce.as_list()(value, info)
    if isinstance(value, list) and any(isinstance(v, str) for v in value):
        coerce.note(info, "products", coerce.NORMALISED, "a bare sku taken as a product")
        return [{"sku": v} if isinstance(v, str) else v for v in value]
    return value


class Scene(_Record):
    scene_id: RecordId
    prompt: str = Field(min_length=1)
    parent_id: RecordId | None = None
    creator_id: str | None = None
    created_at: datetime | None = None
    caption: str | None = None
    setting: str | None = None
    time_of_day: str | None = None
    weather: str | None = None
    tone: list[str] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    cameos: list[RecordId] = Field(default_factory=list)
    media: list[str] = Field(default_factory=list)
    provenance: Provenance | None = None
    engagement: Engagement | None = None

    _parent = _empty_is_none
    _texts = field_validator("creator_id", "caption", "setting", "time_of_day", "weather", mode="before")(_text())
    _lists = field_validator("tone", "media", mode="before")(coerce.as_list())
    _products = field_validator("products", mode="before")(_products)
    _cameos = field_validator("cameos", mode="before")(coerce.cameo_ids)
    _created = field_validator("created_at", mode="before")(coerce.as_datetime())
    _norm_slots = field_validator("setting", "time_of_day", "weather")(lambda v: label(v) if v else None)
    _norm_tone = field_validator("tone")(lambda v: [label(t) for t in v if t.strip()])
    _utc = field_validator("created_at")(utc)

    @field_validator("parent_id")
    @classmethod
    def _not_own_parent(cls, v: str | None, info: Any) -> str | None:
        if v is not None and v == info.data.get("scene_id"):
            raise ValueError("a scene cannot be its own remix parent")
        return v


class Ad(_Record):
    ad_id: RecordId
    advertiser: str | None = None
    headline: str | None = None
    description: str | None = None
    skus: list[RecordId] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    target_tones: list[str] = Field(default_factory=list)
    bid_cpm: float = Field(default=0.0, ge=0.0)
    landing_url: str | None = None
    creative_scene_ids: list[RecordId] = Field(default_factory=list)

    _texts = field_validator("advertiser", "headline", "description", "landing_url", mode="before")(_text())
    _lists = field_validator("skus", "categories", "keywords", "target_tones", "creative_scene_ids", mode="before")(
        coerce.as_list()
    )
    _bid = field_validator("bid_cpm", mode="before")(coerce.as_float())
    _norm_labels = field_validator("categories", "target_tones")(lambda v: [label(x) for x in v if x.strip()])


class Consent(_Record):
    persona_id: RecordId
    scopes: list[Use] = Field(default_factory=list)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    _scopes = field_validator("scopes", mode="before")(
        lambda v: [s.strip().lower() if isinstance(s, str) else s for s in ([v] if isinstance(v, str) else v or [])]
    )
    _dates = field_validator("expires_at", "revoked_at", mode="before")(coerce.as_datetime(strict=True))
    _utc = field_validator("expires_at", "revoked_at")(utc)


class Query(_Record):
    query_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    sku: RecordId | None = None
    use: QueryUse = "search"


# Fields whose bad values reject the record instead of being dropped: identity, required text, and the fields
# consent and media safety depend on (a dropped cameo or revocation would widen consent).
STRICT_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    Scene: frozenset({"scene_id", "prompt", "parent_id", "cameos", "media"}),
    Ad: frozenset({"ad_id", "creative_scene_ids"}),
    Consent: frozenset({"persona_id", "expires_at", "revoked_at"}),
    Query: frozenset({"query_id", "text", "sku", "use"}),
}


# --- LanceDB tables -------------------------------------------------------------------------------

SCENES = "scenes"
SHOTS = "shots"
ADS = "ads"
CONSENTS = "consents"
TABLES = (SCENES, SHOTS, ADS, CONSENTS)
CHANGES = "changes"  # the write log readers follow (`indexer/changelog.py`); not a catalog table


class SceneCol:
    ID = "scene_id"
    PROMPT = "prompt"
    CAPTION = "caption"
    PARENT = "parent_id"
    CREATOR = "creator_id"
    CREATED = "created_at"
    SETTING = "setting"
    TIME = "time_of_day"
    WEATHER = "weather"
    TONES = "tones"
    CATEGORIES = "categories"
    SKUS = "skus"
    BRANDS = "brands"
    CAMEOS = "cameos"
    GENERATOR = "generator"
    AI_DISCLOSURE = "ai_disclosure"
    DISCLOSURE_LABEL = "ai_disclosure_label"
    DWELL = "dwell_ms"
    VIEWS = "views"
    INFERRED = "inferred"
    DOC = "doc_text"
    TEXT_VEC = "text_vec"
    CLIP_VEC = "clip_vec"
    RECORD = "record_json"  # the normalised record
    SOURCE = "source_json"  # the record exactly as the catalog gave it
    CONTENT_HASH = "content_hash"  # of the source record and its media files: unchanged rows are skipped
    # Verified provenance (`indexer/provenance.py`): facts read from the media files, next to the claims above.
    C2PA_STATE = "c2pa_state"  # Trusted, Valid, Invalid; null: no credential (or no media)
    C2PA_CODES = "c2pa_codes"  # failure and informational validation status codes
    C2PA_GENERATOR = "c2pa_claim_generator"
    C2PA_SOURCE_TYPE = "c2pa_source_type"  # IPTC digitalSourceType of the creation action
    C2PA_TRAINING = "c2pa_training_mining"  # "entry=use" pairs, e.g. cawg.ai_training=notAllowed
    C2PA_BINDING = "c2pa_binding_ok"  # the signed hash matches the media bytes; null: nothing signed
    C2PA_MEDIA = "c2pa_media_json"  # per media file: the same facts, as a JSON list
    PROVENANCE_FLAGS = "provenance_mismatches"  # where the catalog's claims and the credential disagree


# Scene-context slots and the columns that hold them (single-valued first, then lists).
SINGLE_SLOT_COLUMNS = {"setting": SceneCol.SETTING, "time_of_day": SceneCol.TIME, "weather": SceneCol.WEATHER}
LIST_SLOT_COLUMNS = {"tone": SceneCol.TONES, "category": SceneCol.CATEGORIES}


class ShotCol:
    SCENE = "scene_id"
    INDEX = "shot_index"
    MEDIA = "media_path"
    START = "start_s"
    END = "end_s"
    THUMB = "thumb_path"
    CLIP_VEC = "clip_vec"


class AdCol:
    ID = "ad_id"
    SKUS = "skus"
    CATEGORIES = "categories"
    TONES = "target_tones"
    BID = "bid_cpm"
    CREATIVES = "creative_scene_ids"
    DOC = "doc_text"
    TEXT_VEC = "text_vec"
    RECORD = "record_json"
    SOURCE = "source_json"


class ConsentCol:
    ID = "persona_id"
    SCOPES = "scopes"
    EXPIRES = "expires_at"
    REVOKED = "revoked_at"
    RECORD = "record_json"
    SOURCE = "source_json"


ID_COLUMN = {SCENES: SceneCol.ID, ADS: AdCol.ID, CONSENTS: ConsentCol.ID}

_STR = pa.string()
_STRS = pa.list_(pa.string())
_TS = pa.timestamp("us", tz="UTC")


def vector_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def scenes_schema(text_dim: int, clip_dim: int | None) -> pa.Schema:
    fields = [
        pa.field(SceneCol.ID, _STR, nullable=False),
        pa.field(SceneCol.PROMPT, _STR, nullable=False),
        pa.field(SceneCol.CAPTION, _STR),
        pa.field(SceneCol.PARENT, _STR),
        pa.field(SceneCol.CREATOR, _STR),
        pa.field(SceneCol.CREATED, _TS),
        pa.field(SceneCol.SETTING, _STR),
        pa.field(SceneCol.TIME, _STR),
        pa.field(SceneCol.WEATHER, _STR),
        pa.field(SceneCol.TONES, _STRS),
        pa.field(SceneCol.CATEGORIES, _STRS),
        pa.field(SceneCol.SKUS, _STRS),
        pa.field(SceneCol.BRANDS, _STRS),
        pa.field(SceneCol.CAMEOS, _STRS),
        pa.field(SceneCol.GENERATOR, _STR),
        pa.field(SceneCol.AI_DISCLOSURE, pa.bool_()),
        pa.field(SceneCol.DISCLOSURE_LABEL, _STR),
        pa.field(SceneCol.DWELL, pa.int64()),
        pa.field(SceneCol.VIEWS, pa.int64()),
        pa.field(SceneCol.INFERRED, _STRS),
        pa.field(SceneCol.DOC, _STR, nullable=False),
        pa.field(SceneCol.TEXT_VEC, vector_type(text_dim), nullable=False),
        pa.field(SceneCol.RECORD, _STR, nullable=False),
        pa.field(SceneCol.SOURCE, _STR, nullable=False),
        pa.field(SceneCol.CONTENT_HASH, _STR, nullable=False),
        pa.field(SceneCol.C2PA_STATE, _STR),
        pa.field(SceneCol.C2PA_CODES, _STRS),
        pa.field(SceneCol.C2PA_GENERATOR, _STR),
        pa.field(SceneCol.C2PA_SOURCE_TYPE, _STR),
        pa.field(SceneCol.C2PA_TRAINING, _STRS),
        pa.field(SceneCol.C2PA_BINDING, pa.bool_()),
        pa.field(SceneCol.C2PA_MEDIA, _STR),
        pa.field(SceneCol.PROVENANCE_FLAGS, _STRS),
    ]
    if clip_dim:
        fields.append(pa.field(SceneCol.CLIP_VEC, vector_type(clip_dim)))
    return pa.schema(fields)


def shots_schema(clip_dim: int | None) -> pa.Schema:
    fields = [
        pa.field(ShotCol.SCENE, _STR, nullable=False),
        pa.field(ShotCol.INDEX, pa.int32(), nullable=False),
        pa.field(ShotCol.MEDIA, _STR, nullable=False),
        pa.field(ShotCol.START, pa.float64()),
        pa.field(ShotCol.END, pa.float64()),
        pa.field(ShotCol.THUMB, _STR),
    ]
    if clip_dim:
        fields.append(pa.field(ShotCol.CLIP_VEC, vector_type(clip_dim)))
    return pa.schema(fields)


def ads_schema(text_dim: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field(AdCol.ID, _STR, nullable=False),
            pa.field(AdCol.SKUS, _STRS),
            pa.field(AdCol.CATEGORIES, _STRS),
            pa.field(AdCol.TONES, _STRS),
            pa.field(AdCol.BID, pa.float64()),
            pa.field(AdCol.CREATIVES, _STRS),
            pa.field(AdCol.DOC, _STR, nullable=False),
            pa.field(AdCol.TEXT_VEC, vector_type(text_dim), nullable=False),
            pa.field(AdCol.RECORD, _STR, nullable=False),
            pa.field(AdCol.SOURCE, _STR, nullable=False),
        ]
    )


def consents_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field(ConsentCol.ID, _STR, nullable=False),
            pa.field(ConsentCol.SCOPES, _STRS),
            pa.field(ConsentCol.EXPIRES, _TS),
            pa.field(ConsentCol.REVOKED, _TS),
            pa.field(ConsentCol.RECORD, _STR, nullable=False),
            pa.field(ConsentCol.SOURCE, _STR, nullable=False),
        ]
    )


class ChangeCol:
    SEQ = "seq"  # nanoseconds since the epoch when the write was logged
    SCENES = "scenes"  # scene ids written or deleted (readers re-read their current rows)
    CONSENTS = "consents"  # persona ids whose consent record changed
    ADS = "ads"  # ads changed (the ad table is small: readers reload it)
    BULK = "bulk"  # too many rows to follow one by one: readers reload
    BEFORE = "before_json"  # table versions when the write started
    AFTER = "after_json"  # table versions once it had committed


def changes_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field(ChangeCol.SEQ, pa.int64(), nullable=False),
            pa.field(ChangeCol.SCENES, _STRS),
            pa.field(ChangeCol.CONSENTS, _STRS),
            pa.field(ChangeCol.ADS, pa.bool_()),
            pa.field(ChangeCol.BULK, pa.bool_()),
            pa.field(ChangeCol.BEFORE, _STR, nullable=False),
            pa.field(ChangeCol.AFTER, _STR, nullable=False),
        ]
    )
