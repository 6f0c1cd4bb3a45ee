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
