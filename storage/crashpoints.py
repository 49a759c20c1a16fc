"""Named points where a run can be made to fail on purpose: faults counted in events, not seconds.

The storage code calls ``reach(point)`` at the moments a failure is most dangerous: a lake file
written but not yet renamed into place, a coverage commit half-marked. With
``MARGIN_ETL_CRASH_AT=<point>:<k>`` in its environment, a process kills itself with SIGKILL
(no cleanup, no ``finally``: a real ``kill -9``) the k-th time it reaches that point, so a test
can land a crash on any event of a run on any machine, however fast. ``<point>:<k>:<ERRNO>``
(e.g. ``lake.file-written:1:ENOSPC``) raises that OSError there instead, as a full disk or an
unwritable directory would. Unarmed, a point costs one comparison.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections import Counter
from dataclasses import dataclass

CRASH_AT_ENV = "MARGIN_ETL_CRASH_AT"

# the points, by name (tests refer to them by these constants)
FILE_WRITTEN = "lake.file-written"  # a data file is whole in its temporary name, not yet published
COVERAGE_MARK = "coverage.mark"  # one window of a commit is about to be marked covered
COMPACTION_STEP = "lake.compaction"  # a step of the compaction protocol
POINTS = (FILE_WRITTEN, COVERAGE_MARK, COMPACTION_STEP)


@dataclass(frozen=True)
class Failure:
    """Fail at the ``count``-th event of ``point``: kill -9, or raise OSError(``error``)."""

    point: str
    count: int
    error: int | None = None

    @classmethod
    def parse(cls, text: str) -> Failure:
        point, _, rest = text.partition(":")
        count, _, name = rest.partition(":")
        code = getattr(errno, name, None) if name else None
        if point not in POINTS or not count.isdigit() or int(count) < 1 or (name and not code):
            raise ValueError(
                f"{CRASH_AT_ENV}={text!r}: expected <point>:<k>[:<ERRNO>], point in {POINTS}"
            )
        return cls(point, int(count), code)

    def __str__(self) -> str:
        tail = f":{errno.errorcode[self.error]}" if self.error is not None else ""
        return f"{self.point}:{self.count}{tail}"


_counts: Counter[str] = Counter()
_lock = threading.Lock()
_armed: Failure | None = None


def arm(failure: Failure | None) -> None:
    """Fail at ``failure`` from now on in this process (None: disarm); counts start again."""
    global _armed
    with _lock:
        _armed = failure
        _counts.clear()


def reach(point: str) -> None:
    """Count one event at ``point``; fail here if it is the armed failure."""
    if _armed is None:
        return
    with _lock:
        _counts[point] += 1
        reached = _counts[point]
        failure = _armed
    if failure is None or (point, reached) != (failure.point, failure.count):
        return
    if failure.error is not None:
        raise OSError(failure.error, os.strerror(failure.error))
    os.kill(os.getpid(), signal.SIGKILL)


def _from_environment() -> None:
    text = os.environ.get(CRASH_AT_ENV)
    if text:
        arm(Failure.parse(text))


_from_environment()
