"""The FastAPI application: server-rendered pages (no JavaScript) and a JSON API over the same data.

`create_app(explorer)` builds it; `verinfer explorer` (verinfer/commands/explorer.py) runs it with
uvicorn on 127.0.0.1. Unknown ids give a 404 page (or JSON under /api), never a traceback; the only
POST routes re-run local checks (audit, source verification): nothing here signs or sends a transaction.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from verinfer.constants import ETHER, PROOF_MODE_NAMES
from verinfer.explorer.service import Explorer, NotFound, eth

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")
_H32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _short(v: Any, n: int = 8) -> str:
    s = str(v)
    return f"{s[:n]}…{s[-4:]}" if len(s) > n + 6 else s


def _when(ts: Any) -> str:
    try:
        return datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError):
        return "—"


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    env = t.env
    env.autoescape = True  # every value from the chain or the store is text, never markup
    env.filters.update(short=_short, eth=eth, when=_when, tojson_pretty=lambda v: json.dumps(v, indent=2, sort_keys=True))
    env.tests.update(address=lambda v: isinstance(v, str) and bool(_ADDR.match(v)),
                     hex32=lambda v: isinstance(v, str) and bool(_H32.match(v)))
    env.globals.update(PROOF_MODES=PROOF_MODE_NAMES, ETHER=ETHER)
    return t


def create_app(explorer: Explorer, *, follow: bool = True, poll_interval: float = 2.0,
               verify_sources_on_start: bool = True) -> FastAPI:
    """The app; with `follow`, a background thread keeps the index synced (and verifies sources once)."""
    stop = threading.Event()
    tpl = templates()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threads = []
        if follow:
            threads.append(threading.Thread(target=explorer.indexer.follow, args=(stop, poll_interval),
                                            name="explorer-indexer", daemon=True))
        if verify_sources_on_start:
            def _verify() -> None:
                try:
                    explorer.indexer.sync()
                    explorer.verify_sources()
                except Exception as exc:
                    log.warning("source verification failed: %s", exc)
            threads.append(threading.Thread(target=_verify, name="explorer-sources", daemon=True))
        for t in threads:
            t.start()
        yield
        stop.set()

    app = FastAPI(title="verinfer explorer", version="1",
                  description="Read-only explorer of a verinfer deployment: requests, proofs verified three ways, "
                              "audit verdicts, nodes, models, source verification. Never signs or sends transactions.",
                  lifespan=lifespan)
    app.state.explorer = explorer
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("title", "verinfer explorer")
        return tpl.TemplateResponse(request, name, {"x": explorer, "chain_id": explorer.manifest.chain_id,
                                                    "indexed_to": explorer.head(), **ctx}, status_code=status_code)

    # ------------------------------------------------------------------ errors

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not found", "detail": str(exc)}, status_code=404)
        return page(request, "error.html", 404, title="not found", code=404, message=str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        msg = "no such page" if exc.status_code == 404 else str(exc.detail)
        return page(request, "error.html", exc.status_code, title=msg, code=exc.status_code, message=msg)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        msg = f"bad {'.'.join(str(x) for x in first.get('loc', ())[1:])}: {first.get('msg', 'invalid input')}"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not found", "detail": msg}, status_code=404)
        return page(request, "error.html", 404, title="not found", code=404, message=msg)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("explorer error on %s", request.url.path)
        msg = f"internal error ({type(exc).__name__}); see the explorer's log"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": msg}, status_code=500)
        return page(request, "error.html", 500, title="error", code=500, message=msg)

    # ------------------------------------------------------------------ pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request) -> HTMLResponse:
        return page(request, "overview.html", o=explorer.overview())

    @app.get("/requests", response_class=HTMLResponse, include_in_schema=False)
    def requests_list(request: Request, offset: int = 0) -> HTMLResponse:
        return page(request, "requests.html", rows=explorer.requests_page(max(0, offset)), offset=max(0, offset))

    @app.get("/request/{rid}", response_class=HTMLResponse, include_in_schema=False)
    def request_page(request: Request, rid: int) -> HTMLResponse:
        return page(request, "request.html", title=f"request {rid}", d=explorer.request(rid))

    @app.post("/request/{rid}/audit", include_in_schema=False)
    def request_reaudit(rid: int) -> RedirectResponse:
        explorer.request(rid, audit="rerun")
        return RedirectResponse(f"/request/{rid}#audit", status_code=303)

    @app.get("/node/{address}", response_class=HTMLResponse, include_in_schema=False)
    def node_page(request: Request, address: str) -> HTMLResponse:
        d = explorer.node(address)
        return page(request, "node.html", title=f"node {address}", d=d)

    @app.get("/models", response_class=HTMLResponse, include_in_schema=False)
    def models_page(request: Request) -> HTMLResponse:
        return page(request, "models.html", rows=explorer.models())

    @app.get("/model/{model_id}", response_class=HTMLResponse, include_in_schema=False)
    def model_page(request: Request, model_id: str) -> HTMLResponse:
        return page(request, "model.html", title="model", d=explorer.model(model_id))

    @app.get("/tx/{tx_hash}", response_class=HTMLResponse, include_in_schema=False)
    def tx_page(request: Request, tx_hash: str) -> HTMLResponse:
        return page(request, "tx.html", title=f"tx {tx_hash}", d=explorer.tx(tx_hash))

    @app.get("/address/{address}", response_class=HTMLResponse, include_in_schema=False)
    def address_page(request: Request, address: str) -> Response:
        d = explorer.address(address)
        if d["is_node"]:
            return RedirectResponse(f"/node/{d['address']}", status_code=303)
        return page(request, "address.html", title=f"address {address}", d=d)

    @app.get("/search", include_in_schema=False)
    def search_page(request: Request, q: str = "") -> Response:
        r = explorer.search(q)
        if "redirect" in r:
            return RedirectResponse(r["redirect"], status_code=303)
        return page(request, "search.html", title="search", q=q, results=r["results"])

    @app.get("/contracts", response_class=HTMLResponse, include_in_schema=False)
    def contracts_page(request: Request) -> HTMLResponse:
        return page(request, "contracts.html", title="source verification", rows=explorer.contracts())

    @app.post("/contracts/verify", include_in_schema=False)
    def contracts_verify() -> RedirectResponse:
        explorer.verify_sources()
        return RedirectResponse("/contracts", status_code=303)

    @app.get("/dapp", response_class=HTMLResponse, include_in_schema=False)
    def dapp_page(request: Request) -> HTMLResponse:
        models = explorer.models()
        snippet = None
        if models:
            snippet = explorer.model(models[0]["model_id"])["snippet"]
        return page(request, "dapp.html", title="dApp developers", dep=explorer.deployment(), snippet=snippet,
                    models=models)

    # ------------------------------------------------------------------ JSON API (same data)

    @app.get("/api/overview", tags=["network"], summary="Network counters and recent requests")
    def api_overview() -> dict[str, Any]:
        o = explorer.overview()
        o.pop("charts")
        return o

    @app.get("/api/requests", tags=["requests"], summary="Requests, newest first")
    def api_requests(offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        return explorer.requests_page(max(0, offset), max(1, min(500, limit)))

    @app.get("/api/requests/{rid}", tags=["requests"], summary="One request: timeline, committee, input/output, audit")
    def api_request(rid: int, audit: bool = True) -> dict[str, Any]:
        d = explorer.request(rid, audit="cached" if audit else "none")
        d["input"] = d["input"].to_json()
        d["output"] = d["output"].to_json() if d["output"] else None
        return d

    @app.post("/api/requests/{rid}/audit", tags=["requests"], summary="Re-run the audit and the three proof checks now")
    def api_reaudit(rid: int) -> dict[str, Any]:
        return explorer.request(rid, audit="rerun")["audit"] or {}

    @app.get("/api/nodes/{address}", tags=["nodes"], summary="A node: stake history, shards, attestation, work")
    def api_node(address: str) -> dict[str, Any]:
        return explorer.node(address)

    @app.get("/api/models", tags=["models"], summary="Registered models")
    def api_models() -> list[dict[str, Any]]:
        return explorer.models()

    @app.get("/api/models/{model_id}", tags=["models"], summary="A model: commitment, verifier, bundle, profile")
    def api_model(model_id: str) -> dict[str, Any]:
        return explorer.model(model_id)

    @app.get("/api/tx/{tx_hash}", tags=["chain"], summary="The protocol events of one transaction")
    def api_tx(tx_hash: str) -> dict[str, Any]:
        return explorer.tx(tx_hash)

    @app.get("/api/address/{address}", tags=["chain"], summary="Indexed activity of an address")
    def api_address(address: str) -> dict[str, Any]:
        return explorer.address(address)

    @app.get("/api/search", tags=["network"], summary="Search by request id, tx hash, address, model id or name")
    def api_search(q: str = "") -> dict[str, Any]:
        return explorer.search(q)

    @app.get("/api/contracts", tags=["contracts"], summary="Source verification results (full/partial/mismatch)")
    def api_contracts() -> list[dict[str, Any]]:
        return explorer.contracts()

    @app.post("/api/contracts/verify", tags=["contracts"], summary="Recompile and compare now")
    def api_contracts_verify() -> list[dict[str, Any]]:
        return explorer.verify_sources()

    @app.get("/api/deployment.json", tags=["dapp"], summary="ABI and addresses of this deployment")
    def api_deployment() -> JSONResponse:
        return JSONResponse(explorer.deployment(),
                            headers={"Content-Disposition": 'attachment; filename="verinfer-deployment.json"'})

    @app.get("/api/status", tags=["network"], summary="Indexer state")
    def api_status() -> dict[str, Any]:
        return {"indexed_to": explorer.head(), "chain_id": explorer.manifest.chain_id,
                "last_error": explorer.indexer.last_error, "decode_errors": explorer.indexer.decode_errors}

    return app
