// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IAttestationRegistry} from "./interfaces/IAttestationRegistry.sol";
import {VerinferConstants} from "./lib/VerinferConstants.sol";
import {SortitionTree} from "./lib/SortitionTree.sol";

/// @title NodeRegistry (V2)
/// @notice Holds node stakes (native token), endpoints, served shards and capacities, and one stake-weighted
///         sortition tree per model over the nodes that can serve it (registered, not unbonding, stake >=
///         minStake, full-model shard). Draws read the tree as of the start of an epoch, so stake moved after
///         a draw's seed became known never counts for that draw. Only the InferenceMarket draws; the market and
///         the StageCourt (a stage that signed a wrong receipt) slash; slashed stake is burned (kept locked here,
///         counted in totalBurned) except a reward the slasher asks for (prover / challenger). Nobody, owner
///         included, can move a node's stake but the node itself.
/// @dev Invariant: address(this).balance == totalStaked + totalBurned.
contract NodeRegistry is INodeRegistry, Ownable2Step, ReentrancyGuardTransient {
    using EnumerableSet for EnumerableSet.AddressSet;
    using SortitionTree for SortitionTree.Tree;

    /// @notice Maximum shards one node may declare (bounds register/setShards/slash gas).
    uint256 public constant MAX_SHARDS = 4;
    /// @notice Maximum endpoint length in bytes.
    uint256 public constant MAX_ENDPOINT_BYTES = 256;
    /// @notice Capacity of a newly registered node, and the allowed range of setCapacity.
    uint16 public constant DEFAULT_CAPACITY = 4;
    uint16 public constant MAX_CAPACITY = 255;
    /// @notice Bounds on governance parameters: none of them can hurt stake already at risk.
    uint256 public constant MIN_STAKE_FLOOR = 0.01 ether;
    uint256 public constant MIN_STAKE_CEIL = 1000 ether;
    uint64 public constant MIN_UNBONDING = 10;
    uint64 public constant MAX_UNBONDING = 100_000;
    uint64 public constant MIN_EPOCH_LENGTH = 5;
    uint64 public constant MAX_EPOCH_LENGTH = 10_000;
    /// @notice One slash takes at most this fraction (bps) of minStake, whatever the market asks.
    uint256 public constant MAX_SLASH_BPS = 2_500;
    /// @notice Tree weights are stake in gwei.
    uint256 public constant WEIGHT_UNIT = 1 gwei;

    /// @dev Hot per-node state in one slot. Two counters (issue 7 attack 13): `inFlight` is the capacity seat,
    ///      held from the draw until the member reveals (or until finalize if it never reveals); `openAssignments`
    ///      is the withdrawal lock, held from the draw until finalize. capacity <= MAX_CAPACITY (255) and
    ///      inFlight <= capacity (a seat is taken only when inFlight < capacity), so both fit 8 bits.
    struct NodeState {
        uint96 stake;
        uint40 unbondingSince;
        uint40 availableAt;
        uint40 assignedUntil;
        uint8 capacity;
        uint8 inFlight;
        uint16 openAssignments;
        bool registered;
    }

    IModelRegistry private immutable _models;
    IAttestationRegistry private immutable _attestations;
    /// @inheritdoc INodeRegistry
    uint64 public immutable epochLength;

    /// @dev market and minStake share a slot: every market call reads both (onlyMarket, draw, slash).
    address public market;
    uint96 private _minStake; // <= MIN_STAKE_CEIL < 2^96
    uint64 public unbondingDelay;
    uint256 public totalStaked;
    uint256 public totalBurned;

    /// @notice The StageCourt, the only slasher besides the market (set once, like the market).
    address public court;

    mapping(address node => NodeState) private _state;
    mapping(address node => string) private _endpoints;
    mapping(address node => ModelShard[]) private _shards;
    mapping(address node => bytes32[]) private _fullModels;
    mapping(bytes32 modelId => EnumerableSet.AddressSet) private _modelNodes;
    mapping(bytes32 modelId => SortitionTree.Tree) private _trees;

    modifier onlyRegistered() {
        if (!_state[msg.sender].registered) revert NotRegistered(msg.sender);
        _;
    }

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    modifier onlyCourt() {
        if (msg.sender != court || msg.sender == address(0)) revert NotCourt(msg.sender);
        _;
    }

    /// @dev The market or the court (StageCourt); anyone else reverts NotMarket, as before the court existed.
    modifier onlySlasher() {
        if (msg.sender != market && msg.sender != court) revert NotMarket(msg.sender);
        _;
    }

    /// @param initialOwner Governance (a TimelockController in deployments).
    /// @param modelRegistry_ The ModelRegistry whose models nodes may serve.
    /// @param attestationRegistry_ Answers isAttested for TEE-only models (zero: TEE models are never drawn).
    /// @param minStake_ In [MIN_STAKE_FLOOR, MIN_STAKE_CEIL].
    /// @param unbondingDelay_ Blocks, in [MIN_UNBONDING, MAX_UNBONDING].
    /// @param epochLength_ Blocks per stake-snapshot epoch, in [MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH].
    constructor(
        address initialOwner,
        address modelRegistry_,
        address attestationRegistry_,
        uint256 minStake_,
        uint64 unbondingDelay_,
        uint64 epochLength_
    ) Ownable(initialOwner) {
        if (modelRegistry_ == address(0)) revert ZeroAddress();
        if (minStake_ < MIN_STAKE_FLOOR || minStake_ > MIN_STAKE_CEIL) revert InvalidParameter("minStake", minStake_);
        if (unbondingDelay_ < MIN_UNBONDING || unbondingDelay_ > MAX_UNBONDING) {
            revert InvalidParameter("unbondingDelay", unbondingDelay_);
        }
        if (epochLength_ < MIN_EPOCH_LENGTH || epochLength_ > MAX_EPOCH_LENGTH) {
            revert InvalidParameter("epochLength", epochLength_);
        }
        _models = IModelRegistry(modelRegistry_);
        _attestations = IAttestationRegistry(attestationRegistry_);
        // forge-lint: disable-next-line(unsafe-typecast) -- <= MIN_STAKE_CEIL (checked above)
        _minStake = uint96(minStake_);
        unbondingDelay = unbondingDelay_;
        epochLength = epochLength_;
    }

    // ------------------------------------------------------------------ operators

    /// @inheritdoc INodeRegistry
    function register(string calldata endpoint, ModelShard[] calldata shards) external payable {
        NodeState storage s = _state[msg.sender];
        if (s.registered) revert AlreadyRegistered(msg.sender);
        uint256 minStake_ = _minStake;
        if (msg.value < minStake_) revert InsufficientStake(msg.value, minStake_);
        if (msg.value > type(uint96).max) revert StakeTooLarge(msg.value);
        _checkEndpoint(endpoint);
        s.stake = uint96(msg.value);
        s.unbondingSince = 0;
        s.availableAt = 0;
        // forge-lint: disable-next-line(unsafe-typecast) -- DEFAULT_CAPACITY (4) <= MAX_CAPACITY (64)
        s.capacity = uint8(DEFAULT_CAPACITY);
        s.registered = true;
        _endpoints[msg.sender] = endpoint;
        totalStaked += msg.value;
        _writeShards(msg.sender, shards);
        _syncWeights(msg.sender);
        emit NodeRegistered(msg.sender, endpoint, msg.value, shards);
        emit CapacitySet(msg.sender, DEFAULT_CAPACITY);
    }

    /// @inheritdoc INodeRegistry
    function topUp() external payable onlyRegistered {
        if (msg.value == 0) revert ZeroValue();
        NodeState storage s = _state[msg.sender];
        if (s.unbondingSince != 0) revert NodeUnbonding(msg.sender);
        uint256 newStake = uint256(s.stake) + msg.value;
        if (newStake > type(uint96).max) revert StakeTooLarge(newStake);
        // forge-lint: disable-next-line(unsafe-typecast) -- newStake <= type(uint96).max checked above
        s.stake = uint96(newStake);
        totalStaked += msg.value;
        _syncWeights(msg.sender);
        emit StakeAdded(msg.sender, msg.value, newStake);
    }

    /// @inheritdoc INodeRegistry
    function setEndpoint(string calldata endpoint) external onlyRegistered {
        _checkEndpoint(endpoint);
        _endpoints[msg.sender] = endpoint;
        emit EndpointUpdated(msg.sender, endpoint);
    }

    /// @inheritdoc INodeRegistry
    function setShards(ModelShard[] calldata shards) external onlyRegistered {
        _zeroWeights(msg.sender);
        _clearShards(msg.sender);
        _writeShards(msg.sender, shards);
        _syncWeights(msg.sender);
        emit ShardsUpdated(msg.sender, shards);
    }

    /// @inheritdoc INodeRegistry
    function setCapacity(uint16 capacity) external onlyRegistered {
        if (capacity == 0 || capacity > MAX_CAPACITY) revert InvalidCapacity(capacity);
        // forge-lint: disable-next-line(unsafe-typecast) -- <= MAX_CAPACITY (64), checked
        _state[msg.sender].capacity = uint8(capacity);
        emit CapacitySet(msg.sender, capacity);
    }

    /// @inheritdoc INodeRegistry
    function requestUnbond() external onlyRegistered {
        NodeState storage s = _state[msg.sender];
        if (s.unbondingSince != 0) revert AlreadyUnbonding(msg.sender);
        uint64 availableAt = uint64(block.number) + unbondingDelay;
        s.unbondingSince = uint40(block.number);
        // forge-lint: disable-next-line(unsafe-typecast) -- block numbers fit 40 bits for ~35,000 years at 1 s blocks
        s.availableAt = uint40(availableAt);
        _syncWeights(msg.sender);
        emit UnbondRequested(msg.sender, uint64(block.number), availableAt);
    }

    /// @inheritdoc INodeRegistry
    function withdrawStake() external nonReentrant onlyRegistered {
        NodeState storage s = _state[msg.sender];
        if (s.unbondingSince == 0) revert NotUnbonding(msg.sender);
        if (block.number < s.availableAt) revert UnbondingNotElapsed(block.number, s.availableAt);
        if (s.openAssignments != 0) revert StillAssigned(msg.sender, s.assignedUntil);
        uint256 amount = s.stake;
        // effects (weights are already 0 since requestUnbond)
        totalStaked -= amount;
        _clearShards(msg.sender);
        delete _endpoints[msg.sender];
        delete _state[msg.sender];
        emit StakeWithdrawn(msg.sender, amount);
        // interaction
        if (amount > 0) _send(msg.sender, amount);
    }

    // ------------------------------------------------------------------ governance

    /// @inheritdoc INodeRegistry
    function setMinStake(uint256 value) external onlyOwner {
        if (value < MIN_STAKE_FLOOR || value > MIN_STAKE_CEIL) revert InvalidParameter("minStake", value);
        // forge-lint: disable-next-line(unsafe-typecast) -- <= MIN_STAKE_CEIL (checked)
        _minStake = uint96(value);
        emit ParameterChanged("minStake", value);
    }

    /// @inheritdoc INodeRegistry
    function setUnbondingDelay(uint64 value) external onlyOwner {
        if (value < MIN_UNBONDING || value > MAX_UNBONDING) revert InvalidParameter("unbondingDelay", value);
        unbondingDelay = value;
        emit ParameterChanged("unbondingDelay", value);
    }

    /// @inheritdoc INodeRegistry
    /// @dev Settable once: a replaceable slasher would let the owner seize stakes.
    function setMarket(address market_) external onlyOwner {
        if (market_ == address(0)) revert ZeroAddress();
        if (market != address(0)) revert MarketAlreadySet(market);
        market = market_;
        emit MarketSet(market_);
    }

    /// @inheritdoc INodeRegistry
    /// @dev Settable once, for the same reason as setMarket: a replaceable slasher would let the owner seize stakes.
    function setCourt(address court_) external onlyOwner {
        if (court_ == address(0)) revert ZeroAddress();
        if (court != address(0)) revert CourtAlreadySet(court);
        court = court_;
        emit CourtSet(court_);
    }

    // ------------------------------------------------------------------ market

    /// @inheritdoc INodeRegistry
    function drawAndAssign(
        bytes32 modelId,
        uint256 seed,
        uint64 epoch,
        uint8 replicas,
        bool requiresTee,
        uint64 untilBlock,
        bool waitForSeats
    ) external onlyMarket returns (address[] memory committee) {
        committee = _draw(modelId, seed, epoch, replicas, requiresTee, waitForSeats);
        if (committee.length < replicas) return committee;
        uint256 len = committee.length;
        for (uint256 i; i < len; ++i) {
            NodeState storage s = _state[committee[i]];
            // the market's CommitteeDrawn event records the assignment: a capacity seat and a withdrawal lock
            s.inFlight += 1;
            s.openAssignments += 1;
            // forge-lint: disable-next-line(unsafe-typecast) -- block numbers fit 40 bits
            if (s.assignedUntil < untilBlock) s.assignedUntil = uint40(untilBlock);
        }
    }

    /// @inheritdoc INodeRegistry
    function release(address[] calldata list) external onlyMarket {
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            NodeState storage s = _state[list[i]];
            uint8 inFlight = s.inFlight;
            if (inFlight == 0) revert NotAssigned(list[i]);
            s.inFlight = inFlight - 1; // the market's Revealed / Finalized event records the release
        }
    }

    /// @inheritdoc INodeRegistry
    function unlock(address[] calldata list, uint256 seatMask) external onlyMarket {
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            NodeState storage s = _state[list[i]];
            uint16 open = s.openAssignments;
            if (open == 0) revert NotAssigned(list[i]);
            s.openAssignments = open - 1;
            // forge-lint: disable-next-line(incorrect-shift) -- bit i of the mask: member i
            if (seatMask & (1 << i) != 0) {
                uint8 inFlight = s.inFlight;
                if (inFlight == 0) revert NotAssigned(list[i]);
                s.inFlight = inFlight - 1; // the market's Finalized event records the release
            }
        }
    }

    /// @inheritdoc INodeRegistry
    function slash(address node, uint256 amount, uint256 requestId, uint16 rewardBps)
        external
        onlySlasher
        nonReentrant
        returns (uint256 slashed, uint256 reward)
    {
        if (rewardBps > 10_000) revert InvalidParameter("rewardBps", rewardBps);
        NodeState storage s = _state[node];
        uint256 cap = (uint256(_minStake) * MAX_SLASH_BPS) / 10_000;
        slashed = amount < s.stake ? amount : s.stake;
        if (slashed > cap) slashed = cap;
        if (slashed == 0) return (0, 0);
        reward = (slashed * rewardBps) / 10_000;
        uint256 burned = slashed - reward;
        // effects
        // forge-lint: disable-next-line(unsafe-typecast) -- slashed <= s.stake, a uint96
        s.stake -= uint96(slashed);
        totalStaked -= slashed;
        totalBurned += burned;
        _syncWeights(node);
        emit Slashed(node, requestId, slashed);
        if (burned > 0) emit Burned(requestId, burned);
        // interaction: the reward goes to the slasher (market: the prover; court: the challenger), which credits it
        if (reward > 0) _send(msg.sender, reward);
    }

    // ------------------------------------------------------------------ court

    /// @inheritdoc INodeRegistry
    function holdForDispute(address node) external onlyCourt {
        NodeState storage s = _state[node];
        if (!s.registered) revert NotRegistered(node);
        s.openAssignments += 1; // the court's DisputeOpened event records the hold
    }

    /// @inheritdoc INodeRegistry
    /// @dev Never reverts (the court calls it from the market's callback): a missing hold is ignored.
    function releaseDispute(address node) external onlyCourt {
        NodeState storage s = _state[node];
        uint16 open = s.openAssignments;
        if (open != 0) s.openAssignments = open - 1; // the court's DisputeResolved event records the release
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc INodeRegistry
    function drawCommittee(
        bytes32 modelId,
        uint256 seed,
        uint64 epoch,
        uint8 replicas,
        bool requiresTee,
        bool waitForSeats
    ) external view returns (address[] memory committee) {
        return _draw(modelId, seed, epoch, replicas, requiresTee, waitForSeats);
    }

    /// @inheritdoc INodeRegistry
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc INodeRegistry
    function getNode(address node) external view returns (Node memory n) {
        NodeState storage s = _state[node];
        if (!s.registered) return n;
        n = Node({
            operator: node,
            endpoint: _endpoints[node],
            stake: s.stake,
            unbondingSince: s.unbondingSince,
            registered: true,
            capacity: s.capacity,
            inFlight: s.inFlight,
            availableAt: s.availableAt
        });
    }

    /// @inheritdoc INodeRegistry
    function getShards(address node) external view returns (ModelShard[] memory) {
        return _shards[node];
    }

    /// @inheritdoc INodeRegistry
    function hasShard(address node, bytes32 modelId, uint16 layerStart, uint16 layerEnd) external view returns (bool) {
        ModelShard[] storage list = _shards[node];
        uint256 len = list.length; // <= MAX_SHARDS
        for (uint256 i; i < len; ++i) {
            ModelShard storage sh = list[i];
            if (sh.modelId == modelId && sh.layerStart == layerStart && sh.layerEnd == layerEnd) return true;
        }
        return false;
    }

    /// @inheritdoc INodeRegistry
    function stakeOf(address node) external view returns (uint256) {
        return _state[node].stake;
    }

    /// @inheritdoc INodeRegistry
    function isEligible(address node, bytes32 modelId) external view returns (bool) {
        return _trees[modelId].weightOf(node) > 0;
    }

    /// @inheritdoc INodeRegistry
    function eligibleStake(bytes32 modelId) external view returns (uint256) {
        return uint256(_trees[modelId].total()) * WEIGHT_UNIT;
    }

    /// @inheritdoc INodeRegistry
    function weightAtEpoch(bytes32 modelId, address node, uint64 epoch) external view returns (uint256) {
        _checkEpoch(epoch);
        return uint256(_trees[modelId].weightAt(node, epoch)) * WEIGHT_UNIT;
    }

    /// @inheritdoc INodeRegistry
    function totalAtEpoch(bytes32 modelId, uint64 epoch) external view returns (uint256) {
        _checkEpoch(epoch);
        return uint256(_trees[modelId].totalAt(epoch)) * WEIGHT_UNIT;
    }

    /// @inheritdoc INodeRegistry
    function nodesForModel(bytes32 modelId) external view returns (address[] memory) {
        return _modelNodes[modelId].values();
    }

    /// @inheritdoc INodeRegistry
    function nodeCountForModel(bytes32 modelId) external view returns (uint256) {
        return _modelNodes[modelId].length();
    }

    /// @inheritdoc INodeRegistry
    function nodeForModelAt(bytes32 modelId, uint256 index) external view returns (address) {
        return _modelNodes[modelId].at(index);
    }

    /// @inheritdoc INodeRegistry
    function assignedUntil(address node) external view returns (uint64) {
        return _state[node].assignedUntil;
    }

    /// @inheritdoc INodeRegistry
    function openAssignments(address node) external view returns (uint256) {
        return _state[node].openAssignments;
    }

    /// @inheritdoc INodeRegistry
    function withdrawableAt(address node) external view returns (uint256) {
        return _state[node].availableAt;
    }

    /// @inheritdoc INodeRegistry
    function currentEpoch() public view returns (uint64) {
        return uint64(block.number / epochLength);
    }

    /// @inheritdoc INodeRegistry
    function modelRegistry() external view returns (address) {
        return address(_models);
    }

    /// @inheritdoc INodeRegistry
    function attestationRegistry() external view returns (address) {
        return address(_attestations);
    }

    // ------------------------------------------------------------------ internals

    function _checkEpoch(uint64 epoch) private view {
        uint64 c = currentEpoch();
        if (epoch > c || epoch + 1 < c) revert SnapshotTooOld(epoch, c);
    }

    /// @dev Draw without replacement: every tried leaf (accepted or skipped) is left out of later tries.
    ///      waitForSeats (the market's draws): a node that would be drawn but is at capacity ends the draw short
    ///      instead of being skipped, so the committee is the seed's whatever the seats are when the draw runs
    ///      (choosing the block of the draw cannot steer seats to nodes that happen to be idle).
    function _draw(bytes32 modelId, uint256 seed, uint64 epoch, uint8 replicas, bool requiresTee, bool waitForSeats)
        private
        view
        returns (address[] memory committee)
    {
        _checkEpoch(epoch);
        SortitionTree.Tree storage t = _trees[modelId];
        uint256 maxTries = uint256(replicas) * 4;
        committee = new address[](replicas);
        uint256[] memory ex = new uint256[](maxTries);
        uint256 count;
        uint256 tries;
        uint256 minStake_ = _minStake;
        while (count < replicas && tries < maxTries) {
            (uint256 leaf, uint64 w) = t.pick(epoch, uint256(keccak256(abi.encode(seed, tries))), ex, tries);
            if (w == 0) break;
            ex[tries] = (leaf << 64) | w;
            ++tries;
            address node = t.ownerOf(leaf);
            NodeState storage s = _state[node];
            if (
                s.registered && s.unbondingSince == 0 && s.stake >= minStake_
                    && s.openAssignments != type(uint16).max
                    && t.leafWeight(leaf) > 0 && (!requiresTee || _attested(node))
            ) {
                if (s.inFlight < s.capacity) committee[count++] = node;
                else if (waitForSeats) break; // a seed member is busy: the request waits (NoSeatsYet), no skip
            }
        }
        assembly {
            mstore(committee, count)
        }
    }

    function _attested(address node) private view returns (bool) {
        if (address(_attestations) == address(0)) return false;
        return _attestations.isAttested(node);
    }

    /// @dev Writes each full-model tree leaf of `node` to its current weight.
    function _syncWeights(address node) private {
        NodeState storage s = _state[node];
        uint64 w = 0;
        // forge-lint: disable-next-line(unsafe-typecast) -- stake < 2^96 wei, so stake / 1 gwei < 2^67; the tree reverts WeightOverflow past 2^64
        if (s.registered && s.unbondingSince == 0 && s.stake >= _minStake) w = uint64(s.stake / WEIGHT_UNIT);
        bytes32[] storage full = _fullModels[node];
        uint256 len = full.length;
        uint64 epoch = currentEpoch();
        for (uint256 i; i < len; ++i) {
            _trees[full[i]].set(node, w, epoch);
        }
    }

    function _zeroWeights(address node) private {
        bytes32[] storage full = _fullModels[node];
        uint256 len = full.length;
        uint64 epoch = currentEpoch();
        for (uint256 i; i < len; ++i) {
            _trees[full[i]].set(node, 0, epoch);
        }
    }

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 len = bytes(endpoint).length;
        if (len == 0) revert EmptyEndpoint();
        if (len > MAX_ENDPOINT_BYTES) revert EndpointTooLong(len, MAX_ENDPOINT_BYTES);
    }

    function _writeShards(address node, ModelShard[] calldata shards) private {
        uint256 len = shards.length;
        if (len > MAX_SHARDS) revert TooManyShards(len, MAX_SHARDS);
        ModelShard[] storage list = _shards[node];
        bytes32[] storage full = _fullModels[node];
        for (uint256 i; i < len; ++i) {
            ModelShard calldata sh = shards[i];
            IModelRegistry.ModelCore memory core = _models.getModelCore(sh.modelId);
            if (!core.exists) revert UnknownModel(sh.modelId);
            if (core.deprecated) revert ModelIsDeprecated(sh.modelId);
            bool isFull = sh.layerStart == 0
                && (sh.layerEnd == VerinferConstants.FULL_MODEL_END || sh.layerEnd == core.numLayers);
            if (!isFull && (sh.layerStart >= sh.layerEnd || sh.layerEnd > core.numLayers)) {
                revert InvalidShard(sh.modelId, sh.layerStart, sh.layerEnd);
            }
            list.push(sh);
            bool added = _modelNodes[sh.modelId].add(node); // false: already listed by another shard of the model
            added;
            if (isFull && !_contains(full, sh.modelId)) full.push(sh.modelId);
        }
    }

    function _contains(bytes32[] storage list, bytes32 id) private view returns (bool) {
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            if (list[i] == id) return true;
        }
        return false;
    }

    function _clearShards(address node) private {
        ModelShard[] storage list = _shards[node];
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            bool removed = _modelNodes[list[i].modelId].remove(node); // false: removed with an earlier shard
            removed;
        }
        delete _shards[node];
        delete _fullModels[node];
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
