// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IInferenceMarket (V2)
/// @notice Fee + callback-gas escrow, lazy stake-weighted committee draw from blockhash(createdBlock + 1) against
///         the epoch-start stake snapshot, commit-reveal consensus on output hashes, a proof window for proven
///         models, settlement (pay revealers, slash only when the request reached a settled outcome), burned
///         penalties with a prover reward, escrowed consumer callbacks. Pull payments only.
interface IInferenceMarket {
    /// @notice Per-request parameters chosen by the requester (windows in blocks).
    struct RequestParams {
        uint8 replicas;
        uint8 quorum;
        uint32 commitBlocks;
        uint32 revealBlocks;
        uint32 callbackGasLimit;
        /// @dev Blocks after drawBlock during which a draw that finds a seed member at capacity reverts NoSeatsYet
        ///      (the request waits for seats) instead of expiring; 0 = no queue. At most 255 (a uint8: the ABI
        ///      decoder refuses more), and capped by the end of the epoch after the request's and the 256-block
        ///      blockhash horizon.
        uint8 queueBlocks;
    }

    /// @notice Pending: not drawn yet. Committing/Revealing: drawn (Revealing is derived by getRequest/statusOf,
    ///         the stored status stays Committing until finalize). Expired: never drawn (full refund).
    enum Status {
        None,
        Pending,
        Committing,
        Revealing,
        Accepted,
        InvalidInput,
        NoQuorum,
        Expired
    }

    /// @notice A request as returned by getRequest (assembled from packed storage).
    /// @notice Governance parameters in force (one view, not seven getters: the market sits at the EIP-170 limit).
    struct Parameters {
        uint256 minFee;
        uint32 minCommitBlocks;
        uint32 minRevealBlocks;
        uint256 slashAmount;
        uint32 proofBlocks;
        uint256 callbackGasPrice;
        uint32 paramsVersion;
    }

    struct Request {
        address requester;
        bytes32 modelId;
        bytes32 inputHash;
        uint256 fee;
        uint256 callbackDeposit;
        RequestParams params;
        uint64 createdBlock;
        uint64 drawBlock; // createdBlock + 1: its hash seeds the draw
        uint64 queueDeadline; // last block a draw short of seats reverts NoSeatsYet (the request waits) instead of expiring
        uint64 drawDeadline; // last block draw() succeeds
        uint64 drawnBlock; // block of the draw (0 while Pending or Expired); the windows below count from it
        uint64 commitDeadline; // last block a commit is accepted (drawnBlock + commitBlocks; while Pending: the latest it can be)
        uint64 revealDeadline; // last block a reveal is accepted
        uint64 finalizeAfter; // finalize needs block > finalizeAfter unless every member revealed (and, for proven models, a proof landed)
        Status status;
        bytes32 outputHash; // settled output (INVALID_INPUT for InvalidInput, 0 otherwise)
        bool proven;
        bool callbackFailed;
        uint8 proofMode;
        uint256 slashAmount; // snapshot
        uint32 proofBlocks; // snapshot
        uint8 commitCount;
        uint8 revealCount;
        uint8 committeeSize;
    }

