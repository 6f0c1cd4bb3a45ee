"""A local object-storage stack without docker: moto's S3 server on 127.0.0.1, one bucket, and optionally the
fixture catalog indexed into it and two `visual-intent serve` replicas on that index. Ctrl-C stops them all.

    python scripts/local_stack.py                      # S3 only: prints the env and options to use
    python scripts/local_stack.py --index --replicas 2 # + the fixtures indexed into s3://BUCKET/demo, 2 replicas

Needs the distributed extra: pip install -e '.[distributed]'.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def _say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:g} s")


def _options(endpoint: str) -> dict[str, str]:
    return {
        "aws_endpoint": endpoint,
        "allow_http": "true",
        "region": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }


def start_s3(port: int, bucket: str, quiet: bool = False) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """moto's S3 server on 127.0.0.1:`port` with one bucket; its storage options (LanceDB's names)."""
    import boto3

    sink = subprocess.DEVNULL if quiet else None
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=sink, stderr=sink
    )
    _wait(port, moto, "moto", 30)
    options = _options(f"http://127.0.0.1:{port}")
    boto3.client(
        "s3",
        endpoint_url=options["aws_endpoint"],
        region_name=options["region"],
        aws_access_key_id=options["aws_access_key_id"],
        aws_secret_access_key=options["aws_secret_access_key"],
    ).create_bucket(Bucket=bucket)
    return moto, options


def _storage_flags(options: dict[str, str]) -> list[str]:
    return [arg for key, value in options.items() for arg in ("--storage-option", f"{key}={value}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="S3 port. Default: a free one.")
    parser.add_argument("--bucket", default="visual-intent", help="Bucket (3+ characters). Default: visual-intent.")
    parser.add_argument("--index", action="store_true", help="Index the fixture catalog into s3://BUCKET/demo.")
    parser.add_argument("--replicas", type=int, default=0, help="serve replicas to start (needs an index). Default 0.")
    parser.add_argument("--first-port", type=int, default=8000, help="First replica's port. Default: 8000.")
    args = parser.parse_args()
    if len(args.bucket) < 3:
        parser.error("bucket names need at least 3 characters")

    port = args.port or _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    children: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    moto, options = start_s3(port, args.bucket)
    children.append(moto)
    db = f"s3://{args.bucket}/demo"
    flags = " ".join(shlex.quote(f) for f in _storage_flags(options))
    _say(f"S3 (moto) at {endpoint}, bucket {args.bucket}\n")
    _say("# either export the environment ...")
    _say(f"export AWS_ENDPOINT_URL={endpoint} AWS_ALLOW_HTTP=true AWS_REGION=us-east-1")
    _say("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test")
    _say("# ... or pass the options on each command:")
    _say(
        f"visual-intent index --db {db} {flags} --scenes fixtures/catalog/scenes.jsonl --media-root fixtures --no-clip"
    )
    _say(f"visual-intent serve --db {db} {flags} --insecure-local --no-clip --port 8000\n")

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "api"]
    if args.index:
        catalog = FIXTURES / "catalog"
        command = [*cli, "index", "--db", db, *_storage_flags(options), "--no-clip", "--quiet"]
        command += ["--scenes", str(catalog / "scenes.jsonl"), "--ads", str(catalog / "ads.jsonl")]
        command += ["--consents", str(catalog / "consents.jsonl"), "--media-root", str(FIXTURES)]
        _say("indexing the fixtures into", db)
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    for i in range(args.replicas):
        replica_port = args.first_port + i
        command = [*cli, "serve", "--db", db, *_storage_flags(options), "--insecure-local", "--no-clip"]
        replica = subprocess.Popen([*command, "--port", str(replica_port)], env=env)
        children.append(replica)
        _wait(replica_port, replica, f"replica {i + 1}", 180)
        _say(f"replica {i + 1}: http://127.0.0.1:{replica_port}")
    _say("running; Ctrl-C stops everything")
    while True:
        time.sleep(1)
        for child in children:
            if child.poll() is not None:
                sys.stderr.write(f"a child exited ({child.args[:4]}); stopping\n")
                stop()


if __name__ == "__main__":
    main()
