"""The one exception type for mistakes a user can make: the CLI prints it as one line."""


class UserError(Exception):
    """A problem the user can fix (bad date, bad key, locked data dir); written for a person."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """An error's first line, for a person (its type's name when it says nothing)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
