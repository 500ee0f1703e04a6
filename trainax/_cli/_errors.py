"""The one error type the command reports as a single line (exit code 2)."""


class CLIError(Exception):
    """A user-facing problem: a bad config, an occupied run folder, a missing file."""
