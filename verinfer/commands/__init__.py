"""CLI command groups, one module per protocol noun (devnet, operator, node, model, prover, request, audit, demo)."""
