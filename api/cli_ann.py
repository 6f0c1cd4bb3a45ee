"""The `--ann` option of `index` and `serve`: which layer serves the dense text base. `faiss` keeps an HNSW
layer of every scene vector in each replica's memory; `lance` searches the scenes table's own IVF_PQ index
(next to the data, locally or on object storage), for catalogs past one replica's memory (indexer.lance_ann)."""

from __future__ import annotations

from typing import Annotated

import click
import typer

AnnOption = Annotated[
    str,
    typer.Option(
        "--ann",
        click_type=click.Choice(["faiss", "lance"]),
        help="Dense text base: faiss (in memory) or lance (the table's IVF_PQ index; `index` builds it). "
        "Default: faiss.",
    ),
]
