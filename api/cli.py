"""The `visual-intent` command: index, search, demo (and serve, eval, experiment from their own modules).

Only this layer reads flags and the environment; below it everything takes typed arguments.
Errors print one line to stderr and exit 1 (`--debug` shows the traceback).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_ann import AnnOption
from api.cli_storage import DbOption, StorageOption, UnsafeCommitsOption, location
from indexer.encoders import DEFAULT_CLIP_ARCH, DEFAULT_CLIP_PRETRAINED, DEFAULT_TEXT_MODEL
from indexer.errors import VisualIntentError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Search index for AI-generated video: scenario queries over scenes, shots, lineage, consent and ads.",
)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEMO_QUERY_IDS = ("q01", "q02", "q03", "q04", "q05", "q06")
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"visual-intent {version('visual-intent')}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs. Default: off.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Info logs on stderr. Default: off.")] = False,
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("sentence_transformers", "httpx", "huggingface_hub", "root"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def _positive(value: int) -> int:
    if value < 1:
        raise typer.BadParameter("must be at least 1")
    return value


def _engine(value: str) -> str:
    if value not in ("local", "ray"):
        raise typer.BadParameter(f"'{value}' is not one of: local, ray")
    return value


def _positive_or_none(value: int | None) -> int | None:
    return None if value is None else _positive(value)


TextModelOption = Annotated[
    str,
    typer.Option(
        help=f"Text encoder id: st:<model> (torch), onnx:<model> or onnx-int8:<model> (ONNX Runtime), "
        f"hash:<dim> (non-semantic stand-in). Default: {DEFAULT_TEXT_MODEL}."
    ),
]


@app.command()
def index(
    db: DbOption,
    scenes: Annotated[Path | None, typer.Option(help="scenes.jsonl. Default: none.")] = None,
    ads: Annotated[Path | None, typer.Option(help="ads.jsonl. Default: none.")] = None,
    consents: Annotated[Path | None, typer.Option(help="consents.jsonl. Default: none.")] = None,
    strict: Annotated[
        bool, typer.Option(help="Abort before writing on any invalid record. Default: skip them.")
    ] = False,
    rebuild: Annotated[bool, typer.Option(help="Build a fresh index and swap it in. Default: upsert.")] = False,
    text_model: TextModelOption = DEFAULT_TEXT_MODEL,
    clip_model: Annotated[
        str, typer.Option(help=f"open_clip architecture (or config JSON). Default: {DEFAULT_CLIP_ARCH}.")
    ] = DEFAULT_CLIP_ARCH,
    clip_pretrained: Annotated[
        str, typer.Option(help=f"open_clip pretrained tag. Default: {DEFAULT_CLIP_PRETRAINED}.")
    ] = DEFAULT_CLIP_PRETRAINED,
    clip_checkpoint: Annotated[
        Path | None, typer.Option(help="Local CLIP checkpoint; overrides the tag. Default: none.")
    ] = None,
    download_clip_weights: Annotated[
        bool, typer.Option(help="Let open_clip fetch the tag from its hub. Default: off (cache only).")
    ] = False,
    no_clip: Annotated[
        bool, typer.Option("--no-clip", help="Index text channels only. Default: CLIP on when weights load.")
    ] = False,
    media_root: Annotated[
        Path | None, typer.Option(help="Media must live under this folder. Default: the scenes file's folder.")
    ] = None,
    workers: Annotated[int, typer.Option(callback=_positive, help="Media decoding threads. Default: 2.")] = 2,
    chunk_size: Annotated[
        int,
        typer.Option(callback=_positive, help="Scenes per transaction (bounds memory and crash loss). Default: 5000."),
    ] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON. Default: text.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars. Default: off.")] = False,
    c2pa_trust_anchors: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="PEM root certificates for Content Credentials; kept in the index. Default: the index's saved "
            "anchors, else none (signed files are Valid, never Trusted).",
        ),
    ] = None,
    c2pa_allowed_ekus: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Allowed extended key uses, one OID a line. Default: c2pa-rs's."
        ),
    ] = None,
    storage_option: StorageOption = None,
    unsafe_commits: UnsafeCommitsOption = False,
    engine: Annotated[
        str,
        typer.Option(
            callback=_engine,
            help="Where scenes are decoded and encoded: this process, or a Ray Data actor pool (the "
            "'distributed' extra). Default: local.",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="With --engine ray: an existing Ray cluster. Default: start a local Ray.")
    ] = None,
    encode_actors: Annotated[
        int | None,
        typer.Option(
            callback=_positive_or_none,
            help="With --engine ray: encode actors. Default: the cluster's CPUs less one (GPU actors: its GPUs).",
        ),
    ] = None,
    gpus_per_actor: Annotated[
        float, typer.Option(min=0, help="With --engine ray: GPUs per encode actor. Default: 0 (CPU).")
    ] = 0.0,
    ann: AnnOption = "faiss",
) -> None:
    """Validate and index a catalog (scenes, ads, consents) into --db. Re-running resumes: unchanged scenes
    are skipped."""
    from api.render import render_index_summary, render_report
    from indexer.pipeline import IndexOptions, index_catalog

    if not (scenes or ads or consents):
        raise typer.BadParameter("give at least one of --scenes, --ads, --consents")
    if clip_checkpoint is not None and not clip_checkpoint.is_file():
        raise typer.BadParameter(f"{clip_checkpoint} is not a file", param_hint="--clip-checkpoint")
    options = IndexOptions(
        db=location(db, storage_option, unsafe_commits),
        strict=strict,
        rebuild=rebuild,
        text_model=text_model,
        clip_arch=clip_model,
        clip_pretrained=str(clip_checkpoint) if clip_checkpoint else clip_pretrained,
        use_clip=not no_clip,
        download_clip_weights=download_clip_weights or os.environ.get("VISUAL_INTENT_DOWNLOAD_WEIGHTS") == "1",
        media_root=media_root,
        workers=workers,
        progress=not quiet and sys.stderr.isatty(),
        chunk_size=chunk_size,
        c2pa_trust_anchors=c2pa_trust_anchors,
        c2pa_allowed_ekus=c2pa_allowed_ekus,
        ann=ann,
    )
    if engine == "ray":
        from indexer import ray_ingest

        ray_options = ray_ingest.RayOptions(ray_address, encode_actors, gpus_per_actor)
        report = ray_ingest.index_catalog(options, ray_options, scenes, ads, consents)
    elif ray_address or encode_actors or gpus_per_actor:
        raise typer.BadParameter("--ray-address, --encode-actors and --gpus-per-actor need --engine ray")
    else:
        report = index_catalog(options, scenes, ads, consents)
    print(render_index_summary(report), file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2) if as_json else render_report(report))


@app.command()
def validate(
    scenes: Annotated[Path | None, typer.Option(help="scenes.jsonl. Default: none.")] = None,
    ads: Annotated[Path | None, typer.Option(help="ads.jsonl. Default: none.")] = None,
    consents: Annotated[Path | None, typer.Option(help="consents.jsonl. Default: none.")] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Check parents and creatives against this index too. Default: none.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Apply `index --strict` rules. Default: off.")] = False,
    media_root: Annotated[
        Path | None, typer.Option(help="Media must live under this folder. Default: the scenes file's folder.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON. Default: text.")] = False,
) -> None:
    """Run every check `index` makes and write nothing; exit 0 when no record would be rejected, else 1."""
    from api.render import render_summary
    from indexer.schema import SCENES
    from indexer.store import Store
    from indexer.validation import rejected_summary, validate_catalog

    if not (scenes or ads or consents):
        raise typer.BadParameter("give at least one of --scenes, --ads, --consents")
    stored = set(Store.open(db).ids(SCENES)) if db is not None else set()
    result = validate_catalog(scenes, ads, consents, stored, media_root, strict=strict)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        errors = "".join(f"\n  rejecting {e}" for e in result.errors[:50])
        changes, rejected = result.changes.to_list(), rejected_summary(result.errors)
        print(render_summary(result.accepted, changes, rejected, result.lineage_gaps) + errors)
    raise typer.Exit(1 if result.errors else 0)


@app.command()
def search(
    db: DbOption,
    text: Annotated[str | None, typer.Argument(help="Scenario query, e.g. 'cozy evening with a leather sofa'.")] = None,
    k: Annotated[int, typer.Option(callback=_positive, help="Scenes to return. Default: 10.")] = 10,
    sku: Annotated[str | None, typer.Option(help="Product meant by 'this ...'. Default: none.")] = None,
    use: Annotated[str, typer.Option(help="Consent use to check: search or ads. Default: search.")] = "search",
    queries: Annotated[Path | None, typer.Option(help="Batch: queries.jsonl, one JSON result per line.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON. Default: text.")] = False,
    variant: Annotated[
        str,
        typer.Option(
            help="Ranking preset (dense, fts, clip, slots, fusion, full, full+collapse). Default: full+collapse."
        ),
    ] = "full+collapse",
    fusion: Annotated[
        str | None, typer.Option(help="weighted, rrf or learned (a model from train-fusion). Default: the variant's.")
    ] = None,
    no_collapse: Annotated[bool, typer.Option("--no-collapse", help="Return every remix, not one per family.")] = False,
    mmr: Annotated[float | None, typer.Option(help="MMR diversity lambda in [0,1], e.g. 0.7. Default: off.")] = None,
    dwell_weight: Annotated[float | None, typer.Option(help="Engagement prior weight. Default: 0 (off).")] = None,
    negation: Annotated[str | None, typer.Option(help="exclude or demote negated matches. Default: exclude.")] = None,
    no_clip: Annotated[bool, typer.Option("--no-clip", help="Do not load CLIP for this search.")] = False,
    require_credentials: Annotated[
        bool,
        typer.Option(help="Only scenes and ad creatives with a verified C2PA credential. Default: off."),
    ] = False,
    storage_option: StorageOption = None,
) -> None:
    """Search scenes and ads with a scenario query (or a batch with --queries)."""
    from api.batching import BatchReport, search_in_batches
    from api.render import render_response
    from indexer.catalog import read_queries
    from search.engine import PRESETS, Engine, with_overrides

    if variant not in PRESETS:
        raise typer.BadParameter(f"choose one of {', '.join(PRESETS)}", param_hint="--variant")
    if use not in ("search", "ads"):
        raise typer.BadParameter("choose search or ads", param_hint="--use")
    if (text is None) == (queries is None):
        raise typer.BadParameter("give a query TEXT or --queries FILE (not both)")
    options = with_overrides(
        PRESETS[variant],
        fusion=fusion,
        collapse=False if no_collapse else None,
        mmr_lambda=mmr,
        dwell_weight=dwell_weight,
        negation=negation,
        require_credentials=require_credentials or None,
    )
    engine = Engine.open(location(db, storage_option), use_clip=not no_clip)
    batch = read_queries(queries) if queries else None
    items = [(q.query_id, q.text, q.sku, q.use) for q in batch] if batch else [(None, text, sku, use)]

    def run(item: tuple[str | None, str | None, str | None, str]) -> Any:
        return engine.search(item[1] or "", sku=item[2], use=item[3], k=k, options=options)

    cost = BatchReport()
    for (query_id, *_), response in zip(items, search_in_batches(engine, run, items, cost), strict=True):
        if as_json:
            payload = {"query_id": query_id, **response.to_dict()} if query_id else response.to_dict()
            print(json.dumps(payload, ensure_ascii=False, default=str))
        else:
            print(render_response(response) + "\n")
    if batch:
        print(
            f"{len(items)} queries: {cost.texts} texts encoded in {cost.calls} encoder calls, "
            f"{cost.cache_hits} served from the query cache",
            file=sys.stderr,
        )


@app.command()
def recommend(
    db: DbOption,
    positive: Annotated[list[str], typer.Option("--positive", "-p", help="A scene to find more of (repeat).")],
    negative: Annotated[
        list[str] | None, typer.Option("--negative", "-n", help="A scene to steer away from (repeat). Default: none.")
    ] = None,
    text: Annotated[str, typer.Option("--text", help="Text that steers the examples. Default: none.")] = "",
    image: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Reference image (needs CLIP vectors). Default: none."),
    ] = None,
    k: Annotated[int, typer.Option(callback=_positive, help="Scenes to return. Default: 10.")] = 10,
    use: Annotated[str, typer.Option(help="Consent use to check: search or ads. Default: search.")] = "search",
    no_collapse: Annotated[bool, typer.Option("--no-collapse", help="Return every remix, not one per family.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON. Default: text.")] = False,
    no_clip: Annotated[bool, typer.Option("--no-clip", help="Do not load CLIP.")] = False,
    storage_option: StorageOption = None,
) -> None:
    """Scenes like the --positive examples and unlike the --negative ones (strategy: average_vector; examples
    must be eligible for --use)."""
    from PIL import Image

    from api.render import render_response
    from search.engine import Engine, SearchOptions
    from search.recommend import STRATEGY, Examples
    from search.recommend import recommend as recommend_scenes

    if use not in ("search", "ads"):
        raise typer.BadParameter("choose search or ads", param_hint="--use")
    engine = Engine.open(location(db, storage_option), use_clip=not no_clip)
    image_vector = None
    if image is not None:
        if engine.clip is None:
            raise typer.BadParameter(f"this index cannot use an image: {engine.clip_status}", param_hint="--image")
        with Image.open(image) as picture:
            image_vector = engine.clip.encode_images([picture.convert("RGB")])[0]
    examples = Examples(tuple(positive), tuple(negative or ()))
    options = SearchOptions(collapse=not no_collapse)
    response = recommend_scenes(engine, examples, text, use=use, k=k, options=options, image_vector=image_vector)
    if as_json:
        payload = {"positive": positive, "negative": negative or [], "strategy": STRATEGY, **response.to_dict()}
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        unlike = f", unlike {', '.join(negative)}" if negative else ""
        print(f"like {', '.join(positive)}{unlike} ({STRATEGY})")
        print(render_response(response))


@app.command()
def demo(
    db: Annotated[Path, typer.Option("--db", help="Where to build the demo index. Default: ./demo-index.")] = Path(
        "demo-index"
    ),
    fixtures: Annotated[Path, typer.Option(help="Fixture folder. Default: the bundled fixtures/.")] = FIXTURES,
    k: Annotated[int, typer.Option(callback=_positive, help="Scenes per query. Default: 3.")] = 3,
) -> None:
    """Index the bundled fixture catalog and run a handful of scenario queries."""
    from api.render import render_report, render_response
    from indexer.catalog import read_queries
    from indexer.pipeline import IndexOptions, index_catalog
    from search.engine import Engine

    catalog = fixtures / "catalog"
    options = IndexOptions(db=db, rebuild=True, media_root=fixtures, progress=sys.stderr.isatty())
    report = index_catalog(options, catalog / "scenes.jsonl", catalog / "ads.jsonl", catalog / "consents.jsonl")
    print(render_report(report) + "\n")
    engine = Engine.open(db)
    wanted = {q.query_id: q for q in read_queries(catalog / "queries.jsonl")}
    for query_id in DEMO_QUERY_IDS:
        query = wanted.get(query_id)
        if query is not None:
            print(render_response(engine.search(query.text, sku=query.sku, use=query.use, k=k)) + "\n")


@app.command()
def serve(
    db: DbOption,
    host: Annotated[str, typer.Option(help="Address to bind. Default: 127.0.0.1.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port. Default: 8000.")] = 8000,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(help="JSON file mapping each API key to its scopes. Default: VISUAL_INTENT_API_KEYS only."),
    ] = None,
    insecure_local: Annotated[
        bool, typer.Option("--insecure-local", help="Serve without API keys on a loopback address. Default: off.")
    ] = False,
    no_clip: Annotated[bool, typer.Option("--no-clip", help="Do not load CLIP (no image search).")] = False,
    storage_option: StorageOption = None,
    unsafe_commits: UnsafeCommitsOption = False,
    ann: AnnOption = "faiss",
) -> None:
    """Serve the search API, the search page (/) and /metrics; keys come from VISUAL_INTENT_API_KEYS."""
    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.settings import Settings
    from indexer.store import read_manifest

    where = location(db, storage_option, unsafe_commits)
    overrides: dict[str, object] = {"db": where.uri, "host": host, "port": port, "insecure_local": insecure_local}
    if ann != "faiss":  # like --no-clip: the flag overrides VISUAL_INTENT_ANN only when given
        overrides["ann"] = ann
    overrides |= {"storage_options": where.storage_options, "unsafe_commits": unsafe_commits}
    if api_keys_file is not None:
        overrides["api_keys_file"] = api_keys_file
    if no_clip:
        overrides["use_clip"] = False
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:  # messages only: the input (which may hold keys) is never printed
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise typer.BadParameter(reasons) from None
    read_manifest(where)  # a missing or incompatible index fails here, in one line
    if insecure_local and not settings.all_keys():
        print("warning: --insecure-local: no API keys, every request gets every scope", file=sys.stderr)
    level = "debug" if _state["debug"] else "info"
    uvicorn.run(create_app(settings), host=host, port=port, log_level=level, server_header=False)


VariantsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--variant",
        help="A variant to evaluate; repeat for several, the first is the baseline. Scenes: dense, fts, clip, "
        "slots, fusion, full, full+collapse. Ads: keyword, dense, hybrid, intent. Default: see the command.",
    ),
]
DepthOption = Annotated[int, typer.Option(callback=_positive, help="Results ranked per query. Default: 100.")]
JsonOption = Annotated[bool, typer.Option("--json", help='Print {"variants": {NAME: {METRIC: value}}}. Default: text.')]
ReportOption = Annotated[
    Path | None, typer.Option(help="Write summary.md, results.json and PNG plots into this folder. Default: none.")
]
RunOutOption = Annotated[
    Path | None,
    typer.Option(help="Write the rankings in TREC run format (several variants: FILE.<variant>). Default: none."),
]
SeedOption = Annotated[int, typer.Option(help="Seed for bootstrap intervals and randomization tests. Default: 0.")]
NoAnnOption = Annotated[
    bool, typer.Option("--no-ann-recall", help="Skip the FAISS HNSW vs exact recall check. Default: measured.")
]


def _emit_evaluation(result: Any, as_json: bool, report: Path | None, run_out: Path | None) -> None:
    from search.evaluation.report import to_text, write_report, write_runs

    for path in write_runs(result, run_out) if run_out else []:
        print(f"wrote run {path}", file=sys.stderr)
    for path in write_report(result, report) if report else []:
        print(f"wrote {path}", file=sys.stderr)
    if as_json:
        payload = result.evaluation.to_json()
        if result.ann is not None:
            payload["ann_recall"] = result.ann.to_dict()
        print(json.dumps(payload, indent=2))
    else:
        print(to_text(result))


@app.command("eval")
def evaluate(
    db: DbOption,
    queries: Annotated[Path, typer.Option(help="Queries JSONL (query_id, text, sku, use, optional slice).")],
    qrels: Annotated[Path, typer.Option(help="TREC qrels: 'query_id 0 doc_id grade' per line.")],
    variant: VariantsOption = None,
    kind: Annotated[str, typer.Option(help="What the qrels judge: scenes or ads. Default: scenes.")] = "scenes",
    depth: DepthOption = 100,
    as_json: JsonOption = False,
    report: ReportOption = None,
    run_out: RunOutOption = None,
    now: Annotated[str | None, typer.Option(help="Check consent at this ISO time. Default: the current time.")] = None,
    seed: SeedOption = 0,
    no_ann_recall: NoAnnOption = False,
    no_clip: Annotated[bool, typer.Option("--no-clip", help="Do not load CLIP.")] = False,
    storage_option: StorageOption = None,
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 and MAP (ranx) per variant. Default variants: scenes dense, fts, clip,
    slots, fusion, full; ads keyword, dense, hybrid, intent."""
    from search.engine import Engine
    from search.evaluation.experiment import adhoc_spec, evaluate_spec, parse_time
    from search.evaluation.runs import DEFAULT_VARIANTS

    if kind not in DEFAULT_VARIANTS:
        raise typer.BadParameter("choose scenes or ads", param_hint="--kind")
    names = variant or list(DEFAULT_VARIANTS[kind])
    spec = adhoc_spec("eval", kind, queries, qrels, names, depth, seed, parse_time(now), not no_ann_recall)
    result = evaluate_spec(spec, Engine.open(location(db, storage_option), use_clip=not no_clip))
    _emit_evaluation(result, as_json, report, run_out)


