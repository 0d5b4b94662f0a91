// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {VerinferConsumer, VerinferHasher, IInferenceMarket} from "../VerinferConsumer.sol";

/// @title DigitGate
/// @notice Opens for whoever shows it an 8x8 image of its secret digit: the image is classified by verinfer's
///         digits model and the gate acts on the class on-chain. With `requireProof`, only a class whose
///         output vector a Groth16 proof settled opens it (no trust in the committee).
contract DigitGate is VerinferConsumer {
    bytes32 public immutable modelId;
    uint8 public immutable digit;
    bool public immutable requireProof;
    address public immutable owner;

    mapping(uint256 requestId => address) public askedBy;
    mapping(address => bool) public opened;

    event GateOpened(address indexed who, uint256 indexed requestId);
    event GateRefused(address indexed who, uint256 indexed requestId, uint256 cls, bool proven);

    error NotOwner();
    error PaymentBelowQuote(uint256 paid, uint256 quote);

    constructor(IInferenceMarket market_, VerinferHasher hasher_, bytes32 modelId_, uint8 digit_, bool requireProof_)
        VerinferConsumer(market_, hasher_)
    {
        modelId = modelId_;
        digit = digit_;
        requireProof = requireProof_;
        owner = msg.sender;
    }

    /// @notice Asks verinfer to classify `pixels` (int8, row-major 8x8); send at least quoteTotal(params()).
    function knock(int8[64] calldata pixels) external payable returns (uint256 requestId) {
        uint256 quote = quoteTotal(modelId, params());
        if (msg.value < quote) revert PaymentBelowQuote(msg.value, quote); // nobody spends the gate's balance
        int256[] memory input = new int256[](64);
        for (uint256 i = 0; i < 64; i++) {
            input[i] = pixels[i];
        }
        requestId = _requestVector(modelId, input, params());
        askedBy[requestId] = msg.sender;
    }

    /// @notice 1 node, 30-block commit and reveal windows, callback gas for a refusal (measured 9.0k).
    function params() public pure returns (IInferenceMarket.RequestParams memory) {
        return IInferenceMarket.RequestParams({
            replicas: 1, quorum: 1, commitBlocks: 30, revealBlocks: 30, callbackGasLimit: 60_000, queueBlocks: 0
        });
    }

    /// @notice Owner: pulls refunds (InvalidInput / NoQuorum / Expired) and leftovers to `to`.
    function withdraw(address payable to) external {
        if (msg.sender != owner) revert NotOwner();
        _withdrawRefunds(to);
        (bool ok,) = to.call{value: address(this).balance}("");
        require(ok);
    }

    function _fulfill(uint256 requestId, IInferenceMarket.Status status, bytes32, uint256 cls, int256[] memory, bool proven)
        internal
        override
    {
        address who = askedBy[requestId];
        if (status == IInferenceMarket.Status.Accepted && cls == digit && (proven || !requireProof)) {
            opened[who] = true;
            emit GateOpened(who, requestId);
        } else {
            emit GateRefused(who, requestId, cls, proven);
        }
    }
}
