"""Where the lake and the reports live: a local directory or an object store (S3 and compatibles).

A ``Storage`` holds files under a root, named by relative keys (``loans/account=main/...``).
``open_output`` publishes a file whole or not at all, ``list_files`` lists what readers see, and
``open_input``, ``exists`` and ``delete`` do the rest. Two kinds:

* ``LocalStorage``: a file is written under a hidden temporary name in its final directory
  (``.<name>.<token>.tmp``: never matches ``*.parquet`` nor ``*.csv``), fsync'd, renamed into place
  with ``os.replace``, and its directory fsync'd.
* ``ObjectStorage`` (``s3://bucket/prefix`` through ``pyarrow.fs.S3FileSystem``): a file is
  written to a local spool file first, then sent by one C++ call that opens the upload, copies
  and completes it. S3 makes an object visible only when its PUT (or CompleteMultipartUpload)
  succeeds, so a reader sees the whole object or nothing; a write that raises sends nothing at
  all. No temporary object is ever created under the root, so there is nothing to clean up.

Endpoint and credentials come from the standard variables: ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` (an S3-compatible server), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``; without keys the AWS SDK's own
chain (profiles, instance roles) applies.

The lake's location is ``lake_url`` if given, else ``$MARGIN_ETL_LAKE_URL``, else the object
store recorded in ``DATA_DIR/lake/LOCATION`` by the first write there, else ``DATA_DIR/lake``.
The coverage ledger, fingerprints and lock stay in DATA_DIR on local disk. They describe one
lake, so a data dir bound to one lake refuses to write to another (``bind_lake``).
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper

from storage import crashpoints
from storage.errors import UserError, first_line, writing

__all__ = [
    "LAKE_URL_ENV",
    "LOCATION_FILE",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "LocalStorage",
    "ObjectStorage",
    "Storage",
    "bind_lake",
    "ensure_dir",
    "fsync_dir",
    "is_object_url",
    "lake_location",
    "lake_storage",
    "location_text",
    "make_private",
    "open_storage",
    "publish_file",
    "recorded_lake_url",
]

LAKE_URL_ENV = "MARGIN_ETL_LAKE_URL"
LOCATION_FILE = "LOCATION"  # in DATA_DIR/lake: the object store this data dir's lake lives in
OBJECT_SCHEMES = ("s3",)
_OBJECT_URL = re.compile(
    r"^(?P<scheme>s3)://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<rest>/.*)?$"
)
# pathlib (and so typer's Path options) turns "s3://bucket/key" into "s3:/bucket/key"
_COLLAPSED_URL = re.compile(r"^(?P<scheme>s3):/(?P<rest>[^/].*)$")


# --- local durability -------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new child) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A fund's positions and trades: what margin-etl creates is for its owner alone (a stricter
# umask still applies on top).
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def ensure_dir(path: Path) -> None:
    """Create ``path`` and its missing parents (owner only), each made durable in its parent."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        fsync_dir(directory.parent)


def make_private(path: str | os.PathLike[str]) -> None:
    """Make a file another library created (SQLite, DuckDB) the owner's alone, as ours are."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, PRIVATE_FILE & ~umask)


@contextmanager
def publish_file(final: Path, token: str) -> Iterator[IO[bytes]]:
    """Write ``final`` through ``.<name>.<token>.tmp`` beside it: whole and durable, or absent."""
    temp = final.with_name(f".{final.name}.{token}.tmp")
    with writing(final):
        try:
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            with os.fdopen(descriptor, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            crashpoints.reach(crashpoints.FILE_WRITTEN)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)


def _unique_token() -> str:
    return secrets.token_hex(8)


# --- locations --------------------------------------------------------------------------------


def location_text(location: str | os.PathLike[str]) -> str:
    """A location as text, with an object-store URL that went through ``pathlib`` restored."""
    text = os.fspath(location)
    collapsed = _COLLAPSED_URL.match(text)
    if collapsed:
        return f"{collapsed['scheme']}://{collapsed['rest']}"
    return text


def is_object_url(location: str | os.PathLike[str]) -> bool:
    """True for ``s3://...`` (also after ``pathlib`` collapsed it to ``s3:/...``)."""
    scheme, separator, _ = location_text(location).partition("://")
    return bool(separator) and scheme in OBJECT_SCHEMES


