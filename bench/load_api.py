"""Load test for `visual-intent serve`: p50/p99 latency and errors at 1, 8 and 32 concurrent clients.

Loopback only and bounded: each level sends at most --requests searches and stops issuing new ones after
--max-seconds. By default it indexes the bundled fixture catalog into a temporary folder (text channels only),
starts the service on 127.0.0.1 as a child process with a random API key, and stops it at the end.

With --baseline REF it also serves the code of git commit REF (a `git archive` copy in the temporary folder)
on the same catalog (indexed by that commit's own code when the fixture index is used, since an older commit may
read only its own schema version) and measures both, level by level in turn, in one run: a before/after table.
With --distinct every request's text is new (its number is appended), so the query cache cannot answer it.

    python bench/load_api.py                       # build the fixture index, serve it, measure
    python bench/load_api.py --baseline a4e98a9     # the same, side by side with an older commit
    python bench/load_api.py --db demo-index        # serve an existing index
    python bench/load_api.py --url http://127.0.0.1:8000 --key KEY   # a service already running on loopback
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SERIAL = itertools.count()  # --distinct: a number never used before in this run, across levels and services


@dataclass
class Level:
    code: str
    clients: int
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    rps: float
    seconds: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def load_queries() -> list[dict[str, Any]]:
    lines = (FIXTURES / "catalog" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line) for line in lines if line.strip()]
    return [{"query": q["text"], "k": 10, **({"sku": q["sku"]} if q.get("sku") else {})} for q in queries]


async def run_level(
    url: str, key: str, clients: int, total: int, max_seconds: float, bodies: list[Any], distinct: bool, code: str
) -> Level:
    latencies: list[float] = []
    errors = 0
    issued = 0
    started = time.perf_counter()
    deadline = started + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=30.0, limits=limits) as http:

        async def worker() -> None:
            nonlocal issued, errors
            while issued < total and time.perf_counter() < deadline:
                body = bodies[issued % len(bodies)]
                if distinct:
                    body = {**body, "query": f"{body['query']} #{next(SERIAL)}"}
                issued += 1
                sent = time.perf_counter()
                try:
                    response = await http.post("/v1/search", json=body)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - sent) * 1000)
                errors += 0 if ok else 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    seconds = time.perf_counter() - started
    return Level(
        code=code,
        clients=clients,
        requests=len(latencies),
        errors=errors,
        p50_ms=round(percentile(latencies, 50), 1),
        p99_ms=round(percentile(latencies, 99), 1),
        mean_ms=round(statistics.fmean(latencies), 1) if latencies else float("nan"),
        rps=round(len(latencies) / seconds, 1) if seconds else 0.0,
        seconds=round(seconds, 1),
    )


def build_fixture_index(db: Path, text_model: str) -> None:
    from indexer.pipeline import IndexOptions, index_catalog

    catalog = FIXTURES / "catalog"
    options = IndexOptions(db=db, use_clip=False, media_root=FIXTURES, progress=False, text_model=text_model)
    report = index_catalog(options, catalog / "scenes.jsonl", catalog / "ads.jsonl", catalog / "consents.jsonl")
    print(f"indexed {report.scenes} scenes, {report.ads} ads into {db} in {report.seconds:.1f}s", file=sys.stderr)


def build_index_with(code: Path, db: Path, text_model: str) -> None:
    """The fixture index as the code in `code` builds it: an older commit may read only its own schema version."""
    catalog = FIXTURES / "catalog"
    command = [
        sys.executable, "-m", "api", "index", "--db", str(db), "--scenes", str(catalog / "scenes.jsonl"),
        "--ads", str(catalog / "ads.jsonl"), "--consents", str(catalog / "consents.jsonl"),
        "--media-root", str(FIXTURES), "--no-clip", "--text-model", text_model,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
    subprocess.run(command, cwd=code, env=env, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def baseline_tree(ref: str, into: Path) -> Path:
    """The files of commit `ref` (git archive), to serve the code as it was."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def start_server(
    db: Path | str, key: str, log: Path, code: Path = ROOT, extra_args: list[str] | None = None, wait_s: float = 120
) -> tuple[subprocess.Popen[bytes], str]:
    """`visual-intent serve` on a free loopback port (read key `key`), once it answers /v1/health."""
    port = free_port()
    env = {
        **os.environ,
        "VISUAL_INTENT_API_KEYS": json.dumps({key: ["read"]}),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(code),  # this tree's packages win over any installed copy
    }
    command = [sys.executable, "-m", "api", "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)]
    command += extra_args or []
    with log.open("wb") as sink:  # a file, not a pipe: access logs must never block the server
        server = subprocess.Popen(command, cwd=code, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the service exited early:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.terminate()
    raise SystemExit(f"the service did not become healthy within {wait_s:g} s")


def check_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise SystemExit(f"--url must be http:// on a loopback address (127.0.0.1, localhost, ::1), not {url!r}")
    return url.rstrip("/")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="Index to serve. Default: the fixture catalog, indexed to a temp dir.")
    parser.add_argument("--url", help="A running service on loopback (skips starting one). Default: start one.")
    parser.add_argument("--key", help="API key for --url (read scope). Default: none.")
    parser.add_argument(
        "--text-model",
        default="st:all-MiniLM-L6-v2",
        help="Text encoder of the fixture index. Default: st:all-MiniLM-L6-v2.",
    )
    parser.add_argument("--baseline", help="Also serve this git commit's code on the same index. Default: none.")
    parser.add_argument(
        "--distinct", action="store_true", help="Append the request number to every query. Default: off."
    )
    parser.add_argument("--levels", default="1,8,32", help="Concurrent clients per level. Default: 1,8,32.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per level. Default: 200.")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="Time cap per level. Default: 60.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table. Default: table.")
    args = parser.parse_args()
    if args.requests < 1 or args.max_seconds <= 0:
        parser.error("--requests and --max-seconds must be positive")
    if args.baseline and args.url:
        parser.error("--baseline starts its own services; it cannot be used with --url")
    return args


