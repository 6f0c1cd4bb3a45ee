"""BEIR-format datasets (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) as text-only scenes.

Each corpus document becomes a scene whose prompt is `title. text`, so the dense channel embeds exactly what
BEIR's sentence-transformers baselines embed and the full-text channel indexes title and body as one field.
Only the queries judged in the split are evaluated. Slot inference is off: scene slots mean nothing here.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.catalog import Inline
from indexer.encoders import DEFAULT_TEXT_MODEL
from indexer.errors import CatalogError
from indexer.pipeline import Encoders, IndexOptions, IndexReport, index_catalog
from indexer.schema import SCENES, Query, is_valid_id
from indexer.store import MANIFEST, Store, read_manifest
from search.evaluation.experiment import ExperimentSpec, adhoc_spec
from search.evaluation.metrics import Qrels, read_tsv_qrels
from search.evaluation.runs import DEFAULT_DEPTH

CORPUS = "corpus.jsonl"
QUERIES = "queries.jsonl"
QRELS_DIR = "qrels"


@dataclass
class BeirDataset:
    folder: Path
    split: str
    corpus: list[dict[str, Any]]  # scene records
    queries: list[Query]
    qrels: Qrels

    @property
    def scenes(self) -> Inline:
        return Inline(f"{self.folder / CORPUS}", self.corpus, self.folder)


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise CatalogError(f"{path}: not found; a BEIR dataset folder holds {CORPUS}, {QUERIES} and {QRELS_DIR}/")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise CatalogError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    return rows


def scene_record(doc: dict[str, Any]) -> dict[str, Any]:
    """One BEIR document as a scene record: id and `title. text` as the prompt (no '..' when the title ends a
    sentence itself, as 3,078 of SciFact's 5,183 titles do)."""
    title = str(doc.get("title") or "").strip()
    text = str(doc.get("text") or "").strip()
    joiner = " " if title.endswith((".", "?", "!")) else ". "
    prompt = f"{title}{joiner}{text}" if title and text else title or text
    return {"scene_id": str(doc["_id"]), "prompt": prompt}


def read_corpus(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, doc in _read_jsonl(path):
        doc_id = str(doc.get("_id", ""))
        if not is_valid_id(doc_id):
            raise CatalogError(f"{path}:{number}: document id {doc_id!r} is not a valid scene id")
        record = scene_record(doc)
        if record["prompt"]:
            records.append(record)
    return records


def read_queries(path: Path, wanted: set[str]) -> list[Query]:
    return [
        Query(query_id=str(q["_id"]), text=str(q["text"])) for _, q in _read_jsonl(path) if str(q.get("_id")) in wanted
    ]


def load_beir(folder: Path, split: str = "test", limit_docs: int | None = None) -> BeirDataset:
    """Corpus, the split's judged queries and its qrels; `limit_docs` keeps the first N documents."""
    qrels = read_tsv_qrels(folder / QRELS_DIR / f"{split}.tsv")
    corpus = read_corpus(folder / CORPUS)
    if limit_docs is not None:
        corpus = corpus[:limit_docs]
    queries = read_queries(folder / QUERIES, set(qrels))
    missing = set(qrels) - {q.query_id for q in queries}
    if missing:
        raise CatalogError(f"{folder / QUERIES}: {len(missing)} judged query id(s) missing, e.g. {sorted(missing)[0]}")
    return BeirDataset(folder, split, corpus, queries, qrels)


def index_beir(
    dataset: BeirDataset,
    db: Path,
    encoders: Encoders | None = None,
    progress: bool = False,
    text_model: str = DEFAULT_TEXT_MODEL,
) -> IndexReport:
    """A fresh text-only index of the corpus (no CLIP, no slot inference)."""
    options = IndexOptions(
        db=db, rebuild=True, use_clip=False, infer_context=False, progress=progress, text_model=text_model
    )
    return index_catalog(options, dataset.scenes, encoders=encoders)


def holds_corpus(db: Path, dataset: BeirDataset, text_model: str | None = None) -> bool:
    """Whether `db` is an index of exactly this corpus (same document ids; the same text encoder when one is
    named), so it can be reused."""
    if not (db / MANIFEST).is_file():
        return False
    if text_model is not None and read_manifest(db).text_encoder != text_model:
        return False
    return set(Store.open(db).ids(SCENES)) == {doc["scene_id"] for doc in dataset.corpus}


@contextmanager
def beir_index(
    dataset: BeirDataset,
    db: Path | None,
    rebuild: bool = False,
    encoders: Encoders | None = None,
    progress: bool = False,
    text_model: str = DEFAULT_TEXT_MODEL,
) -> Iterator[Path]:
    """An index of the corpus: `db` reused when it already holds it (unless `rebuild`), else built there or in a
    temporary folder that is removed afterwards."""
    if db is not None:
        if rebuild or not holds_corpus(db, dataset, encoders.text.id if encoders else text_model):
            index_beir(dataset, db, encoders, progress, text_model)
        yield db
        return
    with tempfile.TemporaryDirectory(prefix="visual-intent-beir-") as tmp:
        index_beir(dataset, Path(tmp) / "index", encoders, progress, text_model)
        yield Path(tmp) / "index"


def beir_spec(dataset: BeirDataset, variants: list[str], depth: int = DEFAULT_DEPTH, seed: int = 0) -> ExperimentSpec:
    """An evaluation of `variants` on the dataset's split; the first variant is the baseline."""
    folder = dataset.folder
    spec = adhoc_spec(
        f"beir-{folder.resolve().name}-{dataset.split}",
        "scenes",
        folder / QUERIES,
        folder / QRELS_DIR / f"{dataset.split}.tsv",
        variants,
        depth=depth,
        seed=seed,
    )
    spec.index = {"scenes": (folder / CORPUS).resolve()}
    return spec
