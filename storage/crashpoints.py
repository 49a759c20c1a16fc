"""Named points where a run can be killed on purpose: fault tests counted in events, not seconds.

The storage code calls ``reach(point)`` at the moments a crash is most dangerous: a lake file
written but not yet renamed into place, a coverage commit half-marked. With
``MARGIN_ETL_CRASH_AT=<point>:<k>`` in its environment, a process kills itself with SIGKILL
(no cleanup, no ``finally``: a real ``kill -9``) the k-th time it reaches that point, so a test
can land a crash on any event of a run on any machine, however fast. With
``MARGIN_ETL_EVENT_COUNTS=<file>``, the process writes how often it reached each point to that
file (JSON) when it exits, so a test can draw k from a run's own counts. Unset, a point costs one
dictionary lookup.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import threading
from collections import Counter
from pathlib import Path

CRASH_AT_ENV = "MARGIN_ETL_CRASH_AT"
EVENT_COUNTS_ENV = "MARGIN_ETL_EVENT_COUNTS"

# the points, by name (tests refer to them by these constants)
FILE_WRITTEN = "lake.file-written"  # a data file is whole in its temporary name, not yet published
COVERAGE_MARK = "coverage.mark"  # one window of a commit is about to be marked covered
COMPACTION_STEP = "lake.compaction"  # a step of the compaction protocol
POINTS = (FILE_WRITTEN, COVERAGE_MARK, COMPACTION_STEP)

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def _target() -> tuple[str, int] | None:
    text = os.environ.get(CRASH_AT_ENV)
    if not text:
        return None
    point, _, count = text.rpartition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{CRASH_AT_ENV}={text!r}: expected <point>:<k>, point in {POINTS}")
    return point, int(count)


_TARGET = _target()
_COUNTS_FILE = os.environ.get(EVENT_COUNTS_ENV)
_ACTIVE = _TARGET is not None or bool(_COUNTS_FILE)


def reach(point: str) -> None:
    """Count one event at ``point``; kill this process if it is the configured crash."""
    if not _ACTIVE:
        return
    with _lock:
        _counts[point] += 1
        reached = _counts[point]
    if (point, reached) == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)


def counts() -> dict[str, int]:
    """How often each point was reached in this process so far (only counted when active)."""
    with _lock:
        return dict(_counts)


def _write_counts() -> None:
    if _COUNTS_FILE:
        Path(_COUNTS_FILE).write_text(json.dumps(counts(), sort_keys=True))


atexit.register(_write_counts)
