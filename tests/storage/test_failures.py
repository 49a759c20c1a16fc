"""Storage failures a person can act on are one line naming what to act on, and leave the lake
as it was: a full disk, no permission, a damaged state database, untrusted lake files."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import UserError, crashpoints
from storage.coverage import CoverageLedger, ledger_path
from storage.fingerprints import RowFingerprints
from storage.lake import LakeWriter, lake_files
from storage.lock import DataDirLock
from tests.storage.test_lake import loan_rows, table


@pytest.fixture
def armed() -> Iterator[None]:
    """Crash points armed by a test are disarmed after it."""
    yield
    crashpoints.arm(None)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_write_the_disk_refuses_is_one_line_and_publishes_nothing(
    code: int, tmp_path: Path, armed: None
) -> None:
    crashpoints.arm(crashpoints.Failure(crashpoints.FILE_WRITTEN, 1, code))
    writer = LakeWriter(tmp_path, "run-1")
    writer.write("loans", table("loans", loan_rows(5)))
    with pytest.raises(UserError) as caught:
        writer.flush()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot write ")
    assert message.endswith(os.strerror(code))
    assert lake_files(tmp_path, "loans") == []
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file left behind
    assert writer.buffered_rows == 5  # the rows are kept: nothing was lost


def test_a_damaged_coverage_ledger_is_named_and_never_read(tmp_path: Path) -> None:
    with CoverageLedger(tmp_path) as ledger:
        ledger.mark("main", "loans", "BTC", 0, 1000, rows=1, run_id="r1")
    path = ledger_path(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[100:4000] = b"\xde\xad" * 1950
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"coverage ledger .*coverage.sqlite is damaged"):
        CoverageLedger(tmp_path)


def test_a_file_that_is_not_a_database_is_damaged_too(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "fingerprints.sqlite").write_bytes(b"this is a spreadsheet" * 100)
    with pytest.raises(UserError, match=r"row fingerprints .* is damaged"):
        RowFingerprints(tmp_path)


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("")
    with pytest.raises(UserError, match="is a file, not a directory"):
        DataDirLock(not_a_dir).acquire()
