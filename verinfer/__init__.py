"""verinfer: verifiable inference anchored on an EVM chain."""

__version__ = "0.1.0"
