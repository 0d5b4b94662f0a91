"""Operator library: accounts, registration, status (with the reason a node is not eligible), devnet funding.

The CLI (`verinfer operator …`), the devnet module, tests and benchmarks call these functions
in-process; commands only parse arguments and render results.
"""
