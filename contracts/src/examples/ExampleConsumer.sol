// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IInferenceMarket} from "../interfaces/IInferenceMarket.sol";
import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";

/// @title ExampleConsumer
/// @notice A minimal dApp: asks the market for inference and stores the settled results pushed back to it.
contract ExampleConsumer is IInferenceConsumer, Ownable2Step, ReentrancyGuard {
    struct Result {
        IInferenceMarket.Status status;
        bytes32 outputHash;
        bool received;
    }

    /// @notice The market this consumer trusts for callbacks.
    IInferenceMarket public immutable market;
    /// @notice Results pushed by the market, by request id.
    mapping(uint256 requestId => Result) public results;

    error NotMarket(address caller);
    error NothingToForward();
    error TransferFailed(address to, uint256 amount);

    event Asked(uint256 indexed requestId, bytes32 indexed modelId, uint256 fee);
    event ResultReceived(uint256 indexed requestId, IInferenceMarket.Status status, bytes32 outputHash);
    event RefundsForwarded(address indexed to, uint256 amount);

    /// @param market_ The InferenceMarket; the deployer becomes the owner.
    constructor(IInferenceMarket market_) Ownable(msg.sender) {
        market = market_;
    }

    /// @notice Accepts refunds paid out by the market's withdraw().
    receive() external payable {}

    /// @notice Requests inference, forwarding msg.value as the fee plus the callback deposit
    ///         (see market.quote: fee + callbackGasLimit * callbackGasPrice).
    /// @return requestId The market's request id.
    function ask(bytes32 modelId, string calldata inputCid, bytes32 inputHash, IInferenceMarket.RequestParams calldata p)
        external
        payable
        returns (uint256 requestId)
    {
        requestId = market.requestInference{value: msg.value}(modelId, inputCid, inputHash, p);
        emit Asked(requestId, modelId, msg.value);
    }

    /// @inheritdoc IInferenceConsumer
    /// @dev The output CID is in the market's Revealed events (V2 passes only the hash).
    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash) external {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        results[requestId] = Result({status: status, outputHash: outputHash, received: true});
        emit ResultReceived(requestId, status, outputHash);
    }

    /// @notice Owner: pulls refunds credited by the market (if any) and forwards this contract's balance to the owner.
    function withdrawRefunds() external onlyOwner nonReentrant {
        if (market.withdrawable(address(this)) > 0) market.withdraw();
        uint256 amount = address(this).balance;
        if (amount == 0) revert NothingToForward();
        address to = owner();
        emit RefundsForwarded(to, amount);
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
