"""The `visual-intent` command on an S3 prefix: `index` and `search` with storage options from the AWS_*
environment or from `--storage-option`, and the one-line errors for what object storage cannot do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.distributed.conftest import BUCKET, S3Server

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def test_index_and_search_on_s3_from_the_command_line(catalog: dict[str, Path], s3_server: S3Server) -> None:
    db = f"s3://{BUCKET}/cli"
    aws_env = {
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    index = ["index", "--db", db, "--scenes", str(catalog["scenes"]), "--consents", str(catalog["consents"])]
    done = run(*index, "--no-clip", "--quiet", "--text-model", "hash:64", env=aws_env)
    assert done.returncode == 0, done.stderr
    assert "indexed 8 scenes (2 shots)" in done.stdout and db in done.stdout + done.stderr
    flags = [arg for k, v in s3_server.options.items() for arg in ("--storage-option", f"{k}={v}")]
    found = run("search", "--db", db, *flags, "leather sofa", "--json", "--variant", "fts")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["scenes"][0]["scene_id"] == "s4"
    thumbs = s3_server.location("cli").list("thumbs/s4")
    assert thumbs  # the keyframe thumbnail is an object next to the tables

    rebuild = run(*index, "--no-clip", "--quiet", "--text-model", "hash:64", "--rebuild", env=aws_env)
    assert rebuild.returncode != 0 and "object storage cannot do" in rebuild.stderr
    assert len(rebuild.stderr.strip().splitlines()) == 1  # one line, no traceback
    bad = run("search", "--db", db, "--storage-option", "region", "sofa")
    assert bad.returncode != 0 and "KEY=VALUE" in bad.stderr
