// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceMarket} from "../../src/InferenceMarket.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";

/// @notice The committee a draw of `requestId` would produce now (the stored one once drawn), computed from public
///         views as the node and auditor do (verinfer/chain/draw.py): seed = keccak256(abi.encode(blockhash(drawBlock),
///         requestId)), snapshot epoch = createdBlock / epochLength, waitForSeats. The market no longer has this view
///         (EIP-170: its code went to recycled request records).
function previewCommittee(InferenceMarket m, uint256 requestId) view returns (address[] memory) {
    IInferenceMarket.Request memory q = m.getRequest(requestId);
    if (q.status != IInferenceMarket.Status.Pending) return m.getCommittee(requestId);
    if (block.number <= q.drawBlock) revert IInferenceMarket.DrawNotReady(requestId, q.drawBlock);
    if (block.number > q.drawDeadline) return new address[](0);
    INodeRegistry reg = m.nodeRegistry();
    bool tee = m.modelRegistry().getModelCore(q.modelId).requiresTee;
    uint256 seed = uint256(keccak256(abi.encode(blockhash(q.drawBlock), requestId)));
    return reg.drawCommittee(q.modelId, seed, q.createdBlock / reg.epochLength(), q.params.replicas, tee, true);
}
