"""The one `verinfer` entry point: usage errors are one line, exit codes survive, every group loads."""

from __future__ import annotations

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


def test_every_group_module_exists_and_registers() -> None:
    cli._register(cli._GROUPS)
    names = {g.name for g in cli.app.registered_groups} | {c.name for c in cli.app.registered_commands}
    assert set(cli._GROUPS) <= names, set(cli._GROUPS) - names
