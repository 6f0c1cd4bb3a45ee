"""The `--ann` option of `index` and `serve`: which layer serves the dense text base. `faiss` keeps an HNSW
layer of every scene vector in each replica's memory; `lance` searches the scenes table's own IVF_PQ index
(next to the data, locally or on object storage), for catalogs past one replica's memory (indexer.lance_ann)."""

from __future__ import annotations

from typing import Annotated

import typer

CHOICES = ("faiss", "lance")


def _choice(value: str) -> str:
    if value not in CHOICES:
        raise typer.BadParameter(f"choose {' or '.join(CHOICES)}, not '{value}'")
    return value


AnnOption = Annotated[
    str,
    typer.Option(
        "--ann",
        callback=_choice,
        help="Dense text base: faiss (in memory) or lance (the table's IVF_PQ index; `index` builds it). "
        "Default: faiss.",
    ),
]