def report(levels: list[Level], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(level) for level in levels], indent=2))
        return
    print(
        f"{'code':<10} {'clients':>7} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'req/s':>7}"
    )
    for lv in levels:
        print(
            f"{lv.code:<10} {lv.clients:>7} {lv.requests:>8} {lv.errors:>6} {lv.p50_ms:>8.1f} {lv.p99_ms:>8.1f} "
            f"{lv.mean_ms:>8.1f} {lv.rps:>7.1f}"
        )


def main() -> None:
    args = parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    bodies = load_queries()
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="vi-load-") as tmp:
        targets: list[tuple[str, str]] = []  # (code label, url)
        if args.url:
            key = args.key or ""
            targets.append(("service", check_loopback(args.url)))
        else:
            db = args.db
            if db is None:
                db = Path(tmp) / "index"
                build_fixture_index(db, args.text_model)
            key = secrets.token_urlsafe(24)
            trees = [(args.baseline, baseline_tree(args.baseline, Path(tmp) / "baseline"))] if args.baseline else []
            for label, code in [*trees, ("current", ROOT)]:
                served = db
                if code != ROOT and args.db is None:  # the baseline serves the same catalog, indexed by its own code
                    served = Path(tmp) / f"index-{label}"
                    build_index_with(code, served, args.text_model)
                server, url = start_server(served, key, Path(tmp) / f"server-{len(servers)}.log", code)
                servers.append(server)
                targets.append((label, url))
        try:
            for label, url in targets:  # warm-up (not measured, and never the measured texts in --distinct mode)
                asyncio.run(run_level(url, key, 1, min(5, args.requests), args.max_seconds, bodies, False, label))
            results = [
                asyncio.run(run_level(url, key, n, args.requests, args.max_seconds, bodies, args.distinct, label))
                for n in levels
                for label, url in targets  # level by level, code by code: both see the same machine state
            ]
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    report(results, args.json)


if __name__ == "__main__":
    main()
