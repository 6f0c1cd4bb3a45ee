"""What a report records so the run can be repeated: inputs and their hashes, seed, encoders, index, packages."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.schema import SCHEMA_VERSION
from search.engine import Engine

if TYPE_CHECKING:
    from search.evaluation.experiment import ExperimentSpec

PACKAGES = (
    "visual-intent",
    "ranx",
    "scipy",
    "numpy",
    "lancedb",
    "faiss-cpu",
    "sentence-transformers",
    "torch",
    "open_clip_torch",
    "matplotlib",
)


def sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def index_info(engine: Engine) -> dict[str, Any]:
    manifest = engine.snapshot.manifest
    return {
        "schema_version": manifest.schema_version,
        "text_encoder": manifest.text_encoder,
        "text_dim": manifest.text_dim,
        "clip": manifest.clip.id if manifest.clip and manifest.clip.id else None,
        "clip_status": engine.clip_status,
        "table_versions": dict(engine.snapshot.versions),
        "scenes": engine.snapshot.scene_count,
        "ads": len(engine.snapshot.ads),
        "ann": dict(engine.snapshot.text_ann.params),
    }


def shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (reports stay machine-neutral)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _input(path: Path) -> dict[str, Any]:
    return {"path": shown(path), "sha256": sha256(path)}


def collect(spec: ExperimentSpec, engine: Engine) -> dict[str, Any]:
    files = {"experiment": spec.source, "queries": spec.queries, "qrels": spec.qrels, **spec.index}
    return {
        "ran_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "consent_time": spec.now.isoformat() if spec.now else "time of the run",
        "seed": spec.seed,
        "inputs": {name: _input(path) for name, path in files.items() if path and Path(path).is_file()},
        "index": index_info(engine),
        "reader_schema_version": SCHEMA_VERSION,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
