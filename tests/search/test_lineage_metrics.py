"""Remix graph and family metrics (rustworkx) against networkx and worked examples, on a real index."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import networkx as nx
import numpy as np
import pytest

from indexer.encoders import load_text_encoder
from indexer.pipeline import Encoders, IndexOptions, index_catalog
from search.engine import Engine
from search.families import family_of, family_table, top_families
from search.lineage import credit_chain, descendants, remix_forest
from tests.helpers import write_jsonl

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _scene(sid: str, prompt: str, parent: str | None = None, hours: float = 0.0, **extra: Any) -> dict[str, Any]:
    record = {
        "scene_id": sid,
        "prompt": prompt,
        "creator_id": f"c-{sid}",
        "created_at": (T0 + timedelta(hours=hours)).isoformat(),
    }
    return {**record, **({"parent_id": parent} if parent else {}), **extra}


def _worked_examples() -> list[dict[str, Any]]:
    return [
        # a star: the root and three direct remixes, at +1 h, +2 h and +30 days
        _scene("star", "abcd"),
        _scene("star-1", "abce", "star", 1),
        _scene("star-2", "abcd", "star", 2),
        _scene("star-3", "wxyz", "star", 24 * 30),
        # a chain of five; the middle scene shows a persona whose consent was revoked
        _scene("ch-0", "a red parka on a ridge"),
        _scene("ch-1", "a red parka on a ridge at dawn", "ch-0", 1),
        _scene("ch-2", "a red parka on a ridge at dusk", "ch-1", 2, cameos=["p-revoked"]),
        _scene("ch-3", "a red parka on a ridge at night", "ch-2", 3),
        _scene("ch-4", "a blue parka on a ridge at night", "ch-3", 4),
    ]


def _random_catalog(n: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        parent = f"r-{rng.randrange(i):03d}" if i > 5 and rng.random() < 0.6 else None
        out.append(_scene(f"r-{i:03d}", f"scene {i} with words {rng.random():.3f}", parent, hours=i))
    return out


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("lineage")
    scenes = write_jsonl(root / "scenes.jsonl", _worked_examples() + _random_catalog(150))
    consents = write_jsonl(
        root / "consents.jsonl",
        [{"persona_id": "p-revoked", "scopes": ["search"], "revoked_at": "2025-01-01T00:00:00Z"}],
    )
    text = load_text_encoder("hash:384")  # lineage does not depend on the text model
    index_catalog(
        IndexOptions(db=root / "index", progress=False, use_clip=False),
        scenes,
        None,
        consents,
        Encoders(text, None, None),
    )
    return Engine.open(root / "index", text=text, use_clip=False)


def _nx_graph(engine: Engine) -> nx.DiGraph:
    snap = engine.snapshot
    graph = nx.DiGraph()
    graph.add_nodes_from(snap.ids)
    for sid, parent in zip(snap.ids, snap.columns["parent_id"], strict=True):
        if parent in snap.row:
            graph.add_edge(parent, sid)
    return graph


def test_families_match_networkx(engine: Engine) -> None:
    snap, graph = engine.snapshot, _nx_graph(engine)
    table = family_table(snap)
    families = top_families(snap, table, sort="size", limit=10_000, min_size=1)
    components = list(nx.weakly_connected_components(graph))
    assert len(families) == len(components)
    for family in families:
        members = nx.descendants(graph, family.family_id) | {family.family_id}
        assert family.size == len(members)
        lengths = nx.single_source_shortest_path_length(graph, family.family_id)
        assert family.depth == max(lengths.values())
        if family.size > 1:
            expected = nx.average_shortest_path_length(graph.subgraph(members).to_undirected())
            assert family.structural_virality == pytest.approx(expected, abs=1e-4)
    for sid in snap.ids:
        row = snap.row[sid]
        assert descendants(snap, row) == sorted(nx.descendants(graph, sid), key=lambda s: (lengths_from(graph, s), s))
        chain = [snap.columns["creator_id"][snap.row[a]] for a in _root_path(graph, sid)]
        assert credit_chain(snap, row) == chain


def lengths_from(graph: nx.DiGraph, sid: str) -> int:
    return len(nx.ancestors(graph, sid))


def _root_path(graph: nx.DiGraph, sid: str) -> list[str]:
    path = [sid]
    while preds := list(graph.predecessors(path[-1])):
        path.append(preds[0])
    return path[::-1]


def test_worked_example_star(engine: Engine) -> None:
    snap = engine.snapshot
    table = family_table(snap, as_of=T0 + timedelta(days=30), window_days=7)
    star = family_of(snap, table, snap.row["star"])
    assert star is not None
    assert (star.size, star.depth, star.generations, star.remixes) == (4, 1, {0: 1, 1: 3}, 3)
    assert star.structural_virality == pytest.approx(1.5)  # 3 pairs at distance 1, 3 at distance 2
    assert star.remixes_in_window == 1 and star.velocity_per_day == pytest.approx(1 / 7, abs=1e-4)
    assert star.time_to_kth_remix_hours == {1: 1.0, 5: None, 10: None}
    assert star.prompt_mutation == pytest.approx((0.25 + 0.0 + 1.0) / 3, abs=1e-4)  # abcd->abce, ->abcd, ->wxyz
    assert star.mutation_by_generation == {1: pytest.approx(0.4167, abs=1e-4)}


def test_hidden_scene_is_contracted_away(engine: Engine) -> None:
    snap = engine.snapshot
    visible = snap.eligible("search", T0)
    assert not visible[snap.row["ch-2"]]
    full = family_of(snap, family_table(snap), snap.row["ch-0"])
    seen = family_of(snap, family_table(snap, visible), snap.row["ch-0"])
    assert full is not None and seen is not None
    assert (full.size, full.depth, full.structural_virality) == (5, 4, 2.0)
    assert (seen.size, seen.depth) == (4, 3)  # ch-3 now hangs from ch-1
    assert "ch-2" not in descendants(snap, snap.row["ch-0"], visible)
    assert credit_chain(snap, snap.row["ch-4"], visible) == ["c-ch-0", "c-ch-1", "c-ch-3", "c-ch-4"]
    assert credit_chain(snap, snap.row["ch-2"], visible) == []
    forest = remix_forest(snap, visible)
    assert snap.row["ch-2"] not in forest.node and np.all(forest.rows != snap.row["ch-2"])


def test_families_sort_by_velocity(engine: Engine) -> None:
    snap = engine.snapshot
    table = family_table(snap, as_of=T0 + timedelta(hours=160), window_days=1)
    ranked = top_families(snap, table, sort="velocity", limit=5)
    velocities = [f.velocity_per_day for f in ranked]
    assert velocities == sorted(velocities, reverse=True) and velocities[0] > 0
    counts = {}
    for f in top_families(snap, table, sort="velocity", limit=10_000):
        counts[f.family_id] = f.remixes_in_window
    assert sum(counts.values()) == sum(
        1
        for sid in snap.ids
        if snap.columns["parent_id"][snap.row[sid]] in snap.row
        and 136
        < (snap.created[snap.row[sid]] - np.datetime64(T0.replace(tzinfo=None), "us")) / np.timedelta64(1, "h")
        <= 160
    )


def test_forest_cache_keeps_a_few_masks(engine: Engine) -> None:
    snap = engine.snapshot
    for hidden in range(6):
        mask = np.ones(len(snap), dtype=bool)
        mask[hidden] = False
        remix_forest(snap, mask)
    assert sum(key.startswith("forest:") for key in snap.derived) <= 4
