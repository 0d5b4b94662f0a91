// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "./utils/Preview.sol";
import {Fixture} from "./utils/Fixture.sol";
import {console} from "./utils/Vm.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";

/// @notice Gas of a whole request lifecycle (k = 3, quorum 2, no callback, no proof) for docs/gas.md
///         (`bash contracts/gas-report.sh`). Run with --isolate: every call is its own transaction (cold storage,
///         21,000 intrinsic gas and calldata included, refunds applied), as a node or client pays it. Steady state:
///         one request was served before, so counters and the nodes' withdrawable balances are non-zero.
///         The first commit draws the committee (lazy draw), so it carries the draw's gas; the last reveal of this
///         unanimous, proof-less, callback-less request settles it, so there is no finalize transaction.
contract GasScenariosTest is Fixture {
    string internal constant IN_CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    string internal constant OUT_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

    /// @dev One record: the warm-up request used it, so the measured request rewrites storage left non-zero, as
    ///      every request from the (requestRecords + 1)-th on does (the gas does not depend on the record count).
    function _requestRecords() internal pure override returns (uint256) {
        return 1;
    }

    function _used() internal view returns (uint256) {
        return vm.lastCallGas().gasTotalUsed;
    }

    /// @dev 4 gas per zero byte, 16 per non-zero byte (EIP-2028).
    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i; i < data.length; ++i) g += data[i] == 0 ? 4 : 16;
    }

    /// @dev Meaningful with --isolate only (then lastCallGas includes the intrinsic and calldata gas); a plain
    ///      `forge test` run reports execution gas already and this saturates at 0.
    function _exec(uint256 txGas, bytes memory data) internal pure returns (uint256) {
        uint256 overhead = 21_000 + _calldataGas(data);
        return txGas > overhead ? txGas - overhead : 0;
    }

    function _lifecycle(string memory tag) internal {
        // warm-up request (the market's counters and the nodes' balances become non-zero)
        (uint256 w, address[] memory cw) = _requestDrawn(3, 2);
        _commitAll(w, cw, OUT_A);
        _revealAll(w, cw, OUT_A); // unanimous, no proof, no callback: the last reveal settles
        vm.assertEq(uint256(market.statusOf(w)), uint256(IInferenceMarket.Status.Accepted), "warm-up settled");
        _nextEpoch();

        uint256[4] memory txg; // request, commits, reveals, finalize
        uint256[4] memory exg;
        uint256 firstCommit;
        vm.deal(requester, 1 ether);
        vm.prank(requester);
        uint256 id = market.requestInference{value: FEE}(modelId, IN_CID, INPUT_HASH, _params(3, 2));
        txg[0] = _used();
        exg[0] = _exec(txg[0], abi.encodeCall(market.requestInference, (modelId, IN_CID, INPUT_HASH, _params(3, 2))));
        vm.roll(block.number + 2);
        address[] memory c = previewCommittee(market, id);
        for (uint256 i; i < 3; ++i) {
            bytes32 cm = _commitmentOf(id, OUT_A, c[i]);
            vm.prank(c[i]);
            market.commit(id, cm);
            if (i == 0) firstCommit = _used();
            txg[1] += _used();
            exg[1] += _exec(_used(), abi.encodeCall(market.commit, (id, cm)));
        }
        for (uint256 i; i < 3; ++i) {
            bytes32 salt = _salt(id, c[i]);
            vm.prank(c[i]);
            market.reveal(id, OUT_A, salt, OUT_CID);
            txg[2] += _used();
            exg[2] += _exec(_used(), abi.encodeCall(market.reveal, (id, OUT_A, salt, OUT_CID)));
        }
        uint256 lastReveal = _used();
        // the last reveal of a unanimous request without proof window or callback settles it: no finalize tx
        if (market.statusOf(id) != IInferenceMarket.Status.Accepted) {
            market.finalize(id);
            txg[3] = _used();
            exg[3] = _exec(txg[3], abi.encodeCall(market.finalize, (id)));
        }
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Accepted), "settled");
        console.log(string.concat("gas.", tag, ".tx.requestInference"), txg[0]);
        console.log(string.concat("gas.", tag, ".tx.commit_first_with_draw"), firstCommit);
        console.log(string.concat("gas.", tag, ".tx.commit_x3"), txg[1]);
        console.log(string.concat("gas.", tag, ".tx.reveal_last_settles"), lastReveal);
        console.log(string.concat("gas.", tag, ".tx.reveal_x3"), txg[2]);
        console.log(string.concat("gas.", tag, ".tx.finalize"), txg[3]);
        console.log(string.concat("gas.", tag, ".tx.lifecycle"), txg[0] + txg[1] + txg[2] + txg[3]);
        console.log(string.concat("gas.", tag, ".exec.requestInference"), exg[0]);
        console.log(string.concat("gas.", tag, ".exec.commit_x3"), exg[1]);
        console.log(string.concat("gas.", tag, ".exec.reveal_x3"), exg[2]);
        console.log(string.concat("gas.", tag, ".exec.finalize"), exg[3]);
        console.log(string.concat("gas.", tag, ".exec.lifecycle"), exg[0] + exg[1] + exg[2] + exg[3]);
    }

    function _population(uint256 n) internal {
        INodeRegistry.ModelShard[] memory sh = _fullShard(modelId);
        for (uint256 i; i < n; ++i) {
            address a = _node(i);
            vm.deal(a, STAKE + 1 ether);
            vm.prank(a);
            nodes.register{value: STAKE + i * 1 gwei}("http://node.local:8545", sh);
        }
        _nextEpoch();
    }

    function test_gas_lifecycle_k3_3nodes() public {
        _population(3);
        _lifecycle("n3");
    }

    function test_gas_lifecycle_k3_100nodes() public {
        _population(100);
        _lifecycle("n100");
    }

    function test_gas_lifecycle_k3_1000nodes() public {
        _population(1000);
        _lifecycle("n1000");
    }
}
