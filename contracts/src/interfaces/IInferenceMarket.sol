// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IInferenceMarket
/// @notice Fee escrow, stake-weighted committee, commit-reveal consensus on output hashes, settlement,
///         Groth16 proof checks and gas-limited consumer callbacks. Pull payments only.
interface IInferenceMarket {
    /// @notice Per-request parameters chosen by the requester (windows in blocks).
    struct RequestParams {
        uint8 replicas;
        uint8 quorum;
        uint32 commitBlocks;
        uint32 revealBlocks;
        uint32 callbackGasLimit;
    }

    /// @notice Committing and Revealing are derived from block numbers by getRequest/statusOf;
    ///         the stored status stays Committing until finalize.
    enum Status {
        None,
        Committing,
        Revealing,
        Accepted,
        InvalidInput,
        NoQuorum
    }

    struct Request {
        address requester;
        bytes32 modelId;
        string inputCid;
        bytes32 inputHash;
        uint256 fee;
        RequestParams params;
        uint64 commitDeadline; // last block a commit is accepted
        uint64 revealDeadline; // last block a reveal is accepted
        Status status;
        bytes32 outputHash; // winner (INVALID_INPUT for InvalidInput, 0 for NoQuorum)
        string outputCid;
        bool proven;
        uint256 provenOutputHash;
        bool contradicted;
        uint64 createdBlock;
        uint8 commitCount;
        uint8 revealCount;
        uint8 agreeingCount;
    }

    error FeeTooLow(uint256 fee, uint256 minFee);
    error ModelNotFound(bytes32 modelId);
    error ModelDeprecated(bytes32 modelId);
    error InputHashNotInField(bytes32 inputHash);
    error EmptyInputCid();
    error InvalidReplicas(uint8 replicas, uint8 quorum, uint8 maxReplicas);
    error InvalidCommitBlocks(uint32 commitBlocks, uint32 min, uint32 max);
    error InvalidRevealBlocks(uint32 revealBlocks, uint32 min, uint32 max);
    error CallbackGasTooHigh(uint32 callbackGasLimit, uint32 max);
    error NotEnoughEligibleNodes(uint256 eligible, uint8 replicas);
    error RequestNotFound(uint256 requestId);
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
    error TooEarlyToFinalize(uint256 requestId, uint64 revealDeadline);
    error InsufficientGasForCallback(uint256 gasLeft, uint256 required);
    error ProofsNotSupported(bytes32 modelId);
    error NoVerifier(bytes32 modelId);
    error NothingToProve(uint256 requestId);
    error AlreadyProven(uint256 requestId);
    error OutputHashNotInField(bytes32 outputHash);
    error InsufficientGasForProof(uint256 gasLeft, uint256 required);
    error InvalidProof(uint256 requestId);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);
    error InvalidParameter(bytes32 name, uint256 value);

    event InferenceRequested(
        uint256 indexed requestId,
        address indexed requester,
        bytes32 indexed modelId,
        string inputCid,
        bytes32 inputHash,
        uint256 fee,
        address[] committee,
        uint64 commitDeadline,
        uint64 revealDeadline
    );
    event Committed(uint256 indexed requestId, address indexed node);
    event Revealed(uint256 indexed requestId, address indexed node, bytes32 outputHash, string outputCid);
    event Finalized(uint256 indexed requestId, Status status, bytes32 outputHash, string outputCid, uint256 agreeingCount);
    event Credited(address indexed account, uint256 amount, uint256 indexed requestId);
    event Refunded(uint256 indexed requestId, address indexed requester, uint256 amount);
    event NodePenalized(uint256 indexed requestId, address indexed node, uint256 slashed);
    event ProofVerified(uint256 indexed requestId, address indexed prover, bytes32 outputHash);
    event ProofContradictsSettlement(uint256 indexed requestId, bytes32 settledOutputHash, bytes32 provenOutputHash);
    event CallbackResult(uint256 indexed requestId, bool success);
    event Withdrawn(address indexed account, uint256 amount);
    event ParameterChanged(bytes32 indexed name, uint256 value);

    /// @notice Escrows msg.value as the fee and draws a stake-weighted committee of eligible nodes.
    /// @param modelId A registered, non-deprecated model.
    /// @param inputCid CID of the input payload (verinfer.tensor.v1 JSON).
    /// @param inputHash hash_vector of the input (a field element, as bytes32).
    /// @param p Replicas, quorum, commit/reveal windows (blocks) and callback gas.
    /// @return requestId The new request id (ids start at 1).
    function requestInference(bytes32 modelId, string calldata inputCid, bytes32 inputHash, RequestParams calldata p)
        external
        payable
        returns (uint256 requestId);

    /// @notice Committee member commits keccak256(abi.encode(requestId, outputHash, salt, node)).
    function commit(uint256 requestId, bytes32 commitment) external;

    /// @notice Reveals a committed output once the reveal phase is open.
    function reveal(uint256 requestId, bytes32 outputHash, bytes32 salt, string calldata outputCid) external;

    /// @notice Settles a request after the reveal deadline, or early once every member revealed.
    function finalize(uint256 requestId) external;

    /// @notice Verifies a Groth16 proof of `outputHash` for the request (signals per model proof mode).
    /// @param proof [a0, a1, b00, b01, b10, b11, c0, c1] as printed by snarkjs exportsoliditycalldata.
    function submitProof(uint256 requestId, bytes32 outputHash, uint256[8] calldata proof) external;

    /// @notice Pays msg.sender its whole withdrawable balance.
    function withdraw() external;

    function getRequest(uint256 requestId) external view returns (Request memory);
    function statusOf(uint256 requestId) external view returns (Status);
    function getCommittee(uint256 requestId) external view returns (address[] memory);
    function getReveal(uint256 requestId, address node)
        external
        view
        returns (bool committed, bool revealed, bytes32 outputHash, string memory outputCid);
    /// @notice Per-member settlement flags (slashed: penalized for this request; paid: credited for it).
    function getMemberSettlement(uint256 requestId, address node) external view returns (bool slashed, bool paid);
    function requestCount() external view returns (uint256);
    function withdrawable(address account) external view returns (uint256);
    function totalEscrowed() external view returns (uint256);
    function totalWithdrawable() external view returns (uint256);
    /// @notice uint256(keccak256(abi.encode(requestId, prover))) % FIELD.
    function requestBinding(uint256 requestId, address prover) external pure returns (uint256);
}