def _split_url(url: str) -> tuple[str, str, str]:
    """(normalised url, bucket, prefix) of ``s3://bucket[/prefix]``; UserError if malformed."""
    match = _OBJECT_URL.match(url)
    rest = (match["rest"] or "").rstrip("/") if match else ""
    segments = rest.split("/")[1:] if rest else []
    if match is None or any(s in ("", ".", "..") for s in segments):
        raise UserError(
            f"{url!r} is not an object-store location: use s3://bucket or s3://bucket/prefix"
        )
    prefix = "/".join(segments)
    normalised = f"{match['scheme']}://{match['bucket']}" + (f"/{prefix}" if prefix else "")
    return normalised, match["bucket"], prefix


def s3_filesystem(bucket: str) -> pafs.S3FileSystem:
    """An S3 file system configured from the standard AWS variables (one per configuration)."""
    env = os.environ
    key, secret = env.get("AWS_ACCESS_KEY_ID") or None, env.get("AWS_SECRET_ACCESS_KEY") or None
    if (key is None) != (secret is None):
        raise UserError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    session = env.get("AWS_SESSION_TOKEN") or None
    return _s3_filesystem(bucket, endpoint, region, key, secret, session)


@functools.lru_cache(maxsize=16)
def _s3_filesystem(
    bucket: str,
    endpoint: str | None,
    region: str | None,
    key: str | None,
    secret: str | None,
    session: str | None,
) -> pafs.S3FileSystem:
    if region is None:
        region = "us-east-1" if endpoint else _bucket_region(bucket)
    return pafs.S3FileSystem(
        access_key=key,
        secret_key=secret,
        session_token=session,
        region=region,
        endpoint_override=endpoint,
        # one PutObject for a file smaller than a part, instead of a three-request upload
        allow_delayed_open=True,
        # the owner's alone on a store with ACLs, whatever the bucket's default grants
        default_metadata={"ACL": "private"},
    )


def _bucket_region(bucket: str) -> str | None:
    try:
        region: str = pafs.resolve_s3_region(bucket)
    except OSError:
        return None  # the SDK's own heuristics then; a wrong region shows on first use
    return region


# --- storage ----------------------------------------------------------------------------------


