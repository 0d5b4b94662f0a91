"""Rich rendering of requests: live progress bars while waiting, and summaries/tables of results.

Shared by `verinfer request`, `verinfer demo`, the consumer script and the benchmark so the
numbers a user sees are formatted one way everywhere.
"""

from __future__ import annotations

import threading
from typing import Iterable

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from verinfer.amounts import format_ether
from verinfer.client.result import GAS_STEPS, RequestResult, WaitUpdate

STATUS_STYLE = {
    "Proven": "bold green",
    "Accepted": "green",
    "InvalidInput": "yellow",
    "NoQuorum": "red",
}


def short(addr: str, n: int = 6) -> str:
    """0x1234…abcd: enough to tell committee members apart in a table."""
    return f"{addr[:n]}…{addr[-4:]}" if len(addr) > n + 4 else addr


def hex32(x: int | None) -> str:
    if x is None:
        return "—"
    return "0x" + x.to_bytes(32, "big").hex()


class RequestProgress:
    """One bar per request over its block timeline (created → reveal deadline → settled).

    `update` is thread-safe, so several `Client.wait` threads can report into one display.
    """

    def __init__(self, console: Console | None = None, transient: bool = False) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[label]}"),
            BarColumn(),
            TextColumn("{task.fields[phase]}"),
            TextColumn("commits {task.fields[commits]} reveals {task.fields[reveals]}"),
            TimeElapsedColumn(),
            console=console,
            transient=transient,
        )
        self._tasks: dict[int, TaskID] = {}
        self._labels: dict[int, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "RequestProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def add(self, request_id: int, label: str | None = None) -> None:
        with self._lock:
            self._labels[request_id] = label or f"request {request_id}"

    def update(self, u: WaitUpdate) -> None:
        """Progress callback for `Client.wait`."""
        with self._lock:
            total = max(1, u.reveal_deadline - u.created_block + 1)
            done = total if u.done else min(total, max(0, u.block - u.created_block))
            phase = u.phase if not u.done else f"[green]{u.phase}"
            commits, reveals = f"{u.commits}/{u.committee_size}", f"{u.reveals}/{u.committee_size}"
            if u.request_id not in self._tasks:
                label = self._labels.get(u.request_id, f"request {u.request_id}")
                self._tasks[u.request_id] = self.progress.add_task(
                    label, total=total, completed=done, label=label, phase=phase, commits=commits, reveals=reveals)
            else:
                self.progress.update(self._tasks[u.request_id], total=total, completed=done, phase=phase,
                                     commits=commits, reveals=reveals)


def result_panel(res: RequestResult, label: int | None = None) -> Panel:
    """The `verinfer request` summary: prediction, consensus, committee, proof, money, gas."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    style = STATUS_STYLE.get(res.display_status, "")
    t.add_row("status", f"[{style}]{res.display_status}[/]" if style else res.display_status)
    if res.prediction is not None:
        extra = ""
        if label is not None:
            extra = "  [green](correct)[/]" if label == res.prediction else f"  [red](true label {label})[/]"
        decrypted = " (decrypted with the EE key)" if res.output_space == "decrypted" else ""
        t.add_row("prediction", f"[bold]{res.prediction}[/]{extra}{decrypted}")
    elif res.output_space == "permuted" and res.output is not None and res.model_kind == "lm":
        t.add_row("text", "[yellow]encrypted: the token ids below are permuted (model published with --encrypt; "
                  "pass --ee-key KEYFILE to decrypt)[/]")
    elif res.output_space == "permuted" and res.output is not None:
        t.add_row("prediction", "[yellow]unknown: encrypted model, the output is in the permuted class order "
                  "(pass --ee-key KEYFILE to decrypt)[/]")
    if res.prediction is None and label is not None:
        t.add_row("true label", str(label))
    t.add_row("consensus", f"{res.consensus} agreeing"
              + (f", {len(res.dissenting)} dissenting" if res.dissenting else "")
              + (f", {len(res.no_shows)} no-show" if res.no_shows else ""))
    t.add_row("model", res.model_id)
    t.add_row("input", f"{res.input_cid}  hash {hex32(res.input_hash)[:18]}…")
    if res.output_hash is not None:
        t.add_row("output", f"{res.output_cid or '—'}  hash {hex32(res.output_hash)[:18]}…"
                  + ("  [green]verified against store[/]" if res.output_verified else ""))
    if res.text is not None:
        decrypted = " (decrypted with the EE key)" if res.output_space == "decrypted" else ""
        t.add_row("text", f"[bold]{res.text!r}[/]{decrypted}")
        t.add_row("token ids", " ".join(str(v) for v in (res.output or [])))
        if res.permuted_output is not None:
            t.add_row("token ids (permuted)", " ".join(str(v) for v in res.permuted_output))
    elif res.output is not None and res.model_kind == "lm":
        t.add_row("token ids (permuted)" if res.output_space == "permuted" else "token ids",
                  " ".join(str(v) for v in res.output))
    elif res.output is not None:
        name = {"permuted": "logits (permuted)", "decrypted": "logits (decrypted)"}.get(res.output_space, "logits")
        t.add_row(name, " ".join(str(v) for v in res.output))
    proof = "proven on-chain" if res.proven else ("no verifier for this model" if res.proof_mode == 0 else "not proven")
    if res.proof_contradicted:
        proof += " [red](proof contradicts settlement)[/]"
    t.add_row("proof", proof)
    t.add_row("fee", format_ether(res.fee) + (f", refunded {format_ether(res.refunded)}" if res.refunded else ""))
    if res.slashed_total:
        t.add_row("slashed", format_ether(res.slashed_total))
    t.add_row("gas", gas_line(res))
    if res.error:
        t.add_row("note", f"[yellow]{res.error}[/]")
    return Panel(t, title=f"request {res.request_id}", expand=False)


def gas_line(res: RequestResult) -> str:
    parts = []
    for step in GAS_STEPS:
        vals = res.gas.get(step)
        if vals:
            parts.append(f"{step} {sum(vals) // len(vals):,}" + (f"×{len(vals)}" if len(vals) > 1 else ""))
    return ", ".join(parts) or "—"


def committee_table(res: RequestResult) -> Table:
    t = Table(title=f"committee of request {res.request_id}")
    for col in ("node", "committed", "revealed", "output hash", "agrees", "paid", "slashed"):
        t.add_column(col)
    for m in res.committee:
        shown = hex32(m.output_hash)[:18] + "…" if m.output_hash is not None else "—"
        t.add_row(m.node, yes(m.committed), yes(m.revealed), shown,
                  yes(m.agrees), yes(m.paid), "[red]yes[/]" if m.slashed else "no")
    return t


def yes(b: bool) -> str:
    return "yes" if b else "no"


def kgas(values: list[int] | None) -> str:
    """Mean gas of a step in thousands (compact enough for an 80-column table)."""
    return f"{sum(values) / len(values) / 1000:.0f}" if values else "—"


def results_table(rows: Iterable[tuple[RequestResult, str, int | None]], title: str = "requests") -> Table:
    """The demo table: id, source, prediction, true label, consensus, status, gas per step."""
    t = Table(title=title)
    t.add_column("id", justify="right")
    t.add_column("source")
    t.add_column("pred", justify="right")
    t.add_column("label", justify="right")
    t.add_column("consensus", justify="center")
    t.add_column("status")
    t.add_column("kgas req/com/rev/fin/proof", justify="right")
    for res, source, label in rows:
        style = STATUS_STYLE.get(res.display_status, "")
        pred = ("permuted" if res.output_space == "permuted" else "—") if res.prediction is None else str(res.prediction)
        if res.prediction is not None and label is not None and res.prediction != label:
            pred = f"[red]{pred}[/]"
        gas = "/".join(kgas(res.gas.get(s)) for s in ("request", "commit", "reveal", "finalize", "submitProof"))
        t.add_row(str(res.request_id), source, pred, "—" if label is None else str(label), res.consensus,
                  f"[{style}]{res.display_status}[/]" if style else res.display_status, gas)
    return t
