"""The one `verinfer` command. Each group lives in `verinfer.commands.<noun>` and exposes `app`."""

from __future__ import annotations

import importlib
import sys

import click
import typer
from typer._click.exceptions import ClickException as VendoredClickException
from typer.core import TyperOption

from verinfer.errors import VerinferError

app = typer.Typer(
    name="verinfer",
    help="Verifiable inference anchored on an EVM chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_option_type = TyperOption.display_type_rich


def _flag_type(self: TyperOption, ctx: object) -> str | None:
    """A flag takes no value: show no `<bool>` type next to it in --help (typer 0.29 does)."""
    if self.is_flag:
        return None
    return _option_type(self, ctx)  # type: ignore[arg-type]


TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]


@app.callback()
def _root() -> None:
    """Verifiable inference anchored on an EVM chain."""
    # A callback keeps `verinfer` a group even when only one top-level command is registered.


# One module per group in verinfer.commands; a module with TOP_LEVEL = True registers its own command(s).
_GROUPS = ["devnet", "deploy", "operator", "node", "model", "prover", "request", "attestation", "audit", "explorer", "demo"]
_registered: set[str] = set()

def _register(names: list[str]) -> None:
    for _name in names:
        _register_one(_name)


def _register_one(_name: str) -> None:
    if _name in _registered:
        return
    _registered.add(_name)
    _mod = importlib.import_module(f"verinfer.commands.{_name}")  # every group exists: a missing one is a bug
    if getattr(_mod, "TOP_LEVEL", False):
        _mod.register(app)
    else:
        app.add_typer(_mod.app, name=_name)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    # Import only the group being run (some pull heavy libraries); all of them for the top-level help.
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    _register([first] if first in _GROUPS else _GROUPS)
    try:
        rv = app(standalone_mode=False)
    except VerinferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors and the like (typer vendors its own click)
        if isinstance(exc, (click.ClickException, VendoredClickException)):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        raise
    # With standalone_mode=False click returns typer.Exit's code instead of exiting; keep it.
    if isinstance(rv, int) and rv != 0:
        sys.exit(rv)


if __name__ == "__main__":
    main()