@app.command("eval-beir")
def eval_beir(
    dataset: Annotated[Path, typer.Option(help="BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="Qrels split (qrels/<split>.tsv). Default: test.")] = "test",
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Index folder, reused when it holds this corpus. Default: a temporary folder."),
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Re-index even when --db holds the corpus. Default: off.")] = False,
    context: Annotated[
        bool,
        typer.Option(help="Index through the full pipeline, inferring scene slots (setting, tone, ...). Default: off."),
    ] = False,
    variant: VariantsOption = None,
    depth: DepthOption = 100,
    as_json: JsonOption = False,
    report: ReportOption = None,
    run_out: RunOutOption = None,
    seed: SeedOption = 0,
    no_ann_recall: NoAnnOption = False,
    text_model: TextModelOption = DEFAULT_TEXT_MODEL,
) -> None:
    """Index a BEIR corpus as scenes (text-only unless --context) and evaluate it. Default variants: dense, fts,
    fusion."""
    from search.engine import Engine
    from search.evaluation.beir import beir_index, beir_spec, load_beir
    from search.evaluation.experiment import evaluate_spec

    data = load_beir(dataset, split)
    spec = beir_spec(data, variant or ["dense", "fts", "fusion"], depth, seed)
    spec.ann_recall = not no_ann_recall
    with beir_index(data, db, rebuild, progress=sys.stderr.isatty(), context=context, text_model=text_model) as path:
        result = evaluate_spec(spec, Engine.open(path, use_clip=False), data.queries, data.qrels)
    _emit_evaluation(result, as_json, report, run_out)


@app.command("train-fusion")
def train_fusion(
    db: Annotated[Path, typer.Option("--db", help="Index of the judged catalog (e.g. the fixtures).")],
    queries: Annotated[Path, typer.Option(help="Its queries JSONL.")] = FIXTURES / "catalog" / "queries.jsonl",
    qrels: Annotated[Path, typer.Option(help="Its TREC qrels.")] = FIXTURES / "catalog" / "qrels.txt",
    now: Annotated[str, typer.Option(help="Consent time for the catalog queries.")] = "2026-11-25T00:00:00Z",
    name: Annotated[str, typer.Option(help="The catalog set's name in the manifest. Default: fixtures.")] = "fixtures",
    beir: Annotated[Path | None, typer.Option(help="A BEIR dataset folder to train on too. Default: none.")] = None,
    beir_db: Annotated[
        Path | None, typer.Option(help="Its index, built with context inference (reused). Default: a temp folder.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Model folder. Default: search/ltr/models.")] = Path("search/ltr/models"),
    folds: Annotated[int, typer.Option(callback=_positive, help="Cross-validation folds. Default: 5.")] = 5,
    seed: SeedOption = 0,
) -> None:
    """Train learned fusion (LightGBM LambdaMART) on judged sets; prints held-out nDCG@10 against RRF."""
    from contextlib import ExitStack

    from indexer.catalog import read_queries
    from search.engine import Engine
    from search.evaluation.beir import beir_index, load_beir
    from search.evaluation.experiment import parse_time
    from search.evaluation.metrics import read_trec_qrels
    from search.ltr.train import JudgedSet, train

    sets = [
        JudgedSet(
            name,
            Engine.open(db, use_clip=False),
            read_queries(queries),
            read_trec_qrels(qrels),
            parse_time(now),
            str(qrels),
        )
    ]
    with ExitStack() as stack:
        if beir is not None:
            data = load_beir(beir)
            path = stack.enter_context(beir_index(data, beir_db, progress=sys.stderr.isatty(), context=True))
            source = str(beir / "qrels" / "test.tsv")
            sets.append(
                JudgedSet(
                    beir.resolve().name, Engine.open(path, use_clip=False), data.queries, data.qrels, None, source
                )
            )
        report = train(sets, out, k=folds, seed=seed)
    print(json.dumps(report.to_json(), indent=2))


experiment_app = typer.Typer(no_args_is_help=True, help="Relevance experiments described in TOML files.")
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("run")
def experiment_run(
    file: Annotated[Path, typer.Argument(help="Experiment TOML, e.g. fixtures/experiments/ad_relevance.toml.")],
    out: Annotated[Path, typer.Option(help="Report folder: summary.md, results.json, PNG plots.")],
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Evaluate this index. Default: index the file's catalog in a temporary folder."),
    ] = None,
) -> None:
    """Run every variant of an experiment, test them against its baseline and write the report."""
    from search.evaluation.experiment import load_spec, run_experiment
    from search.evaluation.report import to_text, write_report

    result = run_experiment(load_spec(file), db)
    for path in write_report(result, out):
        print(f"wrote {path}", file=sys.stderr)
    print(to_text(result))


def _register_trust_commands() -> None:
    from api import cli_trust

    app.command()(cli_trust.lineage)
    app.command()(cli_trust.audit)


_register_trust_commands()


def main() -> None:
    try:
        app()
    except VisualIntentError as exc:
        if _state["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
