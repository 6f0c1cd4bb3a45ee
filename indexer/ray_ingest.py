"""`index --engine ray`: scene ingest on Ray Data, committed through the same store path as the local ingest.

Ray Data reads the scenes file in blocks of whole lines and hands them to an actor pool (`map_batches` with a
callable class, `ray_blocks.BlockEncoder`): each actor loads the encoders once, then parses, validates and
coerces its blocks, hashes every record, and decodes and encodes the scenes that are not already stored with
the same hash. The driver receives the blocks in file order, regroups them into the run's chunks and, per chunk,
runs the checks that span the file (duplicates, lineage), writes the thumbnails and commits one transaction
with a write-log entry: `stream.check_chunk` and `stream.write_chunk`, the functions the local path uses. So the
rows, the error report and resuming (skip by content hash) are the local path's; consents, ads and the final
full-text and FAISS step run once, on the driver, as in `pipeline.index_catalog`.

`ray` is imported only here, and only when the engine is used (the `distributed` extra).
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

import indexer
from indexer import catalog, pipeline, ray_blocks, stream
from indexer.catalog import Loaded, Source
from indexer.errors import DistributedUnavailableError
from indexer.schema import Scene

log = logging.getLogger(__name__)
BLOCK_LINES = 500  # lines an actor takes at a time: small enough to spread a chunk over the pool


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # an existing cluster (`ray.init(address=...)`); None: start a local Ray
    encode_actors: int | None = None  # None: one per cluster CPU less one (the driver's), or one per GPU set
    gpus_per_actor: float = 0.0
    num_cpus: int | None = None  # a local Ray's CPUs; None: os.cpu_count()
    block_lines: int = BLOCK_LINES


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise DistributedUnavailableError(
            f"--engine ray needs Ray Data ({exc.name} is not installed): pip install -e '.[distributed]'"
        ) from exc
    return ray


@contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Connect to `options.address`, or start a local Ray (every CPU, no dashboard); a session this call opened
    is closed at the end (a cluster's is only disconnected). An already initialised Ray is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if options.address:
        try:
            ray.init(address=options.address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            hint = (
                ""
                if os.environ.get("RAY_AUTH_MODE")
                else (
                    " (a cluster started by `ray start` on Ray 2.59+ requires its token: set RAY_AUTH_MODE=token; the "
                    "token is read from ~/.ray/auth_token or RAY_AUTH_TOKEN)"
                )
            )
            raise DistributedUnavailableError(
                f"cannot reach the Ray cluster at {options.address}: {exc}{hint}"
            ) from exc
    else:
        # the workers import this checkout's code, whatever else is installed
        code = str(Path(indexer.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (code, os.environ.get("PYTHONPATH")) if p)
        ray.init(
            num_cpus=options.num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    if not log.isEnabledFor(logging.INFO):
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines unless --verbose
    try:
        yield ray
    finally:
        ray.shutdown()


def pool_size(ray: Any, options: RayOptions) -> int:
    """The number of encode actors: as asked, or what the cluster's CPUs (GPUs, for GPU actors) hold."""
    resources = ray.cluster_resources()
    gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    if options.gpus_per_actor > 0:
        if gpus < options.gpus_per_actor:
            raise DistributedUnavailableError(
                f"--gpus-per-actor {options.gpus_per_actor:g}, but the Ray cluster has {gpus:g} GPU(s); "
                "drop the flag to encode on CPUs"
            )
        fits = int(gpus // options.gpus_per_actor)
        if options.encode_actors and options.encode_actors > fits:
            log.warning("%d GPU actors asked, the cluster's GPUs hold %d", options.encode_actors, fits)
        return options.encode_actors or fits
    return options.encode_actors or max(1, int(cpus) - 1)


@dataclass
class _Pending:
    """Parsed lines received from the actors, not yet grouped into a full chunk."""

    lines: list[catalog.Parsed[Scene]] = field(default_factory=list)
    digests: dict[int, tuple[str, str]] = field(default_factory=dict)
    builds: dict[int, stream.SceneBuild] = field(default_factory=dict)

    def add(self, result: ray_blocks.BlockResult) -> None:
        self.lines.extend(result.lines)
        self.digests.update(result.digests)
        self.builds.update(result.builds)

    def take(self, size: int) -> list[catalog.Parsed[Scene]]:
        taken, self.lines = self.lines[:size], self.lines[size:]
        return taken


class RayScenes:
    """A `stream.SceneIngest` on Ray Data (use inside `ray_session`)."""

    def __init__(self, options: pipeline.IndexOptions, ray_options: RayOptions, actors: int):
        self.options = options
        self.ray_options = ray_options
        self.actors = actors

    def __call__(
        self,
        run: stream.SceneRun,
        source: Source,
        chunk_size: int,
        progress: tqdm | None = None,
        on_chunk: Callable[[Loaded[Scene]], None] | None = None,
    ) -> None:
        if not isinstance(source, Path):
            raise DistributedUnavailableError("--engine ray reads scenes from a file, not an in-memory batch")
        blocks = ray_blocks.plan_blocks(source, min(self.ray_options.block_lines, chunk_size), chunk_size)
        pending = _Pending()
        for result in self._results(run, source, blocks):
            pending.add(result)
            while len(pending.lines) >= chunk_size:
                _commit(run, source, pending, pending.take(chunk_size), progress, on_chunk)
        if pending.lines:
            _commit(run, source, pending, pending.take(len(pending.lines)), progress, on_chunk)

    def _results(
        self, run: stream.SceneRun, source: Path, blocks: list[ray_blocks.Block]
    ) -> Iterator[ray_blocks.BlockResult]:
        """The actors' results, block by block in file order."""
        if not blocks:
            return
        ray = import_ray()
        job = ray_blocks.BlockJob(
            source=source,
            path=source.resolve(),
            media_root=run.media_root.resolve(),
            fingerprint=run.fingerprint,
            options=self.options,
            trust=run.trust,
            stored_hashes=run.stored_hashes,
        )
        context = ray.data.DataContext.get_current()
        saved = (context.execution_options.preserve_order, context.enable_progress_bars)
        context.execution_options.preserve_order = True  # chunks are checked and committed in file order
        context.enable_progress_bars = False  # the run has its own progress bar
        try:
            items = [{"index": i, **asdict(b)} for i, b in enumerate(blocks)]
            dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                ray_blocks.BlockEncoder,
                fn_constructor_kwargs={"job": job},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=self.actors),
                num_cpus=1,
                num_gpus=self.ray_options.gpus_per_actor or None,
            )
            log.info("ray: %d blocks over %d encode actors", len(blocks), self.actors)
            for row in dataset.iter_rows():
                yield pickle.loads(row["result"])  # noqa: S301 - our own actors' output
        finally:
            context.execution_options.preserve_order, context.enable_progress_bars = saved


