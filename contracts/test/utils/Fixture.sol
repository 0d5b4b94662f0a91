// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./Vm.sol";
import {ModelRegistry} from "../../src/ModelRegistry.sol";
import {NodeRegistry} from "../../src/NodeRegistry.sol";
import {InferenceMarket} from "../../src/InferenceMarket.sol";
import {AttestationRegistry} from "../../src/AttestationRegistry.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {INodeRegistry} from "../../src/interfaces/INodeRegistry.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";

/// @notice Deploys the three protocol contracts wired together, one model, and helpers for the lifecycle.
abstract contract Fixture is TestBase {
    address internal owner = address(0xA11CE);
    address internal publisher = address(0xB0B);
    address internal requester = address(0xCAFE);
    address internal treasury = address(0x7EA5);

    ModelRegistry internal models;
    NodeRegistry internal nodes;
    InferenceMarket internal market;
    AttestationRegistry internal attestations;
    uint64 internal constant EPOCH = 20;
    bytes32 internal modelId;

    uint256 internal constant STAKE = 2 ether;
    uint256 internal constant FEE = 0.01 ether;
    bytes32 internal constant OUT_A = bytes32(uint256(0xA));
    bytes32 internal constant OUT_B = bytes32(uint256(0xB));
    bytes32 internal constant INPUT_HASH = bytes32(uint256(12345));
    bytes32 internal constant INVALID = bytes32(type(uint256).max);

    /// @dev The market's request records (deployments use 1,024); a test overrides this to exercise recycling.
    function _requestRecords() internal pure virtual returns (uint256) {
        return 1024;
    }

    function setUp() public virtual {
        vm.roll(100);
        models = new ModelRegistry();
        attestations = new AttestationRegistry(owner);
        nodes = new NodeRegistry(owner, address(models), address(attestations), 1 ether, 20, EPOCH);
        market = new InferenceMarket(owner, address(nodes), address(models), _requestRecords());
        vm.prank(owner);
        nodes.setMarket(address(market));
        modelId = _registerModel(publisher, "digits-mlp", address(0), 0, false);
    }

    // ------------------------------------------------------------------ models

    function _modelInput(string memory name, address verifier, uint8 mode, bool tee)
        internal
        pure
        returns (IModelRegistry.ModelInput memory m)
    {
        m = IModelRegistry.ModelInput({
            name: name,
            weightsCid: "bafkreiweights",
            commitment: 777,
            verifier: verifier,
            proofMode: mode,
            executionProfileHash: keccak256("profile"),
            shardLayoutHash: keccak256("layout"),
            numLayers: 2,
            inputBits: 8,
            outputBits: 32,
            requiresTee: tee
        });
    }

    function _registerModel(address pub, string memory name, address verifier, uint8 mode, bool tee)
        internal
        returns (bytes32 id)
    {
        vm.prank(pub);
        id = models.registerModel(_modelInput(name, verifier, mode, tee));
    }

    // ------------------------------------------------------------------ nodes

    function _node(uint256 i) internal pure returns (address) {
        return address(uint160(0x1000 + i));
    }

    function _fullShard(bytes32 id) internal pure returns (INodeRegistry.ModelShard[] memory s) {
        s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: id, layerStart: 0, layerEnd: type(uint16).max});
    }

    function _registerNode(address a, uint256 stake, bytes32 id) internal {
        vm.deal(a, stake);
        vm.prank(a);
        nodes.register{value: stake}("http://node.local:8545", _fullShard(id));
    }

    /// @dev Registers n nodes with STAKE and moves to the next epoch so that they are in the draw snapshot.
    function _registerNodes(uint256 n, bytes32 id) internal returns (address[] memory list) {
        list = new address[](n);
        for (uint256 i; i < n; ++i) {
            list[i] = _node(i);
            _registerNode(list[i], STAKE, id);
        }
        _nextEpoch();
    }

    /// @dev Rolls to the first block of the next epoch (stake changes count for draws from then on).
    function _nextEpoch() internal {
        vm.roll((block.number / EPOCH + 1) * EPOCH);
    }

    // ------------------------------------------------------------------ requests

    function _params(uint8 replicas, uint8 quorum) internal pure returns (IInferenceMarket.RequestParams memory) {
        return IInferenceMarket.RequestParams({
            replicas: replicas,
            quorum: quorum,
            commitBlocks: 10,
            revealBlocks: 10,
            callbackGasLimit: 0,
            queueBlocks: 0
        });
    }

    function _request(address from, uint256 fee, IInferenceMarket.RequestParams memory p, bytes32 id)
        internal
        returns (uint256 requestId)
    {
        vm.deal(from, from.balance + fee);
        vm.prank(from);
        requestId = market.requestInference{value: fee}(id, "bafkreiinput", INPUT_HASH, p);
    }

    function _salt(uint256 requestId, address node) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", requestId, node));
    }

    function _commitmentOf(uint256 requestId, bytes32 out, address node) internal pure returns (bytes32) {
        return keccak256(abi.encode(requestId, out, _salt(requestId, node), node));
    }

    function _commit(uint256 requestId, address node, bytes32 out) internal {
        vm.prank(node);
        market.commit(requestId, _commitmentOf(requestId, out, node));
    }

    function _reveal(uint256 requestId, address node, bytes32 out) internal {
        vm.prank(node);
        market.reveal(requestId, out, _salt(requestId, node), string(abi.encodePacked("cid-", out)));
    }

    /// @dev finalize, unless the last reveal already settled the request (unanimous, no proof window, no callback).
    function _finalize(uint256 requestId) internal {
        IInferenceMarket.Status s = market.statusOf(requestId);
        if (
            s == IInferenceMarket.Status.Pending || s == IInferenceMarket.Status.Committing
                || s == IInferenceMarket.Status.Revealing
        ) market.finalize(requestId);
    }

    /// @dev Rolls to drawBlock + 1 and draws the committee.
    function _draw(uint256 requestId) internal returns (address[] memory) {
        IInferenceMarket.Request memory r = market.getRequest(requestId);
        if (block.number <= r.drawBlock) vm.roll(r.drawBlock + 1);
        market.draw(requestId);
        return market.getCommittee(requestId);
    }

    /// @dev Request + draw.
    function _requestDrawn(uint8 replicas, uint8 quorum) internal returns (uint256 id, address[] memory c) {
        id = _request(requester, FEE, _params(replicas, quorum), modelId);
        c = _draw(id);
    }

    function _commitAll(uint256 requestId, address[] memory c, bytes32 out) internal {
        for (uint256 i; i < c.length; ++i) {
            _commit(requestId, c[i], out);
        }
    }

    function _revealAll(uint256 requestId, address[] memory c, bytes32 out) internal {
        for (uint256 i; i < c.length; ++i) {
            _reveal(requestId, c[i], out);
        }
    }

    function _rollPastFinalizeAfter(uint256 requestId) internal {
        vm.roll(market.getRequest(requestId).finalizeAfter + 1);
    }

    function _rollPastCommit(uint256 requestId) internal {
        vm.roll(market.getRequest(requestId).commitDeadline + 1);
    }

    function _rollPastReveal(uint256 requestId) internal {
        vm.roll(market.getRequest(requestId).revealDeadline + 1);
    }

    function _committee(uint256 requestId) internal view returns (address[] memory) {
        return market.getCommittee(requestId);
    }
}
