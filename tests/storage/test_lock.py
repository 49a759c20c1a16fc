"""Data-dir lock: exclusive across processes, one-line message, released when the holder dies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.errors import UserError
from storage.lock import DataDirLock

REPO = Path(__file__).resolve().parents[2]

TRY_LOCK = textwrap.dedent(
    """
    import sys
    from storage.errors import UserError
    from storage.lock import DataDirLock
    try:
        DataDirLock(sys.argv[1]).acquire()
    except UserError as exc:
        print(exc)
        sys.exit(exc.exit_code)
    print("acquired")
    """
)

HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from storage.lock import DataDirLock
    lock = DataDirLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold until killed
    """
)


def python(script: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def try_in_another_process(data_dir: Path) -> tuple[int, str]:
    child = python(TRY_LOCK, str(data_dir))
    out, err = child.communicate(timeout=60)
    assert not err, err
    return child.returncode, out


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on tmp_path, blocked on its stdin."""
    child = python(HOLD_LOCK, str(tmp_path), stdin=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == "locked\n"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait(timeout=60)


def test_a_second_process_is_refused_with_a_one_line_message(tmp_path: Path) -> None:
    with DataDirLock(tmp_path) as lock:
        assert lock.held
        code, out = try_in_another_process(tmp_path)
    assert code == UserError.exit_code
    [line] = out.splitlines()
    assert str(tmp_path) in line
    assert f"pid {os.getpid()} on {socket.gethostname()}" in line
    assert "started 20" in line
    assert try_in_another_process(tmp_path) == (0, "acquired\n")


def test_the_holder_is_named_and_sigkill_releases_the_lock(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(UserError, match=f"pid {holder.pid} on ") as refused:
        DataDirLock(tmp_path).acquire()
    assert "\n" not in str(refused.value)
    holder.kill()  # SIGKILL: no cleanup code runs in the holder
    assert holder.wait(timeout=60) == -9
    with DataDirLock(tmp_path) as lock:
        assert lock.held


def test_a_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path).acquire()
    with pytest.raises(UserError, match="in use by another margin-etl process"):
        DataDirLock(tmp_path).acquire()
    first.release()
    first.release()  # releasing twice is harmless
    with DataDirLock(tmp_path):
        pass


def test_an_unreadable_holder_record_still_gives_a_message(tmp_path: Path) -> None:
    with DataDirLock(tmp_path) as lock:
        lock.path.write_text("not json")
        with pytest.raises(UserError, match="holder unknown"):
            DataDirLock(tmp_path).acquire()


def test_the_lock_creates_the_data_dir_and_keeps_its_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    with DataDirLock(data_dir) as lock:
        assert lock.path == data_dir / ".lock"
    assert lock.path.exists() and lock.path.read_text() == ""
    assert not lock.held
