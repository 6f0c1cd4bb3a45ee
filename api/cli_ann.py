"""The `--ann` option of `index` and `serve`: which layer serves the dense text base. `faiss` keeps an HNSW
layer of every scene vector in each replica's memory; `lance` searches the scenes table's own IVF_PQ index
(next to the data, locally or on object storage), for catalogs past one replica's memory (indexer.lance_ann)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from indexer.location import IndexLocation

AnnOption = Annotated[
    str,
    typer.Option(
        "--ann",
        click_type=click.Choice(["faiss", "lance"]),
        help="Dense text base: faiss (in memory) or lance (the table's IVF_PQ index; `index` builds it). "
        "Default: faiss.",
    ),
]


def prepare(where: Path | IndexLocation, ann: str) -> None:
    """After `index --ann lance`: train the IVF_PQ index (or retrain it once the table outgrew it) offline,
    so no serving replica pays for it at start-up."""
    if ann != "lance":
        return
    from indexer import lance_ann
    from indexer.store import Store

    built = lance_ann.ensure(Store.open(where))
    typer.echo(f"lance IVF_PQ index: {built or 'up to date (or under 256 rows: scanned flat)'}", err=True)
