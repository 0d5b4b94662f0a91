// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {IInferenceConsumer} from "../../src/interfaces/IInferenceConsumer.sol";

/// @dev Base: a contract requester that can ask the market and receive refunds.
abstract contract ConsumerBase is IInferenceConsumer {
    IInferenceMarket internal immutable market;

    constructor(IInferenceMarket m) {
        market = m;
    }

    function ask(bytes32 modelId, bytes32 inputHash, IInferenceMarket.RequestParams calldata p)
        external
        payable
        returns (uint256)
    {
        return market.requestInference{value: msg.value}(modelId, "bafkreiinput", inputHash, p);
    }

    receive() external payable {}
}

/// @dev Records the callback and the gas it was given.
contract RecordingConsumer is ConsumerBase {
    uint256 public lastRequestId;
    IInferenceMarket.Status public lastStatus;
    bytes32 public lastOutputHash;
    uint256 public gasAtEntry;
    uint256 public calls;

    constructor(IInferenceMarket m) ConsumerBase(m) {}

    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash) external {
        gasAtEntry = gasleft();
        lastRequestId = requestId;
        lastStatus = status;
        lastOutputHash = outputHash;
        calls += 1;
    }
}

/// @dev Always reverts.
contract RevertingConsumer is ConsumerBase {
    error Nope();

    constructor(IInferenceMarket m) ConsumerBase(m) {}

    function onInferenceResult(uint256, IInferenceMarket.Status, bytes32) external pure {
        revert Nope();
    }
}

/// @dev Burns all the gas it is given.
contract GasBurnerConsumer is ConsumerBase {
    uint256 public counter;

    constructor(IInferenceMarket m) ConsumerBase(m) {}

    function onInferenceResult(uint256, IInferenceMarket.Status, bytes32) external {
        while (true) {
            counter += 1;
        }
    }
}

/// @dev Returns (and reverts with) a huge returndata buffer.
contract ReturnBombConsumer is ConsumerBase {
    bool public revertInstead;

    constructor(IInferenceMarket m, bool revertInstead_) ConsumerBase(m) {
        revertInstead = revertInstead_;
    }

    function onInferenceResult(uint256, IInferenceMarket.Status, bytes32) external view {
        bool r = revertInstead;
        assembly {
            if r { revert(0, 200000) }
            return(0, 200000)
        }
    }
}

/// @dev Tries to re-enter the market (finalize another request, withdraw) from the callback.
contract ReentrantConsumer is ConsumerBase {
    uint256 public otherRequest;
    bool public finalizeBlocked;
    bool public withdrawBlocked;

    constructor(IInferenceMarket m) ConsumerBase(m) {}

    function setOther(uint256 id) external {
        otherRequest = id;
    }

    function onInferenceResult(uint256, IInferenceMarket.Status, bytes32) external {
        try market.finalize(otherRequest) {} catch { finalizeBlocked = true; }
        try market.withdraw() {} catch { withdrawBlocked = true; }
    }
}

/// @dev A requester whose refunds cannot be paid (rejects ether).
contract RejectingRequester {
    IInferenceMarket internal immutable market;

    constructor(IInferenceMarket m) {
        market = m;
    }

    function ask(bytes32 modelId, bytes32 inputHash, IInferenceMarket.RequestParams calldata p)
        external
        payable
        returns (uint256)
    {
        return market.requestInference{value: msg.value}(modelId, "bafkreiinput", inputHash, p);
    }

    function pull() external {
        market.withdraw();
    }
}

/// @dev Needs more gas than a small callbackGasLimit: writes `slots` fresh storage slots per delivery (~22k each).
contract HungryConsumer is ConsumerBase {
    uint256 public immutable slots;
    uint256 public delivered;
    uint256 public gasAtEntry;
    bytes32 public got;
    mapping(uint256 => uint256) public scratch;

    constructor(IInferenceMarket m, uint256 slots_) ConsumerBase(m) {
        slots = slots_;
    }

    function onInferenceResult(uint256 requestId, IInferenceMarket.Status, bytes32 outputHash) external {
        gasAtEntry = gasleft();
        for (uint256 i; i < slots; ++i) {
            scratch[requestId * 1000 + i] = i + 1;
        }
        got = outputHash;
        delivered += 1;
    }
}
