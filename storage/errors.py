"""The one exception type for mistakes a user can make: the CLI prints it as one line; and the
storage failures a person can act on (a full disk, no permission, a damaged state file) as it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A problem the user can fix (bad date, bad key, locked data dir); written for a person."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """An error's first line, for a person (its type's name when it says nothing)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# What a full disk, a quota or missing permission looks like to a writer: the person can act.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


@contextmanager
def writing(what: str | os.PathLike[str]) -> Iterator[None]:
    """A full disk or a missing permission while writing ``what``, as one line to act on."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise UserError(f"cannot write {os.fspath(what)}: {exc.strerror}") from None


@contextmanager
def state_database(path: str | os.PathLike[str], role: str) -> Iterator[None]:
    """SQLite errors of a state database (the coverage ledger, the fingerprints), for a person:
    damaged, or not writable. Nothing is read from a damaged one."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        text, where = first_line(exc), os.fspath(path)
        if _damaged(text):
            raise UserError(
                f"{role} {where} is damaged ({text}): move it aside and export again"
                " (the history is read again; the warehouse counts a row read twice once)"
            ) from None
        if isinstance(exc, sqlite3.OperationalError) and _unwritable(text):
            raise UserError(f"cannot write {role} {where}: {text}") from None
        raise


def _damaged(text: str) -> bool:
    return any(word in text for word in ("malformed", "not a database", "corrupt"))


def _unwritable(text: str) -> bool:
    return any(word in text for word in ("disk is full", "readonly", "unable to open", "I/O"))
