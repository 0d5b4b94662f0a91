// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IModelRegistry (V2)
/// @notice Model id -> weights CID, field commitment, Groth16 verifier, execution profile and shard layout.
/// @dev modelId = keccak256(abi.encode(address publisher, string name, uint32 version)); versions start at 1
///      and auto-increment per (publisher, name).
interface IModelRegistry {
    /// @notice A registered model (read back with getModel).
    struct Model {
        address publisher;
        string name;
        uint32 version;
        string weightsCid;
        uint256 commitment; // hash of the quantized weights in the circuit's field (< FIELD)
        address verifier; // Groth16 verifier, fixed at registration (zero iff proofMode 0)
        uint8 proofMode; // 0 none, 1 public weights, 2 private weights
        bytes32 executionProfileHash;
        bytes32 shardLayoutHash;
        uint16 numLayers;
        uint8 inputBits;
        uint8 outputBits;
        bool requiresTee;
        bool deprecated;
        uint64 registeredAt; // block number
    }

    /// @notice The publisher-supplied fields of a model.
    struct ModelInput {
        string name;
        string weightsCid;
        uint256 commitment;
        address verifier;
        uint8 proofMode;
        bytes32 executionProfileHash;
        bytes32 shardLayoutHash;
        uint16 numLayers;
        uint8 inputBits;
        uint8 outputBits;
        bool requiresTee;
    }

    error EmptyName();
    error EmptyWeightsCid();
    error CommitmentNotInField(uint256 commitment);
    error InvalidProofMode(uint8 proofMode);
    error InvalidNumLayers(uint16 numLayers);
    error InvalidBits(uint8 inputBits, uint8 outputBits);
    error VerifierHasNoCode(address verifier);
    error ModelNotFound(bytes32 modelId);
    error NotPublisher(bytes32 modelId, address caller);
    error VerifierRequired(uint8 proofMode);
    error AlreadyDeprecated(bytes32 modelId);
    error IndexOutOfRange(uint256 index, uint256 count);
    /// @notice 2^24 versions registered: the market packs a model index in 24 bits.
    error RegistryFull(uint256 count);
    error EmptyArtifactsCid();
    error ArtifactsAlreadySet(bytes32 modelId, string artifactsCid);

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
    /// @notice The publisher published the model's prover bundle (zkey, wasm, vk, verifier source).
    event ArtifactsPublished(bytes32 indexed modelId, string artifactsCid);

    /// @notice The fields the market and the node registry read on every request, from one storage slot.
    struct ModelCore {
        address verifier;
        uint8 proofMode;
        uint16 numLayers;
        bool requiresTee;
        bool deprecated;
        bool exists;
        uint32 index; // position in registration order (modelIdAt(index) == modelId)
    }

    /// @notice Registers a new version of (msg.sender, m.name). The verifier and proof mode are fixed here
    ///         (mode 0 needs verifier 0; modes 1/2 need a verifier with code): a new verifier is a new version.
    /// @param m The publisher-supplied model fields.
    /// @return modelId keccak256(abi.encode(msg.sender, m.name, version)).
    function registerModel(ModelInput calldata m) external returns (bytes32 modelId);

    /// @notice Publishes the content-store CID of the model's prover bundle (a JSON document naming the
    ///         CIDs of the proving key, witness wasm, verification key and verifier source) so that any
    ///         node or auditor can fetch the artifacts. Only the publisher; settable once.
    /// @dev Not checked on-chain: users check the bundle's vk against the registered commitment (mode 1)
    ///      or against the verifier's bytecode. Reverts NotPublisher, EmptyArtifactsCid, ArtifactsAlreadySet.
    /// @param modelId The model.
    /// @param artifactsCid The bundle's CID (non-empty).
    function setArtifacts(bytes32 modelId, string calldata artifactsCid) external;

    /// @notice Marks a model deprecated: no new requests. Only the publisher.
    /// @param modelId The model.
    function deprecate(bytes32 modelId) external;

    /// @notice The latest version registered by `publisher` under `name` (0 = none).
    function latestVersion(address publisher, string calldata name) external view returns (uint32);

    /// @notice The model record; reverts ModelNotFound if absent.
    function getModel(bytes32 modelId) external view returns (Model memory);

    /// @notice The CID of the model's prover bundle ("" = none published); reverts ModelNotFound if absent.
    function artifactsCid(bytes32 modelId) external view returns (string memory);

    /// @notice verifier, proofMode, numLayers, requiresTee, deprecated, exists, index (all zero if absent); never reverts.
    function getModelCore(bytes32 modelId) external view returns (ModelCore memory);

    /// @notice Whether `modelId` is registered.
    function exists(bytes32 modelId) external view returns (bool);

    /// @notice The number of registered models.
    function modelCount() external view returns (uint256);

    /// @notice The `index`-th registered model id (registration order).
    function modelIdAt(uint256 index) external view returns (bytes32);
}
