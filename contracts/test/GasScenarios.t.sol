// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {ExampleConsumer} from "../src/examples/ExampleConsumer.sol";
import {Groth16VerifierFixture3} from "./fixtures/Groth16VerifierFixture3.sol";
import {RealProofFixture} from "./fixtures/RealProofFixture.sol";

/// @notice Representative calls of every external function, for `contracts/gas-report.sh` (docs/gas.md).
///         Scenario: 3 nodes, replicas 3 / quorum 2, a real snarkjs verifier (3 public signals).
contract GasScenariosTest is Fixture {
    bytes32 internal provenModel;
    Groth16VerifierFixture3 internal verifier;
    ExampleConsumer internal app;
    bytes32 internal constant OUT = bytes32(uint256(987655));
    address internal constant PROVER = address(0x9800F);

    function setUp() public override {
        super.setUp();
        verifier = new Groth16VerifierFixture3();
        vm.prank(publisher);
        provenModel = models.registerModel(_modelInput("toy-proven", address(0), 0, false));
        vm.prank(publisher);
        models.setVerifier(provenModel, address(verifier), 1);
        app = new ExampleConsumer(market);
        _registerNodes(3, provenModel);
    }

    function test_gas_lifecycleWithRealProofAndCallback() public {
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.callbackGasLimit = 200_000;
        vm.deal(address(this), FEE);
        uint256 id = app.ask{value: FEE}(provenModel, "bafkreiinput", INPUT_HASH, p);
        address[] memory c = _committee(id);
        for (uint256 i; i < 3; ++i) _commit(id, c[i], i < 2 ? OUT : OUT_B);
        for (uint256 i; i < 3; ++i) _reveal(id, c[i], i < 2 ? OUT : OUT_B);
        vm.prank(PROVER);
        market.submitProof(id, OUT, RealProofFixture.proof()); // slashes the contradicting node
        market.finalize(id);
        vm.prank(c[0]);
        market.withdraw();
        nodes.withdrawSlashed();
        market.getRequest(id);
        market.getCommittee(id);
        market.getReveal(id, c[0]);
        market.statusOf(id);
    }

    function test_gas_plainRequestNoShowAndRefund() public {
        uint256 id = _request(requester, FEE, _params(3, 2), provenModel);
        address[] memory c = _committee(id);
        _commit(id, c[0], OUT);
        _rollPastCommit(id);
        _reveal(id, c[0], OUT);
        _rollPastReveal(id);
        market.finalize(id); // no quorum: refund + two no-show slashes
        vm.prank(requester);
        market.withdraw();
        uint256 id1 = _request(requester, FEE, _params(1, 1), provenModel);
        _commit(id1, _committee(id1)[0], OUT);
        _reveal(id1, _committee(id1)[0], OUT);
        market.finalize(id1);
    }

    function test_gas_nodeOperations() public {
        address n = _node(9);
        _registerNode(n, STAKE, provenModel);
        vm.deal(n, 1 ether);
        vm.startPrank(n);
        nodes.topUp{value: 1 ether}();
        nodes.setEndpoint("http://node-9.example:8080");
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](2);
        s[0] = INodeRegistry.ModelShard({modelId: provenModel, layerStart: 0, layerEnd: type(uint16).max});
        s[1] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: 1});
        nodes.setShards(s);
        vm.stopPrank();
        vm.prank(owner);
        nodes.setMeasurementAllowed(keccak256("m"), true);
        vm.startPrank(n);
        nodes.submitAttestation(
            INodeRegistry.Attestation({
                teeType: 2,
                measurement: keccak256("m"),
                quoteHash: keccak256("q"),
                reportDataAddress: n,
                expiresAt: 10_000,
                verifiedBy: 1,
                quoteCid: "bafkreiquote"
            })
        );
        nodes.isEligible(n, provenModel, true);
        nodes.revokeAttestation();
        nodes.requestUnbond();
        vm.roll(block.number + nodes.unbondingDelay());
        nodes.withdrawStake();
        vm.stopPrank();
        nodes.nodesForModel(provenModel);
        nodes.getNode(_node(0));
        nodes.getShards(_node(0));
        nodes.getAttestation(_node(0));
    }

    function test_gas_governanceAndModels() public {
        vm.startPrank(owner);
        market.setMinFee(0.002 ether);
        market.setMaxReplicas(8);
        market.setMaxCommitBlocks(100);
        market.setMinCommitBlocks(2);
        market.setMaxRevealBlocks(100);
        market.setMinRevealBlocks(2);
        market.setSlashAmount(0.2 ether);
        market.setProofVerifyGas(450_000);
        market.setMaxCallbackGas(500_000);
        market.setMaxCandidates(32);
        nodes.setMinStake(2 ether);
        nodes.setUnbondingDelay(50);
        nodes.setTreasury(address(0x7777));
        vm.stopPrank();
        vm.startPrank(publisher);
        bytes32 v2 = models.registerModel(_modelInput("digits-mlp", address(0), 0, false));
        models.deprecate(v2);
        vm.stopPrank();
        models.getModel(v2);
        models.latestVersion(publisher, "digits-mlp");
    }
}
