"""Errors a user can act on. The CLI prints these as one line; anything else is a bug."""


class VerinferError(Exception):
    """Base class: the message is shown to the user as-is, on one line."""


class ConfigError(VerinferError):
    """Bad argument, missing file, unreadable keystore, unknown model…"""
