// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {MockVerifier} from "./utils/MockVerifier.sol";
import {IModelRegistry} from "../src/interfaces/IModelRegistry.sol";

contract ModelRegistryTest is Fixture {
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed publisher,
        string name,
        uint32 version,
        string weightsCid,
        uint256 commitment,
        address verifier,
        uint8 proofMode
    );
    event ModelDeprecated(bytes32 indexed modelId);
    event ArtifactsPublished(bytes32 indexed modelId, string artifactsCid);

    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    function test_register_storesAllFields() public view {
        IModelRegistry.Model memory m = models.getModel(modelId);
        vm.assertEq(m.publisher, publisher, "publisher");
        vm.assertEq(m.name, "digits-mlp", "name");
        vm.assertEq(uint256(m.version), 1, "version");
        vm.assertEq(m.weightsCid, "bafkreiweights", "cid");
        vm.assertEq(m.commitment, 777, "commitment");
        vm.assertEq(m.verifier, address(0), "verifier");
        vm.assertEq(uint256(m.proofMode), 0, "mode");
        vm.assertEq(m.executionProfileHash, keccak256("profile"), "profile");
        vm.assertEq(m.shardLayoutHash, keccak256("layout"), "layout");
        vm.assertEq(uint256(m.numLayers), 2, "layers");
        vm.assertEq(uint256(m.inputBits), 8, "inbits");
        vm.assertEq(uint256(m.outputBits), 32, "outbits");
        vm.assertFalse(m.requiresTee, "tee");
        vm.assertFalse(m.deprecated, "deprecated");
        vm.assertEq(uint256(m.registeredAt), 100, "registeredAt");
        vm.assertEq(modelId, keccak256(abi.encode(publisher, "digits-mlp", uint32(1))), "modelId formula");
        vm.assertTrue(models.exists(modelId), "exists");
        vm.assertEq(models.modelCount(), 1, "count");
        vm.assertEq(models.modelIdAt(0), modelId, "at");
    }

    function test_register_versionsIncrementPerPublisherAndName() public {
        bytes32 expected = keccak256(abi.encode(publisher, "digits-mlp", uint32(2)));
        vm.expectEmit(true, true, false, true, address(models));
        emit ModelRegistered(expected, publisher, "digits-mlp", 2, "bafkreiweights", 777, address(0), 0);
        bytes32 v2 = _registerModel(publisher, "digits-mlp", address(0), 0, false);
        vm.assertEq(v2, expected, "v2 id");
        vm.assertEq(uint256(models.latestVersion(publisher, "digits-mlp")), 2, "latest");
        bytes32 other = _registerModel(address(0xD00D), "digits-mlp", address(0), 0, false);
        vm.assertEq(uint256(models.getModel(other).version), 1, "other publisher starts at 1");
        vm.assertEq(uint256(models.latestVersion(address(0xD00D), "digits-mlp")), 1, "other latest");
        vm.assertEq(uint256(models.latestVersion(publisher, "unknown")), 0, "unknown");
        vm.assertEq(models.modelCount(), 3, "count");
    }

    function test_register_withVerifierEmitsItInModelRegistered() public {
        MockVerifier v = new MockVerifier(true);
        bytes32 expected = keccak256(abi.encode(publisher, "proven", uint32(1)));
        vm.expectEmit(true, true, false, true, address(models));
        emit ModelRegistered(expected, publisher, "proven", 1, "bafkreiweights", 777, address(v), 2);
        bytes32 id = _registerModel(publisher, "proven", address(v), 2, true);
        vm.assertEq(models.getModel(id).verifier, address(v), "verifier");
        vm.assertTrue(models.getModel(id).requiresTee, "tee");
    }

    function test_revert_register_emptyName() public {
        IModelRegistry.ModelInput memory m = _modelInput("", address(0), 0, false);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.EmptyName.selector));
        models.registerModel(m);
    }

    function test_revert_register_emptyCid() public {
        IModelRegistry.ModelInput memory m = _modelInput("x", address(0), 0, false);
        m.weightsCid = "";
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.EmptyWeightsCid.selector));
        models.registerModel(m);
    }

    function test_revert_register_commitmentNotInField() public {
        IModelRegistry.ModelInput memory m = _modelInput("x", address(0), 0, false);
        m.commitment = FIELD;
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.CommitmentNotInField.selector, FIELD));
        models.registerModel(m);
        m.commitment = FIELD - 1;
        models.registerModel(m); // largest field element is fine
    }

    function test_revert_register_invalidProofMode() public {
        IModelRegistry.ModelInput memory m = _modelInput("x", address(0), 3, false);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidProofMode.selector, uint8(3)));
        models.registerModel(m);
        MockVerifier v = new MockVerifier(true);
        m = _modelInput("x", address(v), 0, false);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidProofMode.selector, uint8(0)));
        models.registerModel(m);
    }

    function test_revert_register_invalidLayersAndBits() public {
        IModelRegistry.ModelInput memory m = _modelInput("x", address(0), 0, false);
        m.numLayers = 0;
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidNumLayers.selector, uint16(0)));
        models.registerModel(m);
        m.numLayers = 1;
        m.inputBits = 0;
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidBits.selector, uint8(0), uint8(32)));
        models.registerModel(m);
        m.inputBits = 8;
        m.outputBits = 0;
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.InvalidBits.selector, uint8(8), uint8(0)));
        models.registerModel(m);
    }

    function test_revert_register_verifierWithoutCode() public {
        IModelRegistry.ModelInput memory m = _modelInput("x", address(0xDEAD), 1, false);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.VerifierHasNoCode.selector, address(0xDEAD)));
        models.registerModel(m);
    }

    function test_verifier_fixedAtRegistration_noSetVerifier() public {
        // attack 4 (issue 7): there is no function that changes a registered model's verifier or proof mode
        MockVerifier v = new MockVerifier(true);
        vm.prank(publisher);
        (bool ok,) = address(models).call(
            abi.encodeWithSignature("setVerifier(bytes32,address,uint8)", modelId, address(v), uint8(1))
        );
        vm.assertFalse(ok, "setVerifier does not exist");
        IModelRegistry.Model memory m = models.getModel(modelId);
        vm.assertEq(m.verifier, address(0), "verifier unchanged");
        vm.assertEq(uint256(m.proofMode), 0, "mode unchanged");
        // a proven mode needs a verifier with code at registration
        IModelRegistry.ModelInput memory in1 = _modelInput("p", address(0), 1, false);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.VerifierRequired.selector, uint8(1)));
        models.registerModel(in1);
        in1.verifier = address(0xBEEF);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.VerifierHasNoCode.selector, address(0xBEEF)));
        models.registerModel(in1);
    }

    function test_getModelCore_oneSlotView() public {
        MockVerifier v = new MockVerifier(true);
        bytes32 id = _registerModel(publisher, "proven", address(v), 2, true);
        IModelRegistry.ModelCore memory c = models.getModelCore(id);
        vm.assertEq(c.verifier, address(v), "verifier");
        vm.assertEq(uint256(c.proofMode), 2, "mode");
        vm.assertEq(uint256(c.numLayers), 2, "layers");
        vm.assertTrue(c.requiresTee && c.exists && !c.deprecated, "flags");
        vm.prank(publisher);
        models.deprecate(id);
        vm.assertTrue(models.getModelCore(id).deprecated, "deprecated mirrored");
        vm.assertFalse(models.getModelCore(keccak256("nope")).exists, "absent: zero, no revert");
    }

    function test_deprecate() public {
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.NotPublisher.selector, modelId, address(0xBAD)));
        models.deprecate(modelId);

        vm.expectEmit(true, false, false, true, address(models));
        emit ModelDeprecated(modelId);
        vm.prank(publisher);
        models.deprecate(modelId);
        vm.assertTrue(models.getModel(modelId).deprecated, "deprecated");

        vm.prank(publisher);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.AlreadyDeprecated.selector, modelId));
        models.deprecate(modelId);
    }

    function test_setArtifacts_publisherOnceEmitsEvent() public {
        vm.assertEq(models.artifactsCid(modelId), "", "none before");
        vm.expectEmit(true, false, false, true, address(models));
        emit ArtifactsPublished(modelId, "bafkreibundle");
        vm.prank(publisher);
        models.setArtifacts(modelId, "bafkreibundle");
        vm.assertEq(models.artifactsCid(modelId), "bafkreibundle", "stored");
        // the Model record itself is unchanged
        vm.assertEq(models.getModel(modelId).weightsCid, "bafkreiweights", "weights cid");
    }

    function test_revert_setArtifacts_notPublisher() public {
        vm.prank(address(0xBAD));
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.NotPublisher.selector, modelId, address(0xBAD)));
        models.setArtifacts(modelId, "bafkreibundle");
        vm.assertEq(models.artifactsCid(modelId), "", "unchanged");
    }

    function test_revert_setArtifacts_modelNotFound() public {
        bytes32 missing = keccak256("missing");
        vm.prank(publisher);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelNotFound.selector, missing));
        models.setArtifacts(missing, "bafkreibundle");
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelNotFound.selector, missing));
        models.artifactsCid(missing);
    }

    function test_revert_setArtifacts_emptyCid() public {
        vm.prank(publisher);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.EmptyArtifactsCid.selector));
        models.setArtifacts(modelId, "");
    }

    function test_revert_setArtifacts_alreadySet() public {
        vm.startPrank(publisher);
        models.setArtifacts(modelId, "bafkreibundle");
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ArtifactsAlreadySet.selector, modelId, "bafkreibundle"));
        models.setArtifacts(modelId, "bafkreiother");
        vm.stopPrank();
        vm.assertEq(models.artifactsCid(modelId), "bafkreibundle", "first value kept");
    }

    function test_revert_views() public {
        bytes32 missing = keccak256("missing");
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelNotFound.selector, missing));
        models.getModel(missing);
        vm.assertFalse(models.exists(missing), "exists");
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.IndexOutOfRange.selector, uint256(1), uint256(1)));
        models.modelIdAt(1);
    }

    function testFuzz_register_commitmentBound(uint256 commitment) public {
        IModelRegistry.ModelInput memory m = _modelInput("fuzz", address(0), 0, false);
        m.commitment = commitment;
        if (commitment >= FIELD) {
            vm.expectRevert(abi.encodeWithSelector(IModelRegistry.CommitmentNotInField.selector, commitment));
            models.registerModel(m);
        } else {
            bytes32 id = models.registerModel(m);
            vm.assertEq(models.getModel(id).commitment, commitment, "stored");
        }
    }
}
