"""The one `verinfer` entry point: usage errors are one line, exit codes survive, every group loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from verinfer import cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verinfer.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args,needle",
    [
        (("nosuch",), "No such command"),
        (("audit",), "Missing argument"),
        (("request", "--bogus"), "No such option"),
        (("attestation", "verify", "0x12"), "not an address"),
        (("attestation", "allow", "zz", "--dev-account", "0"), "32 bytes"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], needle: str) -> None:
    r = _run(*args)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_single_group_invocation_keeps_subcommand_names() -> None:
    r = _run("demo", "--help")
    assert r.returncode == 0 and "cli demo [OPTIONS]" in r.stdout


def test_explorer_is_a_top_level_command() -> None:
    r = _run("explorer", "--help")
    assert r.returncode == 0 and "--port" in r.stdout, r.stdout + r.stderr


def test_every_group_module_exists_and_registers() -> None:
    cli._register(cli._GROUPS)
    names = {g.name for g in cli.app.registered_groups} | {c.name for c in cli.app.registered_commands}
    assert set(cli._GROUPS) <= names, set(cli._GROUPS) - names


def test_help_names_the_builtin_models_and_shows_flags_without_a_type() -> None:
    """Newcomer obstacles (issue 8): built-in model names appear in --help; a flag takes no value, so typer's
    `<bool>` type column is dropped for flags (values still show their type)."""
    for args in (("request", "--help"), ("model", "--help"), ("model", "publish", "--help")):
        r = subprocess.run([sys.executable, "-m", "verinfer.cli", *args], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200"})
        assert r.returncode == 0, r.stderr
        assert "textgenrnn" in r.stdout and "digits-mlp" in r.stdout, (args, r.stdout)
        assert "<bool>" not in r.stdout, (args, r.stdout)
    r = subprocess.run([sys.executable, "-m", "verinfer.cli", "request", "--help"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert "<int>" in r.stdout and "--json" in r.stdout
