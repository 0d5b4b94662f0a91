// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IInferenceMarket} from "./interfaces/IInferenceMarket.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IGroth16Verifier3} from "./interfaces/IGroth16Verifier3.sol";
import {IGroth16Verifier4} from "./interfaces/IGroth16Verifier4.sol";
import {IBatchGroth16Verifier} from "./interfaces/IBatchGroth16Verifier.sol";
import {VerinferConstants} from "./lib/VerinferConstants.sol";

/// @title InferenceMarket (V2)
/// @notice Requests escrow a fee and a callback deposit; the committee is drawn lazily from
///         blockhash(createdBlock + 1) against the stake snapshot at the start of the request's epoch; members
///         commit then reveal output hashes; proven models wait for a proof window in which a valid Groth16
///         proof settles the output (unless the committee agreed the input is invalid); finalize pays the
///         revealers of the settled output (every in-time revealer on NoQuorum), slashes dissenters and
///         no-shows only when the request settled, burns penalties except the prover's reward, and calls the
///         consumer back with escrowed gas. Governance is bounded; the owner can move neither stake nor escrow.
/// @dev Invariant: address(this).balance == totalEscrowed + totalWithdrawable; totalEscrowed is derived from the two, and
///      Invariants.t.sol checks it against the fee + deposit of the unsettled requests.
contract InferenceMarket is IInferenceMarket, Ownable2Step, ReentrancyGuardTransient {
    // ------------------------------------------------------------------ constants (bounds)

    /// @dev Largest committee.
    uint8 internal constant MAX_REPLICAS = 7;
    /// @dev Longest input or output CID accepted (bytes).
    uint256 internal constant MAX_CID_BYTES = 128;
    /// @dev Longest commit or reveal window a request may ask for (blocks).
    uint32 internal constant MAX_WINDOW_BLOCKS = 10_000;
    /// @dev Largest callbackGasLimit a request may ask for.
    uint32 internal constant MAX_CALLBACK_GAS = 2_000_000;
    /// @dev Share (bps) of the slashes of members contradicted by a proof that goes to the prover.
    uint16 internal constant PROVER_REWARD_BPS = 5_000;
    /// @notice Gas given to the verifier staticcall.
    uint256 public constant PROOF_VERIFY_GAS = 400_000;
    /// @dev Gas a unanimous last reveal needs left (base + per member) to settle the request itself.
    uint256 internal constant AUTO_SETTLE_GAS_BASE = 40_000;
    uint256 internal constant AUTO_SETTLE_GAS_PER_MEMBER = 35_000;
    /// @dev Gas submitProofBatch needs at its start (base + per proof): enough for the batch check and, when
    ///         it fails, the verifier's proof-by-proof re-check that names the bad one.
    uint256 internal constant BATCH_GAS_BASE = 150_000;
    uint256 internal constant BATCH_GAS_PER_PROOF = 300_000;
    /// @dev Gas kept back on top of the forwarded gas so the call can really get it and we can finish.
    uint256 internal constant CALLBACK_GAS_RESERVE = 15_000;
    uint256 internal constant PROOF_GAS_RESERVE = 5_000;
    /// @notice Gas redeliver keeps back from the caller's gas for the flag and the event after the callback.
    uint256 public constant REDELIVER_GAS_RESERVE = 10_000;
    /// @dev Governance bounds.
    uint256 internal constant MAX_MIN_FEE = 1 ether;
    uint32 internal constant MIN_WINDOW_FLOOR = 10;
    uint32 internal constant MIN_WINDOW_CEIL = 1_000;
    uint32 internal constant MIN_PROOF_BLOCKS = 10;
    uint32 internal constant MAX_PROOF_BLOCKS = 1_000;
    uint256 internal constant MAX_CALLBACK_GAS_PRICE = 1_000 gwei;
    /// @notice Blocks whose hash the EVM still returns.
    uint64 private constant BLOCKHASH_WINDOW = 256;

    uint256 internal constant MAX_REQUEST_RECORDS = 1 << 20;

    uint8 private constant F_PROVEN = 1;
    uint8 private constant F_CALLBACK_FAILED = 2;
    uint8 private constant F_REQUIRES_TEE = 4;
    uint8 private constant F_CALLBACK = 8; // callbackGasLimit > 0 (the limit itself is in slot 1)
    /// @dev Records a request tries before RecordBusy: a record still held by an unsettled request is skipped.
    uint256 private constant MAX_RECORD_TRIES = 4;

    // ------------------------------------------------------------------ storage

    /// @dev A request record, reused by every requestRecords-th request: requestInference writes
    ///      slots 0-2, the draw the committee words, commit and reveal the values, a proof the proven hash and
    ///      prover. Slot 0 holds all that commit and reveal read and write. Data of the record's earlier request
    ///      left in the later slots is never read: slot 0's masks, size and flags say what is current.
    struct Req {
        // slot 0
        uint40 createdBlock;
        uint16 commitBlocks;
        uint16 revealBlocks;
        Status status;
        uint8 committedMask;
        uint8 revealedMask;
        uint8 committeeSize;
        uint8 replicas;
        uint8 quorum;
        uint8 flags;
        uint8 proofMode;
        uint8 paidMask;
        uint8 slashedMask;
        uint8 queueBlocks; // <= MAX_QUEUE_BLOCKS
        uint16 paramsVersion; // < 2^16 (_pushParams)
        uint8 drawOffset; // drawnBlock - drawBlock - 1 once drawn (a draw happens in (drawBlock, drawBlock + 256])
        uint24 modelIndex; // ModelRegistry index (< MAX_MODELS = 2^24); the id is in _modelIdOf
        uint8 sameMask; // members whose output equals the first revealer's
        uint8 firstRevealer; // committee index of the first revealer (valid once revealedMask != 0)
        uint32 tag; // the request id this record holds (ids < 2^32): a stale or future id never matches
        // slot 1
        address requester;
        uint72 fee; // < 2^72 wei (4,722 ether)
        uint24 callbackGasLimit; // <= MAX_CALLBACK_GAS < 2^24
        // slot 2
        bytes32 inputHash;
        // slots 3-4: when a proof lands (F_PROVEN)
        bytes32 provenHash;
        address prover;
        // slots 5-9: committee addresses packed 20 bytes each (committeeSize members)
        uint256[5] committee;
        // slots 10-16: per member (by committee index) the commitment, replaced by the output hash at reveal
        bytes32[7] values;
    }

    /// @dev The parameters a request snapshots (by index into _paramSets).
    struct ParamSet {
        uint96 slashAmount;
        uint32 proofBlocks;
        uint64 callbackGasPrice;
    }

    /// @dev The parameters requestInference reads, in one slot.
    struct Current {
        uint96 minFee;
        uint32 minCommitBlocks;
        uint32 minRevealBlocks;
        uint32 paramsVersion;
        uint64 requestCount; // here, not in a slot of its own: requestInference reads this slot anyway
    }

    INodeRegistry public immutable nodeRegistry;
    IModelRegistry public immutable modelRegistry;
    uint64 private immutable _epochLength;
    /// @notice Request records are recycled: request `id` lives in record `id % requestRecords`, so a request
    ///         rewrites storage an earlier one left non-zero (~5k gas a slot instead of ~22k), and the on-chain views
    ///         serve the latest requestRecords requests (older ones: their events, or a view at an older block). It
    ///         also caps the requests in flight: a record is reused only once its previous request settled.
    uint256 public immutable requestRecords;

    Current private _cur;
    ParamSet[] private _paramSets;

    /// @dev Credited and not yet withdrawn. The escrow is not stored: it is the rest of the balance
    ///      (totalEscrowed() == balance - totalWithdrawable), which saves a storage write per request.
    uint256 private _totalWithdrawable;
    mapping(address account => uint256) public withdrawable;

    /// @dev Request records by requestId % requestRecords.
    mapping(uint256 record => Req) private _requests;
    /// @dev ModelRegistry index -> model id, written by the first request for a model.
    mapping(uint32 modelIndex => bytes32) private _modelIdOf;

    /// @param initialOwner Governance (a TimelockController in deployments).
    /// @param nodeRegistry_ The NodeRegistry (its owner must then call setMarket(address(this))).
    /// @param modelRegistry_ The ModelRegistry.
    /// @param requestRecords_ Records (requests in flight, and on-chain view history), in [1, 2^20]; fixed.
    constructor(address initialOwner, address nodeRegistry_, address modelRegistry_, uint256 requestRecords_)
        Ownable(initialOwner)
    {
        if (nodeRegistry_ == address(0) || modelRegistry_ == address(0)) revert ZeroAddress();
        if (requestRecords_ == 0 || requestRecords_ > MAX_REQUEST_RECORDS) {
            revert InvalidParameter("requestRecords", requestRecords_);
        }
        requestRecords = requestRecords_;
        nodeRegistry = INodeRegistry(nodeRegistry_);
        modelRegistry = IModelRegistry(modelRegistry_);
        _epochLength = INodeRegistry(nodeRegistry_).epochLength();
        _cur = Current({minFee: 0.001 ether, minCommitBlocks: 10, minRevealBlocks: 10, paramsVersion: 0, requestCount: 0});
        uint256 slash0 = INodeRegistry(nodeRegistry_).minStake() / 10;
        // forge-lint: disable-next-line(unsafe-typecast) -- minStake <= 1000 ether, so minStake / 10 < 2^96
        _paramSets.push(ParamSet({slashAmount: uint96(slash0), proofBlocks: 20, callbackGasPrice: 2 gwei}));
    }

    /// @notice Accepts prover rewards from the NodeRegistry only.
    receive() external payable {
        if (msg.sender != address(nodeRegistry)) revert UnexpectedPayment(msg.sender);
    }

    // ================================================================== requests

    /// @inheritdoc IInferenceMarket
    function requestInference(bytes32 modelId, string calldata inputCid, bytes32 inputHash, RequestParams calldata p)
        external
        payable
        returns (uint256 requestId)
    {
        Current memory c = _cur;
        uint256 cidLen = bytes(inputCid).length;
        if (cidLen == 0) revert EmptyInputCid();
        if (cidLen > MAX_CID_BYTES) revert CidTooLong(cidLen, MAX_CID_BYTES);
        if (uint256(inputHash) >= VerinferConstants.FIELD) revert InputHashNotInField(inputHash);
        if (p.quorum == 0 || p.quorum > p.replicas || p.replicas > MAX_REPLICAS || 2 * uint256(p.quorum) <= p.replicas)
        {
            revert InvalidReplicas(p.replicas, p.quorum, MAX_REPLICAS);
        }
        if (p.commitBlocks < c.minCommitBlocks || p.commitBlocks > MAX_WINDOW_BLOCKS) {
            revert InvalidCommitBlocks(p.commitBlocks, c.minCommitBlocks, MAX_WINDOW_BLOCKS);
        }
        if (p.revealBlocks < c.minRevealBlocks || p.revealBlocks > MAX_WINDOW_BLOCKS) {
            revert InvalidRevealBlocks(p.revealBlocks, c.minRevealBlocks, MAX_WINDOW_BLOCKS);
        }
        if (p.callbackGasLimit > MAX_CALLBACK_GAS) revert CallbackGasTooHigh(p.callbackGasLimit, MAX_CALLBACK_GAS);
        uint256 deposit = p.callbackGasLimit == 0
            ? 0
            : uint256(p.callbackGasLimit) * _paramSets[c.paramsVersion].callbackGasPrice;
        uint256 required = uint256(c.minFee) * p.replicas;
        if (msg.value < deposit + required) revert FeeTooLow(msg.value > deposit ? msg.value - deposit : 0, required);
        uint256 fee = msg.value - deposit;
        if (fee > type(uint72).max) revert FeeTooHigh(fee);

        IModelRegistry.ModelCore memory model = modelRegistry.getModelCore(modelId);
        if (!model.exists) revert ModelNotFound(modelId);
        if (model.deprecated) revert ModelDeprecated(modelId);

        requestId = _store(modelId, model, p, c, fee, inputHash);
        _emitRequested(requestId, modelId, inputCid, inputHash, fee, p);
    }

    /// @dev Takes a record (_claim) and writes the request's three slots.
    function _store(
        bytes32 modelId,
        IModelRegistry.ModelCore memory model,
        RequestParams calldata p,
        Current memory c,
        uint256 fee,
        bytes32 inputHash
    ) private returns (uint256 requestId) {
        Req storage r;
        (requestId, r) = _claim(uint256(c.requestCount) + 1);
        // forge-lint: disable-next-line(unsafe-typecast)
        _cur.requestCount = uint64(requestId); // < 2^32 (_claim)
        if (_modelIdOf[model.index] == bytes32(0)) _modelIdOf[model.index] = modelId;
        _writeSlot0(r, p, model, c.paramsVersion, requestId);
        // slot 1 in one store: requester | fee (< 2^72, checked) << 160 | callbackGasLimit (< 2^24) << 232
        uint256 word1 = uint256(uint160(msg.sender)) | (fee << 160) | (uint256(p.callbackGasLimit) << 232);
        assembly {
            sstore(add(r.slot, 1), word1)
        }
        r.inputHash = inputHash;
    }

    /// @dev The id and record of a new request: the next id whose record's previous request has settled. An id
    ///      whose record is still held (an unsettled request requestRecords ids back) is skipped, so one stuck
    ///      request cannot stop the market; it never exists (its record's tag is another id). The read warms the
    ///      slot requestInference writes. Each skipped record costs ~2.1k gas (only when records are held).
    function _claim(uint256 next) private view returns (uint256 requestId, Req storage r) {
        for (uint256 t; t < MAX_RECORD_TRIES; ++t) {
            requestId = next + t;
            r = _requests[requestId % requestRecords];
            Status prev = r.status;
            if (prev != Status.Pending && prev != Status.Committing) {
                if (requestId > type(uint32).max) revert InvalidParameter("requestId", requestId); // the tag's range
                return (requestId, r);
            }
        }
        revert RecordBusy(_requests[next % requestRecords].tag); // the request holding the first record tried
    }

    /// @dev Slot 0 of a new request in one store (field offsets as declared in Req; masks and committeeSize are 0).
    function _writeSlot0(
        Req storage r,
        RequestParams calldata p,
        IModelRegistry.ModelCore memory model,
        uint32 pv,
        uint256 requestId
    ) private {
        uint256 word = uint256(uint40(block.number)) | (uint256(p.commitBlocks) << 40)
            | (uint256(p.revealBlocks) << 56) | (uint256(uint8(Status.Pending)) << 72) | (uint256(p.replicas) << 104)
            | (uint256(p.quorum) << 112);
        uint256 flags = (model.requiresTee ? F_REQUIRES_TEE : 0) | (p.callbackGasLimit > 0 ? F_CALLBACK : 0);
        word |= (flags << 120) | (uint256(model.proofMode) << 128) | (uint256(p.queueBlocks) << 152)
            | (uint256(pv) << 160) | (uint256(model.index) << 184) | (requestId << 224);
        assembly {
            sstore(r.slot, word)
        }
    }

    function _emitRequested(
        uint256 requestId,
        bytes32 modelId,
        string calldata inputCid,
        bytes32 inputHash,
        uint256 fee,
        RequestParams calldata p
    ) private {
        unchecked {
            // block numbers < 2^40, windows <= 10_000, queueBlocks <= 255: no overflow
            uint64 drawBlock = uint64(block.number) + 1;
            uint64 commitDeadline = drawBlock + p.queueBlocks + 2 * uint64(p.commitBlocks);
            emit InferenceRequested(
                requestId,
                msg.sender,
                modelId,
                inputCid,
                inputHash,
                fee,
                p.replicas,
                p.quorum,
                drawBlock,
                commitDeadline,
                commitDeadline + p.revealBlocks
            );
        }
    }

    /// @inheritdoc IInferenceMarket
    function draw(uint256 requestId) external nonReentrant {
        Req storage r = _existing(requestId);
        if (r.status != Status.Pending) revert AlreadyDrawn(requestId);
        _drawOrExpire(requestId, r);
    }

    /// @inheritdoc IInferenceMarket
    function commit(uint256 requestId, bytes32 commitment) external nonReentrant {
        Req storage r = _existing(requestId);
        if (r.status == Status.Pending) {
            _drawOrExpire(requestId, r);
            if (r.status == Status.Expired) return; // the draw failed: the request is refunded, nothing to commit to
        }
        if (r.status != Status.Committing) revert AlreadyFinalized(requestId);
        uint64 commitDeadline = _commitDeadline(r);
        if (block.number > commitDeadline) revert CommitPhaseOver(requestId, commitDeadline);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        uint256 i = _indexOf(requestId, r, msg.sender);
        uint8 bit = _bit(i);
        if (r.committedMask & bit != 0) revert AlreadyCommitted(requestId, msg.sender);
        r.committedMask |= bit;
        r.values[i] = commitment;
        emit Committed(requestId, msg.sender);
    }

    /// @inheritdoc IInferenceMarket
    /// @dev The last reveal settles the request in the same transaction (saving the finalize transaction) when
    ///      the outcome is already fixed and cheap: every member revealed the same output, the model has no proof
    ///      window and no callback is due. Then nobody is slashed and finalize could only be called with the same
    ///      result in the same block anyway. It does so only with enough gas left (AUTO_SETTLE_GAS_BASE +
    ///      AUTO_SETTLE_GAS_PER_MEMBER per member); with less, the reveal stands and finalize settles later.
    function reveal(uint256 requestId, bytes32 outputHash, bytes32 salt, string calldata outputCid)
        external
        nonReentrant
    {
        Req storage r = _existing(requestId);
        if (r.status != Status.Committing) revert AlreadyFinalized(requestId);
        uint256 cidLen = bytes(outputCid).length;
        if (cidLen > MAX_CID_BYTES) revert CidTooLong(cidLen, MAX_CID_BYTES);
        uint256 i = _indexOf(requestId, r, msg.sender);
        uint8 bit = _bit(i);
        if (r.committedMask & bit == 0) revert NotCommitted(requestId, msg.sender);
        if (r.revealedMask & bit != 0) revert AlreadyRevealed(requestId, msg.sender);
        _checkRevealWindow(requestId, r);
        if (keccak256(abi.encode(requestId, outputHash, salt, msg.sender)) != r.values[i]) {
            revert CommitmentMismatch(requestId, msg.sender);
        }
        uint8 revealed = r.revealedMask;
        uint8 same = r.sameMask;
        if (revealed != 0 && r.values[r.firstRevealer] == outputHash) {
            // same output as the first revealer: remember that with a bit (the commitment stays: a non-zero slot
            // is cheaper for the record's next request to overwrite than a cleared one)
            same |= bit;
            r.sameMask = same;
        } else {
            r.values[i] = outputHash;
            // forge-lint: disable-next-line(unsafe-typecast)
            if (revealed == 0) r.firstRevealer = uint8(i); // i < MAX_REPLICAS
        }
        revealed |= bit;
        r.revealedMask = revealed;
        emit Revealed(requestId, msg.sender, outputHash, outputCid);
        uint8 full = _fullMask(r.committeeSize);
        if (
            revealed == full && (same | _bit(r.firstRevealer)) == full && r.proofMode == VerinferConstants.PROOF_NONE
                && r.flags & F_CALLBACK == 0
                && gasleft() >= AUTO_SETTLE_GAS_BASE + AUTO_SETTLE_GAS_PER_MEMBER * uint256(r.committeeSize)
        ) {
            _settle(requestId, r); // unanimous, no proof window, no callback: settle now (and free every seat)
            return;
        }
        // A proven model settles after its proof window: its capacity seat is free once the work is revealed (the
        // withdrawal lock stays until finalize). Without proofs settlement follows the last reveal (or the reveal
        // deadline), so the seat is simply freed there, one registry call for the whole committee.
        if (r.proofMode != VerinferConstants.PROOF_NONE) {
            address[] memory me = new address[](1);
            me[0] = msg.sender;
            nodeRegistry.release(me);
        }
    }

    function _checkRevealWindow(uint256 requestId, Req storage r) private view {
        uint64 commitDeadline = _commitDeadline(r);
        if (block.number <= commitDeadline && r.committedMask != _fullMask(r.committeeSize)) {
            revert RevealPhaseNotStarted(requestId, commitDeadline);
        }
        uint64 revealDeadline = commitDeadline + r.revealBlocks;
        if (block.number > revealDeadline) revert RevealPhaseOver(requestId, revealDeadline);
    }

    // ================================================================== proofs

    /// @inheritdoc IInferenceMarket
    function submitProof(uint256 requestId, bytes32 outputHash, uint256[8] calldata proof) external nonReentrant {
        Req storage r = _provable(requestId, outputHash);
        if (!_verify(r, outputHash, requestBinding(requestId, msg.sender), proof)) revert InvalidProof(requestId);
        _markProven(requestId, r, outputHash);
    }

    /// @inheritdoc IInferenceMarket
    /// @dev The requests are marked proven first and the whole transaction reverts unless the model's verifier
    ///      (a view, fixed at registration) accepts every proof: nothing of a batch with a bad proof remains.
    function submitProofBatch(
        uint256[] calldata requestIds,
        bytes32[] calldata outputHashes,
        uint256[8][] calldata proofs
    ) external nonReentrant {
        uint256 n = requestIds.length;
        if (n == 0 || outputHashes.length != n || proofs.length != n) {
            revert BatchShape(n, outputHashes.length, proofs.length);
        }
        uint256 required = BATCH_GAS_BASE + BATCH_GAS_PER_PROOF * n; // a starved check must not name a good proof
        if (gasleft() < required) revert InsufficientGasForProof(gasleft(), required);
        bytes32 modelId = _modelIdOf[_requests[requestIds[0] % requestRecords].modelIndex];
        uint256[] memory signals = _batchSignals(requestIds, outputHashes, modelId);
        // low-level, read back by hand: a plain bool[] decoder would not fit the 24 KB code limit
        (bool success, bytes memory ret) = modelRegistry.getModelCore(modelId).verifier.staticcall(
            abi.encodeCall(IBatchGroth16Verifier.checkEach, (proofs, signals))
        );
        if (!success || ret.length != 64 + 32 * n) revert BatchUnsupported(modelId); // [offset, n, ok_0..ok_n-1]
        for (uint256 i; i < n; ++i) {
            uint256 okI;
            assembly {
                okI := mload(add(ret, add(0x60, mul(i, 0x20))))
            }
            if (okI != 1) revert InvalidProofAt(i, requestIds[i]);
        }
    }

    /// @dev Checks and marks every request of a batch proven (one model version), returning the public signals
    ///      (the model commitment for private-weights circuits, inputHash, outputHash, binding) per proof.
    function _batchSignals(uint256[] calldata requestIds, bytes32[] calldata outputHashes, bytes32 modelId)
        private
        returns (uint256[] memory signals)
    {
        Req storage r0 = _requests[requestIds[0] % requestRecords];
        uint32 mi = r0.modelIndex;
        bool pub = r0.proofMode == VerinferConstants.PROOF_PUBLIC_WEIGHTS;
        uint256 k = pub ? 3 : 4;
        signals = new uint256[](requestIds.length * k);
        uint256 commitment = pub ? 0 : modelRegistry.getModel(modelId).commitment;
        for (uint256 i; i < requestIds.length; ++i) {
            uint256 id = requestIds[i];
            Req storage r = _provable(id, outputHashes[i]);
            if (r.modelIndex != mi) revert BatchModelMismatch(i, id);
            uint256 o = i * k;
            if (!pub) signals[o++] = commitment;
            signals[o] = uint256(r.inputHash);
            signals[o + 1] = uint256(outputHashes[i]);
            signals[o + 2] = requestBinding(id, msg.sender);
            _markProven(id, r, outputHashes[i]); // a duplicate id fails _provable (AlreadyProven)
        }
    }

    /// @dev submitProof's checks: drawn, not settled, a proven model, not proven yet, output in the field, and
    ///      no INVALID_INPUT quorum (that consensus stands).
    function _provable(uint256 requestId, bytes32 outputHash) private view returns (Req storage r) {
        r = _existing(requestId);
        Status st = r.status;
        if (st != Status.Committing) {
            if (st == Status.Pending) revert NothingToProve(requestId);
            revert AlreadyFinalized(requestId);
        }
        if (r.proofMode == VerinferConstants.PROOF_NONE) revert NothingToProve(requestId);
        if (r.flags & F_PROVEN != 0) revert AlreadyProven(requestId);
        if (uint256(outputHash) >= VerinferConstants.FIELD) revert OutputHashNotInField(outputHash);
        (, uint256 invalidCount,) = _tally(r);
        if (invalidCount >= r.quorum) revert NothingToProve(requestId); // INVALID_INPUT consensus stands
    }

    function _markProven(uint256 requestId, Req storage r, bytes32 outputHash) private {
        r.flags |= F_PROVEN;
        r.provenHash = outputHash;
        r.prover = msg.sender;
        emit ProofVerified(requestId, msg.sender, outputHash);
    }

    // ================================================================== settlement

    /// @inheritdoc IInferenceMarket
    function finalize(uint256 requestId) external nonReentrant {
        Req storage r = _existing(requestId);
        Status st = r.status;
        if (st == Status.Pending) {
            uint64 dd = _drawDeadline(r);
            if (block.number <= dd) revert TooEarlyToFinalize(requestId, dd);
            _expire(requestId, r);
            return;
        }
        if (st != Status.Committing) revert AlreadyFinalized(requestId);
        _settle(requestId, r);
    }

    /// @dev Settlement of a drawn request (finalize, or the last reveal of a unanimous request without proof
    ///      window or callback). The seats still held are freed here (_unlock).
    function _settle(uint256 requestId, Req storage r) private {
        // the parameter set is read only when needed (proof window, callback deposit, slashes): a cold slot less
        uint256 pv = r.paramsVersion;
        (Status outcome, bytes32 settled) = _outcome(requestId, r, pv);
        bool proverRewarded = outcome == Status.Accepted && r.flags & F_PROVEN != 0;

        // ---- effects: status, credits, flags
        address[] memory committee = _loadCommittee(r);
        uint256 cbGas = r.callbackGasLimit;
        uint256 deposit = cbGas == 0 ? 0 : cbGas * _paramSets[pv].callbackGasPrice;
        r.status = outcome;
        _totalWithdrawable += uint256(r.fee) + deposit; // the escrow becomes credits
        (uint8 slashedMask, uint256 paidCount) = _pay(requestId, r, committee, outcome, settled);
        bool callBack = cbGas > 0 && r.requester.code.length > 0;
        if (deposit > 0) {
            // the callback's gas is paid from the request: to whoever finalizes (and so runs it), else refunded
            _credit(callBack ? msg.sender : r.requester, deposit, requestId);
        }
        emit Finalized(requestId, outcome, settled, paidCount);

        // ---- interactions: the trusted registry (release seats, slash), then the bounded consumer callback
        _unlock(r, committee);
        if (slashedMask != 0) {
            _slashAll(requestId, r, committee, slashedMask, _paramSets[pv].slashAmount, proverRewarded);
        }
        if (callBack) _callback(requestId, r, outcome, settled);
    }

    /// @dev Finalize's registry call: every member's withdrawal lock goes, and every seat still held: all of them
    ///      without proofs, else the non-revealers' (revealers of a proven model freed theirs at reveal).
    function _unlock(Req storage r, address[] memory committee) private {
        uint8 full = _fullMask(r.committeeSize);
        nodeRegistry.unlock(committee, r.proofMode == VerinferConstants.PROOF_NONE ? full : full & ~r.revealedMask);
    }

    /// @dev Checks that the request may be settled now and returns its outcome and settled output hash.
    function _outcome(uint256 requestId, Req storage r, uint256 pv)
        private
        view
        returns (Status outcome, bytes32 settled)
    {
        uint64 revealDeadline = _commitDeadline(r) + r.revealBlocks;
        if (r.revealedMask != _fullMask(r.committeeSize) && block.number <= revealDeadline) {
            revert TooEarlyToFinalize(requestId, revealDeadline);
        }
        bool proven = r.flags & F_PROVEN != 0;
        (bytes32 winner, uint256 invalidCount, bool hasWinner) = _tally(r);
        bool invalid = invalidCount >= r.quorum;
        if (r.proofMode != VerinferConstants.PROOF_NONE && !proven && !invalid) {
            uint64 finalizeAfter = revealDeadline + _paramSets[pv].proofBlocks;
            if (block.number <= finalizeAfter) revert TooEarlyToFinalize(requestId, finalizeAfter);
        }
        if (invalid) return (Status.InvalidInput, VerinferConstants.INVALID_INPUT);
        if (proven) return (Status.Accepted, r.provenHash);
        if (hasWinner) return (Status.Accepted, winner);
        return (Status.NoQuorum, bytes32(0));
    }

    /// @dev Credits the fee: revealers of the settled hash share it (every in-time revealer gets fee / replicas on
    ///      NoQuorum); the rest goes back to the requester. Marks paid and to-be-slashed members.
    function _pay(uint256 requestId, Req storage r, address[] memory committee, Status outcome, bytes32 settled)
        private
        returns (uint8 slashedMask, uint256 paidCount)
    {
        uint8 paidMask;
        (paidMask, slashedMask, paidCount) = _masks(r, committee.length, outcome, settled);
        r.paidMask = paidMask;
        r.slashedMask = slashedMask;
        uint256 fee = r.fee;
        uint256 paidTotal = paidCount == 0 ? 0 : _creditPayees(requestId, committee, paidMask, paidCount, fee, outcome == Status.NoQuorum ? r.replicas : 0);
        if (fee > paidTotal) {
            address requester = r.requester;
            _credit(requester, fee - paidTotal, requestId);
            emit Refunded(requestId, requester, fee - paidTotal);
        }
    }

    /// @dev Settled (replicas == 0): fee / paidCount each, the division dust to the first payee. NoQuorum:
    ///      fee / replicas to each in-time revealer. Returns the total credited.
    function _creditPayees(
        uint256 requestId,
        address[] memory committee,
        uint8 paidMask,
        uint256 paidCount,
        uint256 fee,
        uint256 replicas
    ) private returns (uint256 paidTotal) {
        uint256 share = replicas != 0 ? fee / replicas : fee / paidCount;
        paidTotal = share * paidCount;
        uint256 extra = replicas != 0 ? 0 : fee - paidTotal;
        paidTotal += extra;
        for (uint256 i; i < committee.length; ++i) {
            if (paidMask & _bit(i) != 0) {
                _credit(committee[i], share + extra, requestId);
                extra = 0;
            }
        }
    }

    function _masks(Req storage r, uint256 size, Status outcome, bytes32 settled)
        private
        view
        returns (uint8 paidMask, uint8 slashedMask, uint256 paidCount)
    {
        uint8 revealed = r.revealedMask;
        for (uint256 i; i < size; ++i) {
            bool didReveal = revealed & _bit(i) != 0;
            if (outcome == Status.NoQuorum) {
                if (didReveal) {
                    paidMask |= _bit(i);
                    ++paidCount;
                }
            } else if (didReveal && _valueOf(r, i) == settled) {
                paidMask |= _bit(i);
                ++paidCount;
            } else {
                slashedMask |= _bit(i);
            }
        }
    }

    /// @inheritdoc IInferenceMarket
    /// @dev The callback gets all the caller's gas but REDELIVER_GAS_RESERVE (kept for the flag and the event), not
    ///      just callbackGasLimit: a consumer that ran out of gas with its own limit would otherwise fail the same
    ///      way on every retry. The caller pays (the deposit went to the finalizer). Reverts
    ///      InsufficientGasForCallback(gasLeft, required) unless the consumer can get at least callbackGasLimit
    ///      (required = callbackGasLimit * 64 / 63 + REDELIVER_GAS_RESERVE). No returndata is copied.
    function redeliver(uint256 requestId) external nonReentrant {
        Req storage r = _existing(requestId);
        if (r.flags & F_CALLBACK_FAILED == 0) revert NothingToRedeliver(requestId);
        r.flags &= ~F_CALLBACK_FAILED;
        bytes memory data =
            abi.encodeCall(IInferenceConsumer.onInferenceResult, (requestId, r.status, _settledHash(r)));
        address target = r.requester;
        uint256 required = (uint256(r.callbackGasLimit) * 64) / 63 + REDELIVER_GAS_RESERVE;
        uint256 left = gasleft();
        if (left < required) revert InsufficientGasForCallback(left, required);
        uint256 g = left - REDELIVER_GAS_RESERVE; // the EVM forwards at most 63/64 of what is left at the call
        bool success;
        assembly {
            success := call(g, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
        if (!success) r.flags |= F_CALLBACK_FAILED;
        emit CallbackResult(requestId, success);
    }

    // ================================================================== payments

    /// @inheritdoc IInferenceMarket
    function withdraw() external nonReentrant {
        _withdraw(payable(msg.sender));
    }

    /// @inheritdoc IInferenceMarket
    function withdrawTo(address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        _withdraw(to);
    }

    // ================================================================== governance (bounded)

    /// @notice Owner: minimum fee per committee seat (wei, <= MAX_MIN_FEE).
    function setMinFee(uint256 value) external onlyOwner {
        bytes32 name = "minFee";
        if (value > MAX_MIN_FEE) revert InvalidParameter(name, value);
        // forge-lint: disable-next-line(unsafe-typecast)
        _cur.minFee = uint96(value); // <= 1 ether
        emit ParameterChanged(name, value);
    }

    /// @notice Owner: shortest commit window (blocks, in [MIN_WINDOW_FLOOR, MIN_WINDOW_CEIL]).
    function setMinCommitBlocks(uint32 value) external onlyOwner {
        bytes32 name = "minCommitBlocks";
        if (value < MIN_WINDOW_FLOOR || value > MIN_WINDOW_CEIL) revert InvalidParameter(name, value);
        _cur.minCommitBlocks = value;
        emit ParameterChanged(name, value);
    }

    /// @notice Owner: shortest reveal window (blocks, in [MIN_WINDOW_FLOOR, MIN_WINDOW_CEIL]).
    function setMinRevealBlocks(uint32 value) external onlyOwner {
        bytes32 name = "minRevealBlocks";
        if (value < MIN_WINDOW_FLOOR || value > MIN_WINDOW_CEIL) revert InvalidParameter(name, value);
        _cur.minRevealBlocks = value;
        emit ParameterChanged(name, value);
    }

    /// @notice Owner: stake slashed per penalty for requests made from now on (<= minStake * MAX_SLASH_BPS / 1e4;
    ///         the registry caps every slash at that fraction of the then-current minStake as well).
    function setSlashAmount(uint256 value) external onlyOwner {
        bytes32 name = "slashAmount";
        uint256 cap = (nodeRegistry.minStake() * 2_500) / 10_000;
        if (value > cap) revert InvalidParameter(name, value);
        ParamSet memory ps = _paramSets[_cur.paramsVersion];
        // forge-lint: disable-next-line(unsafe-typecast)
        ps.slashAmount = uint96(value); // <= 250 ether
        _pushParams(ps);
        emit ParameterChanged(name, value);
    }

    /// @notice Owner: proof window after the reveal deadline for proven models, for requests made from now on.
    function setProofBlocks(uint32 value) external onlyOwner {
        bytes32 name = "proofBlocks";
        if (value < MIN_PROOF_BLOCKS || value > MAX_PROOF_BLOCKS) revert InvalidParameter(name, value);
        ParamSet memory ps = _paramSets[_cur.paramsVersion];
        ps.proofBlocks = value;
        _pushParams(ps);
        emit ParameterChanged(name, value);
    }

    /// @notice Owner: wei per unit of callbackGasLimit escrowed by requests made from now on (<= 1000 gwei).
    function setCallbackGasPrice(uint256 value) external onlyOwner {
        bytes32 name = "callbackGasPrice";
        if (value > MAX_CALLBACK_GAS_PRICE) revert InvalidParameter(name, value);
        ParamSet memory ps = _paramSets[_cur.paramsVersion];
        // forge-lint: disable-next-line(unsafe-typecast)
        ps.callbackGasPrice = uint64(value); // <= 1e12
        _pushParams(ps);
        emit ParameterChanged(name, value);
    }

    // ================================================================== views

    /// @inheritdoc IInferenceMarket
    function getRequest(uint256 requestId) external view returns (Request memory q) {
        Req storage r = _existing(requestId);
        ParamSet memory ps = _paramSets[r.paramsVersion];
        (uint64 drawBlock, uint64 queueDeadline, uint64 drawDeadline) =
            _drawWindow(r.createdBlock, r.queueBlocks, r.commitBlocks);
        bool drawn = r.status != Status.Pending && r.status != Status.Expired;
        uint64 drawnBlock = drawn ? _drawnBlock(r) : 0;
        uint64 commitDeadline = (drawn ? drawnBlock : drawDeadline) + r.commitBlocks;
        uint64 revealDeadline = commitDeadline + r.revealBlocks;
        q.requester = r.requester;
        q.modelId = _modelIdOf[r.modelIndex];
        q.inputHash = r.inputHash;
        q.fee = r.fee;
        q.callbackDeposit = uint256(r.callbackGasLimit) * ps.callbackGasPrice;
        q.params = RequestParams({
            replicas: r.replicas,
            quorum: r.quorum,
            commitBlocks: r.commitBlocks,
            revealBlocks: r.revealBlocks,
            callbackGasLimit: r.callbackGasLimit,
            queueBlocks: r.queueBlocks
        });
        q.createdBlock = r.createdBlock;
        q.drawBlock = drawBlock;
        q.queueDeadline = queueDeadline;
        q.drawDeadline = drawDeadline;
        q.drawnBlock = drawnBlock;
        q.commitDeadline = commitDeadline;
        q.revealDeadline = revealDeadline;
        q.finalizeAfter = r.proofMode == VerinferConstants.PROOF_NONE ? revealDeadline : revealDeadline + ps.proofBlocks;
        q.status = statusOf(requestId);
        q.outputHash = _settledHash(r);
        q.proven = r.flags & F_PROVEN != 0;
        q.callbackFailed = r.flags & F_CALLBACK_FAILED != 0;
        q.proofMode = r.proofMode;
        q.slashAmount = ps.slashAmount;
        q.proofBlocks = ps.proofBlocks;
        q.commitCount = _popcount(r.committedMask);
        q.revealCount = _popcount(r.revealedMask);
        q.committeeSize = r.committeeSize;
    }

    /// @inheritdoc IInferenceMarket
    function statusOf(uint256 requestId) public view returns (Status) {
        Req storage r = _record(requestId);
        if (r.tag != requestId) return Status.None; // never made (or skipped: _claim); id 0's record says None
        if (r.status != Status.Committing) return r.status;
        if (block.number > _commitDeadline(r) || r.committedMask == _fullMask(r.committeeSize)) return Status.Revealing;
        return Status.Committing;
    }

    /// @inheritdoc IInferenceMarket
    function getCommittee(uint256 requestId) external view returns (address[] memory) {
        Req storage r = _existing(requestId);
        return _loadCommittee(r);
    }

    /// @inheritdoc IInferenceMarket
    function getReveal(uint256 requestId, address node)
        external
        view
        returns (bool committed, bool revealed, bytes32 outputHash)
    {
        Req storage r = _existing(requestId);
        (bool found, uint256 i) = _findIndex(r, node);
        if (!found) return (false, false, bytes32(0));
        committed = r.committedMask & _bit(i) != 0;
        revealed = r.revealedMask & _bit(i) != 0;
        if (revealed) outputHash = _valueOf(r, i);
    }

    /// @inheritdoc IInferenceMarket
    function getMemberSettlement(uint256 requestId, address node) external view returns (bool slashed, bool paid) {
        Req storage r = _existing(requestId);
        (bool found, uint256 i) = _findIndex(r, node);
        if (!found) return (false, false);
        return (r.slashedMask & _bit(i) != 0, r.paidMask & _bit(i) != 0);
    }

    /// @inheritdoc IInferenceMarket
    function totalEscrowed() external view returns (uint256) {
        return address(this).balance - _totalWithdrawable;
    }

    /// @inheritdoc IInferenceMarket
    function totalWithdrawable() external view returns (uint256) {
        return _totalWithdrawable;
    }

    /// @inheritdoc IInferenceMarket
    function requestCount() external view returns (uint256) {
        return _cur.requestCount;
    }

    /// @inheritdoc IInferenceMarket
    function requestBinding(uint256 requestId, address prover) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(requestId, prover))) % VerinferConstants.FIELD;
    }

    /// @inheritdoc IInferenceMarket
    function quote(bytes32, RequestParams calldata p) external view returns (uint256 fee, uint256 callbackDeposit) {
        fee = uint256(_cur.minFee) * p.replicas;
        callbackDeposit = uint256(p.callbackGasLimit) * _paramSets[_cur.paramsVersion].callbackGasPrice;
    }

    /// @inheritdoc IInferenceMarket
    function parameters() external view returns (Parameters memory) {
        ParamSet memory ps = _paramSets[_cur.paramsVersion];
        return Parameters(
            _cur.minFee, _cur.minCommitBlocks, _cur.minRevealBlocks, ps.slashAmount, ps.proofBlocks, ps.callbackGasPrice,
            _cur.paramsVersion
        );
    }

    // ================================================================== internals

    /// @dev The record of `requestId` if it holds that request: its tag is the id (exact, ids < 2^32), so a stale,
    ///      future or skipped id never resolves to another request's record. Costs nothing: slot 0 is read anyway.
    function _existing(uint256 requestId) private view returns (Req storage r) {
        r = _record(requestId);
        if (r.tag != requestId || requestId == 0) revert RequestNotFound(requestId);
    }

    /// @dev The record `requestId` maps to; RequestPruned if a later request holds it.
    function _record(uint256 requestId) private view returns (Req storage r) {
        r = _requests[requestId % requestRecords];
        uint256 tag = r.tag;
        if (tag > requestId && requestId != 0) revert RequestPruned(requestId, tag);
    }

    /// @dev Block of the draw (meaningful once drawn).
    function _drawnBlock(Req storage r) private view returns (uint64) {
        unchecked {
            return uint64(r.createdBlock) + 2 + r.drawOffset; // < 2^40 + 258
        }
    }

    /// @dev The commit window counts from the draw: a member is on the hook only from the block it was drawn.
    function _commitDeadline(Req storage r) private view returns (uint64) {
        unchecked {
            return _drawnBlock(r) + r.commitBlocks; // < 2^41
        }
    }

    function _snapshotEpoch(Req storage r) private view returns (uint64) {
        return uint64(r.createdBlock) / _epochLength;
    }

    function _drawDeadline(Req storage r) private view returns (uint64 d) {
        (,, d) = _drawWindow(r.createdBlock, r.queueBlocks, r.commitBlocks);
    }

    /// @dev The draw window of a request made at `createdBlock`: the seed block drawBlock = createdBlock + 1; the
    ///      queue (a draw short of seats reverts NoSeatsYet) up to drawBlock + queueBlocks; a complete draw up to
    ///      drawBlock + queueBlocks + commitBlocks. Both are capped by the end of the epoch after the request's (the
    ///      snapshot must stay readable) and the 256-block blockhash horizon (the seed must stay readable).
    function _drawWindow(uint64 createdBlock, uint64 queueBlocks, uint64 commitBlocks)
        private
        view
        returns (uint64 drawBlock, uint64 queueDeadline, uint64 drawDeadline)
    {
        unchecked {
            // createdBlock < 2^40, epochLength <= 10_000, queueBlocks <= 255, commitBlocks <= 10_000: no overflow
            drawBlock = createdBlock + 1;
            uint64 cap = _min64((createdBlock / _epochLength + 2) * _epochLength - 1, drawBlock + BLOCKHASH_WINDOW);
            queueDeadline = _min64(drawBlock + queueBlocks, cap);
            drawDeadline = _min64(drawBlock + queueBlocks + commitBlocks, cap);
        }
    }

    /// @dev Branch-free min: the same gas whichever is smaller, so requestInference's gas does not move with the
    ///      block's position in the epoch or with queueBlocks (an eth_estimateGas stays exact, attack 12).
    function _min64(uint64 a, uint64 b) private pure returns (uint64 m) {
        assembly {
            m := xor(a, mul(xor(a, b), gt(a, b)))
        }
    }

    function _seed(uint256 requestId, uint64 drawBlock) private view returns (uint256) {
        return uint256(keccak256(abi.encode(blockhash(drawBlock), requestId)));
    }

    function _drawOrExpire(uint256 requestId, Req storage r) private {
        uint64 drawBlock = uint64(r.createdBlock) + 1;
        if (block.number <= drawBlock) revert DrawNotReady(requestId, drawBlock);
        (, uint64 queueDeadline, uint64 drawDeadline) = _drawWindow(r.createdBlock, r.queueBlocks, r.commitBlocks);
        if (block.number > drawDeadline || blockhash(drawBlock) == bytes32(0)) {
            _expire(requestId, r);
            return;
        }
        // forge-lint: disable-next-line(unsafe-typecast) -- block numbers fit 64 bits
        uint64 commitDeadline = uint64(block.number) + r.commitBlocks;
        uint64 revealDeadline = commitDeadline + r.revealBlocks;
        uint64 until = r.proofMode == VerinferConstants.PROOF_NONE
            ? revealDeadline
            : revealDeadline + _paramSets[r.paramsVersion].proofBlocks;
        address[] memory committee = _assign(requestId, r, drawBlock, until);
        if (committee.length < r.replicas) {
            if (block.number <= queueDeadline) revert NoSeatsYet(requestId, queueDeadline);
            _expire(requestId, r);
            return;
        }
        r.status = Status.Committing;
        r.committeeSize = r.replicas; // committee.length == replicas here
        // forge-lint: disable-next-line(unsafe-typecast) -- drawBlock < block.number <= drawDeadline <= drawBlock + 256
        r.drawOffset = uint8(block.number - drawBlock - 1);
        _storeCommittee(r, committee);
        emit CommitteeDrawn(requestId, committee, commitDeadline, revealDeadline, until);
    }

    /// @dev The registry's draw for the request, seats taken when complete. waitForSeats for every request: a busy
    ///      seed member is waited for (queue) or ends the draw (no queue), never skipped, so whoever picks the block
    ///      of the draw cannot hand busy members' seats to idle ones (Attack20).
    function _assign(uint256 requestId, Req storage r, uint64 drawBlock, uint64 until)
        private
        returns (address[] memory)
    {
        return nodeRegistry.drawAndAssign(
            _modelIdOf[r.modelIndex],
            _seed(requestId, drawBlock),
            _snapshotEpoch(r),
            r.replicas,
            r.flags & F_REQUIRES_TEE != 0,
            until,
            true // never skip a busy seed member: seats decide when, not who (Attack20)
        );
    }

    /// @dev Never drawn: everything back to the requester, nobody paid or slashed.
    function _expire(uint256 requestId, Req storage r) private {
        uint256 amount = uint256(r.fee) + uint256(r.callbackGasLimit) * _paramSets[r.paramsVersion].callbackGasPrice;
        r.status = Status.Expired;
        _totalWithdrawable += amount;
        _credit(r.requester, amount, requestId);
        emit Refunded(requestId, r.requester, amount);
        emit Finalized(requestId, Status.Expired, bytes32(0), 0);
    }

    /// @dev Counts reveals: the hash with >= quorum reveals (at most one since quorum > replicas / 2), and the
    ///      number of INVALID_INPUT reveals.
    function _tally(Req storage r)
        private
        view
        returns (bytes32 winner, uint256 invalidCount, bool hasWinner)
    {
        uint256 size = r.committeeSize;
        uint8 revealed = r.revealedMask;
        uint256 quorum = r.quorum;
        bytes32[] memory vals = new bytes32[](size);
        uint256 n = 0;
        for (uint256 i; i < size; ++i) {
            if (revealed & _bit(i) != 0) {
                bytes32 v = _valueOf(r, i);
                vals[n++] = v;
                if (v == VerinferConstants.INVALID_INPUT) ++invalidCount;
            }
        }
        for (uint256 i; i < n && !hasWinner; ++i) {
            uint256 c = 0;
            for (uint256 j; j < n; ++j) {
                if (vals[j] == vals[i]) ++c;
            }
            if (c >= quorum) {
                winner = vals[i];
                hasWinner = true;
            }
        }
    }

    function _slashAll(
        uint256 requestId,
        Req storage r,
        address[] memory committee,
        uint8 slashedMask,
        uint256 amount,
        bool rewardProver
    ) private {
        uint8 revealed = r.revealedMask;
        uint256 rewardTotal = 0;
        for (uint256 i; i < committee.length; ++i) {
            if (slashedMask & _bit(i) == 0) continue;
            // only members a proof contradicted feed the prover; no-shows are burned
            uint16 bps = rewardProver && (revealed & _bit(i) != 0) ? PROVER_REWARD_BPS : 0;
            (uint256 slashed, uint256 reward) =
                amount == 0 ? (uint256(0), uint256(0)) : nodeRegistry.slash(committee[i], amount, requestId, bps);
            rewardTotal += reward;
            emit NodePenalized(requestId, committee[i], slashed);
        }
        if (rewardTotal > 0) {
            address prover = r.prover;
            _totalWithdrawable += rewardTotal; // the ether just received
            _credit(prover, rewardTotal, requestId);
            emit ProverRewarded(requestId, prover, rewardTotal);
        }
    }

    function _credit(address account, uint256 amount, uint256 requestId) private {
        withdrawable[account] += amount;
        emit Credited(account, amount, requestId);
    }

    function _withdraw(address payable to) private {
        uint256 amount = withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        withdrawable[msg.sender] = 0;
        _totalWithdrawable -= amount;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    function _pushParams(ParamSet memory ps) private {
        if (_paramSets.length > type(uint16).max) revert InvalidParameter("paramsVersion", _paramSets.length);
        _paramSets.push(ps);
        // forge-lint: disable-next-line(unsafe-typecast)
        _cur.paramsVersion = uint32(_paramSets.length - 1);
    }

    /// @dev Calls the consumer with exactly callbackGasLimit gas, copying no returndata (no returndata bomb).
    ///      Reverts if the caller did not leave enough gas to really forward callbackGasLimit.
    function _callback(uint256 requestId, Req storage r, Status status, bytes32 outputHash) private {
        bytes memory data = abi.encodeCall(IInferenceConsumer.onInferenceResult, (requestId, status, outputHash));
        address target = r.requester;
        uint256 gasLimit = r.callbackGasLimit;
        uint256 required = (gasLimit * 64) / 63 + CALLBACK_GAS_RESERVE;
        if (gasleft() < required) revert InsufficientGasForCallback(gasleft(), required);
        bool success;
        assembly {
            success := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
        if (!success) r.flags |= F_CALLBACK_FAILED;
        emit CallbackResult(requestId, success);
    }

    /// @dev staticcall to the snarkjs verifier fixed at model registration; true only for a 32-byte `true`.
    function _verify(Req storage r, bytes32 outputHash, uint256 binding, uint256[8] calldata proof)
        private
        view
        returns (bool valid)
    {
        IModelRegistry.ModelCore memory core = modelRegistry.getModelCore(_modelIdOf[r.modelIndex]);
        uint256[2] memory a = [proof[0], proof[1]];
        uint256[2][2] memory b = [[proof[2], proof[3]], [proof[4], proof[5]]];
        uint256[2] memory c = [proof[6], proof[7]];
        bytes memory data;
        if (r.proofMode == VerinferConstants.PROOF_PUBLIC_WEIGHTS) {
            uint256[3] memory pub3 = [uint256(r.inputHash), uint256(outputHash), binding];
            data = abi.encodeCall(IGroth16Verifier3.verifyProof, (a, b, c, pub3));
        } else {
            uint256 commitment = modelRegistry.getModel(_modelIdOf[r.modelIndex]).commitment;
            uint256[4] memory pub4 = [commitment, uint256(r.inputHash), uint256(outputHash), binding];
            data = abi.encodeCall(IGroth16Verifier4.verifyProof, (a, b, c, pub4));
        }
        uint256 g = PROOF_VERIFY_GAS;
        uint256 required = (g * 64) / 63 + PROOF_GAS_RESERVE;
        if (gasleft() < required) revert InsufficientGasForProof(gasleft(), required);
        address verifier = core.verifier;
        bool ok;
        uint256 result;
        assembly {
            ok := staticcall(g, verifier, add(data, 0x20), mload(data), 0, 0x20)
            if and(ok, iszero(lt(returndatasize(), 0x20))) { result := mload(0) }
        }
        valid = ok && result == 1;
    }

    /// @dev The output member i revealed (its own slot, or the first revealer's when it revealed the same).
    function _valueOf(Req storage r, uint256 i) private view returns (bytes32) {
        if (r.sameMask & _bit(i) != 0) return r.values[r.firstRevealer];
        return r.values[i];
    }

    /// @dev The committee-mask bit of member i (i < MAX_REPLICAS).
    function _bit(uint256 i) private pure returns (uint8) {
        // forge-lint: disable-next-line(incorrect-shift,unsafe-typecast)
        return uint8(1 << i);
    }

    function _fullMask(uint256 size) private pure returns (uint8) {
        // forge-lint: disable-next-line(incorrect-shift,unsafe-typecast)
        return uint8((1 << size) - 1); // size <= MAX_REPLICAS (7)
    }

    function _popcount(uint8 mask) private pure returns (uint8 n) {
        while (mask != 0) {
            n += mask & 1;
            mask >>= 1;
        }
    }

    /// @dev The settled output: the proven hash, INVALID_INPUT, the hash the paid members revealed, else 0.
    function _settledHash(Req storage r) private view returns (bytes32) {
        Status st = r.status;
        if (st == Status.InvalidInput) return VerinferConstants.INVALID_INPUT;
        if (st != Status.Accepted) return bytes32(0);
        if (r.flags & F_PROVEN != 0) return r.provenHash;
        uint8 paid = r.paidMask;
        for (uint256 i; i < r.committeeSize; ++i) {
            if (paid & _bit(i) != 0) return _valueOf(r, i);
        }
        return bytes32(0);
    }

    // ---- packed committee: 20 bytes per member in consecutive words

    function _storeCommittee(Req storage r, address[] memory committee) private {
        uint256 n = committee.length;
        uint256 words = (n * 20 + 31) / 32;
        bytes memory buf = new bytes(n * 20 + 64); // room for the last word plus the 12-byte tail of an mstore
        assembly {
            let p := add(buf, 0x20)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let a := mload(add(add(committee, 0x20), mul(i, 0x20)))
                mstore(add(p, mul(i, 20)), shl(96, a))
            }
        }
        uint256[5] storage w = r.committee;
        for (uint256 k; k < words; ++k) {
            uint256 word;
            assembly {
                word := mload(add(add(buf, 0x20), mul(k, 0x20)))
            }
            w[k] = word;
        }
    }

    function _loadCommittee(Req storage r) private view returns (address[] memory committee) {
        uint256 n = r.committeeSize;
        committee = new address[](n);
        uint256 words = (n * 20 + 31) / 32;
        bytes memory buf = new bytes(n * 20 + 64);
        uint256[5] storage w = r.committee;
        for (uint256 k; k < words; ++k) {
            uint256 word = w[k];
            assembly {
                mstore(add(add(buf, 0x20), mul(k, 0x20)), word)
            }
        }
        assembly {
            let p := add(buf, 0x20)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(add(committee, 0x20), mul(i, 0x20)), shr(96, mload(add(p, mul(i, 20)))))
            }
        }
    }

    /// @dev Reads the packed words only as far as needed: member 0 is found with one (cold) word; a member split
    ///      across two words is ruled out on its first part before the second word is read.
    function _findIndex(Req storage r, address who) private view returns (bool found, uint256 index) {
        uint256 n = r.committeeSize;
        uint256[5] storage w = r.committee;
        uint256 target = uint256(uint160(who));
        for (uint256 i; i < n; ++i) {
            uint256 b = i * 20; // first byte of member i
            uint256 k = b >> 5;
            uint256 o = b & 31; // its offset in word k (from the most significant byte)
            uint256 word = w[k];
            if (o <= 12) {
                if ((word << (8 * o)) >> 96 == target) return (true, i);
            } else {
                uint256 hiBytes = 32 - o; // the address's first hiBytes bytes end word k
                uint256 hi = word & ((uint256(1) << (8 * hiBytes)) - 1);
                if (hi != target >> (8 * (20 - hiBytes))) continue;
                uint256 lo = w[k + 1] >> (8 * (12 + hiBytes)); // its last 20 - hiBytes bytes start word k + 1
                if ((hi << (8 * (20 - hiBytes))) | lo == target) return (true, i);
            }
        }
        return (false, 0);
    }

    function _indexOf(uint256 requestId, Req storage r, address who) private view returns (uint256) {
        (bool found, uint256 i) = _findIndex(r, who);
        if (!found) revert NotCommitteeMember(requestId, who);
        return i;
    }
}
