"""Where an index lives: a local folder (the default) or a prefix on object storage (`s3://`, `gs://`, `az://`).

An `IndexLocation` is the URI plus the storage options LanceDB and the side objects (manifest, FAISS layers,
thumbnails, trust anchors) are read with. A local folder behaves exactly as before: JSON replaced atomically
through a temporary file, the same layout. On object storage every small object is one PUT (atomic per
object); nothing is renamed, and nothing relies on a local file lock.

Storage options use the names LanceDB (object_store) reads: `aws_endpoint`, `region`, `allow_http`,
`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`. The `AWS_*` environment variables
(`AWS_ENDPOINT_URL`, `AWS_REGION`, ...) are read by the entry points (`from_env`); explicit options win.

Concurrent writers: Lance commits a table version by writing its manifest with a conditional put
(`If-None-Match: *`, put-if-absent). An S3-compatible store that ignores the header lets two writers overwrite
each other's commit silently, so `require_conditional_put` probes the bucket once per process (two conditional
PUTs of the same key: the second must be refused) and refuses with a clear error unless `unsafe_commits` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from indexer.errors import VisualIntentError

REMOTE_SCHEMES = ("s3", "gs", "az", "abfs")
PROBE_DIR = "_probe"
# AWS_* environment variables and the storage option each one sets (object_store's names)
ENV_OPTIONS = {
    "AWS_ENDPOINT_URL": "aws_endpoint",
    "AWS_ENDPOINT_URL_S3": "aws_endpoint",
    "AWS_ENDPOINT": "aws_endpoint",
    "AWS_REGION": "region",
    "AWS_DEFAULT_REGION": "region",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_ALLOW_HTTP": "allow_http",
}
# accepted spellings -> the canonical option name
_ALIASES = {
    "endpoint": "aws_endpoint",
    "endpoint_url": "aws_endpoint",
    "aws_endpoint_url": "aws_endpoint",
    "aws_region": "region",
    "access_key_id": "aws_access_key_id",
    "secret_access_key": "aws_secret_access_key",
    "session_token": "aws_session_token",
    "aws_allow_http": "allow_http",
}
_probed: set[str] = set()
_probe_lock = threading.Lock()


class StorageError(VisualIntentError):
    """The object store cannot hold an index safely, or could not be reached."""


def parse_storage_options(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings (the CLI's repeatable `--storage-option`) as a dict."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise VisualIntentError(f"--storage-option needs KEY=VALUE, got '{pair}' (e.g. region=us-east-1)")
        out[key.strip()] = value
    return out


def options_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Storage options named by `AWS_*` variables (the first spelling found wins)."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for var, key in ENV_OPTIONS.items():
        if env.get(var) and key not in out:
            out[key] = env[var]
    return out


@dataclass(frozen=True)
class IndexLocation:
    uri: str  # a local folder, or scheme://bucket/prefix
    options: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # repr=False: may hold credentials
    unsafe_commits: bool = False  # skip the conditional-put check (the user accepts lost commits)

    @classmethod
    def of(
        cls, db: str | Path | IndexLocation, options: Mapping[str, str] | None = None, unsafe_commits: bool = False
    ) -> IndexLocation:
        if isinstance(db, IndexLocation):
            return db
        text = str(db)
        scheme = urlparse(text).scheme
        if scheme in REMOTE_SCHEMES:
            canonical = {_ALIASES.get(k.lower(), k.lower()): v for k, v in (options or {}).items()}
            return cls(text.rstrip("/"), tuple(sorted(canonical.items())), unsafe_commits)
        if scheme and "://" in text:
            raise VisualIntentError(
                f"--db '{text}': unsupported scheme '{scheme}://'; use a folder, s3://, gs:// or az://"
            )
        return cls(str(Path(text)), (), unsafe_commits)

    @property
    def is_local(self) -> bool:
        return urlparse(self.uri).scheme not in REMOTE_SCHEMES

    @property
    def scheme(self) -> str:
        return urlparse(self.uri).scheme if not self.is_local else "file"

    @property
    def local_path(self) -> Path:
        if not self.is_local:
            raise VisualIntentError(f"{self.uri} is on object storage, not a local folder")
        return Path(self.uri)

    @property
    def storage_options(self) -> dict[str, str]:
        return dict(self.options)

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.uri

    def child(self, relative: str) -> str:
        """The URI (or local path) of an object under the index."""
        return str(self.local_path / relative) if self.is_local else f"{self.uri}/{relative}"

    def connect_args(self, relative: str) -> dict[str, Any]:
        """`lancedb.connect` keyword arguments for a folder under the index."""
        return {"uri": self.child(relative), **({"storage_options": self.storage_options} if self.options else {})}

    # small objects -----------------------------------------------------------------------------------------------

    def exists(self, relative: str) -> bool:
        if self.is_local:
            return (self.local_path / relative).is_file()
        from pyarrow import fs

        filesystem, path = self._fs(relative)
        return bool(filesystem.get_file_info(path).type == fs.FileType.File)

    def read_bytes(self, relative: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        if self.is_local:
            target = self.local_path / relative
            return target.read_bytes() if target.is_file() else None
        filesystem, path = self._fs(relative)
        try:
            with filesystem.open_input_stream(path) as fh:
                return bytes(fh.read())
        except FileNotFoundError:
            return None
        except OSError as exc:  # pyarrow reports a missing S3 key as an OSError on some versions
            if "NoSuchKey" in str(exc) or "does not exist" in str(exc) or "Path does not exist" in str(exc):
                return None
            raise StorageError(f"cannot read {self.child(relative)}: {exc}") from None

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Local: a temporary file renamed over the target (readers never see a partial file). Remote: one PUT."""
        if self.is_local:
            target = self.local_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
            return
        filesystem, path = self._fs(relative)
        with filesystem.open_output_stream(path) as fh:
            fh.write(data)

    def read_json(self, relative: str) -> Any | None:
        data = self.read_bytes(relative)
        return None if data is None else json.loads(data.decode("utf-8"))

    def write_json(self, relative: str, value: Any) -> None:
        self.write_bytes(relative, json.dumps(value, indent=2, sort_keys=True).encode("utf-8"))

    def delete(self, relative: str) -> None:
        if self.is_local:
            (self.local_path / relative).unlink(missing_ok=True)
            return
        filesystem, path = self._fs(relative)
        try:
            filesystem.delete_file(path)
        except FileNotFoundError:
            pass

    def list(self, relative: str) -> list[str]:
        """Names of the objects directly under a folder (empty when there is none)."""
        if self.is_local:
            folder = self.local_path / relative
            return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        from pyarrow import fs

        filesystem, path = self._fs(relative)
        infos = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == fs.FileType.File)

    def delete_tree(self) -> None:
        """Remove the whole index (a failed first run leaves nothing behind)."""
        if self.is_local:
            shutil.rmtree(self.local_path, ignore_errors=True)
            return
        filesystem, path = self._fs("")
        try:
            filesystem.delete_dir(path.rstrip("/"))
        except (FileNotFoundError, OSError):
            pass

    def _fs(self, relative: str) -> tuple[Any, str]:
        """A pyarrow filesystem for the store and the object's path in it."""
        parsed = urlparse(self.child(relative))
        key = f"{parsed.netloc}{parsed.path}"
        return filesystem(self), key

    # concurrent writers ------------------------------------------------------------------------------------------

    def require_conditional_put(self) -> None:
        """Refuse an S3-compatible store that does not honour `If-None-Match: *` (checked once per process)."""
        if self.is_local or self.scheme != "s3" or self.unsafe_commits:
            return  # local folders commit by atomic rename; GCS and Azure always support conditional creates
        with _probe_lock:
            if self.uri in _probed:
                return
            probe_conditional_put(self)
            _probed.add(self.uri)


