"""The lake and the reports on an S3-compatible server (moto on loopback): export, build, report."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from flows.export import ExportRequest, ExportSummary, export_account
from simulator.scenarios import build_exchange
from simulator.server import RunningSimulator
from sql.reports import REPORTS, STATEMENT_FILE, report
from sql.runner import BuildResult, build, connect, reconcile
from storage.backends import (
    LAKE_URL_ENV,
    LocalStorage,
    ObjectStorage,
    Storage,
    is_object_url,
    lake_location,
    location_text,
    open_storage,
)
from storage.errors import UserError
from storage.lake import (
    LakeWriter,
    compact_stream,
    lake_files,
    lake_store,
    lake_uris,
    read_stream_table,
)
from tests.fixtures_sim import SimFactory
from tests.flows.lake_truth import differences
from tests.flows.test_export import (
    account_for,
    cli_env,
    export_command,
    fast_settings,
    kill_and_resume,
)
from tests.storage.test_lake import loan_rows, table

REPO = Path(__file__).resolve().parents[2]
BUCKET = "margin-lake"
LAKE_URL = f"s3://{BUCKET}/lake"
LAKE_KEY = re.compile(
    r"^lake/(?P<stream>[a-z_]+)/account=main/month=\d{4}-\d{2}/part-[A-Za-z0-9_.-]+\.parquet$"
)


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on loopback and the AWS variables that reach it."""

    endpoint: str
    env: dict[str, str]

    @property
    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def body(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return data

    def uploads(self, prefix: str) -> list[dict[str, Any]]:
        """Multipart uploads begun under ``prefix`` and never completed."""
        found = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
        return list(found.get("Uploads", ()))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """An S3-compatible server in this process, its bucket, and the AWS variables set."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv(LAKE_URL_ENV, raising=False)
        running = S3Server(env["AWS_ENDPOINT_URL"], env)
        running.client.create_bucket(Bucket=BUCKET)
        yield running
    server.stop()


@dataclass(frozen=True)
class Exported:
    sim: RunningSimulator
    data_dir: Path
    summary: ExportSummary
    truth: Path

    @property
    def month(self) -> str:
        return datetime.fromtimestamp(self.summary.cutoff_ms // 1000, UTC).strftime("%Y-%m")


def export_into(sim: RunningSimulator, data_dir: Path) -> ExportSummary:
    request = ExportRequest(account_for(sim), data_dir, client_settings=fast_settings())
    return asyncio.run(export_account(request))


@pytest.fixture(scope="module")
def exported(
    s3: S3Server, sim_factory: SimFactory, tmp_path_factory: pytest.TempPathFactory
) -> Exported:
    """The default scenario exported with MARGIN_ETL_LAKE_URL on the S3 server, and its truth."""
    # a frozen exchange clock: the truth written after the export is the truth it read
    sim = sim_factory(exchange=build_exchange("default", 21, wall_clock=lambda: 0))
    data_dir = tmp_path_factory.mktemp("s3-export") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LAKE_URL_ENV, LAKE_URL)
        summary = export_into(sim, data_dir)
    truth = tmp_path_factory.mktemp("s3-truth")
    with sim.exchange.lock:
        sim.app.write_truth(truth)
    return Exported(sim, data_dir, summary, truth)


@pytest.fixture(scope="module")
def built(exported: Exported) -> BuildResult:
    """The warehouse built from the lake on S3 (found through DATA_DIR's record, no variable)."""
    return build(exported.data_dir)


def local_copy(store: Storage, data_dir: Path, state: Path | None = None) -> Path:
    """Every object of the lake, downloaded into DATA_DIR/lake with the same keys, and the
    coverage ledger of `state` (what the exports read: the reconciliation starts from it)."""
    for key in store.list_files("", ".parquet"):
        target = data_dir / "lake" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open_input(key) as source:
            target.write_bytes(source.read())
    if state is not None:
        shutil.copytree(state, data_dir / "state")
    return data_dir


def run_cli(s3: S3Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != LAKE_URL_ENV} | s3.env
    command = [sys.executable, "-m", "cli", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


# --- the whole path on S3 ---------------------------------------------------------------------


def test_the_lake_is_whole_parquet_objects_in_the_hive_layout(
    exported: Exported, s3: S3Server
) -> None:
    keys = s3.keys("lake/")
    assert keys and all(LAKE_KEY.match(key) for key in keys), keys
    assert len(keys) == exported.summary.files
    assert {LAKE_KEY.match(k)["stream"] for k in keys} >= {"loans", "interest", "trades"}  # type: ignore[index]
    store = lake_store(exported.data_dir)
    rows = 0
    for key in store.list_files("", ".parquet"):
        with store.open_input(key) as source:
            rows += pq.ParquetFile(source).metadata.num_rows
    assert rows == exported.summary.rows_written > 10_000
    # the data dir keeps only local state, and where its lake is
    assert list(exported.data_dir.rglob("*.parquet")) == []
    assert (exported.data_dir / "lake" / "LOCATION").read_text().strip() == LAKE_URL
    assert (exported.data_dir / "state" / "coverage.sqlite").is_file()
    assert s3.uploads("lake/") == []
    # the owner's alone, whatever the bucket grants by default
    grants = s3.client.get_object_acl(Bucket=BUCKET, Key=keys[0])["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants)


def test_exported_rows_equal_the_truth(exported: Exported) -> None:
    found = differences(exported.data_dir, exported.truth, until_ms=exported.summary.cutoff_ms)
    assert found == {}


def test_the_models_read_the_lake_on_s3_and_reconcile(
    exported: Exported, built: BuildResult
) -> None:
    assert built.ok, [str(f) for f in built.failures]
    assert reconcile(exported.data_dir) == []
    # a plain connection, no file system registered: the sources were copied in as tables
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        kinds = dict(
            con.execute(
                "select table_name, table_type from information_schema.tables"
                " where table_name like 'src_%'"
            ).fetchall()
        )
        assert set(kinds.values()) == {"BASE TABLE"}
        for stream in ("loans", "trades", "account_snapshots"):
            [(count,)] = con.execute(f"select count(*) from src_{stream}").fetchall()
            assert count == read_stream_table(exported.data_dir, stream).num_rows > 0
        [(ledger_rows,)] = con.execute("select count(*) from report_general_ledger").fetchall()
        assert ledger_rows > 0


def test_an_s3_lake_builds_what_its_local_copy_builds(
    exported: Exported, built: BuildResult, tmp_path: Path
) -> None:
    state = exported.data_dir / "state"
    copy = build(local_copy(lake_store(exported.data_dir), tmp_path / "copy", state))
    queries = [
        "select * from recon_breaks order by all",
        "select * from recon_principal order by all",
        "select * from recon_balances order by all",
        *(f"select count(*) from stg_{s}" for s in ("loans", "interest", "orders", "trades")),
    ]
    with (
        duckdb.connect(str(built.warehouse), read_only=True) as remote,
        connect(copy.warehouse.parent) as local,  # a local lake: read by paths relative to it
    ):
        for query in queries:
            assert remote.execute(query).fetchall() == local.execute(query).fetchall(), query


def test_reports_on_s3_are_the_local_reports(
    exported: Exported, built: BuildResult, s3: S3Server, tmp_path: Path
) -> None:
    urls = report(exported.data_dir, exported.month, f"s3://{BUCKET}/reports/")
    paths = report(exported.data_dir, exported.month, tmp_path)
    prefix = f"s3://{BUCKET}/"
    assert all(url.startswith(prefix) for url in urls)
    assert sorted(url.removeprefix(prefix) for url in urls) == s3.keys("reports/")
    assert len(urls) == len(REPORTS) + 1  # and the statement
    for url, path in zip(urls, paths, strict=True):
        assert url.endswith(path.relative_to(tmp_path).as_posix())
        assert s3.body(url.removeprefix(prefix)) == path.read_bytes()
    ledger = next(p for p in paths if p.name == "general_ledger.csv")
    assert len(ledger.read_text().splitlines()) > 1


def test_the_cli_builds_and_reports_to_s3_with_the_recorded_lake(
    exported: Exported, s3: S3Server, tmp_path: Path
) -> None:
    data_dir = str(exported.data_dir)
    built = run_cli(s3, "build", "--data-dir", data_dir)
    assert built.returncode == 0, built.stderr
    out = f"s3://{BUCKET}/cli-reports"
    done = run_cli(s3, "report", "--month", exported.month, "--out", out, "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    keys = s3.keys("cli-reports/")
    assert [k.rsplit("/", 1)[1] for k in keys] == sorted(
        [*(f"{r.name}.csv" for r in REPORTS), STATEMENT_FILE]
    )
    local = report(exported.data_dir, exported.month, tmp_path)
    by_name = {p.name: p.read_bytes() for p in local}
    assert {k.rsplit("/", 1)[1]: s3.body(k) for k in keys} == by_name
    assert not (REPO / "s3:").exists()  # pathlib's "s3:/bucket" never became a local folder


# --- what an object-store lake refuses --------------------------------------------------------


def test_compaction_is_refused_in_one_line(exported: Exported) -> None:
    with pytest.raises(UserError, match="local lake only") as caught:
        compact_stream(exported.data_dir, "loans")
    assert "\n" not in str(caught.value) and LAKE_URL in str(caught.value)


def test_local_file_listing_is_refused_but_uris_list_the_objects(exported: Exported) -> None:
    with pytest.raises(UserError, match="lake_uris"):
        lake_files(exported.data_dir, "loans")
    uris = lake_uris(exported.data_dir, "loans")
    assert uris and all(u.startswith(f"{LAKE_URL}/loans/account=main/") for u in uris)


def test_a_data_dir_writes_to_one_lake_only(
    exported: Exported, s3: S3Server, tmp_path: Path
) -> None:
    other = f"s3://{BUCKET}/another-lake"
    with pytest.raises(UserError, match="another data dir"):
        LakeWriter(exported.data_dir, "run-x", lake_url=other)
    # a data dir whose ledger describes a local lake is not moved to S3 under its feet
    with LakeWriter(tmp_path, "run-1") as writer:
        writer.write("loans", table("loans", loan_rows(3)))
    with pytest.raises(UserError, match="local lake"):
        LakeWriter(tmp_path, "run-2", lake_url=other)
    assert s3.keys("another-lake/") == []


def test_a_missing_bucket_is_a_one_line_error(s3: S3Server, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist") as caught:
        LakeWriter(tmp_path, "run-1", lake_url="s3://no-such-bucket/lake")
    assert "\n" not in str(caught.value) and "test-secret" not in str(caught.value)
    assert not (tmp_path / "lake").exists()


# --- atomicity --------------------------------------------------------------------------------


def test_a_failed_write_sends_nothing_and_keeps_the_rows(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{BUCKET}/failed-write"

    def half_then_fail(t: pa.Table, where: Any, **kwargs: Any) -> None:
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    writer = LakeWriter(tmp_path, "run-1", lake_url=url)
    writer.write("loans", table("loans", loan_rows(3)))
    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    assert s3.keys("failed-write/") == []
    assert s3.uploads("failed-write/") == []  # not even begun: the bytes never left the spool
    assert writer.buffered_rows == 3
    monkeypatch.undo()
    [written] = writer.flush()
    assert isinstance(written.path, str) and written.path.startswith(f"{url}/loans/account=main/")
    assert read_stream_table(tmp_path, "loans").num_rows == 3


KILLED_WRITERS = {
    # the Parquet bytes half written (to the local spool), then the process dies
    "mid-write": """
        import io
        from storage import lake
        from tests.storage.test_lake import loan_rows, table

        real_write = lake.pq.write_table

        def write_half_then_die(t, where, **kwargs):
            buffer = io.BytesIO()
            real_write(t, buffer, **kwargs)
            where.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            where.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        lake.pq.write_table = write_half_then_die
        writer = lake.LakeWriter(sys.argv[1], "run-crash", lake_url=sys.argv[2])
        writer.write("loans", table("loans", loan_rows(50)))
        writer.flush()
    """,
    # a multipart upload begun, its first part sent, then the process dies
    "mid-upload": """
        from storage import backends as storage

        def upload_half_then_die(self, source, key):
            data = source.read_bytes()
            stream = self.filesystem.open_output_stream(self._path(key))
            stream.write(data[: len(data) // 2])
            stream.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        storage.ObjectStorage._upload = upload_half_then_die
        payload = os.urandom(24 * 1024 * 1024)  # larger than two upload parts
        key = "loans/account=main/month=2024-01/big.parquet"
        storage.ObjectStorage(sys.argv[2]).write_bytes(key, payload)
    """,
}


@pytest.mark.parametrize("moment", list(KILLED_WRITERS))
def test_a_writer_killed_mid_write_leaves_no_object(
    moment: str, s3: S3Server, tmp_path: Path
) -> None:
    url = f"s3://{BUCKET}/killed-{moment}"
    spool = tmp_path / "spool"
    spool.mkdir()
    script = "import os, signal, sys\n" + textwrap.dedent(KILLED_WRITERS[moment])
    env = {**os.environ, **s3.env, "TMPDIR": str(spool)}
    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data"), url],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    prefix = f"killed-{moment}/"
    assert s3.keys(prefix) == []
    assert ObjectStorage(url).list_files("", ".parquet") == []
    if moment == "mid-write":
        assert s3.uploads(prefix) == []
        [orphan] = spool.iterdir()  # the half file died in the local spool, not in the lake
        assert orphan.name.startswith("margin-etl-")
    else:
        [upload] = s3.uploads(prefix)  # parts were sent, the object was never completed
        parts = s3.client.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        assert parts.get("Parts")


def test_a_killed_export_to_s3_resumes_to_the_same_lake(
    s3: S3Server, sim_factory: SimFactory, tmp_path: Path
) -> None:
    """kill -9 the CLI's export to S3 at seeded events (a request, a file, a mark), then finish."""
    sim = sim_factory(scenario="tiny", seed=12, weight_window_ms=2000)
    data = tmp_path / "data"
    env = cli_env(sim) | s3.env | {LAKE_URL_ENV: f"s3://{BUCKET}/killed-export"}
    command = export_command(data, "--no-prefect", "--no-progress")
    outcomes = kill_and_resume(
        sim, data, command, env, seed=13, sequence=("request", "file", "mark")
    )
    assert all(o.killed for o in outcomes[:-1]), [(o.point, o.returncode) for o in outcomes]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LAKE_URL_ENV, f"s3://{BUCKET}/killed-export")
        summary = export_into(sim, data)
        truth = tmp_path / "truth"
        with sim.exchange.lock:
            sim.app.write_truth(truth)
        local = local_copy(ObjectStorage(f"s3://{BUCKET}/killed-export"), tmp_path / "copy")
    assert differences(local, truth, until_ms=summary.cutoff_ms, live_clock=True) == {}


# --- the storage abstraction ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "text"),
    [
        (Path("s3://bucket/reports"), "s3://bucket/reports"),  # pathlib made it s3:/bucket/...
        ("s3://bucket/reports", "s3://bucket/reports"),
        (Path("reports/s3:"), "reports/s3:"),
        ("/tmp/reports", "/tmp/reports"),
    ],
)
def test_location_text_restores_urls_pathlib_collapsed(given: str | Path, text: str) -> None:
    assert location_text(given) == text
    assert is_object_url(given) == text.startswith("s3://")


@pytest.mark.parametrize(
    "bad", ["s3://", "s3://B", "s3://bucket//x", "s3://bucket/../x", "gs://bucket/x", "/tmp/x"]
)
def test_lake_url_must_be_an_object_store_url(bad: str, tmp_path: Path) -> None:
    with pytest.raises(UserError):
        lake_location(tmp_path, bad)


def test_lake_url_is_normalised_and_the_default_is_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LAKE_URL_ENV, raising=False)
    assert lake_location(tmp_path) == str(tmp_path / "lake")
    assert lake_location(tmp_path, "s3://bucket/a/b/") == "s3://bucket/a/b"
    monkeypatch.setenv(LAKE_URL_ENV, "s3://bucket")
    assert lake_location(tmp_path) == "s3://bucket"
    with pytest.raises(UserError, match="gs://"):
        open_storage("gs://bucket/x")


def test_both_storages_list_and_publish_alike(s3: S3Server, tmp_path: Path) -> None:
    keys = ["a/x=1/f.parquet", "a/x=1-2/g.parquet", "a/x=1/h.csv", "b/i.parquet"]
    stores: list[Storage] = [LocalStorage(tmp_path / "root"), ObjectStorage(f"s3://{BUCKET}/alike")]
    for store in stores:
        for key in keys:
            store.write_bytes(key, key.encode())
        assert store.list_files("a", ".parquet") == ["a/x=1/f.parquet", "a/x=1-2/g.parquet"]
        assert store.list_files("", ".csv") == ["a/x=1/h.csv"]
        assert store.list_files("missing", "") == []
        with store.open_input("b/i.parquet") as source:
            assert source.read() == b"b/i.parquet"
        store.delete("b/i.parquet")
        store.delete("b/i.parquet")
        assert not store.exists("b/i.parquet") and store.exists("a/x=1/h.csv")
    assert sorted(p.name for p in (tmp_path / "root").rglob("*")) == sorted(
        ["a", "x=1", "x=1-2", "b", "f.parquet", "g.parquet", "h.csv"]
    )  # no temp file left beside the published ones


def test_a_lake_copied_down_reads_the_same_rows(exported: Exported, tmp_path: Path) -> None:
    copy = local_copy(lake_store(exported.data_dir), tmp_path / "copy")
    for stream in ("interest", "orders"):
        remote = read_stream_table(exported.data_dir, stream)
        local = read_stream_table(copy, stream)
        assert remote.equals(local) and remote.num_rows > 0
    shutil.rmtree(copy)
