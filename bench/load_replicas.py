"""Two `serve` replicas on one index in S3 vs one: the load script's searches (bench/load_api.py) against
the fixture catalog in moto's S3 server on loopback, and against a local folder for the object-store overhead.

    python bench/load_replicas.py [--levels 1,8,32] [--requests 200] [--distinct]

Rows: `local x1` (one replica, local folder), `s3 x1` (one replica, index in S3), `s3 x2` (two replicas on the
same S3 index, client i sending to replica i mod 2; p50/p99 over all requests).
Needs the distributed extra. On one machine the two replicas share its cores: this measures the replica
machinery, not the scale-out a second machine would add.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import load_api  # noqa: E402
from local_stack import start_s3  # noqa: E402

ROOT = load_api.ROOT
BUCKET = "vi-bench"


def serve(db: str, options: dict[str, str], key: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    extra = ["--no-clip"] + [arg for name, value in options.items() for arg in ("--storage-option", f"{name}={value}")]
    return load_api.start_server(db, key, log, extra_args=extra, wait_s=180)


async def measure(urls: list[str], key: str, clients: int, args: argparse.Namespace, label: str) -> load_api.Level:
    """`clients` concurrent clients, client i sending to replica i mod len(urls); latencies over all requests."""
    latencies: list[float] = []
    errors = issued = 0
    started = time.perf_counter()
    deadline = started + args.max_seconds
    https = [httpx.AsyncClient(base_url=u, headers={"X-API-Key": key}, timeout=30.0) for u in urls]

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while issued < args.requests and time.perf_counter() < deadline:
            body = BODIES[issued % len(BODIES)]
            if args.distinct:
                body = {**body, "query": f"{body['query']} #{next(load_api.SERIAL)}"}
            issued += 1
            sent = time.perf_counter()
            try:
                ok = (await http.post("/v1/search", json=body)).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - sent) * 1000)
            errors += 0 if ok else 1

    try:
        await asyncio.gather(*(worker(https[i % len(https)]) for i in range(clients)))
    finally:
        for http in https:
            await http.aclose()
    seconds = time.perf_counter() - started
    return load_api.Level(
        code=label,
        clients=clients,
        requests=len(latencies),
        errors=errors,
        p50_ms=round(load_api.percentile(latencies, 50), 1),
        p99_ms=round(load_api.percentile(latencies, 99), 1),
        mean_ms=round(sum(latencies) / len(latencies), 1) if latencies else float("nan"),
        rps=round(len(latencies) / seconds, 1) if seconds else 0.0,
        seconds=round(seconds, 1),
    )


BODIES = load_api.load_queries()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,8,32", help="Concurrent clients per level. Default: 1,8,32.")
    parser.add_argument("--requests", type=int, default=200, help="Requests per level. Default: 200.")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="Time cap per level. Default: 60.")
    parser.add_argument("--distinct", action="store_true", help="Every query text new (no query cache hits).")
    parser.add_argument("--json", action="store_true", help="Print JSON. Default: a table.")
    args = parser.parse_args()
    key = secrets.token_urlsafe(24)
    port = load_api.free_port()
    moto, options = start_s3(port, BUCKET, quiet=True)
    children: list[subprocess.Popen[bytes]] = [moto]
    try:
        with tempfile.TemporaryDirectory(prefix="vi-replicas-") as tmp:
            local = Path(tmp) / "index"
            load_api.build_fixture_index(local, "st:all-MiniLM-L6-v2")
            remote = f"s3://{BUCKET}/index"
            from indexer.location import IndexLocation
            from indexer.pipeline import IndexOptions, index_catalog

            catalog = load_api.FIXTURES / "catalog"
            index_catalog(
                IndexOptions(db=IndexLocation.of(remote, options), use_clip=False, media_root=load_api.FIXTURES,
                             progress=False),
                catalog / "scenes.jsonl", catalog / "ads.jsonl", catalog / "consents.jsonl",
            )  # fmt: skip
            results: list[load_api.Level] = []
            setups = [("local x1", [(str(local), {})]), ("s3 x1", [(remote, options)]),
                      ("s3 x2", [(remote, options), (remote, options)])]  # fmt: skip
            for label, replicas in setups:
                urls = []
                for i, (db, opts) in enumerate(replicas):
                    server, url = serve(db, opts, key, Path(tmp) / f"{label}-{i}.log")
                    children.append(server)
                    urls.append(url)
                for url in urls:  # warm-up
                    asyncio.run(load_api.run_level(url, key, 1, 5, args.max_seconds, BODIES, False, "warm"))
                for clients in (int(n) for n in args.levels.split(",")):
                    results.append(asyncio.run(measure(urls, key, clients, args, label)))
                    print(results[-1], file=sys.stderr, flush=True)
                for server in children[1:]:
                    server.send_signal(signal.SIGTERM)
                    server.wait(timeout=30)
                del children[1:]
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)
    load_api.report(results, args.json)


if __name__ == "__main__":
    main()