def filesystem(location: IndexLocation) -> Any:
    from pyarrow import fs

    opts = location.storage_options
    if location.scheme != "s3":
        filesystem, _ = fs.FileSystem.from_uri(location.uri)
        return filesystem
    kwargs: dict[str, Any] = {}
    endpoint = opts.get("aws_endpoint")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
    if opts.get("region"):
        kwargs["region"] = opts["region"]
    if opts.get("aws_access_key_id"):
        kwargs["access_key"] = opts["aws_access_key_id"]
        kwargs["secret_key"] = opts.get("aws_secret_access_key", "")
        if opts.get("aws_session_token"):
            kwargs["session_token"] = opts["aws_session_token"]
    return fs.S3FileSystem(**kwargs)


def probe_conditional_put(location: IndexLocation) -> None:
    """Write one probe object twice with `If-None-Match: *`; the second PUT must be refused (412 or 409)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import ClientError
    except ImportError:
        raise StorageError(
            f"checking that {location.uri} supports conditional puts needs boto3: pip install "
            "'visual-intent[distributed]' (or pass --unsafe-commits to skip the check)"
        ) from None
    opts = location.storage_options
    parsed = urlparse(location.uri)
    bucket, key = parsed.netloc, f"{parsed.path.strip('/')}/{PROBE_DIR}/{uuid.uuid4().hex}".lstrip("/")
    client = boto3.client(
        "s3",
        endpoint_url=opts.get("aws_endpoint"),
        region_name=opts.get("region") or "us-east-1",
        aws_access_key_id=opts.get("aws_access_key_id"),
        aws_secret_access_key=opts.get("aws_secret_access_key"),
        aws_session_token=opts.get("aws_session_token"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )
    store = f"{location.uri} ({opts.get('aws_endpoint') or 'AWS S3'})"
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
    except ClientError as exc:
        raise StorageError(f"cannot write to {store}: {exc}; check the bucket, credentials and endpoint") from None
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"2", IfNoneMatch="*")
        refused = False
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        refused = status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")
    finally:
        client.delete_object(Bucket=bucket, Key=key)
    if not refused:
        raise StorageError(
            f"the object store at {store} does not honour conditional puts (If-None-Match: *): a second "
            "put-if-absent of the same key succeeded. LanceDB commits need it, or concurrent writers overwrite "
            "each other's commits. Use a store that supports it (AWS S3, MinIO, Ceph RGW >= Squid, moto >= 5), "
            "or pass --unsafe-commits if only one process ever writes"
        )
