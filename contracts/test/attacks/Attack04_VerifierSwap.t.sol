// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "../utils/Fixture.sol";
import {IInferenceMarket} from "../../src/interfaces/IInferenceMarket.sol";
import {IModelRegistry} from "../../src/interfaces/IModelRegistry.sol";
import {MockVerifier} from "../utils/MockVerifier.sol";

/// @notice Issue 7 attack 4: the publisher chooses the verifier after nodes joined (an always-true verifier
///         "proves" a false output, honest nodes are slashed). The always-true verifier is the attacker's contract.
contract Attack04VerifierSwapTest is Fixture {
    function test_attack04_verifierCannotChangeAfterRegistration() public {
        address[] memory list = _registerNodes(3, modelId); // nodes joined a consensus-only model
        MockVerifier alwaysTrue = new MockVerifier(true);
        vm.prank(publisher);
        (bool ok,) = address(models).call(
            abi.encodeWithSignature("setVerifier(bytes32,address,uint8)", modelId, address(alwaysTrue), uint8(1))
        );
        vm.assertFalse(ok, "no setVerifier");
        // proofs against a mode-0 model are refused
        (uint256 id, address[] memory c) = _requestDrawn(3, 2);
        _commitAll(id, c, OUT_A);
        uint256[8] memory junk;
        vm.prank(publisher);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.NothingToProve.selector, id));
        market.submitProof(id, OUT_B, junk);
        _revealAll(id, c, OUT_A); // unanimous, no proof window: the last reveal settles
        vm.prank(publisher);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.AlreadyFinalized.selector, id));
        market.submitProof(id, OUT_B, junk);
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(list[i]), STAKE, "honest stake intact");
    }

    function test_attack04_newVerifierIsNewVersionNobodyOptedInto() public {
        address[] memory list = _registerNodes(3, modelId);
        MockVerifier alwaysTrue = new MockVerifier(true);
        vm.prank(publisher);
        bytes32 v2 = models.registerModel(_modelInput("digits-mlp", address(alwaysTrue), 1, false));
        vm.assertTrue(v2 != modelId, "a new version id");
        vm.assertEq(nodes.eligibleStake(v2), 0, "nodes are not in the new version's tree");
        uint256 id = _request(requester, FEE, _params(3, 2), v2);
        _draw(id);
        vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "nobody to judge");
        for (uint256 i; i < 3; ++i) vm.assertEq(nodes.stakeOf(list[i]), STAKE, "honest stake intact");
        IModelRegistry.Model memory m = models.getModel(modelId);
        vm.assertEq(m.verifier, address(0), "v1 unchanged");
    }
}
