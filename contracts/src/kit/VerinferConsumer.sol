// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IInferenceMarket} from "../interfaces/IInferenceMarket.sol";
import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {VerinferHasher} from "./VerinferHasher.sol";

// One import gives a consumer everything it names: the base, the market/registry interfaces and the hasher.
// Foundry: remappings = ["verinfer/=<path to verinfer>/contracts/src/"], then
//   import {VerinferConsumer, IInferenceMarket} from "verinfer/kit/VerinferConsumer.sol";

/// @notice The market's model registry getter (a public immutable of InferenceMarket, not in its interface).
interface IMarketModelRegistry {
    function modelRegistry() external view returns (IModelRegistry);
}

/// @title VerinferConsumer
/// @notice Base for a contract that asks verinfer for inference and acts on the answer on-chain. Override
///         one function, `_fulfill`; it runs exactly once per request the contract made:
///         - Accepted: after anyone calls `deliver(requestId, vector)` with the output vector, which this base
///           checks against the market's settled outputHash (hash_vector on-chain) — the class handed over is
///           the argmax of a vector bound to what the committee agreed (or the proof proved: `proven`);
///         - InvalidInput / NoQuorum / Expired: from the market's callback, or from `deliver` (pull path) if
///           that callback failed; `cls` is NO_CLASS and `vector` empty.
/// @dev The market is immutable and the only caller of onInferenceResult. Fees come from this contract's
///      balance; refunds the market credits to it are pulled with `_withdrawRefunds(to)`.
abstract contract VerinferConsumer is IInferenceConsumer {
    /// @notice `cls` for outcomes without an output vector.
    uint256 public constant NO_CLASS = type(uint256).max;
    /// @notice Callback gas that covers this base's onInferenceResult for an Accepted result (measured 2026-12-02:
    ///         see docs/dapp.md) with margin; consumers whose `_fulfill` does more on failures add their own.
    uint32 public constant BASE_CALLBACK_GAS = 30_000;

    /// @notice The market trusted for callbacks and read for settled results.
    IInferenceMarket public immutable market;
    /// @notice The model registry the market uses (read for a model's input/output bit widths).
    IModelRegistry public immutable registry;
    /// @notice The shared on-chain hasher (Poseidon vector hash, tensor payload and CID).
    VerinferHasher public immutable hasher;

    /// @dev One slot per request: written at request time, updated in place when fulfilled.
    struct Pending {
        bool open; // this contract made the request
        bool fulfilled; // _fulfill ran
        bool proven; // the fulfilled output was settled by a proof
        IInferenceMarket.Status status; // the fulfilled outcome
        uint8 inputBits;
        uint8 outputBits;
        uint64 cls; // the fulfilled class (type(uint64).max = NO_CLASS)
    }

    /// @notice Requests made by this contract, by market request id.
    mapping(uint256 requestId => Pending) public pending;
    /// @dev A model's (inputBits, outputBits), read from the registry once (fixed at registration): 1 << 16 | in << 8 | out.
    mapping(bytes32 modelId => uint24) private _bits;

    /// @notice The request's input payload: anyone stores `inputDocument` in a content store (its CID is fixed,
    ///         so nobody can substitute it) — `verinfer.chain.kit.store_input` does.
    event VerinferRequested(
        uint256 indexed requestId, bytes32 indexed modelId, bytes32 inputHash, string inputCid, bytes inputDocument
    );
    /// @notice The market's callback arrived.
    event VerinferSettled(uint256 indexed requestId, IInferenceMarket.Status status, bytes32 outputHash);
    /// @notice `_fulfill` ran.
    event VerinferFulfilled(uint256 indexed requestId, IInferenceMarket.Status status, uint256 cls, bool proven);

    error NotMarket(address caller);
    error UnknownRequest(uint256 requestId);
    error AlreadyFulfilled(uint256 requestId);
    error NotSettled(uint256 requestId, IInferenceMarket.Status status);
    error OutputMismatch(uint256 requestId, bytes32 settled, bytes32 opened);
    error InsufficientBalance(uint256 balance, uint256 required);

    modifier onlyMarket() {
        if (msg.sender != address(market)) revert NotMarket(msg.sender);
        _;
    }

    /// @param market_ The InferenceMarket (its model registry is read once, here).
    /// @param hasher_ The deployed VerinferHasher (verinfer.chain.kit.deploy_kit; listed in the manifest).
    constructor(IInferenceMarket market_, VerinferHasher hasher_) {
        market = market_;
        registry = IMarketModelRegistry(address(market_)).modelRegistry();
        hasher = hasher_;
    }

    /// @notice What `_fulfill` was given for `requestId` (fulfilled = false until then; cls = NO_CLASS without output).
    function resultOf(uint256 requestId)
        external
        view
        returns (bool fulfilled, IInferenceMarket.Status status, uint256 cls, bool proven)
    {
        Pending memory pd = pending[requestId];
        if (!pd.open) revert UnknownRequest(requestId);
        cls = pd.cls == type(uint64).max ? NO_CLASS : pd.cls;
        return (pd.fulfilled, pd.status, cls, pd.proven);
    }

    /// @notice The fee + callback deposit a request with `p` needs now (what `_request*` spends).
    function quoteTotal(bytes32 modelId, IInferenceMarket.RequestParams memory p) public view returns (uint256) {
        (uint256 fee, uint256 deposit) = market.quote(modelId, p);
        return fee + deposit;
    }

    /// @notice The market's callback: records the outcome; outcomes without an output vector are fulfilled now.
    function onInferenceResult(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash)
        external
        onlyMarket
    {
        emit VerinferSettled(requestId, status, outputHash);
        Pending storage pd = pending[requestId];
        if (status != IInferenceMarket.Status.Accepted && pd.open && !pd.fulfilled) {
            _complete(requestId, status, outputHash, NO_CLASS, new int256[](0), false);
        }
        _onSettled(requestId, status, outputHash);
    }

    /// @notice Anyone opens a settled request's output vector (from its Revealed output CID); it is checked
    ///         against the settled outputHash and handed to `_fulfill` with its argmax class. For an outcome
    ///         without output (failed callback), pass an empty vector: the outcome is read from the market.
    function deliver(uint256 requestId, int256[] calldata vector) external {
        Pending memory pd = pending[requestId];
        if (!pd.open) revert UnknownRequest(requestId);
        if (pd.fulfilled) revert AlreadyFulfilled(requestId);
        IInferenceMarket.Request memory r = market.getRequest(requestId);
        IInferenceMarket.Status s = r.status;
        if (s == IInferenceMarket.Status.Accepted) {
            bytes32 opened = hasher.hashVector(vector, pd.outputBits);
            if (opened != r.outputHash) revert OutputMismatch(requestId, r.outputHash, opened);
            _complete(requestId, s, opened, _argmax(vector), vector, r.proven);
        } else if (
            s == IInferenceMarket.Status.InvalidInput || s == IInferenceMarket.Status.NoQuorum
                || s == IInferenceMarket.Status.Expired
        ) {
            _complete(requestId, s, r.outputHash, NO_CLASS, new int256[](0), false);
        } else {
            revert NotSettled(requestId, s);
        }
    }

    /// @notice Requests inference on this contract's own data in one call: the input hash and the payload's
    ///         content id are computed on-chain; the fee + callback deposit (the quote) are paid from this
    ///         contract's balance.
    function _requestVector(bytes32 modelId, int256[] memory input, IInferenceMarket.RequestParams memory p)
        internal
        returns (uint256 requestId)
    {
        (uint8 inBits, uint8 outBits) = _modelBits(modelId);
        (bytes32 inputHash, bytes memory doc, string memory cid) = hasher.prepareInput(input, inBits);
        requestId = _send(modelId, cid, inputHash, p, inBits, outBits);
        emit VerinferRequested(requestId, modelId, inputHash, cid, doc);
    }

    /// @notice Requests inference on a payload already in a content store (hash and CID computed off-chain).
    function _requestCid(
        bytes32 modelId,
        string memory inputCid,
        bytes32 inputHash,
        IInferenceMarket.RequestParams memory p
    ) internal returns (uint256 requestId) {
        (uint8 inBits, uint8 outBits) = _modelBits(modelId);
        requestId = _send(modelId, inputCid, inputHash, p, inBits, outBits);
        emit VerinferRequested(requestId, modelId, inputHash, inputCid, "");
    }

    /// @notice Pulls everything the market credited to this contract (refunds) to `to`; returns the amount.
    function _withdrawRefunds(address payable to) internal returns (uint256 amount) {
        amount = market.withdrawable(address(this));
        if (amount > 0) market.withdrawTo(to);
    }

    /// @notice Your logic. Runs once per request; `cls` is the argmax of `vector` (NO_CLASS without output);
    ///         `proven` is true when a Groth16 proof settled the output (no trust in the committee needed).
    function _fulfill(
        uint256 requestId,
        IInferenceMarket.Status status,
        bytes32 outputHash,
        uint256 cls,
        int256[] memory vector,
        bool proven
    ) internal virtual;

    /// @notice Optional hook, run inside the market's callback for every settled request (after `_fulfill` for
    ///         outcomes without output). For outputs too large to open on-chain (more than `hasher.maxLength`
    ///         values), act on `outputHash` here. Its gas comes out of your request's callbackGasLimit.
    function _onSettled(uint256 requestId, IInferenceMarket.Status status, bytes32 outputHash) internal virtual {}

    function _modelBits(bytes32 modelId) private returns (uint8 inBits, uint8 outBits) {
        uint24 b = _bits[modelId];
        if (b == 0) {
            IModelRegistry.Model memory m = registry.getModel(modelId);
            b = uint24(1 << 16) | (uint24(m.inputBits) << 8) | uint24(m.outputBits);
            _bits[modelId] = b;
        }
        // casting to 'uint8' is safe because each field was stored from a uint8 (the truncation is the unpacking)
        // forge-lint: disable-next-line(unsafe-typecast)
        (inBits, outBits) = (uint8(b >> 8), uint8(b));
    }

    function _send(
        bytes32 modelId,
        string memory cid,
        bytes32 inputHash,
        IInferenceMarket.RequestParams memory p,
        uint8 inputBits,
        uint8 outputBits
    ) private returns (uint256 requestId) {
        uint256 total = quoteTotal(modelId, p);
        if (address(this).balance < total) revert InsufficientBalance(address(this).balance, total);
        requestId = market.requestInference{value: total}(modelId, cid, inputHash, p);
        pending[requestId] = Pending({
            open: true,
            fulfilled: false,
            proven: false,
            status: IInferenceMarket.Status.None,
            inputBits: inputBits,
            outputBits: outputBits,
            cls: type(uint64).max
        });
    }

    function _complete(
        uint256 requestId,
        IInferenceMarket.Status status,
        bytes32 outputHash,
        uint256 cls,
        int256[] memory vector,
        bool proven
    ) private {
        Pending storage pd = pending[requestId];
        pd.fulfilled = true;
        pd.status = status;
        pd.proven = proven;
        // casting to 'uint64' is safe because larger values are mapped to the NO_CLASS marker first
        // forge-lint: disable-next-line(unsafe-typecast)
        pd.cls = cls >= type(uint64).max ? type(uint64).max : uint64(cls);
        emit VerinferFulfilled(requestId, status, cls, proven);
        _fulfill(requestId, status, outputHash, cls, vector, proven);
    }

    function _argmax(int256[] calldata xs) private pure returns (uint256 best) {
        for (uint256 i = 1; i < xs.length; i++) {
            if (xs[i] > xs[best]) best = i;
        }
    }
}