    error FeeTooLow(uint256 fee, uint256 required);
    error FeeTooHigh(uint256 fee);
    error ModelNotFound(bytes32 modelId);
    error ModelDeprecated(bytes32 modelId);
    error InputHashNotInField(bytes32 inputHash);
    error EmptyInputCid();
    error CidTooLong(uint256 length, uint256 max);
    error InvalidReplicas(uint8 replicas, uint8 quorum, uint8 maxReplicas);
    error InvalidCommitBlocks(uint32 commitBlocks, uint32 min, uint32 max);
    error InvalidRevealBlocks(uint32 revealBlocks, uint32 min, uint32 max);
    error CallbackGasTooHigh(uint32 callbackGasLimit, uint32 max);
    error RequestNotFound(uint256 requestId);
    /// @notice The request's record now holds the later request `recycledBy`: read the request's events (or a
    ///         view at an older block).
    error RequestPruned(uint256 requestId, uint256 recycledBy);
    /// @notice The next MAX_RECORD_TRIES (4) records are all held by unsettled requests, the first `pendingRequestId`:
    ///         the market has as many requests in flight as records. Finalize one (anyone may once its deadline
    ///         passed) and retry.
    error RecordBusy(uint256 pendingRequestId);
    error DrawNotReady(uint256 requestId, uint64 drawBlock);
    error DrawWindowOver(uint256 requestId, uint64 drawDeadline);
    error NoSeatsYet(uint256 requestId, uint64 queueDeadline);
    error AlreadyDrawn(uint256 requestId);
    error NotCommitteeMember(uint256 requestId, address caller);
    error AlreadyCommitted(uint256 requestId, address node);
    error CommitPhaseOver(uint256 requestId, uint64 commitDeadline);
    error ZeroCommitment();
    error NotCommitted(uint256 requestId, address node);
    error AlreadyRevealed(uint256 requestId, address node);
    error RevealPhaseNotStarted(uint256 requestId, uint64 commitDeadline);
    error RevealPhaseOver(uint256 requestId, uint64 revealDeadline);
    error CommitmentMismatch(uint256 requestId, address node);
    error AlreadyFinalized(uint256 requestId);
    error TooEarlyToFinalize(uint256 requestId, uint64 finalizeAfter);
    error InsufficientGasForCallback(uint256 gasLeft, uint256 required);
    error NothingToProve(uint256 requestId);
    error AlreadyProven(uint256 requestId);
    error OutputHashNotInField(bytes32 outputHash);
    error InsufficientGasForProof(uint256 gasLeft, uint256 required);
    error InvalidProof(uint256 requestId);
    /// @notice submitProofBatch: proof `index` (of request `requestId`) is invalid; the batch is atomic, so
    ///         nothing was accepted: resubmit the others (or each with submitProof).
    error InvalidProofAt(uint256 index, uint256 requestId);
    error BatchShape(uint256 requests, uint256 outputHashes, uint256 proofs);
    /// @notice submitProofBatch: request `index` is of another model version than request 0 (one verifier per batch).
    error BatchModelMismatch(uint256 index, uint256 requestId);
    /// @notice The model's verifier (fixed at registration) has no batch entry point, or the call ran out of gas.
    error BatchUnsupported(bytes32 modelId);
    error NothingToRedeliver(uint256 requestId);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);
    error InvalidParameter(bytes32 name, uint256 value);
    error UnexpectedPayment(address from);
    error ZeroAddress();

    event InferenceRequested(
        uint256 indexed requestId,
        address indexed requester,
        bytes32 indexed modelId,
        string inputCid,
        bytes32 inputHash,
        uint256 fee,
        uint8 replicas,
        uint8 quorum,
        uint64 drawBlock,
        uint64 commitDeadline, // an upper bound: drawBlock + queueBlocks + 2 * commitBlocks (a draw at the uncapped
        //                        drawDeadline); the windows count from the draw and CommitteeDrawn carries the real ones
        uint64 revealDeadline // the upper bound above + revealBlocks
    );
    /// @notice The committee and its windows, which count from the draw (nodes are on the hook from here).
    event CommitteeDrawn(
        uint256 indexed requestId, address[] committee, uint64 commitDeadline, uint64 revealDeadline, uint64 finalizeAfter
    );
    event Committed(uint256 indexed requestId, address indexed node);
    event Revealed(uint256 indexed requestId, address indexed node, bytes32 outputHash, string outputCid);
    /// @param paidCount Members credited for this request.
    event Finalized(uint256 indexed requestId, Status status, bytes32 outputHash, uint256 paidCount);
    event Credited(address indexed account, uint256 amount, uint256 indexed requestId);
    event Refunded(uint256 indexed requestId, address indexed requester, uint256 amount);
    event NodePenalized(uint256 indexed requestId, address indexed node, uint256 slashed);
    event ProofVerified(uint256 indexed requestId, address indexed prover, bytes32 outputHash);
    event ProverRewarded(uint256 indexed requestId, address indexed prover, uint256 amount);
    event CallbackResult(uint256 indexed requestId, bool success);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    event ParameterChanged(bytes32 indexed name, uint256 value);

    /// @notice Escrows the fee and the callback deposit (msg.value = fee + callbackGasLimit * callbackGasPrice).
    ///         Constant gas: no draw here. The committee is drawn later from blockhash(createdBlock + 1).
    /// @param modelId A registered, non-deprecated model.
    /// @param inputCid CID of the input payload, 1..MAX_CID_BYTES bytes (kept only in the event).
    /// @param inputHash hash_vector of the input (a field element, as bytes32).
    /// @param p Replicas, quorum, commit/reveal windows (blocks, at least the protocol minimums) and callback gas.
    /// @return requestId The new request id (ids start at 1).
    function requestInference(bytes32 modelId, string calldata inputCid, bytes32 inputHash, RequestParams calldata p)
        external
        payable
        returns (uint256 requestId);

    /// @notice Draws the committee (anyone; commit does it implicitly) in (drawBlock, drawDeadline]. Short of seats
    ///         up to queueDeadline: reverts NoSeatsYet (retry later). Too few eligible nodes after it, or a
    ///         window/blockhash that is gone, expire the request with a full refund. The commit and reveal
    ///         windows count from the draw.
    function draw(uint256 requestId) external;

    /// @notice Committee member commits keccak256(abi.encode(requestId, outputHash, salt, node)); draws first if needed.
    function commit(uint256 requestId, bytes32 commitment) external;

    /// @notice Reveals a committed output once every member committed or the commit window closed.
    /// @param outputCid CID of the output payload, at most MAX_CID_BYTES ("" allowed; kept only in the event).
    function reveal(uint256 requestId, bytes32 outputHash, bytes32 salt, string calldata outputCid) external;

    /// @notice Verifies a Groth16 proof of `outputHash` for the request before it is finalized; the proven
    ///         hash becomes the settled output (unless the committee reached quorum on INVALID_INPUT).
    /// @param proof [a0, a1, b00, b01, b10, b11, c0, c1] as printed by snarkjs exportsoliditycalldata.
    function submitProof(uint256 requestId, bytes32 outputHash, uint256[8] calldata proof) external;

    /// @notice submitProof for several requests of one model version in one transaction: the model's verifier
    ///         (fixed when the version was registered; a BatchGroth16Verifier) checks all proofs with n + 3
    ///         pairings. Atomic: each request must pass submitProof's checks (else that check's error), and one
    ///         bad proof reverts InvalidProofAt(index, requestId) with nothing accepted.
    function submitProofBatch(
        uint256[] calldata requestIds,
        bytes32[] calldata outputHashes,
        uint256[8][] calldata proofs
    ) external;

    /// @notice Settles the request (see docs/contracts.md for the rules), then calls the consumer back with
    ///         exactly callbackGasLimit gas; the callback deposit goes to the caller of finalize.
    function finalize(uint256 requestId) external;

    /// @notice Re-calls the callback of a settled request whose callback failed (anyone, own gas): the consumer gets
    ///         all the caller's gas but a small reserve, at least the request's callbackGasLimit (else reverts
    ///         InsufficientGasForCallback(gasLeft, required)), so a callback that ran out of gas can succeed on retry.
    function redeliver(uint256 requestId) external;

    /// @notice Pays msg.sender its whole withdrawable balance.
    function withdraw() external;

    /// @notice Pays msg.sender's whole withdrawable balance to `to`.
    function withdrawTo(address payable to) external;

    function getRequest(uint256 requestId) external view returns (Request memory);
    function statusOf(uint256 requestId) external view returns (Status);
    function getCommittee(uint256 requestId) external view returns (address[] memory);
    function getReveal(uint256 requestId, address node)
        external
        view
        returns (bool committed, bool revealed, bytes32 outputHash);
    /// @notice Per-member settlement flags (slashed: penalized for this request; paid: credited for it).
    function getMemberSettlement(uint256 requestId, address node) external view returns (bool slashed, bool paid);
    function requestCount() external view returns (uint256);
    function withdrawable(address account) external view returns (uint256);
    function totalEscrowed() external view returns (uint256);
    function totalWithdrawable() external view returns (uint256);
    /// @notice uint256(keccak256(abi.encode(requestId, prover))) % FIELD.
    function requestBinding(uint256 requestId, address prover) external pure returns (uint256);
    /// @notice The minimum fee and the callback deposit a request with `p` needs now.
    function quote(bytes32 modelId, RequestParams calldata p) external view returns (uint256 fee, uint256 callbackDeposit);
    /// @notice The governance parameters in force: what `requestInference` checks now (minFee, minimum windows)
    ///         and the snapshot set new requests record (slashAmount, proofBlocks, callbackGasPrice, its index).
    function parameters() external view returns (Parameters memory);
}
