// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IStageCourt} from "./interfaces/IStageCourt.sol";
import {IInferenceMarket} from "./interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {VerinferConstants} from "./lib/VerinferConstants.sol";

/// @notice The market's registry getter (a public immutable of InferenceMarket, not in its interface).
interface IMarketNodeRegistry {
    function nodeRegistry() external view returns (address);
}

/// @title StageCourt
/// @notice Makes a lying stage node slashable. A stage signs a receipt for every answer; anyone holding a receipt
///         they believe wrong disputes it here, and the court asks the InferenceMarket, on the same model, for the
///         stage's layers on the receipt's input: a stake-weighted random jury of full-model nodes re-executes
///         them (the trust assumption of every request). The market's callback carries the settled output hash;
///         if it differs from the receipt's, the stage is slashed through the NodeRegistry and the challenger gets
///         its bond back plus half the slash; otherwise the bond pays the stage for the trouble.
/// @dev Invariant: address(this).balance + market.withdrawable(this) == totalWithdrawable + openBonds + the jury
///      cost of open disputes whose request expired (refunded by the market, credited at resolveExpired).
///      The court never holds a jury fee itself: it passes straight to the market at dispute().
contract StageCourt is IStageCourt, Ownable2Step, ReentrancyGuardTransient {
    /// @notice Domain tag of a stage receipt (the digest also binds the chain id and the NodeRegistry).
    bytes32 public constant RECEIPT_TYPEHASH = keccak256("verinfer.stage-receipt.v1");

    /// @notice Jury size and quorum: the SDK default (a strict majority of 3 settles; one lying juror cannot).
    uint8 public constant JURY_REPLICAS = 3;
    uint8 public constant JURY_QUORUM = 2;
    /// @notice Court floor for the commit and reveal windows (blocks): a juror loads the language model and re-runs
    ///         a stage (the SDK's LM_DEFAULT_WINDOW_BLOCKS; 6.7 s for a first LM request on the 2-core box). Longer
    ///         windows cost nothing when every juror answers (the reveal phase opens when all committed).
    uint32 public constant JURY_WINDOW_BLOCKS = 40;
    /// @notice Blocks a jury draw may wait for seats (the SDK default: 60 s at the devnet's 1 s blocks).
    uint8 public constant JURY_QUEUE_BLOCKS = 60;
    /// @notice Gas the market gives onInferenceResult: at least twice the measured worst case (164k cold: a
    ///         StageWrong verdict slashing a stage that also holds 3 full-model shards, whose 3 sortition trees the
    ///         slash rewrites; StageCourt.t.sol test_callbackGas_worstCase). Costs 0.0008 ether at 2 gwei.
    uint32 public constant JURY_CALLBACK_GAS = 400_000;
    /// @notice A StageWrong verdict asks for this fraction (bps) of minStake: the registry's per-slash cap
    ///         (MAX_SLASH_BPS), because a signed wrong answer is the most deliberate fault there is.
    uint16 public constant SLASH_BPS = 2_500;
    /// @notice Share (bps) of the slash paid to the challenger; the rest is burned, so a stage that disputes its
    ///         own false receipt through a sybil loses half the slash (plus the jury fee).
    uint16 public constant CHALLENGER_REWARD_BPS = 5_000;
    /// @notice Bounds and default of the governance minimum bond.
    uint256 public constant MIN_BOND_FLOOR = 0.001 ether;
    uint256 public constant MIN_BOND_CEIL = 100 ether;
    uint256 public constant DEFAULT_MIN_BOND = 0.01 ether;

    INodeRegistry public immutable nodeRegistry;
    IInferenceMarket public immutable market;
    IModelRegistry public immutable modelRegistry;

    /// @inheritdoc IStageCourt
    uint256 public minBond;
    /// @inheritdoc IStageCourt
    uint256 public disputeCount;
    /// @inheritdoc IStageCourt
    uint256 public totalWithdrawable;
    /// @inheritdoc IStageCourt
    uint256 public openBonds;

    mapping(uint256 disputeId => Dispute) private _disputes;
    /// @inheritdoc IStageCourt
    mapping(uint256 requestId => uint256 disputeId) public disputeOfRequest;
    /// @inheritdoc IStageCourt
    mapping(bytes32 digest => uint256 disputeId) public disputeOfReceipt;
    /// @inheritdoc IStageCourt
    mapping(address account => uint256) public withdrawable;

    /// @param initialOwner Governance (the TimelockController in deployments): only setMinBond.
    /// @param nodeRegistry_ The NodeRegistry whose owner must then call setCourt(address(this)).
    /// @param market_ The InferenceMarket of the same NodeRegistry.
    constructor(address initialOwner, address nodeRegistry_, address market_) Ownable(initialOwner) {
        if (nodeRegistry_ == address(0) || market_ == address(0)) revert ZeroAddress();
        address marketRegistry = IMarketNodeRegistry(market_).nodeRegistry();
        if (marketRegistry != nodeRegistry_) revert MarketRegistryMismatch(marketRegistry, nodeRegistry_);
        nodeRegistry = INodeRegistry(nodeRegistry_);
        market = IInferenceMarket(market_);
        modelRegistry = IModelRegistry(INodeRegistry(nodeRegistry_).modelRegistry());
        minBond = DEFAULT_MIN_BOND;
        emit MinBondChanged(DEFAULT_MIN_BOND);
    }

    /// @notice Accepts the market's refunds (withdraw) and the registry's challenger rewards (slash) only.
    receive() external payable {
        if (msg.sender != address(market) && msg.sender != address(nodeRegistry)) revert UnexpectedPayment(msg.sender);
    }

    // ------------------------------------------------------------------ disputes

    /// @inheritdoc IStageCourt
    function dispute(
        address stage,
        bytes32 modelId,
        uint16 lo,
        uint16 hi,
        bytes32 inputHash,
        bytes32 claimedOutputHash,
        bytes calldata signature,
        string calldata inputCid
    ) external payable nonReentrant returns (uint256 disputeId, uint256 requestId) {
        Dispute memory d = Dispute({
            stage: stage,
            lo: lo,
            hi: hi,
            state: State.Open,
            challenger: msg.sender,
            bond: 0,
            modelId: modelId,
            inputHash: inputHash,
            claimedOutputHash: claimedOutputHash,
            requestId: 0,
            juryCost: 0
        });
        return _open(d, signature, inputCid);
    }

    /// @dev dispute() past its argument list (one memory struct: the stack holds 16 slots).
    function _open(Dispute memory d, bytes calldata signature, string calldata inputCid)
        private
        returns (uint256 disputeId, uint256 requestId)
    {
        bytes32 digest = _admit(d, signature);
        IInferenceMarket.RequestParams memory p = juryParams();
        uint256 jury = _juryCost(d.modelId, p);
        uint256 bond = _bond(jury);
        if (msg.value != bond + jury) revert WrongValue(msg.value, bond + jury);

        // effects (the market numbers requests 1, 2, …: the id is known before the call and checked after it)
        disputeId = disputeCount + 1;
        disputeCount = disputeId;
        requestId = market.requestCount() + 1;
        // forge-lint: disable-next-line(unsafe-typecast) -- <= MIN_BOND_CEIL or the jury cost (< 2^96 wei: FeeTooHigh)
        d.bond = uint96(bond);
        // forge-lint: disable-next-line(unsafe-typecast) -- the market's request counter is a uint64
        d.requestId = uint64(requestId);
        // forge-lint: disable-next-line(unsafe-typecast) -- fee < 2^96 (FeeTooHigh) + deposit <= 2e15
        d.juryCost = uint96(jury);
        _disputes[disputeId] = d;
        disputeOfRequest[requestId] = disputeId;
        disputeOfReceipt[digest] = disputeId;
        openBonds += bond;
        _emitOpened(disputeId, d);

        // interactions, both trusted: the stage's stake stays until the verdict; the market escrows the jury's pay
        nodeRegistry.holdForDispute(d.stage);
        uint256 got = _requestJury(d, inputCid, p, jury);
        if (got != requestId) revert RequestIdMismatch(requestId, got);
    }

    function _requestJury(
        Dispute memory d,
        string calldata inputCid,
        IInferenceMarket.RequestParams memory p,
        uint256 jury
    ) private returns (uint256) {
        return market.requestInference{value: jury}(d.modelId, inputCid, d.inputHash, p);
    }

    function _emitOpened(uint256 disputeId, Dispute memory d) private {
        emit DisputeOpened(
            disputeId, d.requestId, d.stage, d.challenger, d.modelId, d.lo, d.hi, d.inputHash, d.claimedOutputHash
        );
    }

    /// @dev dispute()'s admission rules; returns the receipt digest. The court must be the registry's; the receipt
    ///      signed by the stage; the stage registered with exactly that shard now; the receipt neither under dispute
    ///      nor judged on its output (no double jeopardy: after NoDecision or InputInvalid nobody ruled on the
    ///      output, so it may be disputed again — else a stage's accomplice could lock a false receipt with a
    ///      sabotaged input); the model unproven (a proof of the full model on the stage's input would overrule
    ///      the jury).
    function _admit(Dispute memory d, bytes calldata signature) private view returns (bytes32 digest) {
        address court = nodeRegistry.court();
        if (court != address(this)) revert CourtNotEnabled(court);
        digest = receiptDigest(d.modelId, d.lo, d.hi, d.inputHash, d.claimedOutputHash);
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecoverCalldata(MessageHashUtils.toEthSignedMessageHash(digest), signature);
        if (err != ECDSA.RecoverError.NoError || signer != d.stage) revert BadSignature(signer, d.stage);
        if (!nodeRegistry.hasShard(d.stage, d.modelId, d.lo, d.hi)) revert ShardNotHeld(d.stage, d.modelId, d.lo, d.hi);
        uint256 prior = disputeOfReceipt[digest];
        if (prior != 0) {
            State st = _disputes[prior].state;
            if (st != State.NoDecision && st != State.InputInvalid) revert AlreadyDisputed(digest, prior);
        }
        uint8 mode = modelRegistry.getModelCore(d.modelId).proofMode;
        if (mode != VerinferConstants.PROOF_NONE) revert ProvenModel(d.modelId, mode);
    }

    /// @notice The market's callback with the jury's settled result (market only).
    /// @dev Never reverts for a market call but out of gas: an unknown or already decided request is ignored, and
    ///      the only external call (the registry's slash, the court being its slasher) cannot fail otherwise. A
    ///      failed callback leaves the dispute Open and the market's redeliver runs it again.
    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash)
        external
        nonReentrant
    {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        uint256 disputeId = disputeOfRequest[requestId];
        if (disputeId == 0) return;
        Dispute storage d = _disputes[disputeId];
        if (d.state != State.Open) return;
        State verdict;
        if (status == IInferenceMarket.Status.Accepted) {
            verdict = outputHash == d.claimedOutputHash ? State.StageRight : State.StageWrong;
        } else if (status == IInferenceMarket.Status.InvalidInput) {
            verdict = State.InputInvalid;
        } else {
            verdict = State.NoDecision; // NoQuorum: nobody judged
        }
        _decide(disputeId, d, verdict);
    }

    /// @inheritdoc IStageCourt
    function resolveExpired(uint256 disputeId) external nonReentrant {
        Dispute storage d = _existing(disputeId);
        if (d.state != State.Open) revert NotOpen(disputeId, d.state);
        IInferenceMarket.Status st = market.statusOf(d.requestId);
        if (st != IInferenceMarket.Status.Expired) revert NotExpired(disputeId, st);
        _decide(disputeId, d, State.NoDecision);
    }

    /// @dev Records the verdict and credits the parties. StageWrong: slash (the trusted registry sends the reward
    ///      here), challenger gets bond + reward. StageRight / InputInvalid: the stage gets the bond. NoDecision:
    ///      the challenger gets the bond and the market's refund of the jury (the market credited it to the court).
    function _decide(uint256 disputeId, Dispute storage d, State verdict) private {
        uint256 bond = d.bond;
        address stage = d.stage;
        d.state = verdict;
        openBonds -= bond;
        uint256 slashed = 0;
        uint256 reward = 0;
        if (verdict == State.StageWrong) {
            (slashed, reward) = nodeRegistry.slash(stage, slashAmount(), d.requestId, CHALLENGER_REWARD_BPS);
        }
        nodeRegistry.releaseDispute(stage); // the hold taken at dispute(): the stage may leave again
        if (verdict == State.StageWrong) {
            _credit(d.challenger, disputeId, bond + reward);
        } else if (verdict == State.NoDecision) {
            _credit(d.challenger, disputeId, bond + _juryRefund(d));
        } else {
            _credit(stage, disputeId, bond);
        }
        emit DisputeResolved(disputeId, uint8(verdict), slashed);
    }

    /// @dev What the market credited back to the court for an undecided jury request: the whole jury cost when it
    ///      expired; on NoQuorum the fee less fee / replicas per in-time revealer (InferenceMarket._pay; the callback
    ///      deposit went to the finalizer).
    function _juryRefund(Dispute storage d) private view returns (uint256) {
        IInferenceMarket.Request memory q = market.getRequest(d.requestId);
        if (q.status == IInferenceMarket.Status.Expired) return d.juryCost;
        // forge-lint: disable-next-line(divide-before-multiply) -- the market pays fee / replicas per revealer
        return q.fee - (q.fee / q.params.replicas) * q.revealCount;
    }

    // ------------------------------------------------------------------ payments

    /// @inheritdoc IStageCourt
    function withdraw() external nonReentrant {
        uint256 amount = withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        withdrawable[msg.sender] = 0;
        totalWithdrawable -= amount;
        emit Withdrawn(msg.sender, amount);
        // refunds (NoQuorum, Expired) are credited to the court at the market: pull them when the balance is short
        if (address(this).balance < amount) market.withdraw();
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    function _credit(address account, uint256 disputeId, uint256 amount) private {
        if (amount == 0) return;
        withdrawable[account] += amount;
        totalWithdrawable += amount;
        emit Credited(account, disputeId, amount);
    }

    // ------------------------------------------------------------------ governance

    /// @inheritdoc IStageCourt
    function setMinBond(uint256 value) external onlyOwner {
        if (value < MIN_BOND_FLOOR || value > MIN_BOND_CEIL) revert InvalidParameter("minBond", value);
        minBond = value;
        emit MinBondChanged(value);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IStageCourt
    function receiptDigest(bytes32 modelId, uint16 lo, uint16 hi, bytes32 inputHash, bytes32 outputHash)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                RECEIPT_TYPEHASH, block.chainid, address(nodeRegistry), modelId, lo, hi, inputHash, outputHash
            )
        );
    }

    /// @inheritdoc IStageCourt
    function disputeCost(bytes32 modelId) external view returns (uint256) {
        uint256 jury = _juryCost(modelId, juryParams());
        return _bond(jury) + jury;
    }

    /// @inheritdoc IStageCourt
    function bondFor(bytes32 modelId) external view returns (uint256) {
        return _bond(_juryCost(modelId, juryParams()));
    }

    /// @inheritdoc IStageCourt
    function juryParams() public view returns (IInferenceMarket.RequestParams memory p) {
        IInferenceMarket.Parameters memory mp = market.parameters();
        p = IInferenceMarket.RequestParams({
            replicas: JURY_REPLICAS,
            quorum: JURY_QUORUM,
            commitBlocks: mp.minCommitBlocks > JURY_WINDOW_BLOCKS ? mp.minCommitBlocks : JURY_WINDOW_BLOCKS,
            revealBlocks: mp.minRevealBlocks > JURY_WINDOW_BLOCKS ? mp.minRevealBlocks : JURY_WINDOW_BLOCKS,
            callbackGasLimit: JURY_CALLBACK_GAS,
            queueBlocks: JURY_QUEUE_BLOCKS
        });
    }

    /// @inheritdoc IStageCourt
    function slashAmount() public view returns (uint256) {
        return (nodeRegistry.minStake() * SLASH_BPS) / 10_000;
    }

    /// @inheritdoc IStageCourt
    function getDispute(uint256 disputeId) external view returns (Dispute memory) {
        return _existing(disputeId);
    }

    // ------------------------------------------------------------------ internals

    function _existing(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.state == State.None) revert UnknownDispute(disputeId);
    }

    function _juryCost(bytes32 modelId, IInferenceMarket.RequestParams memory p) private view returns (uint256) {
        (uint256 fee, uint256 deposit) = market.quote(modelId, p);
        return fee + deposit;
    }

    /// @dev max(minBond, jury cost): a frivolous dispute always costs at least twice the jury's price, and the
    ///      stage it targeted gets at least what the jury got.
    function _bond(uint256 jury) private view returns (uint256) {
        uint256 m = minBond;
        return jury > m ? jury : m;
    }
}
