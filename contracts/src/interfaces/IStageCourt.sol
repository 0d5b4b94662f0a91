// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceMarket} from "./IInferenceMarket.sol";
import {IInferenceConsumer} from "./IInferenceConsumer.sol";

/// @title IStageCourt
/// @notice Disputes over signed stage receipts. A stage node (a partial shard [lo, hi) of a model, never drawn by
///         the market) signs, for every answer, the digest receiptDigest(modelId, lo, hi, inputHash, outputHash).
///         Anyone holding a receipt they believe wrong opens a dispute with a bond; the court turns it into an
///         ordinary InferenceMarket request on the same model (3 replicas, quorum 2: a randomly drawn staked jury
///         of full-model nodes re-executes layers [lo, hi) on the receipt's input) and rules on the settled hash.
///         Accepted and different from the receipt: the stage is slashed, the challenger gets the bond back plus
///         a reward. Accepted and equal, or InvalidInput: the bond goes to the stage. NoQuorum or Expired: nobody
///         judged, the bond (and the jury refund) goes back to the challenger and the receipt may be disputed again
///         (also after InvalidInput). While a dispute is open the stage's stake is held (NodeRegistry.holdForDispute:
///         it cannot withdraw). Pull payments only (see docs/contracts.md, "StageCourt").
interface IStageCourt is IInferenceConsumer {
    /// @notice A dispute's state; the DisputeResolved verdict is uint8(state).
    /// @dev None: no such dispute. Open: the jury request is live. StageWrong: the jury settled another output
    ///      (stage slashed). StageRight: the jury settled the receipt's output (bond to the stage). InputInvalid:
    ///      the jury found the challenger's input payload invalid (bond to the stage; the receipt may be disputed
    ///      again with a valid input). NoDecision: NoQuorum or Expired (bond back to the challenger; the receipt
    ///      may be disputed again).
    enum State {
        None,
        Open,
        StageWrong,
        StageRight,
        InputInvalid,
        NoDecision
    }

    /// @notice A dispute as stored (6 slots) and returned by getDispute.
    struct Dispute {
        address stage;
        uint16 lo;
        uint16 hi;
        State state;
        address challenger;
        uint96 bond;
        bytes32 modelId;
        bytes32 inputHash;
        bytes32 claimedOutputHash;
        uint64 requestId;
        uint96 juryCost; // fee + callback deposit paid to the market
    }

    error ZeroAddress();
    error MarketRegistryMismatch(address marketRegistry, address nodeRegistry);
    error NotMarket(address caller);
    error CourtNotEnabled(address registryCourt);
    error BadSignature(address recovered, address stage);
    error ShardNotHeld(address stage, bytes32 modelId, uint16 lo, uint16 hi);
    error AlreadyDisputed(bytes32 digest, uint256 disputeId);
    error ProvenModel(bytes32 modelId, uint8 proofMode);
    error WrongValue(uint256 sent, uint256 required);
    error RequestIdMismatch(uint256 expected, uint256 got);
    error UnknownDispute(uint256 disputeId);
    error NotOpen(uint256 disputeId, State state);
    error NotExpired(uint256 disputeId, IInferenceMarket.Status status);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);
    error UnexpectedPayment(address from);
    error InvalidParameter(bytes32 name, uint256 value);

    /// @notice A dispute was opened: market request `requestId` re-executes layers [lo, hi) of `modelId` on the
    ///         input with `inputHash` (payload at the request's inputCid); `claimedOutputHash` is the receipt's.
    event DisputeOpened(
        uint256 indexed disputeId,
        uint256 indexed requestId,
        address indexed stage,
        address challenger,
        bytes32 modelId,
        uint16 lo,
        uint16 hi,
        bytes32 inputHash,
        bytes32 claimedOutputHash
    );
    /// @notice The dispute was decided: verdict = uint8(State); `slashed` is the stake removed from the stage.
    event DisputeResolved(uint256 indexed disputeId, uint8 verdict, uint256 slashed);
    /// @notice `amount` became withdrawable by `account` (bond, bond + reward, or jury refund).
    event Credited(address indexed account, uint256 indexed disputeId, uint256 amount);
    /// @notice `account` withdrew `amount`.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice Governance changed the minimum bond.
    event MinBondChanged(uint256 value);

    /// @notice Opens a dispute over a stage's signed receipt; msg.value must equal disputeCost(modelId).
    /// @param stage The receipt's signer: registered in the NodeRegistry with the shard (modelId, lo, hi) now.
    /// @param inputHash The stage input's hash (below the BN254 field, the market's rule); the jury fetches the
    ///        payload at `inputCid` and answers INVALID_INPUT if it does not hash to inputHash.
    /// @param claimedOutputHash The output hash the stage signed.
    /// @param signature 65-byte EIP-191 personal signature of receiptDigest(...) by `stage`.
    /// @param inputCid Content id of the stage input payload (1..128 bytes, the market's rule).
    /// @return disputeId The new dispute (from 1).
    /// @return requestId The jury's InferenceMarket request.
    function dispute(
        address stage,
        bytes32 modelId,
        uint16 lo,
        uint16 hi,
        bytes32 inputHash,
        bytes32 claimedOutputHash,
        bytes calldata signature,
        string calldata inputCid
    ) external payable returns (uint256 disputeId, uint256 requestId);

    /// @notice Anyone: resolves a dispute whose jury request expired undrawn (no callback comes for Expired):
    ///         NoDecision, bond and the whole jury cost to the challenger. A Pending request past its draw deadline
    ///         must be expired first with the market's finalize(requestId) (verinfer.chain.court does both).
    function resolveExpired(uint256 disputeId) external;

    /// @notice Pays the caller's credits (pulling the court's refunds from the market first if needed).
    function withdraw() external;

    /// @notice Owner: the minimum bond, in [MIN_BOND_FLOOR, MIN_BOND_CEIL]; the bond is max(minBond, jury cost).
    function setMinBond(uint256 value) external;

    /// @notice The digest a stage signs (EIP-191 personal message over these 32 bytes).
    function receiptDigest(bytes32 modelId, uint16 lo, uint16 hi, bytes32 inputHash, bytes32 outputHash)
        external
        view
        returns (bytes32);

    /// @notice bond + jury fee + callback deposit: the exact msg.value dispute() needs now.
    function disputeCost(bytes32 modelId) external view returns (uint256);

    /// @notice The bond a dispute on `modelId` needs now: max(minBond, jury fee + callback deposit).
    function bondFor(bytes32 modelId) external view returns (uint256);

    /// @notice The market parameters of every jury request (windows: the longer of the court's and the market's minimum).
    function juryParams() external view returns (IInferenceMarket.RequestParams memory);

    /// @notice Stake a StageWrong verdict asks the registry to slash now (the registry caps it at the stage's stake).
    function slashAmount() external view returns (uint256);

    function getDispute(uint256 disputeId) external view returns (Dispute memory);
    /// @notice The dispute whose jury request is `requestId` (0: none).
    function disputeOfRequest(uint256 requestId) external view returns (uint256);
    /// @notice The latest dispute over the receipt with this digest (0: none).
    function disputeOfReceipt(bytes32 digest) external view returns (uint256);
    function disputeCount() external view returns (uint256);
    function withdrawable(address account) external view returns (uint256);
    /// @notice Sum of all credits not yet withdrawn.
    function totalWithdrawable() external view returns (uint256);
    /// @notice Bonds of open disputes (held by the court until the verdict).
    function openBonds() external view returns (uint256);
    function minBond() external view returns (uint256);
}
