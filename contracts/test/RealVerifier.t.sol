// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {Groth16VerifierFixture3} from "./fixtures/Groth16VerifierFixture3.sol";
import {RealProofFixture} from "./fixtures/RealProofFixture.sol";

/// @notice End to end with a real snarkjs-exported Groth16 verifier and a real proof (fixtures/gen.sh).
contract RealVerifierTest is Fixture {
    Groth16VerifierFixture3 internal verifier;
    bytes32 internal provenModel;
    address internal constant PROVER = address(0x9800F);
    bytes32 internal constant OUT = bytes32(uint256(987655));

    function setUp() public override {
        super.setUp();
        verifier = new Groth16VerifierFixture3();
        provenModel = _registerModel(publisher, "toy-proven", address(verifier), 1, false);
        _registerNodes(3, provenModel);
    }

    function _requestAndReveal(bytes32 out) internal returns (uint256 id) {
        id = _request(requester, FEE, _params(3, 2), provenModel);
        address[] memory c = _draw(id);
        _commitAll(id, c, out);
        _revealAll(id, c, out);
    }

    function test_fixtureMatchesMarketSignals() public view {
        uint256[3] memory s = RealProofFixture.publicSignals();
        vm.assertEq(s[0], uint256(INPUT_HASH), "inputHash");
        vm.assertEq(s[1], uint256(OUT), "outputHash");
        vm.assertEq(s[2], market.requestBinding(1, PROVER), "binding formula matches the circuit input");
        uint256[8] memory p = RealProofFixture.proof();
        bool ok = verifier.verifyProof([p[0], p[1]], [[p[2], p[3]], [p[4], p[5]]], [p[6], p[7]], s);
        vm.assertTrue(ok, "the verifier accepts the fixture proof");
    }

    function test_realProof_acceptedByMarket_settlesEarly() public {
        uint256 id = _requestAndReveal(OUT);
        vm.assertEq(id, 1, "fixture is bound to request 1");
        vm.prank(PROVER);
        market.submitProof(id, OUT, RealProofFixture.proof());
        IInferenceMarket.Request memory r = market.getRequest(id);
        vm.assertTrue(r.proven, "proven");
        market.finalize(id); // proven and all revealed: no proof window to wait for
        vm.assertEq(market.getRequest(id).outputHash, OUT, "settled to the proven hash");
    }

    function test_realProof_rejectedForOtherProverOrOutputOrTampering() public {
        uint256 id = _requestAndReveal(OUT);
        uint256[8] memory p = RealProofFixture.proof();
        vm.prank(address(0xF00)); // front-runner copying the proof: binding differs
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, OUT, p);
        vm.prank(PROVER); // wrong output hash
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, bytes32(uint256(987656)), p);
        p[7] = p[7] ^ 1; // tampered proof
        vm.prank(PROVER);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InvalidProof.selector, id));
        market.submitProof(id, OUT, p);
    }

    function test_realProof_starvedCallIsRefusedNotJudgedInvalid() public {
        // with too little gas the pairing precompile fails and the snarkjs verifier would return false
        // (why estimateGas is wrong for it): the market refuses to run the check instead of judging
        uint256 id = _requestAndReveal(OUT);
        vm.prank(PROVER);
        vm.expectPartialRevert(IInferenceMarket.InsufficientGasForProof.selector);
        market.submitProof{gas: 300_000}(id, OUT, RealProofFixture.proof());
        vm.prank(PROVER);
        market.submitProof(id, OUT, RealProofFixture.proof());
        vm.assertTrue(market.getRequest(id).proven, "proven with enough gas");
    }
}
