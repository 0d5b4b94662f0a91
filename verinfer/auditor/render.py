"""Show an audit: a rich table (one row per claim) for people, JSON for scripts."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from verinfer.auditor.claims import AuditReport, Verdict

_STYLE = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.NA: "dim"}


def render_table(report: AuditReport, console: Console) -> None:
    """The verdict table, then notes and a one-line summary."""
    table = Table(title=f"audit of request {report.request_id} — {report.status} — model {report.model_name} "
                        f"(proof mode {report.proof_mode})", show_lines=False, expand=False)
    table.add_column("section", style="cyan", no_wrap=True)
    table.add_column("claim", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for c in report.claims:
        table.add_row(c.section, c.name.split(".", 1)[-1], Text(c.verdict.value, style=_STYLE[c.verdict]), c.detail)
    console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    n = report.counts()
    if report.ok:
        console.print(f"[bold green]AUDIT PASSED[/bold green]: {n['PASS']} pass, {n['N/A']} not applicable")
    else:
        console.print(f"[bold red]AUDIT FAILED[/bold red]: {n['FAIL']} fail, {n['PASS']} pass, {n['N/A']} not applicable")


def render_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), indent=2)
