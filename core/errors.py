"""Errors the CLI turns into one line on stderr instead of a traceback."""


class ShowcaseError(Exception):
    """A problem with the user's input or environment (exit code 1)."""

    exit_code = 1


class UsageError(ShowcaseError):
    """A malformed command line (exit code 2)."""

    exit_code = 2


class DataError(ShowcaseError):
    """Missing, corrupt or malformed data."""


class MissingData(DataError):
    """A dataset that is not on disk and cannot be downloaded: the message says where to put it."""