class Storage(ABC):
    """Files under one root, named by relative POSIX keys; writes are all-or-nothing."""

    url: str  # the root: an absolute local path, or s3://bucket[/prefix]

    @property
    @abstractmethod
    def is_local(self) -> bool: ...

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The absolute path or URL of ``key`` (what DuckDB's ``read_parquet`` takes)."""

    @abstractmethod
    def locate(self, key: str) -> Path | str:
        """``key`` as a local Path, or as its URL on an object store."""

    @abstractmethod
    def open_output(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A handle whose bytes become ``key``, whole, when the block ends without raising.

        If the block raises, nothing is published and nothing is left behind under the root
        (locally, at most a hidden temp file if the process dies: ``.<name>.<token>.tmp``).
        """

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_output(key) as handle:
            handle.write(data)

    @abstractmethod
    def list_files(self, prefix: str = "", suffix: str = "") -> list[str]:
        """Keys of the files under the folder ``prefix`` ending in ``suffix``, in path order."""

    @abstractmethod
    def list_versions(self, prefix: str = "", suffix: str = "") -> list[FileVersion]:
        """``list_files``, each key with its size and modification time: a file written
        again under its key is a new version."""

    @abstractmethod
    def open_input(self, key: str) -> pa.NativeFile:
        """A random-access reader of ``key``."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""

    @abstractmethod
    def check(self) -> None:
        """Raise UserError, in one line, if the root cannot be reached."""

    @abstractmethod
    def register_with(self, connection: Any) -> None:
        """Let a DuckDB connection read ``uri(...)`` locations of this storage."""


@dataclass(frozen=True)
class FileVersion:
    key: str
    size: int
    mtime_ns: int


def _path_order(keys: list[str]) -> list[str]:
    # the order of pathlib.Path objects (by segment), not of plain strings
    return sorted(keys, key=lambda key: key.split("/"))


class LocalStorage(Storage):
    """A directory on a local disk."""

    def __init__(self, root: str | os.PathLike[str], temp_token: Callable[[], str] | None = None):
        self.root = Path(root)
        self.url = str(self.root.resolve())
        self._temp_token = temp_token or _unique_token

    @property
    def is_local(self) -> bool:
        return True

    def uri(self, key: str = "") -> str:
        return str(self.root.resolve() / key) if key else self.url

    def locate(self, key: str) -> Path:
        return self.root / key

    @contextmanager
    def _output(self, key: str) -> Iterator[IO[bytes]]:
        final = self.root / key
        with writing(final.parent):
            ensure_dir(final.parent)
        with publish_file(final, self._temp_token()) as handle:
            yield handle

    def open_output(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self._output(key)

    def list_files(self, prefix: str = "", suffix: str = "") -> list[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return []
        found = [p for p in folder.rglob(f"*{suffix}") if p.is_file()]
        return _path_order([p.relative_to(self.root).as_posix() for p in found])

    def list_versions(self, prefix: str = "", suffix: str = "") -> list[FileVersion]:
        versions = []
        for key in self.list_files(prefix, suffix):
            stat = (self.root / key).stat()
            versions.append(FileVersion(key, stat.st_size, stat.st_mtime_ns))
        return versions

    def open_input(self, key: str) -> pa.NativeFile:
        return pa.OSFile(str(self.root / key), "rb")

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def check(self) -> None:
        return None  # missing directories are created by the first write

    def register_with(self, connection: Any) -> None:
        return None  # DuckDB reads local paths itself


class _DuckDBS3(ArrowFSWrapper):  # type: ignore[misc]
    """pyarrow's S3 file system as fsspec, under the name DuckDB routes ``s3://`` paths to."""

    protocol = "s3"


class ObjectStorage(Storage):
    """A bucket and prefix on S3 or an S3-compatible server."""

    def __init__(self, url: str, filesystem: pafs.FileSystem | None = None) -> None:
        self.url, self.bucket, prefix = _split_url(location_text(url))
        self.filesystem = filesystem or s3_filesystem(self.bucket)
        self.base = f"{self.bucket}/{prefix}" if prefix else self.bucket

    @property
    def is_local(self) -> bool:
        return False

    def uri(self, key: str = "") -> str:
        return f"{self.url}/{key}" if key else self.url

    def locate(self, key: str) -> str:
        return self.uri(key)

    def _path(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    @contextmanager
    def _output(self, key: str) -> Iterator[IO[bytes]]:
        with (
            writing(f"the local spool for {self.uri(key)}"),
            tempfile.NamedTemporaryFile(prefix="margin-etl-", suffix=".upload") as spool,
        ):
            yield spool
            spool.flush()
            crashpoints.reach(crashpoints.FILE_WRITTEN)
            self._upload(Path(spool.name), key)

    def open_output(self, key: str) -> AbstractContextManager[IO[bytes]]:
        return self._output(key)

    def _upload(self, source: Path, key: str) -> None:
        # Open, copy and complete in one call that never returns to Python half-way: pyarrow
        # completes an upload whose stream is dropped unclosed, which would publish a partial
        # object if an exception (a KeyboardInterrupt, say) landed between Python-level writes.
        pafs.copy_files(
            str(source),
            self._path(key),
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=self.filesystem,
            use_threads=False,
        )

    def list_files(self, prefix: str = "", suffix: str = "") -> list[str]:
        return [version.key for version in self.list_versions(prefix, suffix)]

    def list_versions(self, prefix: str = "", suffix: str = "") -> list[FileVersion]:
        folder = self._path(prefix.strip("/"))
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        start = len(self.base) + 1
        found = {
            info.path[start:]: FileVersion(info.path[start:], info.size or 0, info.mtime_ns or 0)
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.endswith(suffix)
        }
        return [found[key] for key in _path_order(list(found))]

    def open_input(self, key: str) -> pa.NativeFile:
        return self.filesystem.open_input_file(self._path(key))

    def exists(self, key: str) -> bool:
        info = self.filesystem.get_file_info(self._path(key))
        return bool(info.type == pafs.FileType.File)

    def delete(self, key: str) -> None:
        with suppress(FileNotFoundError):
            self.filesystem.delete_file(self._path(key))

    def check(self) -> None:
        try:
            info = self.filesystem.get_file_info(self.bucket)
        except OSError as exc:
            raise UserError(f"cannot reach {self.url}: {first_line(exc)}") from None
        if info.type == pafs.FileType.NotFound:
            raise UserError(f"{self.url}: bucket {self.bucket!r} does not exist")

    def register_with(self, connection: Any) -> None:
        connection.register_filesystem(_DuckDBS3(self.filesystem, skip_instance_cache=True))


def open_storage(
    location: str | os.PathLike[str], *, temp_token: Callable[[], str] | None = None
) -> Storage:
    """The storage rooted at a local directory or an ``s3://bucket/prefix`` URL."""
    text = location_text(location)
    if is_object_url(text):
        return ObjectStorage(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UserError(f"{text}: {scheme}:// is not supported; use a local path or s3://")
    return LocalStorage(Path(text), temp_token)


# --- the lake of a data dir -------------------------------------------------------------------


def recorded_lake_url(data_dir: str | os.PathLike[str]) -> str | None:
    """The object store recorded for DATA_DIR's lake, if its lake lives in one."""
    record = Path(data_dir) / "lake" / LOCATION_FILE
    try:
        text = record.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def _requested_lake_url(lake_url: str | None) -> str | None:
    requested = lake_url or os.environ.get(LAKE_URL_ENV, "").strip() or None
    if requested is None:
        return None
    if not is_object_url(requested):
        raise UserError(
            f"{LAKE_URL_ENV} / lake_url must be an object-store URL such as s3://bucket/prefix, "
            f"not {requested!r}; leave it unset for a lake in DATA_DIR/lake"
        )
    return _split_url(location_text(requested))[0]


def lake_location(data_dir: str | os.PathLike[str], lake_url: str | None = None) -> str:
    """Where DATA_DIR's lake lives: an ``s3://`` URL, or the local ``DATA_DIR/lake`` path."""
    requested = _requested_lake_url(lake_url)
    recorded = recorded_lake_url(data_dir)
    if requested is None:
        return recorded or str(Path(data_dir) / "lake")
    if recorded is not None and recorded != requested:
        raise UserError(
            f"{data_dir} keeps the coverage of the lake at {recorded}, not {requested}: "
            "use another data dir for another lake"
        )
    return requested


def lake_storage(
    data_dir: str | os.PathLike[str],
    lake_url: str | None = None,
    *,
    temp_token: Callable[[], str] | None = None,
) -> Storage:
    """The storage of DATA_DIR's lake (see ``lake_location``)."""
    location = lake_location(data_dir, lake_url)
    if is_object_url(location):
        return ObjectStorage(location)
    return LocalStorage(Path(data_dir) / "lake", temp_token)


def bind_lake(data_dir: str | os.PathLike[str], storage: Storage) -> None:
    """Record that DATA_DIR's ledger describes the lake in ``storage`` (object stores only).

    Refuses a data dir that already holds a local lake: its coverage ledger describes that
    lake, and would make an export skip windows the object store never received.
    """
    if storage.is_local or recorded_lake_url(data_dir) == storage.url:
        return
    local = Path(data_dir) / "lake"
    if local.is_dir() and next(local.rglob("*.parquet"), None) is not None:
        raise UserError(
            f"{data_dir} already holds a local lake, described by its coverage ledger: "
            f"use a fresh data dir for the lake at {storage.url}"
        )
    ensure_dir(local)
    with publish_file(local / LOCATION_FILE, _unique_token()) as handle:
        handle.write(f"{storage.url}\n".encode())
