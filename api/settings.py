"""Service configuration: one pydantic-settings `Settings`, read from `VISUAL_INTENT_*` env variables and the CLI.

Only the `serve` entry point builds it; everything below receives typed values. Startup fails with a clear
message when no API key is configured (unless `insecure_local` is set for loopback development), when a key
is a placeholder or too short, or when insecure mode is asked for on a non-loopback address.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.location import IndexLocation, options_from_env

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
MIN_KEY_LENGTH = 16
PLACEHOLDER_KEYS = frozenset({"changethis", "changeme", "secret", "password", "apikey", "api-key", "test"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything `visual-intent serve` needs; env variables use the `VISUAL_INTENT_` prefix."""

    model_config = SettingsConfigDict(env_prefix="VISUAL_INTENT_", extra="ignore", frozen=True)

    db: str | Path = Field(description="Index folder or s3:// (gs://, az://) prefix built by `visual-intent index`.")
    # object storage: endpoint, region, allow_http, keys (JSON in VISUAL_INTENT_STORAGE_OPTIONS; AWS_* env too)
    storage_options: dict[str, str] = Field(default_factory=dict, repr=False)
    unsafe_commits: bool = False  # serve from an S3 store without conditional puts (one writer only)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # key -> scopes; JSON in VISUAL_INTENT_API_KEYS. repr=False: keys never reach logs or tracebacks.
    api_keys: dict[str, list[Scope]] = Field(default_factory=dict, repr=False)
    api_keys_file: Path | None = Field(default=None, description="JSON file with the same shape as API_KEYS.")
    insecure_local: bool = False  # no keys: every request gets every scope (loopback only)
    use_clip: bool = True
    ann: Literal["faiss", "lance"] = "faiss"  # dense text base: in-memory FAISS, or the table's IVF_PQ index
    max_body_bytes: int = Field(default=8 * MIB, ge=1024)
    max_image_bytes: int = Field(default=4 * MIB, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    max_batch_records: int = Field(default=500, ge=1)
    refresh_interval_s: float = Field(default=1.0, ge=0.0)  # poll for writes by other processes; 0 = off
    auto_compact: bool = True  # fold the write delta into a new base in the background (search.compaction)
    version_wait_s: float = Field(default=5.0, ge=0.0, le=60.0)  # longest wait for a search's min_version
    # query encoding: an LRU cache of encodings, then one encoder thread that merges concurrent requests
    query_cache_size: int = Field(default=4096, ge=0)
    encoder_batch_wait_ms: float = Field(default=2.0, ge=0.0, le=50.0)
    encoder_batch_max_texts: int = Field(default=64, ge=1, le=1024)
    docs: bool = True  # serve /docs and /redoc (the OpenAPI JSON is always served)

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, keys: dict[str, list[Scope]]) -> dict[str, list[Scope]]:
        for key, scopes in keys.items():
            check_key(key, scopes)
        return keys

    @model_validator(mode="after")
    def _need_keys(self) -> Settings:
        if self.insecure_local:
            if self.host not in LOOPBACK_HOSTS:
                raise ValueError(f"--insecure-local only binds a loopback address, not '{self.host}'")
            return self
        if not self.all_keys():
            raise ValueError(
                "no API keys configured: set VISUAL_INTENT_API_KEYS to a JSON object such as "
                '\'{"<key>": ["read"]}\' (or --api-keys-file), or pass --insecure-local for loopback development'
            )
        return self

    @property
    def location(self) -> IndexLocation:
        """Where the index lives, with the storage options (AWS_* variables, then explicit options)."""
        options = {**options_from_env(), **self.storage_options}
        return IndexLocation.of(self.db, options, self.unsafe_commits)

    def all_keys(self) -> dict[str, list[Scope]]:
        """Keys from the env variable plus those from the keys file (the file wins on a clash)."""
        return {**self.api_keys, **(read_keys_file(self.api_keys_file) if self.api_keys_file else {})}


def check_key(key: str, scopes: list[Scope]) -> None:
    """Reject placeholder, short or scope-less keys; the message never repeats the key."""
    if key.strip().lower() in PLACEHOLDER_KEYS or len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"an API key is a placeholder or shorter than {MIN_KEY_LENGTH} characters; use a random key")
    if not scopes:
        raise ValueError(f"an API key has no scopes; give some of {', '.join(SCOPES)}")


def read_keys_file(path: Path) -> dict[str, list[Scope]]:
    from pydantic import TypeAdapter

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read API keys file {path}: {exc.__class__.__name__}") from None
    try:
        keys = TypeAdapter(dict[str, list[Scope]]).validate_python(raw)
    except ValidationError:
        raise ValueError(f"API keys file {path} must map each key to a list of {', '.join(SCOPES)}") from None
    for key, scopes in keys.items():
        check_key(key, scopes)
    return keys
