// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {VerinferConstants} from "./lib/VerinferConstants.sol";

/// @title ModelRegistry
/// @notice Publishers register versioned models: weights CID, field commitment, Groth16 verifier,
///         execution profile and shard layout. Permissionless; each model is controlled by its publisher.
///         V2: the verifier and proof mode are fixed at registration (no setVerifier): nodes that joined a
///         version can never be judged by a verifier they did not see.
contract ModelRegistry is IModelRegistry {
    /// @notice At most 2^24 model versions: InferenceMarket keeps a model index in 24 bits of a request's hot slot.
    uint256 public constant MAX_MODELS = 1 << 24;

    mapping(bytes32 modelId => Model) private _models;
    mapping(bytes32 nameKey => uint32) private _latestVersion;
    bytes32[] private _modelIds;
    mapping(bytes32 modelId => string) private _artifactsCids;
    /// @dev The hot fields in one slot (read by the market on every request and by the node registry).
    mapping(bytes32 modelId => ModelCore) private _core;

    /// @inheritdoc IModelRegistry
    function registerModel(ModelInput calldata m) external returns (bytes32 modelId) {
        if (bytes(m.name).length == 0) revert EmptyName();
        if (bytes(m.weightsCid).length == 0) revert EmptyWeightsCid();
        if (m.commitment >= VerinferConstants.FIELD) revert CommitmentNotInField(m.commitment);
        if (m.proofMode > VerinferConstants.PROOF_PRIVATE_WEIGHTS) revert InvalidProofMode(m.proofMode);
        if (m.numLayers == 0) revert InvalidNumLayers(m.numLayers);
        if (m.inputBits == 0 || m.outputBits == 0) revert InvalidBits(m.inputBits, m.outputBits);
        if (m.proofMode == VerinferConstants.PROOF_NONE) {
            if (m.verifier != address(0)) revert InvalidProofMode(m.proofMode);
        } else {
            if (m.verifier == address(0)) revert VerifierRequired(m.proofMode);
            if (m.verifier.code.length == 0) revert VerifierHasNoCode(m.verifier);
        }

        bytes32 nameKey = keccak256(abi.encode(msg.sender, m.name));
        uint32 version = _latestVersion[nameKey] + 1;
        _latestVersion[nameKey] = version;
        modelId = keccak256(abi.encode(msg.sender, m.name, version));

        Model storage s = _models[modelId];
        s.publisher = msg.sender;
        s.name = m.name;
        s.version = version;
        s.weightsCid = m.weightsCid;
        s.commitment = m.commitment;
        s.verifier = m.verifier;
        s.proofMode = m.proofMode;
        s.executionProfileHash = m.executionProfileHash;
        s.shardLayoutHash = m.shardLayoutHash;
        s.numLayers = m.numLayers;
        s.inputBits = m.inputBits;
        s.outputBits = m.outputBits;
        s.requiresTee = m.requiresTee;
        s.registeredAt = uint64(block.number);
        if (_modelIds.length >= MAX_MODELS) revert RegistryFull(_modelIds.length);
        _modelIds.push(modelId);
        _core[modelId] = ModelCore({
            verifier: m.verifier,
            proofMode: m.proofMode,
            numLayers: m.numLayers,
            requiresTee: m.requiresTee,
            deprecated: false,
            exists: true,
            // forge-lint: disable-next-line(unsafe-typecast)
            index: uint32(_modelIds.length - 1) // < MAX_MODELS = 2^24
        });

        emit ModelRegistered(modelId, msg.sender, m.name, version, m.weightsCid, m.commitment, m.verifier, m.proofMode);
    }

    /// @inheritdoc IModelRegistry
    function setArtifacts(bytes32 modelId, string calldata cid) external {
        _publisherModel(modelId);
        if (bytes(cid).length == 0) revert EmptyArtifactsCid();
        string storage current = _artifactsCids[modelId];
        if (bytes(current).length != 0) revert ArtifactsAlreadySet(modelId, current);
        _artifactsCids[modelId] = cid;
        emit ArtifactsPublished(modelId, cid);
    }

    /// @inheritdoc IModelRegistry
    function deprecate(bytes32 modelId) external {
        Model storage s = _publisherModel(modelId);
        if (s.deprecated) revert AlreadyDeprecated(modelId);
        s.deprecated = true;
        _core[modelId].deprecated = true;
        emit ModelDeprecated(modelId);
    }

    /// @inheritdoc IModelRegistry
    function latestVersion(address publisher, string calldata name) external view returns (uint32) {
        return _latestVersion[keccak256(abi.encode(publisher, name))];
    }

    /// @inheritdoc IModelRegistry
    function getModel(bytes32 modelId) external view returns (Model memory) {
        Model storage s = _models[modelId];
        if (s.publisher == address(0)) revert ModelNotFound(modelId);
        return s;
    }

    /// @inheritdoc IModelRegistry
    function artifactsCid(bytes32 modelId) external view returns (string memory) {
        if (_models[modelId].publisher == address(0)) revert ModelNotFound(modelId);
        return _artifactsCids[modelId];
    }

    /// @inheritdoc IModelRegistry
    function getModelCore(bytes32 modelId) external view returns (ModelCore memory) {
        return _core[modelId];
    }

    /// @inheritdoc IModelRegistry
    function exists(bytes32 modelId) external view returns (bool) {
        return _models[modelId].publisher != address(0);
    }

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint256) {
        return _modelIds.length;
    }

    /// @inheritdoc IModelRegistry
    function modelIdAt(uint256 index) external view returns (bytes32) {
        if (index >= _modelIds.length) revert IndexOutOfRange(index, _modelIds.length);
        return _modelIds[index];
    }

    function _publisherModel(bytes32 modelId) private view returns (Model storage s) {
        s = _models[modelId];
        if (s.publisher == address(0)) revert ModelNotFound(modelId);
        if (s.publisher != msg.sender) revert NotPublisher(modelId, msg.sender);
    }
}
