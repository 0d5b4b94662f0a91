// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceMarket} from "./IInferenceMarket.sol";

/// @title IInferenceConsumer
/// @notice Implemented by contracts that request inference and want the settled result pushed to them.
/// @dev Called by the market at finalize with exactly the request's callbackGasLimit; a revert or
///      out-of-gas only emits CallbackResult(requestId, false) — settlement never depends on it.
interface IInferenceConsumer {
    /// @notice Receives the settled result of `requestId`.
    /// @param requestId The request.
    /// @param status Accepted, InvalidInput or NoQuorum.
    /// @param outputHash The accepted output hash (INVALID_INPUT for InvalidInput, 0 for NoQuorum).
    /// @param outputCid CID of the accepted output payload ("" if none).
    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash, string calldata outputCid)
        external;
}
