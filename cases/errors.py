"""The error the command line reports in one line with exit code 2 (bad usage or bad input)."""


class UsageError(Exception):
    """Bad usage or bad input: reported in one line with exit code 2."""
