// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title INodeRegistry (V2)
/// @notice Staked worker nodes: stake, endpoint, served shards, capacity, unbonding, slashing, and a
///         stake-weighted sortition tree per model with per-epoch snapshots (see docs/contracts.md).
interface INodeRegistry {
    /// @notice A served layer range [layerStart, layerEnd) of a model; [0, 0xffff) (or [0, numLayers)) is the full model.
    struct ModelShard {
        bytes32 modelId;
        uint16 layerStart;
        uint16 layerEnd;
    }

    /// @notice A node as returned by getNode.
    struct Node {
        address operator;
        string endpoint;
        uint256 stake;
        uint64 unbondingSince; // block number of requestUnbond; 0 = active
        bool registered;
        uint16 capacity; // max in-flight committee seats
        uint16 inFlight; // capacity seats held: drawn, neither revealed nor settled
        uint64 availableAt; // first block withdrawStake may succeed (0 = not unbonding)
    }

    error InsufficientStake(uint256 provided, uint256 required);
    error AlreadyRegistered(address node);
    error NotRegistered(address node);
    error EmptyEndpoint();
    error EndpointTooLong(uint256 length, uint256 max);
    error TooManyShards(uint256 count, uint256 max);
    error InvalidShard(bytes32 modelId, uint16 layerStart, uint16 layerEnd);
    error UnknownModel(bytes32 modelId);
    error ModelIsDeprecated(bytes32 modelId);
    error ZeroValue();
    error AlreadyUnbonding(address node);
    error NotUnbonding(address node);
    error UnbondingNotElapsed(uint256 currentBlock, uint256 availableAtBlock);
    error StillAssigned(address node, uint64 untilBlock);
    error NodeUnbonding(address node);
    error InvalidCapacity(uint16 capacity);
    error NotMarket(address caller);
    error NotCourt(address caller);
    error ZeroAddress();
    error MarketAlreadySet(address market);
    error CourtAlreadySet(address court);
    error TransferFailed(address to, uint256 amount);
    error InvalidParameter(bytes32 name, uint256 value);
    error SnapshotTooOld(uint64 epoch, uint64 currentEpoch);
    error StakeTooLarge(uint256 stake);
    error NotAssigned(address node);

    event NodeRegistered(address indexed node, string endpoint, uint256 stake, ModelShard[] shards);
    event StakeAdded(address indexed node, uint256 amount, uint256 newStake);
    event EndpointUpdated(address indexed node, string endpoint);
    event ShardsUpdated(address indexed node, ModelShard[] shards);
    event UnbondRequested(address indexed node, uint64 atBlock, uint256 availableAt);
    event StakeWithdrawn(address indexed node, uint256 amount);
    /// @notice `amount` left the node's stake: `reward` went to the market (prover reward), the rest is burned.
    event Slashed(address indexed node, uint256 indexed requestId, uint256 amount);
    event Burned(uint256 indexed requestId, uint256 amount);
    event CapacitySet(address indexed node, uint16 capacity);
    event ParameterChanged(bytes32 indexed name, uint256 value);
    event MarketSet(address indexed market);
    event CourtSet(address indexed court);

    /// @notice Registers msg.sender as a node with stake msg.value (>= minStake).
    /// @param endpoint The node's public endpoint (URL), 1..256 bytes.
    /// @param shards At most MAX_SHARDS served layer ranges of existing, non-deprecated models. Only full-model
    ///        shards put the node into that model's sortition tree; partial shards are for discovery only.
    function register(string calldata endpoint, ModelShard[] calldata shards) external payable;

    /// @notice Adds msg.value to the caller's stake (not while unbonding); counts for draws from the next epoch.
    function topUp() external payable;

    /// @notice Replaces the caller's endpoint.
    function setEndpoint(string calldata endpoint) external;

    /// @notice Replaces the caller's served shards (same rules as register).
    function setShards(ModelShard[] calldata shards) external;

    /// @notice Sets how many committee seats the caller may hold at once (1..MAX_CAPACITY).
    function setCapacity(uint16 capacity) external;

    /// @notice Starts unbonding: weight 0 in every tree at once; withdrawable at block.number + unbondingDelay
    ///         (snapshotted now) once every assigned request settled.
    function requestUnbond() external;

    /// @notice Pays the remaining stake to the caller and deregisters it (block >= availableAt and
    ///         openAssignments == 0: every request it was drawn for is finalized).
    function withdrawStake() external;

    /// @notice Owner: minimum stake for registration and eligibility, in [MIN_STAKE_FLOOR, MIN_STAKE_CEIL].
    function setMinStake(uint256 value) external;

    /// @notice Owner: unbonding delay in blocks, in [MIN_UNBONDING, MAX_UNBONDING]; applies to later unbonds only.
    function setUnbondingDelay(uint64 value) external;

    /// @notice Owner, once: the only address allowed to draw, assign and release, and a slasher.
    function setMarket(address market_) external;

    /// @notice Owner, once: the StageCourt, the only other slasher (a stage that signed a wrong receipt).
    function setCourt(address court_) external;

