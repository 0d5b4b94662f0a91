"""A whole verinfer network on one machine, for the demo, tests and benchmarks (never used by the SDK or daemon).

    processes  NodeProcess / launch_node: `python -m verinfer.node` children (own process group, die with parent)
    cluster    NodeCluster: n registered node keys for a fresh model on an existing devnet (tests)
    network    LocalNetwork: fresh anvil + deploy + model + funded, registered operators + node processes
    samples    sample_input (digits), random_spec (tiny circuits), prover_available

Merged from node/harness.py, client/localnet.py and prover/testing.py (issue 8 item 4). Operators are
onboarded in-process through `verinfer.operator`; nodes run as processes of the node's own entry point.
"""
