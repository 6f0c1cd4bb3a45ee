"""Imports flow api -> search -> indexer: any reverse edge fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"indexer": 0, "search": 1, "api": 2}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(LAYER))
def test_no_reverse_imports(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for target in _imports(path) & set(LAYER):
            if LAYER[target] > LAYER[package]:
                offenders.append(f"{path.relative_to(ROOT)} imports {target}")
    assert offenders == []
