// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {VerinferConstants} from "./lib/VerinferConstants.sol";

/// @title NodeRegistry
/// @notice Holds node stakes (native token), endpoints, served shards and TEE attestations.
///         Only the InferenceMarket can slash; slashed funds accrue to `slashedBalance` and go to the treasury.
/// @dev Invariant: address(this).balance == totalStaked + slashedBalance.
contract NodeRegistry is INodeRegistry, Ownable2Step, ReentrancyGuard {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice Maximum shards one node may declare (bounds setShards / isEligible gas).
    uint256 public constant MAX_SHARDS = 16;
    /// @notice Upper bound accepted by setUnbondingDelay.
    uint256 public constant MAX_UNBONDING_DELAY = 10_000_000;

    /// @notice The model registry used to check that served models exist.
    IModelRegistry public immutable modelRegistry;

    uint256 public minStake = 1 ether;
    uint256 public unbondingDelay = 1_200;
    address public market;
    address public treasury;
    uint256 public totalStaked;
    uint256 public slashedBalance;
    mapping(bytes32 measurement => bool) public measurementAllowed;
    mapping(address node => uint64) public assignedUntil;

    mapping(address node => Node) private _nodes;
    mapping(address node => ModelShard[]) private _shards;
    mapping(address node => Attestation) private _attestations;
    mapping(bytes32 modelId => EnumerableSet.AddressSet) private _modelNodes;

    modifier onlyRegistered() {
        if (!_nodes[msg.sender].registered) revert NotRegistered(msg.sender);
        _;
    }

    /// @param initialOwner Governance address (also the initial treasury).
    /// @param models The ModelRegistry whose models nodes may serve.
    constructor(address initialOwner, IModelRegistry models) Ownable(initialOwner) {
        if (address(models) == address(0)) revert ZeroAddress();
        modelRegistry = models;
        treasury = initialOwner;
        emit TreasurySet(initialOwner);
    }

    // ------------------------------------------------------------------ operators

    /// @inheritdoc INodeRegistry
    function register(string calldata endpoint, ModelShard[] calldata shards) external payable {
        Node storage n = _nodes[msg.sender];
        if (n.registered) revert AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert InsufficientStake(msg.value, minStake);
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        n.operator = msg.sender;
        n.endpoint = endpoint;
        n.stake = msg.value;
        n.unbondingSince = 0;
        n.registered = true;
        totalStaked += msg.value;
        _writeShards(msg.sender, shards);
        emit NodeRegistered(msg.sender, endpoint, msg.value, shards);
    }

    /// @inheritdoc INodeRegistry
    function topUp() external payable onlyRegistered {
        if (msg.value == 0) revert ZeroValue();
        Node storage n = _nodes[msg.sender];
        if (n.unbondingSince != 0) revert NodeUnbonding(msg.sender);
        n.stake += msg.value;
        totalStaked += msg.value;
        emit StakeAdded(msg.sender, msg.value, n.stake);
    }

    /// @inheritdoc INodeRegistry
    function setEndpoint(string calldata endpoint) external onlyRegistered {
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        _nodes[msg.sender].endpoint = endpoint;
        emit EndpointUpdated(msg.sender, endpoint);
    }

    /// @inheritdoc INodeRegistry
    function setShards(ModelShard[] calldata shards) external onlyRegistered {
        _clearShards(msg.sender);
        _writeShards(msg.sender, shards);
        emit ShardsUpdated(msg.sender, shards);
    }

    /// @inheritdoc INodeRegistry
    function requestUnbond() external onlyRegistered {
        Node storage n = _nodes[msg.sender];
        if (n.unbondingSince != 0) revert AlreadyUnbonding(msg.sender);
        n.unbondingSince = uint64(block.number);
        emit UnbondRequested(msg.sender, uint64(block.number), _withdrawableAt(msg.sender));
    }

    /// @inheritdoc INodeRegistry
    function withdrawStake() external nonReentrant onlyRegistered {
        Node storage n = _nodes[msg.sender];
        if (n.unbondingSince == 0) revert NotUnbonding(msg.sender);
        uint256 availableAt = _withdrawableAt(msg.sender);
        if (block.number < availableAt) revert UnbondingNotElapsed(block.number, availableAt);
        uint256 amount = n.stake;
        // effects
        totalStaked -= amount;
        _clearShards(msg.sender);
        delete _attestations[msg.sender];
        delete assignedUntil[msg.sender];
        delete _nodes[msg.sender];
        emit StakeWithdrawn(msg.sender, amount);
        // interaction
        if (amount > 0) _send(msg.sender, amount);
    }

    /// @inheritdoc INodeRegistry
    function submitAttestation(Attestation calldata a) external onlyRegistered {
        if (a.teeType == 0) revert InvalidTeeType(a.teeType);
        if (a.reportDataAddress != msg.sender) revert ReportDataMismatch(a.reportDataAddress, msg.sender);
        if (!measurementAllowed[a.measurement]) revert MeasurementNotAllowed(a.measurement);
        if (a.expiresAt <= block.number) revert AttestationExpired(a.expiresAt, block.number);
        _attestations[msg.sender] = a;
        emit AttestationSubmitted(msg.sender, a.teeType, a.measurement, a.quoteHash, a.expiresAt, a.verifiedBy, a.quoteCid);
    }

    /// @inheritdoc INodeRegistry
    function revokeAttestation() external onlyRegistered {
        if (_attestations[msg.sender].teeType == 0) revert NoAttestation(msg.sender);
        delete _attestations[msg.sender];
        emit AttestationRevoked(msg.sender);
    }

    // ------------------------------------------------------------------ governance

    /// @inheritdoc INodeRegistry
    function setMeasurementAllowed(bytes32 measurement, bool allowed) external onlyOwner {
        measurementAllowed[measurement] = allowed;
        emit MeasurementAllowed(measurement, allowed);
    }

    /// @inheritdoc INodeRegistry
    function setMinStake(uint256 value) external onlyOwner {
        if (value == 0) revert InvalidParameter("minStake", value);
        minStake = value;
        emit ParameterChanged("minStake", value);
    }

    /// @inheritdoc INodeRegistry
    function setUnbondingDelay(uint256 value) external onlyOwner {
        if (value > MAX_UNBONDING_DELAY) revert InvalidParameter("unbondingDelay", value);
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
    function setTreasury(address treasury_) external onlyOwner {
        if (treasury_ == address(0)) revert ZeroAddress();
        treasury = treasury_;
        emit TreasurySet(treasury_);
    }

    // ------------------------------------------------------------------ slashing

    /// @inheritdoc INodeRegistry
    function slash(address node, uint256 amount, uint256 requestId) external returns (uint256 slashed) {
        if (msg.sender != market) revert NotMarket(msg.sender);
        Node storage n = _nodes[node];
        slashed = amount < n.stake ? amount : n.stake;
        if (slashed == 0) return 0;
        n.stake -= slashed;
        totalStaked -= slashed;
        slashedBalance += slashed;
        emit Slashed(node, requestId, slashed);
    }

    /// @inheritdoc INodeRegistry
    function noteAssignments(address[] calldata list, uint64 untilBlock) external {
        if (msg.sender != market) revert NotMarket(msg.sender);
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            if (assignedUntil[list[i]] < untilBlock) assignedUntil[list[i]] = untilBlock;
        }
        emit AssignmentsNoted(list, untilBlock);
    }

    /// @inheritdoc INodeRegistry
    function withdrawSlashed() external nonReentrant {
        uint256 amount = slashedBalance;
        if (amount == 0) revert NothingToWithdraw();
        address to = treasury; // never zero: set to the owner at construction, setTreasury rejects zero
        slashedBalance = 0;
        emit SlashedWithdrawn(to, amount);
        _send(to, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc INodeRegistry
    function getNode(address node) external view returns (Node memory) {
        return _nodes[node];
    }

    /// @inheritdoc INodeRegistry
    function getShards(address node) external view returns (ModelShard[] memory) {
        return _shards[node];
    }

    /// @inheritdoc INodeRegistry
    function getAttestation(address node) external view returns (Attestation memory) {
        return _attestations[node];
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
    function isEligible(address node, bytes32 modelId, bool requiresTee) external view returns (bool) {
        Node storage n = _nodes[node];
        if (!n.registered || n.unbondingSince != 0 || n.stake < minStake) return false;
        if (!_servesFullModel(node, modelId)) return false;
        if (requiresTee) {
            Attestation storage a = _attestations[node];
            if (a.teeType == 0 || a.expiresAt <= block.number || !measurementAllowed[a.measurement]) return false;
        }
        return true;
    }

    /// @inheritdoc INodeRegistry
    function stakeOf(address node) external view returns (uint256) {
        return _nodes[node].stake;
    }

    /// @inheritdoc INodeRegistry
    function withdrawableAt(address node) external view returns (uint256) {
        if (_nodes[node].unbondingSince == 0) return 0;
        return _withdrawableAt(node);
    }

    // ------------------------------------------------------------------ internals

    /// @dev max(unbondingSince, assignedUntil) + unbondingDelay.
    function _withdrawableAt(address node) private view returns (uint256) {
        uint256 since = _nodes[node].unbondingSince;
        uint256 assigned = assignedUntil[node];
        return (since > assigned ? since : assigned) + unbondingDelay;
    }

    function _servesFullModel(address node, bytes32 modelId) private view returns (bool) {
        ModelShard[] storage list = _shards[node];
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            ModelShard storage s = list[i];
            if (s.modelId == modelId && s.layerStart == 0 && s.layerEnd == VerinferConstants.FULL_MODEL_END) {
                return true;
            }
        }
        return false;
    }

    function _writeShards(address node, ModelShard[] calldata shards) private {
        uint256 len = shards.length;
        if (len > MAX_SHARDS) revert TooManyShards(len, MAX_SHARDS);
        ModelShard[] storage list = _shards[node];
        for (uint256 i; i < len; ++i) {
            ModelShard calldata s = shards[i];
            if (s.modelId == bytes32(0) || s.layerStart >= s.layerEnd) {
                revert InvalidShard(s.modelId, s.layerStart, s.layerEnd);
            }
            if (!modelRegistry.exists(s.modelId)) revert UnknownModel(s.modelId);
            list.push(s);
            _modelNodes[s.modelId].add(node);
        }
    }

    function _clearShards(address node) private {
        ModelShard[] storage list = _shards[node];
        uint256 len = list.length;
        for (uint256 i; i < len; ++i) {
            _modelNodes[list[i].modelId].remove(node);
        }
        delete _shards[node];
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
