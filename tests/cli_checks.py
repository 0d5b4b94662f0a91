"""CLI assertions shared by the test files that drive `verinfer` in-process (typer's CliRunner)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner, Result

from verinfer.errors import VerinferError

runner = CliRunner()


def ok(app: Any, *args: str) -> Result:
    """The command succeeded without an exception."""
    res = runner.invoke(app, list(args), catch_exceptions=True)
    assert res.exit_code == 0 and res.exception is None, (args, res.output, res.exception)
    return res


def one_line_error(app: Any, *args: str, needle: str) -> str:
    """A user mistake: a VerinferError (the CLI prints it as one `error: …` line), never a traceback."""
    res = runner.invoke(app, list(args), catch_exceptions=True)
    assert res.exit_code != 0 and isinstance(res.exception, VerinferError), (args, res.output, res.exception)
    msg = str(res.exception)
    assert "\n" not in msg and needle in msg, (needle, msg)
    return msg
