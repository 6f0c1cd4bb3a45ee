"""The work of the Ray engine's encode actors, kept free of any `ray` import (testable without a cluster).

A catalog file is cut into blocks of whole lines (`plan_blocks`, byte ranges with their first line number). An
actor reads a block (`read_block`, line for line as `catalog` reads the file), parses, validates and coerces
each line, checks its media paths, hashes it and, for every scene not already stored with that hash, decodes
its media and encodes it (`stream.build_scenes`: the same functions as the local path). The driver gets the
parsed lines back and runs the cross-record checks (duplicates, lineage) in file order; see `ray_ingest.py`.
"""

from __future__ import annotations

import io
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer import catalog, stream
from indexer.schema import Scene, ShotCol

if TYPE_CHECKING:
    from indexer.pipeline import IndexOptions
    from indexer.provenance import TrustConfig


@dataclass(frozen=True)
class Block:
    start: int  # byte offset of the block's first line
    end: int  # byte offset just past its last line
    first_line: int  # the first line's number (1-based, blank lines counted, as in catalog errors)


def plan_blocks(path: Path, lines_per_block: int, chunk_size: int) -> list[Block]:
    """Cut `path` into blocks of about `lines_per_block` non-blank lines, each ending on a line end; a block also
    ends where a chunk of `chunk_size` non-blank lines ends, so chunks rarely wait on two actors. Lines are
    counted as Python's text mode reads them (universal newlines), so numbers match `catalog`'s."""
    blocks: list[Block] = []
    start = offset = count = total = 0
    number = first = 1
    with path.open("rb") as fh:
        for raw in fh:  # split at b"\n": a block boundary never falls inside a "\r\n"
            for piece in raw.splitlines():
                number += 1
                if piece.decode("utf-8").strip():
                    count, total = count + 1, total + 1
            offset += len(raw)
            if count >= lines_per_block or (count and total % chunk_size == 0):
                blocks.append(Block(start, offset, first))
                start, first, count = offset, number, 0
    if offset > start:
        blocks.append(Block(start, offset, first))
    return blocks


def read_block(path: Path, block: Block) -> Iterator[tuple[int, str]]:
    """(line number, line) of the block's non-blank lines, decoded as `catalog` reads the whole file."""
    with path.open("rb") as fh:
        fh.seek(block.start)
        data = fh.read(block.end - block.start)
    for number, line in enumerate(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"), start=block.first_line):
        if line.strip():
            yield number, line


@dataclass
class BlockResult:
    """What an actor sends back for one block."""

    lines: list[catalog.Parsed[Scene]]  # every non-blank line, parsed (record or error)
    digests: dict[int, tuple[str, str]]  # line -> (record as given, content hash), records with valid media
    builds: dict[int, stream.SceneBuild]  # line -> the scene built, for those not stored with that hash


@dataclass(frozen=True)
class BlockJob:
    """What every actor needs to know about the run (pickled once into Ray's object store)."""

    source: Path  # the scenes file as the user named it: errors quote it
    path: Path  # the same file, absolute
    media_root: Path  # absolute
    fingerprint: str
    options: IndexOptions  # encoders and media settings
    trust: TrustConfig
    stored_hashes: dict[str, str] = field(default_factory=dict)  # scene id -> content hash in the index


def prepare_block(job: BlockJob, enc: stream.Encoding, block: Block) -> BlockResult:
    """Parse, validate and coerce a block's lines; hash, decode and encode the scenes that need writing."""
    lines = [catalog.parse_record(job.source, n, line, Scene) for n, line in read_block(job.path, block)]
    loaded = catalog.collect(job.path, lines)  # block-local duplicates: the driver rejects them again
    resolved = catalog.check_media(loaded, job.media_root)
    loaded.source = job.source  # media errors name the file as the user did
    sources, hashes = stream.digest_records(loaded, resolved, job.fingerprint)
    todo = [s for s in loaded.records if job.stored_hashes.get(s.scene_id) != hashes[s.scene_id]]
    chunk = stream.Chunk(loaded, resolved, sources, hashes)
    with tempfile.TemporaryDirectory(prefix="vi-thumbs-") as tmp:
        builds = stream.build_scenes(enc, chunk, todo, Path(tmp))
        for build in builds:  # thumbnails travel with the rows: the driver writes them into the index
            build.thumbnails = {s[ShotCol.THUMB]: (Path(tmp) / s[ShotCol.THUMB]).read_bytes() for s in build.shots}
    digests = {loaded.lines[sid]: (sources[sid], hashes[sid]) for sid in sources}
    return BlockResult(lines, digests, {loaded.lines[b.scene_id]: b for b in builds})


class BlockEncoder:
    """A Ray Data callable class: one per actor, so the models load once per actor (on its GPU if it has one)."""

    def __init__(self, job: BlockJob):
        from indexer.pipeline import load_encoders

        options = job.options
        models = load_encoders(options)
        self.job = job
        self.enc = stream.Encoding(
            models.text, models.clip, options.infer_context, options.limits, options.workers, job.trust
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        results = []
        for start, end, first in zip(batch["start"], batch["end"], batch["first_line"], strict=True):
            result = prepare_block(self.job, self.enc, Block(int(start), int(end), int(first)))
            results.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return {"index": list(batch["index"]), "result": results}
