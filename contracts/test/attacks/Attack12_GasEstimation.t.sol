// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {console} from "../utils/Vm.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {ModelRegistry} from "../../src/ModelRegistry.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {InferenceMarket} from "../../src/InferenceMarket.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";

/// @notice Issue 7 attack 12: eth_estimateGas for requestInference was wrong because the draw (and its gas)
///         changed between estimate and inclusion. V2 draws nothing in requestInference: its gas is the same
///         whatever happens to the node set in between, and the same at 10, 100 and 1,000 registered nodes.
contract Attack12GasEstimationTest is Fixture {
    struct Sys {
        ModelRegistry models;
        NodeRegistry nodes;
        InferenceMarket market;
        bytes32 model;
    }

    function _system(uint256 n) internal returns (Sys memory s) {
        s.models = new ModelRegistry();
        s.nodes = new NodeRegistry(owner, address(s.models), address(0), 1 ether, 20, EPOCH);
        s.market = new InferenceMarket(owner, address(s.nodes), address(s.models), 1024);
        vm.prank(owner);
        s.nodes.setMarket(address(s.market));
        vm.prank(publisher);
        s.model = s.models.registerModel(_modelInput("m", address(0), 0, false));
        INodeRegistry.ModelShard[] memory sh = new INodeRegistry.ModelShard[](1);
        sh[0] = INodeRegistry.ModelShard({modelId: s.model, layerStart: 0, layerEnd: type(uint16).max});
        for (uint256 i; i < n; ++i) {
            address a = address(uint160(0x700000 + i));
            vm.deal(a, 2 ether);
            vm.prank(a);
            s.nodes.register{value: 1 ether + i * 1 gwei}("http://n", sh);
        }
    }

    function _requestGas(Sys memory s) internal returns (uint256 g) {
        vm.deal(requester, 1 ether);
        vm.prank(requester);
        s.market.requestInference{value: FEE}(s.model, "bafkreiinput", INPUT_HASH, _params(3, 2)); // warm-up
        vm.prank(requester);
        s.market.requestInference{value: FEE}(s.model, "bafkreiinput", INPUT_HASH, _params(3, 2));
        g = vm.lastCallGas().gasTotalUsed;
    }

    function test_attack12_requestGasFlatAt10_100_1000Nodes() public {
        uint256 g10 = _requestGas(_system(10));
        uint256 g100 = _requestGas(_system(100));
        uint256 g1000 = _requestGas(_system(1000));
        console.log("requestInference execution gas, 10 nodes", g10);
        console.log("requestInference execution gas, 100 nodes", g100);
        console.log("requestInference execution gas, 1000 nodes", g1000);
        vm.assertEq(g100, g10, "flat 10 -> 100");
        vm.assertEq(g1000, g10, "flat 10 -> 1000");
        vm.assertLe(g10 + 21_000, 150_000, "under 150k as a transaction");
    }

    function test_attack12_estimateStaysValidWhenStateMoves() public {
        _registerNodes(5, modelId);
        _request(requester, FEE, _params(3, 2), modelId); // warm-up
        uint256 snap = vm.snapshotState();
        _request(requester, FEE, _params(3, 2), modelId);
        uint256 estimate = vm.lastCallGas().gasTotalUsed;
        vm.revertToState(snap);
        // between estimate and inclusion: new nodes, top-ups, unbonds, other requests drawn and settled
        for (uint256 i = 5; i < 25; ++i) _registerNode(_node(i), STAKE, modelId);
        vm.deal(_node(0), 1 ether);
        vm.prank(_node(0));
        nodes.topUp{value: 1 ether}();
        vm.prank(_node(1));
        nodes.requestUnbond();
        _nextEpoch();
        (uint256 other, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(other, c, OUT_A);
        _revealAll(other, c, OUT_A);
        _finalize(other);
        _request(requester, FEE, _params(3, 2), modelId);
        uint256 included = vm.lastCallGas().gasTotalUsed;
        vm.assertEq(included, estimate, "the estimate is exact");
    }
}
