"""`verinfer demo --lm`: one SmolLM2 request through sharded stages on staked nodes, rendered.

The network work lives in `verinfer.devnet.lm` (publish SmolLM2 with its shard layout, onboard stage
and head operators, start their node processes); this module submits the prompt with the SDK, waits,
and prints what happened: the text, the stages, the consensus and the gas.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from verinfer.client.render import RequestProgress, kgas, short
from verinfer.inference.ee_llm import adversary_line

FEE_WEI = 2 * 10**16
#: generous: the reveal window opens as soon as all three heads committed, so long windows cost nothing
COMMIT_BLOCKS, REVEAL_BLOCKS = 400, 200


def run_lm_request(net: Any, console: Console, prompt: str, n_tokens: int, timeout: float) -> Any:
    """Bring up the LLM network on `net`, send `prompt` from the SDK, wait for settlement, print the table."""
    from verinfer.client.inputs import prepare_input
    from verinfer.devnet.lm import start_on

    console.rule("[bold]language model: SmolLM2-135M-Instruct, 3 sharded stages")
    with console.status("publishing SmolLM2 (tensors, tokenizer, shard layout), onboarding stage and head operators…"):
        lm = start_on(net, max_new_tokens=n_tokens, log=lambda m: console.print(f"[green]✓[/] {m}"))
    client = net.client(1)
    info = client.model_info(lm.model_id)
    prepared = prepare_input(prompt, info.spec, client.store)
    console.print(f"prompt {prompt!r} → {len(prepared.vector)} token ids (chat template), {n_tokens} new tokens")
    rid = client.submit(lm.model_id, prepared.payload, FEE_WEI, replicas=3, quorum=2, commit_blocks=COMMIT_BLOCKS,
                        reveal_blocks=REVEAL_BLOCKS)
    with RequestProgress(console) as progress:
        progress.add(rid, f"#{rid} SmolLM2")
        res = client.wait(rid, timeout=max(timeout, 600.0), progress=progress.update)
    t = Table(title=f"SmolLM2 request #{rid}", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row("prompt", prompt)
    t.add_row("text", f"[bold]{res.text}[/]" if res.text else f"[red]{res.error or 'no text'}[/]")
    assert lm.published is not None
    for a, b in lm.published.layout.layer_ranges:
        eps = [f"{n.name} {n.endpoint} ({short(n.address)})" for n in lm.nodes if n.stage == (a, b)]
        t.add_row(f"stage {a}:{b}", "\n".join(eps))
    agree = sum(1 for m in res.committee if m.agrees)
    t.add_row("consensus", f"{res.display_status}: {agree}/{len(res.committee)} heads revealed the same tokens hash "
              f"{hex(res.output_hash or 0)[:18]}…" + (" (output re-hashed ✓)" if res.output_verified else ""))
    t.add_row("heads", ", ".join(f"{n.name} {short(n.address)}" for n in lm.heads()))
    t.add_row("gas (k)", "  ".join(f"{k} {kgas(v)}k" for k, v in res.gas.items())
              + "  |  publish: " + ", ".join(f"{k} {v / 1000:.0f}k" for k, v in lm.gas.items()))
    t.add_row("privacy", adversary_line("split"))
    console.print(t)
    return lm
