"""Errors of the model layer that a node or user can act on."""

from verinfer.errors import VerinferError


class InvalidInputError(VerinferError):
    """The request's input payload cannot be executed by this model (the INVALID_INPUT outcome)."""
