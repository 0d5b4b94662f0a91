"""The auditor's block explorer: an incremental SQLite index of the protocol's events and a
FastAPI app that serves it as server-rendered HTML and as a JSON API (docs/explorer.md).

    db        SQLite schema, connections, wipe on chain reset
    mapping   the ONE place that turns decoded events into per-entity rows (adapt here when events change)
    indexer   follows the chain through verinfer.chain's event decoding; resumes; detects resets
    content   decodes inputs/outputs from the content store for display (digit image, token ids)
    checks    proof verified three ways + the `verinfer audit` verdict, cached per request
    sources   deployed runtime bytecode vs a solc-js recompilation (Sourcify-style full/partial match)
    app       the FastAPI application (pages + /api)

The explorer never holds keys and never sends transactions: it only reads the chain and the store.
"""
