"""API views of the trust layer: disclosure, claims vs verified provenance, remix families (see
`search/disclosure.py`, `search/families.py`). Kept apart from `api/schemas.py` so that module stays readable."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

C2paState = Literal["Trusted", "Valid", "Invalid", "none"]


class DisclosurePublic(BaseModel):
    required: bool = Field(description="A visible label must be shown with this scene.")
    label: str | None = Field(description="The label to show (the highest-priority rule that names one).")
    reasons: list[str] = Field(description="'rule-id: why' for every rule that fired (search/rules/disclosure.toml).")
    machine_readable_mark: bool = Field(description="A verified C2PA credential declaring AI generation is present.")
    mark_required: bool = False
    ok: bool = Field(default=True, description="Every obligation the index can check is met.")
    rules: list[str] = Field(default_factory=list)
    creatives: dict[str, str] | None = Field(default=None, description="Ads: creative scene id -> C2PA state.")


class ClaimedProvenancePublic(BaseModel):
    generator: str | None
    ai_disclosure: bool | None
    ai_disclosure_label: str | None


class VerifiedProvenancePublic(BaseModel):
    c2pa_state: str | None = Field(description="Trusted, Valid, Invalid, or null (no credential).")
    codes: list[str]
    claim_generator: str | None
    digital_source_type: str | None
    training_mining: list[str]
    binding_ok: bool | None


class ProvenancePublic(BaseModel):
    claimed: ClaimedProvenancePublic
    verified: VerifiedProvenancePublic
    mismatches: list[str]


class FamilyPublic(BaseModel):
    family_id: str
    root_creator: str | None
    roots: list[str]
    size: int
    depth: int
    generations: dict[int, int]
    remixes: int
    remixes_in_window: int
    velocity_per_day: float
    time_to_kth_remix_hours: dict[int, float | None]
    structural_virality: float | None
    prompt_mutation: float | None
    mutation_by_generation: dict[int, float]
    last_created_at: str | None


class FamiliesPublic(BaseModel):
    sort: str
    as_of: str
    window_days: float
    families: list[FamilyPublic]
    index_versions: dict[str, int]
