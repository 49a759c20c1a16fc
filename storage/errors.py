"""The one exception type for mistakes a user can make: the CLI prints it as one line."""


class UserError(Exception):
    """A problem the user can fix (bad date, bad key, locked data dir); written for a person."""

    exit_code = 2
