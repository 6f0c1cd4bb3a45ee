"""CLI options for where the index lives: `--db` (a folder or s3://, gs://, az:// prefix), repeatable
`--storage-option KEY=VALUE` (object_store names: aws_endpoint, region, allow_http, aws_access_key_id, ...,
on top of the AWS_* environment variables) and `--unsafe-commits`."""

from __future__ import annotations

from typing import Annotated

import typer

from indexer.location import IndexLocation, options_from_env, parse_storage_options

DbOption = Annotated[
    str, typer.Option("--db", help="Index folder, or an s3:// (gs://, az://) prefix (created by `index`).")
]
StorageOption = Annotated[
    list[str] | None,
    typer.Option(
        "--storage-option",
        help="KEY=VALUE for object storage, repeatable (e.g. aws_endpoint=http://127.0.0.1:9000, allow_http=true, "
        "region=us-east-1). Default: the AWS_* environment variables only.",
    ),
]
UnsafeCommitsOption = Annotated[
    bool,
    typer.Option(
        "--unsafe-commits",
        help="Write to an S3 store that ignores conditional puts (If-None-Match); safe only with one writer. "
        "Default: off (refuse such a store).",
    ),
]


def location(db: str, storage_option: list[str] | None, unsafe_commits: bool = False) -> IndexLocation:
    """The index location with the environment's storage options, overridden by explicit ones."""
    options = {**options_from_env(), **parse_storage_options(storage_option or [])}
    return IndexLocation.of(db, options, unsafe_commits)
