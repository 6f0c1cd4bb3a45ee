"""A failed write rolls back only what it committed itself: with replicas, another writer's commit that lands
in between must survive the rollback (real LanceDB, two Store handles on one folder as two processes would be)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.rows import consent_row
from indexer.schema import CONSENTS, SCHEMA_VERSION, Consent
from indexer.store import Manifest, Store


def _store(tmp_path: Path) -> tuple[Store, Store]:
    mine = Store.create(tmp_path / "index", Manifest(SCHEMA_VERSION, "hash:8", 8))
    return mine, Store.open(tmp_path / "index")


def _put(store: Store, persona: str) -> None:
    store.upsert(CONSENTS, [consent_row(Consent(persona_id=persona, scopes=["search"]))])


def test_failed_write_rolls_back_its_own_commits(tmp_path: Path) -> None:
    mine, _ = _store(tmp_path)
    with pytest.raises(RuntimeError), mine.transaction():
        _put(mine, "persona-mine")
        raise RuntimeError("the write fails after its commit")
    assert mine.ids(CONSENTS) == []


def test_rollback_keeps_another_writers_commit(tmp_path: Path) -> None:
    mine, other = _store(tmp_path)
    with pytest.raises(RuntimeError), mine.transaction():
        _put(mine, "persona-mine")
        _put(other, "persona-other")  # a replica commits to the same table meanwhile
        raise RuntimeError("the write fails after its commit")
    assert "persona-other" in mine.ids(CONSENTS)  # not undone by the rollback
