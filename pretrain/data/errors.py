"""Errors every loader raises, so callers and the CLI catch one family."""


class DataError(ValueError):
    """A data file exists but is not what it claims to be (bad magic, truncated, mismatched)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset is missing; the message says which setting and which files were expected."""