    /// @notice Stake-weighted draw without replacement of up to `replicas` nodes serving the full `modelId`,
    ///         weighted by the stake snapshot at the start of `epoch` (current or previous epoch only). A drawn
    ///         node is skipped (and excluded from later tries) if it is now unbonding, below minStake, at
    ///         capacity (unless waitForSeats), or (requiresTee) not attested. At most 4 * replicas tries.
    ///         waitForSeats (every market draw): a drawn node at capacity ends the draw short instead of being
    ///         skipped, so seats decide only *when* the seed's committee is drawn, never *who* is in it.
    /// @return committee The drawn nodes (fewer than `replicas` if the draw failed).
    function drawCommittee(
        bytes32 modelId,
        uint256 seed,
        uint64 epoch,
        uint8 replicas,
        bool requiresTee,
        bool waitForSeats
    ) external view returns (address[] memory committee);

    /// @notice Market only: drawCommittee, then one seat assigned to each drawn node (inFlight++, a withdrawal
    ///         lock openAssignments++, assignedUntil = max(assignedUntil, untilBlock)) when the draw is complete.
    function drawAndAssign(
        bytes32 modelId,
        uint256 seed,
        uint64 epoch,
        uint8 replicas,
        bool requiresTee,
        uint64 untilBlock,
        bool waitForSeats
    ) external returns (address[] memory committee);

    /// @notice Market only: frees one capacity seat of each node (inFlight--); the market calls it when a member
    ///         reveals, so the node can be drawn again before the request settles.
    function release(address[] calldata nodes) external;

    /// @notice Market only, at finalize: removes one withdrawal lock of each node (openAssignments--) and, for
    ///         each index i with bit i of `seatMask` set (members that never revealed), its capacity seat too.
    function unlock(address[] calldata nodes, uint256 seatMask) external;

    /// @notice Court only: one withdrawal lock on `node` (openAssignments++) while a dispute over its receipt is
    ///         open, so a stage cannot unbond and withdraw before the jury's verdict.
    function holdForDispute(address node) external;

    /// @notice Court only: removes a lock taken by holdForDispute (at the verdict); never reverts.
    function releaseDispute(address node) external;

    /// @notice Market or court only: removes min(amount, stake, minStake * MAX_SLASH_BPS / 10000) from `node`'s
    ///         stake and weight; `rewardBps` of it is sent to the caller (market: prover reward; court: challenger
    ///         reward), the rest is burned (kept locked). Anyone else reverts NotMarket.
    /// @return slashed The amount removed from the stake.
    /// @return reward The part sent to the market.
    function slash(address node, uint256 amount, uint256 requestId, uint16 rewardBps)
        external
        returns (uint256 slashed, uint256 reward);

    function getNode(address node) external view returns (Node memory);
    function getShards(address node) external view returns (ModelShard[] memory);
    function stakeOf(address node) external view returns (uint256);
    /// @notice True iff `node` now declares exactly the shard [layerStart, layerEnd) of `modelId` (the court's check
    ///         that a receipt's signer serves the layer range it signed for).
    function hasShard(address node, bytes32 modelId, uint16 layerStart, uint16 layerEnd) external view returns (bool);
    /// @notice True iff `node` now has weight > 0 in `modelId`'s tree (registered, not unbonding, stake >= minStake
    ///         when last updated, serves the full model). Capacity and TEE are checked at draw time.
    function isEligible(address node, bytes32 modelId) external view returns (bool);
    /// @notice Current total weight (wei, gwei-granular) of `modelId`'s tree.
    function eligibleStake(bytes32 modelId) external view returns (uint256);
    /// @notice `node`'s weight (wei, gwei-granular) in `modelId`'s tree at the start of `epoch`.
    function weightAtEpoch(bytes32 modelId, address node, uint64 epoch) external view returns (uint256);
    /// @notice Total weight of `modelId`'s tree at the start of `epoch` (current or previous epoch).
    function totalAtEpoch(bytes32 modelId, uint64 epoch) external view returns (uint256);
    /// @notice Registered nodes that declared any shard of `modelId` (explorers only; never used by the draw).
    function nodesForModel(bytes32 modelId) external view returns (address[] memory);
    function nodeCountForModel(bytes32 modelId) external view returns (uint256);
    function nodeForModelAt(bytes32 modelId, uint256 index) external view returns (address);
    function assignedUntil(address node) external view returns (uint64);
    /// @notice Unsettled requests `node` was drawn for plus open disputes over its receipts (withdrawStake needs 0;
    ///         a reveal does not lower it).
    function openAssignments(address node) external view returns (uint256);
    /// @notice First block at which withdrawStake may succeed (0 if not unbonding); openAssignments must be 0.
    function withdrawableAt(address node) external view returns (uint256);
    function totalStaked() external view returns (uint256);
    function totalBurned() external view returns (uint256);
    function minStake() external view returns (uint256);
    function unbondingDelay() external view returns (uint64);
    function epochLength() external view returns (uint64);
    function currentEpoch() external view returns (uint64);
    function market() external view returns (address);
    function court() external view returns (address);
    function modelRegistry() external view returns (address);
    function attestationRegistry() external view returns (address);
}
