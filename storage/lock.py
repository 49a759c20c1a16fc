"""The data-dir lock: one margin-etl process writes a DATA_DIR at a time.

``fcntl.flock`` on ``DATA_DIR/.lock``: exclusive, never waits, and the kernel drops it when the
holder's last descriptor closes, so a process killed with SIGKILL releases it too. The file is
never deleted (deleting a lock file lets two processes lock two different inodes); it holds the
holder's pid, host and start time, for the message a blocked process prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from storage.backends import PRIVATE_FILE, ensure_dir
from storage.errors import UserError, writing

__all__ = ["LOCK_FILE", "DataDirLock"]

LOCK_FILE = ".lock"


class DataDirLock:
    """Exclusive, non-blocking, crash-safe lock on a data dir; raises UserError if held.

    Locks are per open file, so a second ``DataDirLock`` on the same dir fails even inside the
    holding process. Children started with ``exec`` do not inherit it (close-on-exec).
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> Self:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this DataDirLock")
        with writing(self.data_dir):
            if self.data_dir.exists() and not self.data_dir.is_dir():
                raise UserError(f"data dir {self.data_dir} is a file, not a directory")
            ensure_dir(self.data_dir)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise UserError(
                f"data dir {self.data_dir} is in use by another margin-etl process ({holder}); "
                "wait for it to finish"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        _write_holder(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a stale description would only mislead
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # the program name only: arguments may hold secrets
        "command": " ".join(os.path.basename(sys.argv[0] if sys.argv else "").split()) or "python",
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)


def _describe_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (
            f"pid {int(holder['pid'])} on {holder['host']}, "
            f"started {holder['started_at']}, {holder['command']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
