"""Errors caused by what the user wrote or has on disk: the CLI prints them in one paragraph, exit code 2."""


class UserError(ValueError):
    """A problem the user can fix (config, data files, weights); the message says what and how."""
