"""The chain layer: everything that talks to the EVM (see docs/chain.md).

Submodules are imported explicitly (`from verinfer.chain.protocol import Protocol`); this package
imports nothing so that `verinfer.chain.errors` or `.manifest` stay cheap to import.

    artifacts  committed ABI/bytecode          manifest  where a deployment lives
    deploy     deploy_protocol/deploy_contract tx        TxSender (nonces, retries, decoded reverts)
    errors     ContractError, RpcError, …      events    get_events, EventCursor, CursorStore
    protocol   typed contract wrappers         devnet    local anvil process
"""
