// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceMarket} from "./IInferenceMarket.sol";

/// @title IInferenceConsumer (V2)
/// @notice Implemented by contracts that request inference and want the settled result pushed to them.
/// @dev Called by the market at finalize with exactly the request's callbackGasLimit, paid from the request's escrowed
///      callback deposit; a revert or out-of-gas only emits CallbackResult(requestId, false) and sets callbackFailed.
///      Anyone may then call the market's redeliver(requestId), which forwards all of ITS caller's gas (at least
///      callbackGasLimit) minus a small reserve: a consumer that needs more than its limit can still be served.
///      The output CID is not passed: it lives in the market's Revealed events.
interface IInferenceConsumer {
    /// @notice Receives the settled result of `requestId`.
    /// @param requestId The request.
    /// @param status Accepted, InvalidInput or NoQuorum (an Expired request is refunded, never called back).
    /// @param outputHash The settled output hash (INVALID_INPUT for InvalidInput, 0 for NoQuorum).
    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash) external;
}
