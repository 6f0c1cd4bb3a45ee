"""The `visual-intent` command end to end: index, search (text, JSON, batch), one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_jsonl


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_index_then_search_text_json_and_batch(catalog: dict[str, Path], tmp_path: Path) -> None:
    db = str(tmp_path / "index")
    done = run(
        "index",
        "--db",
        db,
        "--scenes",
        str(catalog["scenes"]),
        "--ads",
        str(catalog["ads"]),
        "--consents",
        str(catalog["consents"]),
        "--no-clip",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert "indexed 8 scenes (2 shots), 4 ads, 3 consents" in done.stdout

    text = run(
        "search", "--db", db, "show me how this jacket looks in the Alps at night", "--sku", "SKU-J1", "--k", "2"
    )
    assert text.returncode == 0, text.stderr
    assert "frame: product=Summit Parka (outerwear) setting=alpine time_of_day=night" in text.stdout

    as_json = json.loads(run("search", "--db", db, "leather sofa", "--json").stdout)
    assert {"scenes", "ads", "frame"} <= set(as_json)
    assert as_json["scenes"][0]["scene_id"] == "s4" and "score" in as_json["scenes"][0]

    queries = write_jsonl(
        tmp_path / "q.jsonl",
        [{"query_id": "a", "text": "red parka"}, {"query_id": "b", "text": "sneakers", "use": "ads"}],
    )
    lines = run("search", "--db", db, "--queries", str(queries), "--json").stdout.splitlines()
    assert [json.loads(line)["query_id"] for line in lines] == ["a", "b"]

    # a bigger batch is encoded in shared encoder calls, answers in input order, and equals one-by-one searches
    texts = [f"{w} on a {p} at night" for w in ("red parka", "leather sofa", "sneakers") for p in ("ridge", "street")]
    many = [{"query_id": f"q{i}", "text": f"{t} #{i}"} for i, t in enumerate(texts * 5)]
    batch = run("search", "--db", db, "--queries", str(write_jsonl(tmp_path / "many.jsonl", many)), "--json")
    found = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [r["query_id"] for r in found] == [q["query_id"] for q in many]
    calls = int(batch.stderr.split(" encoder calls")[0].rsplit(" ", 1)[1])
    assert f"{len(many)} queries:" in batch.stderr and calls < len(many)
    single = json.loads(run("search", "--db", db, many[7]["text"], "--json").stdout)
    assert [h["scene_id"] for h in single["scenes"]] == [h["scene_id"] for h in found[7]["scenes"]]


def test_recommend_command(catalog: dict[str, Path], tmp_path: Path) -> None:
    db = str(tmp_path / "index")
    paths = ("--scenes", str(catalog["scenes"]), "--ads", str(catalog["ads"]), "--consents", str(catalog["consents"]))
    assert run("index", "--db", db, *paths, "--no-clip", "--quiet").returncode == 0
    done = run("recommend", "--db", db, "--positive", "s4", "--negative", "s7", "--json", "--no-collapse")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    found = [h["scene_id"] for h in data["scenes"]]
    assert data["strategy"] == "average_vector" and data["positive"] == ["s4"] and data["negative"] == ["s7"]
    assert found and not {"s4", "s7"} & set(found) and not {"s3", "s5", "s6"} & set(found)  # consent mask
    text = run("recommend", "--db", db, "-p", "s1", "--text", "at night")
    assert text.returncode == 0 and text.stdout.startswith("like s1 (average_vector)")
    hidden = run("recommend", "--db", db, "-p", "s5")  # its cameo consent was revoked
    assert hidden.returncode == 1 and hidden.stderr.strip() == "error: no scene 's5' in the index"


def test_errors_are_one_line_and_nonzero(catalog: dict[str, Path], tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"scene_id": "ok", "prompt": "fine"}, {"scene_id": "x"}])
    done = run("index", "--db", str(tmp_path / "i"), "--scenes", str(bad), "--strict", "--no-clip", "--quiet")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 invalid record(s); nothing was written")
    assert f"{bad}:2 (x): field 'prompt': required field is missing" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "i").exists()

    missing = run("search", "--db", str(tmp_path / "nowhere"), "anything")
    assert (
        missing.returncode == 1 and "no visual-intent index at" in missing.stderr and "Traceback" not in missing.stderr
    )