def _commit(
    run: stream.SceneRun,
    source: Path,
    pending: _Pending,
    lines: list[catalog.Parsed[Scene]],
    progress: tqdm | None,
    on_chunk: Callable[[Loaded[Scene]], None] | None,
) -> None:
    """One chunk, as `stream.ingest_scenes` does it, with the actors' hashes and built scenes."""
    chunk = stream.check_chunk(run, source, lines, pending.digests)
    if on_chunk:
        on_chunk(chunk.loaded)
    todo = stream.pending(run, chunk, len(lines), progress)
    for parsed in lines:  # what this chunk needed is taken; the rest stays for later chunks
        pending.digests.pop(parsed.line, None)
    builds = [pending.builds.pop(chunk.loaded.lines[s.scene_id], None) for s in todo]
    if any(b is None for b in builds):
        raise RuntimeError("an encode actor skipped a scene the driver must write (stored hashes out of step)")
    built = [b for b in builds if b is not None]
    for parsed in lines:
        pending.builds.pop(parsed.line, None)  # built by an actor but rejected here (duplicate, cycle)
    if not built:
        return
    for build in built:
        for name, data in build.thumbnails.items():
            run.store.location.write_bytes(name, data)
    stream.write_chunk(run, chunk, built, progress)
    if progress is not None:
        progress.update(sum(b.error is None for b in built))


def index_catalog(
    options: pipeline.IndexOptions,
    ray_options: RayOptions,
    scenes_path: Path | None,
    ads_path: Path | None = None,
    consents_path: Path | None = None,
    encoders: pipeline.Encoders | None = None,
) -> pipeline.IndexReport:
    """`pipeline.index_catalog` with the scenes ingested on Ray."""
    with ray_session(ray_options) as ray:
        scenes = RayScenes(options, ray_options, pool_size(ray, ray_options))  # checked before anything is written
        return pipeline.index_catalog(options, scenes_path, ads_path, consents_path, encoders, scene_ingest=scenes)
