"""The one `verinfer` command. Each group lives in `verinfer.commands.<noun>` and exposes `app`."""

from __future__ import annotations

import importlib
import sys

import typer

from verinfer.errors import VerinferError

app = typer.Typer(
    name="verinfer",
    help="Verifiable inference anchored on an EVM chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, group name or None for a top-level command module that registers itself)
_GROUPS = ["devnet", "operator", "node", "model", "prover", "request", "attestation", "audit", "demo"]

for _name in _GROUPS:
    try:
        _mod = importlib.import_module(f"verinfer.commands.{_name}")
    except ModuleNotFoundError as exc:  # group not built yet
        if exc.name != f"verinfer.commands.{_name}":
            raise
        continue
    if getattr(_mod, "TOP_LEVEL", False):
        _mod.register(app)
    else:
        app.add_typer(_mod.app, name=_name)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        app(standalone_mode=False)
    except VerinferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
