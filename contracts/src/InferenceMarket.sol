// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IInferenceMarket} from "./interfaces/IInferenceMarket.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IGroth16Verifier3} from "./interfaces/IGroth16Verifier3.sol";
import {IGroth16Verifier4} from "./interfaces/IGroth16Verifier4.sol";
import {VerinferConstants} from "./lib/VerinferConstants.sol";

/// @title InferenceMarket
/// @notice Requests escrow a fee; a stake-weighted committee of eligible nodes commits then reveals output
///         hashes; finalize settles by quorum (or by a verified Groth16 proof), credits fees or refunds
///         (pull payments), slashes dissenters and no-shows, then calls the consumer back with bounded gas.
/// @dev Invariant: address(this).balance == totalEscrowed + totalWithdrawable.
contract InferenceMarket is IInferenceMarket, Ownable2Step, ReentrancyGuard {
    /// @notice Gas kept back on top of callbackGasLimit * 64/63 so the call can really forward that much
    ///         and finalize can still emit CallbackResult afterwards.
    uint256 public constant CALLBACK_GAS_RESERVE = 15_000;
    /// @notice Same reserve for the verifier staticcall.
    uint256 public constant PROOF_GAS_RESERVE = 5_000;
    /// @notice Hard caps on governance parameters.
    uint8 public constant MAX_REPLICAS_CAP = 64;
    uint256 public constant MAX_CANDIDATES_CAP = 512;
    uint32 public constant MAX_WINDOW_CAP = 1_000_000;

    INodeRegistry public immutable nodeRegistry;
    IModelRegistry public immutable modelRegistry;

    // governance parameters (defaults documented in docs/contracts.md)
    uint256 public minFee = 0.001 ether;
    uint8 public maxReplicas = 16;
    uint32 public minCommitBlocks = 1;
    uint32 public maxCommitBlocks = 500;
    uint32 public minRevealBlocks = 1;
    uint32 public maxRevealBlocks = 500;
    uint256 public slashAmount = 0.1 ether;
    uint256 public proofVerifyGas = 400_000;
    uint32 public maxCallbackGas = 1_000_000;
    uint256 public maxCandidates = 64;

    uint256 public totalEscrowed;
    uint256 public totalWithdrawable;
    mapping(address account => uint256) public withdrawable;

    struct Member {
        bool member;
        bool committed;
        bool revealed;
        bool slashed;
        bool paid;
        bytes32 commitment;
        bytes32 outputHash;
        string outputCid;
    }

    uint256 private _requestCount;
    mapping(uint256 requestId => Request) private _requests;
    mapping(uint256 requestId => address[]) private _committees;
    mapping(uint256 requestId => mapping(address node => Member)) private _members;

    /// @param nodes The NodeRegistry (its owner must then call nodes.setMarket(address(this))).
    /// @param models The ModelRegistry.
    /// @param initialOwner Governance address.
    constructor(INodeRegistry nodes, IModelRegistry models, address initialOwner) Ownable(initialOwner) {
        if (address(nodes) == address(0) || address(models) == address(0)) revert InvalidParameter("registry", 0);
        nodeRegistry = nodes;
        modelRegistry = models;
    }

    // ================================================================== requests

    /// @inheritdoc IInferenceMarket
    function requestInference(bytes32 modelId, string calldata inputCid, bytes32 inputHash, RequestParams calldata p)
        external
        payable
        returns (uint256 requestId)
    {
        if (msg.value < minFee) revert FeeTooLow(msg.value, minFee);
        if (bytes(inputCid).length == 0) revert EmptyInputCid();
        if (uint256(inputHash) >= VerinferConstants.FIELD) revert InputHashNotInField(inputHash);
        _checkParams(p);
        bool requiresTee = _checkModel(modelId);

        requestId = ++_requestCount;
        address[] memory committee = _drawCommittee(requestId, modelId, requiresTee, p.replicas);

        Request storage r = _requests[requestId];
        r.requester = msg.sender;
        r.modelId = modelId;
        r.inputCid = inputCid;
        r.inputHash = inputHash;
        r.fee = msg.value;
        r.params = p;
        r.commitDeadline = uint64(block.number) + p.commitBlocks;
        r.revealDeadline = r.commitDeadline + p.revealBlocks;
        r.status = Status.Committing;
        r.createdBlock = uint64(block.number);

        _committees[requestId] = committee;
        for (uint256 i; i < committee.length; ++i) {
            _members[requestId][committee[i]].member = true;
        }
        totalEscrowed += msg.value;

        emit InferenceRequested(
            requestId, msg.sender, modelId, inputCid, inputHash, msg.value, committee, r.commitDeadline, r.revealDeadline
        );
        // interaction last (trusted registry): lock the members' stake until this request can settle
        nodeRegistry.noteAssignments(committee, r.revealDeadline);
    }

    /// @inheritdoc IInferenceMarket
    function commit(uint256 requestId, bytes32 commitment) external {
        Request storage r = _existing(requestId);
        Member storage m = _members[requestId][msg.sender];
        if (!m.member) revert NotCommitteeMember(requestId, msg.sender);
        if (r.status != Status.Committing) revert AlreadyFinalized(requestId);
        if (m.committed) revert AlreadyCommitted(requestId, msg.sender);
        if (block.number > r.commitDeadline) revert CommitPhaseOver(requestId, r.commitDeadline);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        m.committed = true;
        m.commitment = commitment;
        r.commitCount += 1;
        emit Committed(requestId, msg.sender);
    }

    /// @inheritdoc IInferenceMarket
    function reveal(uint256 requestId, bytes32 outputHash, bytes32 salt, string calldata outputCid) external {
        Request storage r = _existing(requestId);
        Member storage m = _members[requestId][msg.sender];
        if (!m.member) revert NotCommitteeMember(requestId, msg.sender);
        if (r.status != Status.Committing) revert AlreadyFinalized(requestId);
        if (!m.committed) revert NotCommitted(requestId, msg.sender);
        if (m.revealed) revert AlreadyRevealed(requestId, msg.sender);
        if (block.number <= r.commitDeadline && r.commitCount < r.params.replicas) {
            revert RevealPhaseNotStarted(requestId, r.commitDeadline);
        }
        if (block.number > r.revealDeadline) revert RevealPhaseOver(requestId, r.revealDeadline);
        if (keccak256(abi.encode(requestId, outputHash, salt, msg.sender)) != m.commitment) {
            revert CommitmentMismatch(requestId, msg.sender);
        }
        m.revealed = true;
        m.outputHash = outputHash;
        m.outputCid = outputCid;
        r.revealCount += 1;
        emit Revealed(requestId, msg.sender, outputHash, outputCid);
    }

    /// @inheritdoc IInferenceMarket
    function finalize(uint256 requestId) external nonReentrant {
        Request storage r = _existing(requestId);
        if (r.status != Status.Committing) revert AlreadyFinalized(requestId);
        if (block.number <= r.revealDeadline && r.revealCount < r.params.replicas) {
            revert TooEarlyToFinalize(requestId, r.revealDeadline);
        }

        (bytes32 winner, bool hasWinner) = _winner(requestId, r);

        // ---- effects: status, credits, penalty flags
        Status status = !hasWinner
            ? Status.NoQuorum
            : (winner == VerinferConstants.INVALID_INPUT ? Status.InvalidInput : Status.Accepted);
        r.status = status;
        totalEscrowed -= r.fee;
        totalWithdrawable += r.fee;
        if (hasWinner) r.outputHash = winner;

        uint256 agreeing;
        if (status == Status.Accepted) agreeing = _payAgreeing(requestId, r, winner);
        if (agreeing == 0) {
            _credit(r.requester, r.fee, requestId);
            emit Refunded(requestId, r.requester, r.fee);
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        r.agreeingCount = uint8(agreeing); // agreeing <= replicas <= MAX_REPLICAS_CAP (64)
        address[] memory penalized = _flagPenalties(requestId, winner, hasWinner);

        emit Finalized(requestId, status, r.outputHash, r.outputCid, agreeing);

        // ---- interactions: slashing (trusted registry), then the bounded consumer callback
        _slashAll(requestId, penalized);
        if (r.params.callbackGasLimit > 0 && r.requester.code.length > 0) _callback(requestId, r);
    }

    // ================================================================== proofs

    /// @inheritdoc IInferenceMarket
    function submitProof(uint256 requestId, bytes32 outputHash, uint256[8] calldata proof) external nonReentrant {
        Request storage r = _existing(requestId);
        IModelRegistry.Model memory model = modelRegistry.getModel(r.modelId);
        if (model.proofMode == VerinferConstants.PROOF_NONE) revert ProofsNotSupported(r.modelId);
        if (model.verifier == address(0)) revert NoVerifier(r.modelId);
        if (r.proven) revert AlreadyProven(requestId);
        bool finalized = r.status != Status.Committing;
        if (!finalized && r.revealCount == 0) revert NothingToProve(requestId);
        if (uint256(outputHash) >= VerinferConstants.FIELD) revert OutputHashNotInField(outputHash);

        if (!_verify(model, r.inputHash, outputHash, requestBinding(requestId, msg.sender), proof)) {
            revert InvalidProof(requestId);
        }

        r.proven = true;
        r.provenOutputHash = uint256(outputHash);
        emit ProofVerified(requestId, msg.sender, outputHash);

        if (!finalized) {
            address[] memory penalized = _flagContradicted(requestId, outputHash);
            _slashAll(requestId, penalized);
        } else if ((r.status == Status.Accepted || r.status == Status.InvalidInput) && r.outputHash != outputHash) {
            r.contradicted = true;
            emit ProofContradictsSettlement(requestId, r.outputHash, outputHash);
        }
    }

    // ================================================================== payments

    /// @inheritdoc IInferenceMarket
    function withdraw() external nonReentrant {
        uint256 amount = withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        withdrawable[msg.sender] = 0;
        totalWithdrawable -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    // ================================================================== governance

    /// @notice Owner: minimum fee per request (wei).
    function setMinFee(uint256 value) external onlyOwner {
        minFee = value;
        emit ParameterChanged("minFee", value);
    }

    /// @notice Owner: maximum committee size (1..MAX_REPLICAS_CAP).
    function setMaxReplicas(uint8 value) external onlyOwner {
        if (value == 0 || value > MAX_REPLICAS_CAP) revert InvalidParameter("maxReplicas", value);
        maxReplicas = value;
        emit ParameterChanged("maxReplicas", value);
    }

    /// @notice Owner: shortest commit window (blocks, >= 1, <= maxCommitBlocks).
    function setMinCommitBlocks(uint32 value) external onlyOwner {
        if (value == 0 || value > maxCommitBlocks) revert InvalidParameter("minCommitBlocks", value);
        minCommitBlocks = value;
        emit ParameterChanged("minCommitBlocks", value);
    }

    /// @notice Owner: longest commit window (blocks, >= minCommitBlocks, <= MAX_WINDOW_CAP).
    function setMaxCommitBlocks(uint32 value) external onlyOwner {
        if (value < minCommitBlocks || value > MAX_WINDOW_CAP) revert InvalidParameter("maxCommitBlocks", value);
        maxCommitBlocks = value;
        emit ParameterChanged("maxCommitBlocks", value);
    }

    /// @notice Owner: shortest reveal window (blocks, >= 1, <= maxRevealBlocks).
    function setMinRevealBlocks(uint32 value) external onlyOwner {
        if (value == 0 || value > maxRevealBlocks) revert InvalidParameter("minRevealBlocks", value);
        minRevealBlocks = value;
        emit ParameterChanged("minRevealBlocks", value);
    }

    /// @notice Owner: longest reveal window (blocks, >= minRevealBlocks, <= MAX_WINDOW_CAP).
    function setMaxRevealBlocks(uint32 value) external onlyOwner {
        if (value < minRevealBlocks || value > MAX_WINDOW_CAP) revert InvalidParameter("maxRevealBlocks", value);
        maxRevealBlocks = value;
        emit ParameterChanged("maxRevealBlocks", value);
    }

    /// @notice Owner: stake slashed per dissent / no-show / proven-wrong reveal (wei; 0 disables slashing).
    function setSlashAmount(uint256 value) external onlyOwner {
        slashAmount = value;
        emit ParameterChanged("slashAmount", value);
    }

    /// @notice Owner: gas given to the Groth16 verifier staticcall (50k..5M).
    function setProofVerifyGas(uint256 value) external onlyOwner {
        if (value < 50_000 || value > 5_000_000) revert InvalidParameter("proofVerifyGas", value);
        proofVerifyGas = value;
        emit ParameterChanged("proofVerifyGas", value);
    }

    /// @notice Owner: maximum callbackGasLimit a request may ask for (<= 5M).
    function setMaxCallbackGas(uint32 value) external onlyOwner {
        if (value > 5_000_000) revert InvalidParameter("maxCallbackGas", value);
        maxCallbackGas = value;
        emit ParameterChanged("maxCallbackGas", value);
    }

    /// @notice Owner: maximum candidates scanned per committee draw (1..MAX_CANDIDATES_CAP).
    function setMaxCandidates(uint256 value) external onlyOwner {
        if (value == 0 || value > MAX_CANDIDATES_CAP) revert InvalidParameter("maxCandidates", value);
        maxCandidates = value;
        emit ParameterChanged("maxCandidates", value);
    }

    // ================================================================== views

    /// @inheritdoc IInferenceMarket
    function getRequest(uint256 requestId) external view returns (Request memory req) {
        req = _existingView(requestId);
        req.status = statusOf(requestId);
    }

    /// @inheritdoc IInferenceMarket
    function statusOf(uint256 requestId) public view returns (Status) {
        Request storage r = _requests[requestId];
        if (r.status != Status.Committing) return r.status;
        if (block.number > r.commitDeadline || r.commitCount == r.params.replicas) return Status.Revealing;
        return Status.Committing;
    }

    /// @inheritdoc IInferenceMarket
    function getCommittee(uint256 requestId) external view returns (address[] memory) {
        _existingView(requestId);
        return _committees[requestId];
    }

    /// @inheritdoc IInferenceMarket
    function getReveal(uint256 requestId, address node)
        external
        view
        returns (bool committed, bool revealed, bytes32 outputHash, string memory outputCid)
    {
        Member storage m = _members[requestId][node];
        return (m.committed, m.revealed, m.outputHash, m.outputCid);
    }

    /// @inheritdoc IInferenceMarket
    function getMemberSettlement(uint256 requestId, address node) external view returns (bool slashed, bool paid) {
        Member storage m = _members[requestId][node];
        return (m.slashed, m.paid);
    }

    /// @inheritdoc IInferenceMarket
    function requestCount() external view returns (uint256) {
        return _requestCount;
    }

    /// @inheritdoc IInferenceMarket
    function requestBinding(uint256 requestId, address prover) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(requestId, prover))) % VerinferConstants.FIELD;
    }

    // ================================================================== internals

    function _existing(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        if (r.status == Status.None) revert RequestNotFound(requestId);
    }

    function _existingView(uint256 requestId) private view returns (Request storage r) {
        return _existing(requestId);
    }

    function _checkParams(RequestParams calldata p) private view {
        if (p.quorum == 0 || p.quorum > p.replicas || p.replicas > maxReplicas) {
            revert InvalidReplicas(p.replicas, p.quorum, maxReplicas);
        }
        if (p.commitBlocks < minCommitBlocks || p.commitBlocks > maxCommitBlocks) {
            revert InvalidCommitBlocks(p.commitBlocks, minCommitBlocks, maxCommitBlocks);
        }
        if (p.revealBlocks < minRevealBlocks || p.revealBlocks > maxRevealBlocks) {
            revert InvalidRevealBlocks(p.revealBlocks, minRevealBlocks, maxRevealBlocks);
        }
        if (p.callbackGasLimit > maxCallbackGas) revert CallbackGasTooHigh(p.callbackGasLimit, maxCallbackGas);
    }

    function _checkModel(bytes32 modelId) private view returns (bool requiresTee) {
        // getModel reverts ModelNotFound(modelId) itself (same selector and arguments as ours)
        IModelRegistry.Model memory model = modelRegistry.getModel(modelId);
        if (model.deprecated) revert ModelDeprecated(modelId);
        return model.requiresTee;
    }

    /// @dev Stake-weighted sampling without replacement among at most maxCandidates eligible nodes,
    ///      scanned from a random offset of the model's node set.
    function _drawCommittee(uint256 requestId, bytes32 modelId, bool requiresTee, uint8 replicas)
        private
        view
        returns (address[] memory committee)
    {
        uint256 seed = uint256(keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, requestId)));
        (address[] memory cands, uint256[] memory weights, uint256 count, uint256 total) =
            _eligibleCandidates(modelId, requiresTee, seed);
        if (count < replicas) revert NotEnoughEligibleNodes(count, replicas);

        committee = new address[](replicas);
        for (uint256 j; j < replicas; ++j) {
            uint256 x = uint256(keccak256(abi.encode(seed, j))) % total;
            uint256 k;
            while (x >= weights[k]) {
                x -= weights[k];
                ++k;
            }
            committee[j] = cands[k];
            total -= weights[k];
            --count;
            cands[k] = cands[count];
            weights[k] = weights[count];
        }
    }

    function _eligibleCandidates(bytes32 modelId, bool requiresTee, uint256 seed)
        private
        view
        returns (address[] memory cands, uint256[] memory weights, uint256 count, uint256 total)
    {
        INodeRegistry reg = nodeRegistry;
        uint256 n = reg.nodeCountForModel(modelId);
        uint256 scan = n < maxCandidates ? n : maxCandidates;
        uint256 offset = n > scan ? seed % n : 0;
        cands = new address[](scan);
        weights = new uint256[](scan);
        for (uint256 i; i < scan; ++i) {
            address a = reg.nodeForModelAt(modelId, (offset + i) % n);
            if (reg.isEligible(a, modelId, requiresTee)) {
                uint256 w = reg.stakeOf(a);
                cands[count] = a;
                weights[count] = w;
                total += w;
                ++count;
            }
        }
    }

    /// @dev The proven hash if proven; else the strict plurality among reveals if it reaches quorum.
    function _winner(uint256 requestId, Request storage r) private view returns (bytes32 winner, bool hasWinner) {
        if (r.proven) return (bytes32(r.provenOutputHash), true);
        address[] storage committee = _committees[requestId];
        mapping(address => Member) storage members = _members[requestId];
        uint256 len = committee.length;
        uint256 best;
        bool tie;
        for (uint256 i; i < len; ++i) {
            Member storage mi = members[committee[i]];
            if (!mi.revealed) continue;
            uint256 c;
            for (uint256 j; j < len; ++j) {
                Member storage mj = members[committee[j]];
                if (mj.revealed && mj.outputHash == mi.outputHash) ++c;
            }
            if (c > best) {
                best = c;
                winner = mi.outputHash;
                tie = false;
            } else if (c == best && mi.outputHash != winner) {
                tie = true;
            }
        }
        hasWinner = best > 0 && !tie && best >= r.params.quorum;
        if (!hasWinner) winner = bytes32(0);
    }

    /// @dev Credits the fee equally to unslashed members that revealed `winner` (remainder to the first).
    function _payAgreeing(uint256 requestId, Request storage r, bytes32 winner) private returns (uint256 agreeing) {
        address[] storage committee = _committees[requestId];
        mapping(address => Member) storage members = _members[requestId];
        uint256 len = committee.length;
        address[] memory payees = new address[](len);
        for (uint256 i; i < len; ++i) {
            Member storage m = members[committee[i]];
            if (m.revealed && !m.slashed && m.outputHash == winner) {
                if (agreeing == 0) r.outputCid = m.outputCid;
                payees[agreeing++] = committee[i];
            }
        }
        if (agreeing == 0) return 0;
        uint256 share = r.fee / agreeing;
        uint256 remainder = r.fee - share * agreeing;
        for (uint256 i; i < agreeing; ++i) {
            members[payees[i]].paid = true;
            _credit(payees[i], i == 0 ? share + remainder : share, requestId);
        }
    }

    /// @dev Flags (not yet slashed) no-shows, and dissenters when there is a winner; returns them.
    function _flagPenalties(uint256 requestId, bytes32 winner, bool hasWinner)
        private
        returns (address[] memory penalized)
    {
        address[] storage committee = _committees[requestId];
        mapping(address => Member) storage members = _members[requestId];
        uint256 len = committee.length;
        penalized = new address[](len);
        uint256 count;
        for (uint256 i; i < len; ++i) {
            Member storage m = members[committee[i]];
            if (m.slashed || m.paid) continue;
            if (!m.revealed || (hasWinner && m.outputHash != winner)) {
                m.slashed = true;
                penalized[count++] = committee[i];
            }
        }
        assembly {
            mstore(penalized, count)
        }
    }

    /// @dev Flags (not yet slashed) members that revealed something other than the proven hash.
    function _flagContradicted(uint256 requestId, bytes32 proven) private returns (address[] memory penalized) {
        address[] storage committee = _committees[requestId];
        mapping(address => Member) storage members = _members[requestId];
        uint256 len = committee.length;
        penalized = new address[](len);
        uint256 count;
        for (uint256 i; i < len; ++i) {
            Member storage m = members[committee[i]];
            if (m.revealed && !m.slashed && m.outputHash != proven) {
                m.slashed = true;
                penalized[count++] = committee[i];
            }
        }
        assembly {
            mstore(penalized, count)
        }
    }

    function _slashAll(uint256 requestId, address[] memory penalized) private {
        uint256 amount = slashAmount;
        for (uint256 i; i < penalized.length; ++i) {
            uint256 slashed = amount == 0 ? 0 : nodeRegistry.slash(penalized[i], amount, requestId);
            emit NodePenalized(requestId, penalized[i], slashed);
        }
    }

    function _credit(address account, uint256 amount, uint256 requestId) private {
        withdrawable[account] += amount;
        emit Credited(account, amount, requestId);
    }

    /// @dev Calls the consumer with exactly callbackGasLimit gas, copying no returndata (no returndata bomb).
    ///      Reverts if the caller did not leave enough gas to actually forward callbackGasLimit.
    function _callback(uint256 requestId, Request storage r) private {
        bytes memory data = abi.encodeCall(
            IInferenceConsumer.onInferenceResult, (requestId, r.status, r.outputHash, r.outputCid)
        );
        address target = r.requester;
        uint256 gasLimit = r.params.callbackGasLimit;
        uint256 required = (gasLimit * 64) / 63 + CALLBACK_GAS_RESERVE;
        if (gasleft() < required) revert InsufficientGasForCallback(gasleft(), required);
        bool success;
        assembly {
            success := call(gasLimit, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
        emit CallbackResult(requestId, success);
    }

    /// @dev staticcall to the snarkjs verifier with explicit gas; true only for a 32-byte `true` answer.
    function _verify(
        IModelRegistry.Model memory model,
        bytes32 inputHash,
        bytes32 outputHash,
        uint256 binding,
        uint256[8] calldata proof
    ) private view returns (bool valid) {
        uint256[2] memory a = [proof[0], proof[1]];
        uint256[2][2] memory b = [[proof[2], proof[3]], [proof[4], proof[5]]];
        uint256[2] memory c = [proof[6], proof[7]];
        bytes memory data;
        if (model.proofMode == VerinferConstants.PROOF_PUBLIC_WEIGHTS) {
            uint256[3] memory pub3 = [uint256(inputHash), uint256(outputHash), binding];
            data = abi.encodeCall(IGroth16Verifier3.verifyProof, (a, b, c, pub3));
        } else {
            uint256[4] memory pub4 = [model.commitment, uint256(inputHash), uint256(outputHash), binding];
            data = abi.encodeCall(IGroth16Verifier4.verifyProof, (a, b, c, pub4));
        }
        uint256 g = proofVerifyGas;
        uint256 required = (g * 64) / 63 + PROOF_GAS_RESERVE;
        if (gasleft() < required) revert InsufficientGasForProof(gasleft(), required);
        address verifier = model.verifier;
        bool ok;
        uint256 result;
        assembly {
            ok := staticcall(g, verifier, add(data, 0x20), mload(data), 0, 0x20)
            if and(ok, iszero(lt(returndatasize(), 0x20))) { result := mload(0) }
        }
        valid = ok && result == 1;
    }
}
