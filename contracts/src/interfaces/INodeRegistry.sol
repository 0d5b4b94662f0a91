// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title INodeRegistry
/// @notice Staked worker nodes: stake, endpoint, served model shards, TEE attestation, unbonding, slashing.
interface INodeRegistry {
    /// @notice A served layer range [layerStart, layerEnd) of a model; [0, 0xffff) means the full model.
    struct ModelShard {
        bytes32 modelId;
        uint16 layerStart;
        uint16 layerEnd;
    }

    struct Node {
        address operator;
        string endpoint;
        uint256 stake;
        uint64 unbondingSince; // block number; 0 = active
        bool registered;
    }

    struct Attestation {
        uint8 teeType; // 0 none, 1 SGX, 2 TDX, 3 SEV-SNP, 255 MOCK
        bytes32 measurement;
        bytes32 quoteHash;
        address reportDataAddress;
        uint64 expiresAt; // block number
        uint8 verifiedBy; // 0 unverified, 1 off-chain DCAP, 2 on-chain, 255 mock PKI
        string quoteCid;
    }

    error InsufficientStake(uint256 provided, uint256 required);
    error AlreadyRegistered(address node);
    error NotRegistered(address node);
    error EmptyEndpoint();
    error TooManyShards(uint256 count, uint256 max);
    error InvalidShard(bytes32 modelId, uint16 layerStart, uint16 layerEnd);
    error UnknownModel(bytes32 modelId);
    error ZeroValue();
    error AlreadyUnbonding(address node);
    error NotUnbonding(address node);
    error UnbondingNotElapsed(uint256 currentBlock, uint256 availableAtBlock);
    error NodeUnbonding(address node);
    error ReportDataMismatch(address reportDataAddress, address node);
    error MeasurementNotAllowed(bytes32 measurement);
    error AttestationExpired(uint64 expiresAt, uint256 currentBlock);
    error InvalidTeeType(uint8 teeType);
    error NoAttestation(address node);
    error NotMarket(address caller);
    error ZeroAddress();
    error MarketAlreadySet(address market);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);
    error InvalidParameter(bytes32 name, uint256 value);

    event NodeRegistered(address indexed node, string endpoint, uint256 stake, ModelShard[] shards);
    event StakeAdded(address indexed node, uint256 amount, uint256 newStake);
    event EndpointUpdated(address indexed node, string endpoint);
    event ShardsUpdated(address indexed node, ModelShard[] shards);
    event UnbondRequested(address indexed node, uint64 atBlock, uint256 availableAtBlock);
    event StakeWithdrawn(address indexed node, uint256 amount);
    event Slashed(address indexed node, uint256 indexed requestId, uint256 amount);
    event AttestationSubmitted(
        address indexed node, uint8 teeType, bytes32 measurement, bytes32 quoteHash, uint64 expiresAt, uint8 verifiedBy, string quoteCid
    );
    event AttestationRevoked(address indexed node);
    event MeasurementAllowed(bytes32 indexed measurement, bool allowed);
    event ParameterChanged(bytes32 indexed name, uint256 value);
    event MarketSet(address indexed market);
    event TreasurySet(address indexed treasury);
    event SlashedWithdrawn(address indexed treasury, uint256 amount);
    event AssignmentsNoted(address[] nodes, uint64 untilBlock);

    /// @notice Registers msg.sender as a node with stake msg.value (>= minStake).
    /// @param endpoint The node's public endpoint (URL), informational.
    /// @param shards The model layer ranges served; every modelId must exist in the ModelRegistry.
    function register(string calldata endpoint, ModelShard[] calldata shards) external payable;

    /// @notice Adds msg.value to the caller's stake (not while unbonding).
    function topUp() external payable;

    /// @notice Replaces the caller's endpoint.
    function setEndpoint(string calldata endpoint) external;

    /// @notice Replaces the caller's served shards (updates per-model sets).
    function setShards(ModelShard[] calldata shards) external;

    /// @notice Starts unbonding: the node becomes ineligible; stake withdrawable after unbondingDelay blocks.
    function requestUnbond() external;

    /// @notice Pays the remaining stake to the caller and deregisters it, once the unbonding delay elapsed.
    function withdrawStake() external;

    /// @notice Records the caller's TEE attestation (reportDataAddress must be the caller, measurement allow-listed).
    /// @param a The attestation record.
    function submitAttestation(Attestation calldata a) external;

    /// @notice Deletes the caller's attestation.
    function revokeAttestation() external;

    /// @notice Owner: allow-lists or removes a TEE measurement.
    function setMeasurementAllowed(bytes32 measurement, bool allowed) external;

    /// @notice Owner: minimum stake for registration and eligibility.
    function setMinStake(uint256 value) external;

    /// @notice Owner: blocks between requestUnbond and withdrawStake.
    function setUnbondingDelay(uint256 value) external;

    /// @notice Owner: the only address allowed to slash (the InferenceMarket).
    function setMarket(address market_) external;

    /// @notice Owner: destination of slashed funds.
    function setTreasury(address treasury_) external;

    /// @notice Market only: moves min(amount, stake) of `node`'s stake to slashedBalance.
    /// @return slashed The amount actually slashed (0 if the node has no stake left).
    function slash(address node, uint256 amount, uint256 requestId) external returns (uint256 slashed);

    /// @notice Market only: records that `nodes` sit on a committee whose reveal window ends at `untilBlock`;
    ///         their stake stays withdrawable no earlier than untilBlock + unbondingDelay, so a committee
    ///         member cannot unbond out of a pending slash.
    function noteAssignments(address[] calldata nodes, uint64 untilBlock) external;

    /// @notice Pays the whole slashedBalance to the treasury.
    function withdrawSlashed() external;

    function getNode(address node) external view returns (Node memory);
    function getShards(address node) external view returns (ModelShard[] memory);
    function getAttestation(address node) external view returns (Attestation memory);
    /// @notice Registered nodes that declared any shard of `modelId` (unordered).
    function nodesForModel(bytes32 modelId) external view returns (address[] memory);
    /// @notice The number of nodes in nodesForModel(modelId).
    function nodeCountForModel(bytes32 modelId) external view returns (uint256);
    /// @notice The `index`-th node of nodesForModel(modelId).
    function nodeForModelAt(bytes32 modelId, uint256 index) external view returns (address);
    /// @notice registered, stake >= minStake, not unbonding, serves the full model and, if requiresTee,
    ///         holds an unexpired attestation whose measurement is still allow-listed.
    function isEligible(address node, bytes32 modelId, bool requiresTee) external view returns (bool);
    function stakeOf(address node) external view returns (uint256);
    /// @notice The latest reveal deadline of any committee `node` was drawn into (0 = none).
    function assignedUntil(address node) external view returns (uint64);
    /// @notice First block at which withdrawStake succeeds (0 if not unbonding).
    function withdrawableAt(address node) external view returns (uint256);
    function totalStaked() external view returns (uint256);
    function slashedBalance() external view returns (uint256);
    function minStake() external view returns (uint256);
    function unbondingDelay() external view returns (uint256);
    function market() external view returns (address);
    function treasury() external view returns (address);
    function measurementAllowed(bytes32 measurement) external view returns (bool);
}
