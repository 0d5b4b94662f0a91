// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "./utils/Preview.sol";
import {TestBase, console} from "./utils/Vm.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {IModelRegistry} from "../src/interfaces/IModelRegistry.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {MockVerifier} from "./utils/MockVerifier.sol";

/// @notice Drives random sequences of protocol actions for the invariant tests.
contract Handler is TestBase {
    ModelRegistry public models;
    NodeRegistry public nodes;
    InferenceMarket public market;
    bytes32 public modelId; // proven (public weights, a mock verifier)
    bytes32 public plainModelId; // proof-less: seats are held until settlement

    uint256 public constant N_NODES = 8;
    uint256 public constant N_REQUESTERS = 2;
    address public constant PROVER = address(0x9800F);
    address public constant KEEPER = address(0x4EE9);
    bytes32[3] internal outcomes = [bytes32(uint256(0xA)), bytes32(uint256(0xB)), bytes32(type(uint256).max)];

    mapping(uint256 requestId => mapping(address node => bytes32)) internal chosen;
    uint256 public finalizeFailuresWhenDue;
    uint256 public totalIn; // ether sent into the protocol by actors
    uint256 public totalOut; // ether paid out to actors
    uint256 public okRequests;
    uint256 public okDraws;
    uint256 public okCommits;
    uint256 public okReveals;
    uint256 public okFinalizes;
    uint256 public okProofs;
    uint256 public okWithdraws;
    uint256 public okStakeWithdrawals;
    uint256 public okExpired;
    uint256 public okRecycled; // requests that took over a record an earlier request used
    uint256 public busyRejections; // requests refused RecordBusy (every record tried held by an unsettled request)
    uint256 public claimMismatches; // requests whose id (or RecordBusy) differs from the skip rule: must stay 0
    uint256 public aliasRejections; // calls with a pruned, future or skipped id aliasing a live record, refused
    uint256 public aliasAccepted; // ... and accepted: must stay 0

    /// @dev The request each record holds (0: none yet): the live ids. Skipping makes them non-contiguous.
    mapping(uint256 record => uint256) public holderOf;
    /// @dev Every id made, and every id skipped (never made: its record was held), in order.
    uint256[] public madeIds;
    uint256[] public skippedIds;
    mapping(uint256 requestId => address) public requesterOf;
    mapping(uint256 requestId => uint256) public feeOf;

    constructor(ModelRegistry m, NodeRegistry n, InferenceMarket mk, bytes32 id, bytes32 plainId) {
        models = m;
        nodes = n;
        market = mk;
        modelId = id;
        plainModelId = plainId;
    }

    function nodeAt(uint256 i) public pure returns (address) {
        return address(uint160(0x1000 + (i % N_NODES)));
    }

    function requesterAt(uint256 i) public pure returns (address) {
        return address(uint160(0x2000 + (i % N_REQUESTERS)));
    }

    function actors() external pure returns (address[] memory list) {
        list = new address[](N_NODES + N_REQUESTERS + 2);
        for (uint256 i; i < N_NODES; ++i) list[i] = nodeAt(i);
        for (uint256 i; i < N_REQUESTERS; ++i) list[N_NODES + i] = requesterAt(i);
        list[N_NODES + N_REQUESTERS] = PROVER;
        list[N_NODES + N_REQUESTERS + 1] = KEEPER;
    }

    function _shards(bool partialShard) internal view returns (INodeRegistry.ModelShard[] memory s) {
        s = new INodeRegistry.ModelShard[](2);
        uint16 end = partialShard ? 1 : type(uint16).max;
        s[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: end});
        s[1] = INodeRegistry.ModelShard({modelId: plainModelId, layerStart: 0, layerEnd: end});
    }

    function madeCount() external view returns (uint256) {
        return madeIds.length;
    }

    function skippedCount() external view returns (uint256) {
        return skippedIds.length;
    }

    /// @dev A live request id (the holder of a record; the views revert RequestPruned for older ones), or 0.
    function _pickRequest(uint256 seed) internal view returns (uint256) {
        return holderOf[seed % market.requestRecords()];
    }

    /// @dev Unsettled as requestInference sees it (Revealing is Committing past the commit deadline).
    function _open(uint256 id) internal view returns (bool) {
        IInferenceMarket.Status st = market.statusOf(id);
        return st == IInferenceMarket.Status.Pending || st == IInferenceMarket.Status.Committing
            || st == IInferenceMarket.Status.Revealing;
    }

    /// @notice The id the next request must get by the skip rule: the first of the next 4 ids whose record is not
    ///         held by an unsettled request; 0 when all 4 are held (RecordBusy).
    function expectedNextId() public view returns (uint256) {
        uint256 next = market.requestCount() + 1;
        uint256 records = market.requestRecords();
        for (uint256 t; t < 4; ++t) {
            uint256 h = holderOf[(next + t) % records];
            if (h == 0 || !_open(h)) return next + t;
        }
        return 0;
    }

    // ------------------------------------------------------------------ node actions

    function register(uint256 who, uint256 stake) external {
        address n = nodeAt(who);
        if (nodes.getNode(n).registered) return;
        stake = bound(stake, 1 ether, 5 ether);
        vm.deal(n, n.balance + stake);
        vm.prank(n);
        nodes.register{value: stake}("http://n", _shards(who % 5 == 4)); // some junk (partial) registrations
        totalIn += stake;
    }

    function topUp(uint256 who, uint256 amount) external {
        address n = nodeAt(who);
        INodeRegistry.Node memory node = nodes.getNode(n);
        if (!node.registered || node.unbondingSince != 0) return;
        amount = bound(amount, 1, 2 ether);
        vm.deal(n, n.balance + amount);
        vm.prank(n);
        nodes.topUp{value: amount}();
        totalIn += amount;
    }

    function setCapacity(uint256 who, uint16 cap) external {
        address n = nodeAt(who);
        if (!nodes.getNode(n).registered) return;
        vm.prank(n);
        nodes.setCapacity(uint16(bound(cap, 1, 6)));
    }

    function unbond(uint256 who) external {
        address n = nodeAt(who);
        INodeRegistry.Node memory node = nodes.getNode(n);
        if (!node.registered || node.unbondingSince != 0) return;
        vm.prank(n);
        nodes.requestUnbond();
    }

    function withdrawStake(uint256 who) external {
        address n = nodeAt(who);
        INodeRegistry.Node memory node = nodes.getNode(n);
        if (!node.registered || node.unbondingSince == 0 || nodes.openAssignments(n) != 0) return;
        if (block.number < node.availableAt) return;
        uint256 before = n.balance;
        vm.prank(n);
        nodes.withdrawStake();
        vm.assertEq(n.balance - before, node.stake, "withdrawStake pays the remaining stake");
        totalOut += node.stake;
        ++okStakeWithdrawals;
    }

    // ------------------------------------------------------------------ market actions

    function request(uint256 who, uint256 fee, uint8 replicas, uint8 quorum, uint32 cb, uint32 rb, uint32 cbGas, uint32 qb)
        external
    {
        address r = requesterAt(who);
        bytes32 model = (who >> 1) % 2 == 0 ? modelId : plainModelId;
        replicas = uint8(bound(replicas, 1, 4));
        quorum = uint8(bound(quorum, replicas / 2 + 1, replicas));
        IInferenceMarket.RequestParams memory p = IInferenceMarket.RequestParams({
            replicas: replicas,
            quorum: quorum,
            commitBlocks: uint32(bound(cb, 10, 16)),
            revealBlocks: uint32(bound(rb, 10, 16)),
            callbackGasLimit: uint32(bound(cbGas, 0, 1)) * 50_000,
            queueBlocks: uint8(bound(qb, 0, 1)) * 20
        });
        fee = bound(fee, market.parameters().minFee * replicas, 3 ether) + uint256(p.callbackGasLimit) * market.parameters().callbackGasPrice;
        vm.deal(r, r.balance + fee);
        uint256 expected = expectedNextId();
        uint256 count = market.requestCount();
        vm.prank(r);
        try market.requestInference{value: fee}(model, "bafkreiinput", bytes32(uint256(42)), p) returns (uint256 id) {
            ++okRequests;
            totalIn += fee;
            uint256 records = market.requestRecords();
            if (id > records) ++okRecycled;
            if (id != expected) ++claimMismatches;
            for (uint256 k = count + 1; k < id; ++k) skippedIds.push(k);
            madeIds.push(id);
            holderOf[id % records] = id;
            requesterOf[id] = r;
            feeOf[id] = fee - uint256(p.callbackGasLimit) * market.parameters().callbackGasPrice;
        } catch (bytes memory reason) {
            // RecordBusy's argument is not checked here: after a skip it names the skipped id, not the holder
            // (RequestRecords.t.sol test_recordBusy_namesTheRequestHoldingTheRecord)
            if (bytes4(reason) == IInferenceMarket.RecordBusy.selector) {
                ++busyRejections;
                if (expected != 0) ++claimMismatches; // refused although a tried record was free
            }
        }
    }

    function draw(uint256 reqSeed) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        try market.draw(id) {
            ++okDraws;
            if (market.statusOf(id) == IInferenceMarket.Status.Expired) ++okExpired;
        } catch {}
    }

    /// @dev External so that commit can try it (previewCommittee is a free function of the test utils).
    function preview(uint256 id) external view returns (address[] memory) {
        return previewCommittee(market, id);
    }

    function commit(uint256 reqSeed, uint256 memberSeed, uint256 outSeed) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        address[] memory c;
        try this.preview(id) returns (address[] memory got) {
            c = got;
        } catch {
            return;
        }
        if (c.length == 0) return;
        address n = c[memberSeed % c.length];
        bytes32 out = outcomes[outSeed % 3];
        bytes32 salt = keccak256(abi.encode(id, n));
        vm.prank(n);
        try market.commit(id, keccak256(abi.encode(id, out, salt, n))) {
            chosen[id][n] = out;
            ++okCommits;
        } catch {}
    }

    function reveal(uint256 reqSeed, uint256 memberSeed) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        address[] memory c = market.getCommittee(id);
        if (c.length == 0) return;
        address n = c[memberSeed % c.length];
        vm.prank(n);
        try market.reveal(id, chosen[id][n], keccak256(abi.encode(id, n)), "bafkreioutput") {
            ++okReveals;
        } catch {}
    }

    function finalize(uint256 reqSeed) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        IInferenceMarket.Request memory r = market.getRequest(id);
        bool open = r.status == IInferenceMarket.Status.Committing || r.status == IInferenceMarket.Status.Revealing;
        bool due = (open && block.number > r.finalizeAfter)
            || (r.status == IInferenceMarket.Status.Pending && block.number > r.drawDeadline);
        vm.prank(KEEPER);
        try market.finalize(id) {
            ++okFinalizes;
        } catch {
            if (due) ++finalizeFailuresWhenDue;
        }
    }

    function prove(uint256 reqSeed, uint256 outSeed) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        uint256[8] memory proof;
        vm.prank(PROVER);
        try market.submitProof(id, outcomes[outSeed % 2], proof) {
            ++okProofs;
        } catch {}
    }

    /// @notice A member of a live, drawn request calls commit / reveal / draw / finalize / submitProof with an id of
    ///         the same record that is pruned or skipped (id - k * requestRecords) or not made yet
    ///         (id + k * requestRecords), or with any skipped id: every call must revert (the record's tag is the
    ///         live id), reveal included, even with a commitment bound to the alias id.
    function aliasAttack(uint256 reqSeed, uint256 memberSeed, uint256 k, bool future) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        address[] memory c = market.getCommittee(id);
        if (c.length == 0) return;
        uint256 step = market.requestRecords() * bound(k, 1, 3);
        if (!future && id <= step) return;
        uint256 other = future ? id + step : id - step;
        if (k % 4 == 3 && skippedIds.length != 0) other = skippedIds[(k >> 2) % skippedIds.length];
        address n = c[memberSeed % c.length];
        bytes32 salt = keccak256(abi.encode(id, n));
        bytes32 out = chosen[id][n];
        uint256[8] memory proof;
        bytes memory expected = expectedIdError(other);
        vm.startPrank(n);
        _aliasCall(abi.encodeCall(market.commit, (other, keccak256(abi.encode(other, out, salt, n)))), expected);
        _aliasCall(abi.encodeCall(market.reveal, (other, out, salt, "bafkreioutput")), expected);
        _aliasCall(abi.encodeCall(market.draw, (other)), expected);
        _aliasCall(abi.encodeCall(market.finalize, (other)), expected);
        _aliasCall(abi.encodeCall(market.submitProof, (other, outcomes[0], proof)), expected);
        vm.stopPrank();
    }

    /// @notice The revert every id-taking call must give for `id` when it is not its record's holder:
    ///         RequestPruned(id, holder) when a later id holds the record, else RequestNotFound(id).
    function expectedIdError(uint256 id) public view returns (bytes memory) {
        uint256 h = holderOf[id % market.requestRecords()];
        if (h > id) return abi.encodeWithSelector(IInferenceMarket.RequestPruned.selector, id, h);
        return abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, id);
    }

    uint256 public aliasWrongError; // refused, but not with expectedIdError: must stay 0

    function _aliasCall(bytes memory data, bytes memory expected) internal {
        (bool ok, bytes memory reason) = address(market).call(data);
        if (ok) ++aliasAccepted;
        else ++aliasRejections;
        if (!ok && keccak256(reason) != keccak256(expected)) ++aliasWrongError;
    }

    function withdraw(uint256 who) external {
        address[] memory a = this.actors();
        address acct = a[who % a.length];
        uint256 amount = market.withdrawable(acct);
        if (amount == 0) return;
        uint256 before = acct.balance;
        vm.prank(acct);
        market.withdraw();
        vm.assertEq(acct.balance - before, amount, "withdraw pays the balance");
        totalOut += amount;
        ++okWithdraws;
    }

    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 8));
    }
}

contract InvariantsTest is TestBase {
    ModelRegistry internal models;
    NodeRegistry internal nodes;
    InferenceMarket internal market;
    Handler internal handler;
    bytes32 internal modelId;
    bytes32 internal plainModelId;
    uint256 internal constant RECORDS = 4; // a small ring: records are recycled within a run

    function setUp() public {
        vm.roll(100);
        models = new ModelRegistry();
        nodes = new NodeRegistry(address(this), address(models), address(0), 1 ether, 10, 10);
        market = new InferenceMarket(address(this), address(nodes), address(models), RECORDS);
        nodes.setMarket(address(market));
        MockVerifier v = new MockVerifier(true);
        modelId = models.registerModel(
            IModelRegistry.ModelInput({
                name: "inv",
                weightsCid: "bafkreiw",
                commitment: 1,
                verifier: address(v),
                proofMode: 1,
                executionProfileHash: bytes32(0),
                shardLayoutHash: bytes32(0),
                numLayers: 2,
                inputBits: 8,
                outputBits: 32,
                requiresTee: false
            })
        );
        plainModelId = models.registerModel(
            IModelRegistry.ModelInput({
                name: "inv-plain",
                weightsCid: "bafkreiw",
                commitment: 1,
                verifier: address(0),
                proofMode: 0,
                executionProfileHash: bytes32(0),
                shardLayoutHash: bytes32(0),
                numLayers: 2,
                inputBits: 8,
                outputBits: 32,
                requiresTee: false
            })
        );
        handler = new Handler(models, nodes, market, modelId, plainModelId);
        for (uint256 i; i < 4; ++i) {
            handler.register(i, 2 ether);
        }
        vm.roll(120);
        // wrap the ring before the run: RECORDS requests, so every request of a run takes over a record. Requests
        // 2-4 expire; request 1 (record 1) stays Pending (held until someone finalizes it), so a run's first
        // request (id 5, record 1) skips it unless the run expired it first: skipping is exercised from the start.
        for (uint256 i; i < RECORDS; ++i) {
            handler.request(i, 0, 0, 0, 0, 0, 0, 0);
        }
        vm.roll(200); // past their draw deadlines
        for (uint256 k; k < RECORDS; ++k) {
            if (k != 1) handler.finalize(k); // the handler picks record k's request
        }
        vm.assertEq(market.requestCount(), RECORDS, "ring full");
        vm.assertEq(uint256(market.statusOf(1)), uint256(IInferenceMarket.Status.Pending), "request 1 held");
        for (uint256 id = 2; id <= RECORDS; ++id) {
            vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.Expired), "expired");
        }
    }

    /// @dev forge reads the fuzzed targets from this function.
    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function invariant_marketSolvent() public view {
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market balance");
    }

    function invariant_registrySolvent() public view {
        vm.assertEq(address(nodes).balance, nodes.totalStaked() + nodes.totalBurned(), "registry balance");
    }

    /// @notice No sequence strands or creates funds: what actors put in minus what they took out is exactly
    ///         staked + escrowed + withdrawable + burned.
    function invariant_fundsConserved() public view {
        uint256 held = address(market).balance + address(nodes).balance;
        vm.assertEq(held, handler.totalIn() - handler.totalOut(), "in - out == held");
        vm.assertEq(
            held,
            nodes.totalStaked() + market.totalEscrowed() + market.totalWithdrawable() + nodes.totalBurned(),
            "held == staked + escrowed + withdrawable + burned"
        );
    }

    function invariant_withdrawableSumsUp() public view {
        address[] memory a = handler.actors();
        uint256 sum;
        for (uint256 i; i < a.length; ++i) sum += market.withdrawable(a[i]);
        vm.assertEq(sum, market.totalWithdrawable(), "sum of balances == totalWithdrawable");
    }

    function invariant_stakesSumUp() public view {
        uint256 sum;
        for (uint256 i; i < handler.N_NODES(); ++i) sum += nodes.stakeOf(handler.nodeAt(i));
        vm.assertEq(sum, nodes.totalStaked(), "sum of stakes == totalStaked");
    }

    /// @notice The sortition tree's total is the sum of the eligible nodes' weights (junk and unbonding excluded).
    function invariant_treeTotalIsEligibleStake() public view {
        _treeTotalIsEligibleStake(modelId, 0);
        _treeTotalIsEligibleStake(plainModelId, 1);
    }

    /// @dev The handler registers both models' shards, full or both partial (junk), `k` is the model's shard.
    function _treeTotalIsEligibleStake(bytes32 id, uint256 k) internal view {
        uint256 sum;
        for (uint256 i; i < handler.N_NODES(); ++i) {
            address n = handler.nodeAt(i);
            INodeRegistry.Node memory node = nodes.getNode(n);
            INodeRegistry.ModelShard[] memory s = nodes.getShards(n);
            bool full = s.length == 2 && s[k].modelId == id && s[k].layerEnd == type(uint16).max;
            if (node.registered && node.unbondingSince == 0 && node.stake >= nodes.minStake() && full) {
                sum += (node.stake / 1 gwei) * 1 gwei;
                vm.assertTrue(nodes.isEligible(n, id), "eligible node has weight");
            } else {
                vm.assertFalse(nodes.isEligible(n, id), "ineligible node has no weight");
            }
        }
        vm.assertEq(nodes.eligibleStake(id), sum, "tree total == sum of eligible weights");
    }

    /// @notice The live ids: the request each record holds (0: none). With skipping they are not the latest
    ///         RECORDS ids: a stuck request keeps its record while later ids pass it by.
    function _holders() internal view returns (uint256[] memory h) {
        h = new uint256[](RECORDS);
        for (uint256 k; k < RECORDS; ++k) h[k] = handler.holderOf(k);
    }

    function _reverts(bytes memory call, bytes memory expected, string memory what) internal view {
        (bool ok, bytes memory reason) = address(market).staticcall(call);
        vm.assertFalse(ok, what);
        vm.assertEq(keccak256(reason), keccak256(expected), what);
    }

    /// @notice The views serve exactly the live ids. Each record's tag (slot 0, top 32 bits) is the id the handler
    ///         saw it take; each live id resolves to its own request (requester, fee); every other made id reverts
    ///         RequestPruned(id, recycledBy = its record's holder); a skipped id never resolves (statusOf None, or
    ///         RequestPruned once a later id took its record); the next id is RequestNotFound / None.
    function invariant_viewsServeLiveIdsOnly() public view {
        uint256[] memory h = _holders();
        for (uint256 k; k < RECORDS; ++k) {
            bytes32 slot0 = bytes32(uint256(keccak256(abi.encode(k, uint256(6))))); // InferenceMarket._requests
            vm.assertEq(uint256(vm.load(address(market), slot0)) >> 224, h[k], "record tag == the handler's holder");
            if (h[k] == 0) continue;
            IInferenceMarket.Request memory q = market.getRequest(h[k]);
            vm.assertEq(q.requester, handler.requesterOf(h[k]), "a live id resolves to its own requester");
            vm.assertEq(q.fee, handler.feeOf(h[k]), "... and fee");
            vm.assertTrue(market.statusOf(h[k]) != IInferenceMarket.Status.None, "a live id has a status");
        }
        for (uint256 i; i < handler.madeCount(); ++i) {
            uint256 id = handler.madeIds(i);
            uint256 holder = h[id % RECORDS];
            if (holder == id) continue;
            vm.assertTrue(holder > id, "a made id's record holds it or a later id");
            _reverts(abi.encodeCall(market.getRequest, (id)), handler.expectedIdError(id), "pruned: RequestPruned(id, recycledBy)");
            _reverts(abi.encodeCall(market.statusOf, (id)), handler.expectedIdError(id), "pruned: statusOf reverts");
        }
        for (uint256 i; i < handler.skippedCount(); ++i) {
            uint256 id = handler.skippedIds(i);
            vm.assertTrue(h[id % RECORDS] != id, "a skipped id never holds a record");
            _reverts(abi.encodeCall(market.getRequest, (id)), handler.expectedIdError(id), "skipped: never resolves");
            _reverts(abi.encodeCall(market.getCommittee, (id)), handler.expectedIdError(id), "skipped: no committee");
            if (h[id % RECORDS] < id) {
                vm.assertEq(uint256(market.statusOf(id)), uint256(IInferenceMarket.Status.None), "skipped: None");
            } else {
                _reverts(abi.encodeCall(market.statusOf, (id)), handler.expectedIdError(id), "skipped, record retaken");
            }
        }
        uint256 next = market.requestCount() + 1;
        _reverts(
            abi.encodeCall(market.getRequest, (next)),
            abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, next),
            "RequestNotFound(future id)"
        );
        vm.assertEq(uint256(market.statusOf(next)), uint256(IInferenceMarket.Status.None), "future: None");
    }

    /// @notice Every id up to requestCount was made or skipped, once; every request made during a run took over a
    ///         record (setUp filled the ring); each request got the id the skip rule gives (the first of the next 4
    ///         whose record is not held by an unsettled request) and RecordBusy came only when all 4 were held.
    function invariant_everyRequestReusesARecord() public view {
        vm.assertEq(handler.okRequests(), handler.madeCount(), "requests made");
        vm.assertEq(handler.madeCount() + handler.skippedCount(), market.requestCount(), "made + skipped == requestCount");
        vm.assertEq(handler.okRecycled(), handler.okRequests() - RECORDS, "every request after setUp's reuses a record");
        vm.assertEq(handler.claimMismatches(), 0, "a request's id (or RecordBusy) broke the skip rule");
    }

    /// @notice No call with a pruned, future or skipped id aliasing a live record ever succeeded, and each was
    ///         refused on the id itself (RequestPruned / RequestNotFound).
    function invariant_aliasIdsNeverAccepted() public view {
        vm.assertEq(handler.aliasAccepted(), 0, "a call with a stale, future or skipped id was accepted");
        vm.assertEq(handler.aliasWrongError(), 0, "an alias call refused with another error than the id's");
    }

    function invariant_escrowMatchesOpenRequests() public view {
        uint256 open;
        uint256[] memory h = _holders();
        for (uint256 k; k < RECORDS; ++k) {
            uint256 id = h[k];
            if (id == 0) continue;
            IInferenceMarket.Request memory r = market.getRequest(id);
            if (
                r.status == IInferenceMarket.Status.Pending || r.status == IInferenceMarket.Status.Committing
                    || r.status == IInferenceMarket.Status.Revealing
            ) open += r.fee + r.callbackDeposit;
        }
        vm.assertEq(open, market.totalEscrowed(), "escrow == fee + deposit of unsettled requests");
    }

    /// @notice Withdrawal locks == committee seats of drawn, unsettled requests; capacity seats == those of them
    ///         still held: every member's of a proof-less request (the settlement frees them), the non-revealers'
    ///         of a proven one (a reveal frees the seat, finalize the lock). A record is taken over only once its
    ///         request settled (an unsettled one is skipped), so the records' holders account for every seat.
    function invariant_seatsMatchOpenCommittees() public view {
        uint256 seats;
        uint256 unrevealed;
        uint256[] memory h = _holders();
        for (uint256 k; k < RECORDS; ++k) {
            uint256 id = h[k];
            if (id == 0) continue;
            IInferenceMarket.Status st = market.statusOf(id);
            if (st == IInferenceMarket.Status.Committing || st == IInferenceMarket.Status.Revealing) {
                address[] memory c = market.getCommittee(id);
                seats += c.length;
                bool proofLess = market.getRequest(id).proofMode == 0;
                for (uint256 i; i < c.length; ++i) {
                    (, bool revealed,) = market.getReveal(id, c[i]);
                    if (!revealed || proofLess) ++unrevealed;
                }
            }
        }
        uint256 held;
        uint256 locked;
        for (uint256 i; i < handler.N_NODES(); ++i) {
            held += nodes.getNode(handler.nodeAt(i)).inFlight;
            locked += nodes.openAssignments(handler.nodeAt(i));
        }
        vm.assertEq(locked, seats, "openAssignments sum == open committee seats");
        vm.assertEq(held, unrevealed, "inFlight sum == open seats still held");
    }

    /// @notice Nothing is both paid and slashed (or paid and refunded beyond the fee) for one request.
    function invariant_neverPaidAndSlashed() public view {
        uint256[] memory h = _holders();
        for (uint256 k; k < RECORDS; ++k) {
            uint256 id = h[k];
            if (id == 0) continue;
            address[] memory c = market.getCommittee(id);
            IInferenceMarket.Status st = market.statusOf(id);
            for (uint256 i; i < c.length; ++i) {
                (bool slashed, bool paid) = market.getMemberSettlement(id, c[i]);
                vm.assertFalse(slashed && paid, "a node both paid and slashed for one request");
                if (st == IInferenceMarket.Status.NoQuorum || st == IInferenceMarket.Status.Expired) {
                    vm.assertFalse(slashed, "nobody slashed without a settled outcome");
                }
            }
        }
    }

    function invariant_nothingStuck() public {
        vm.assertEq(handler.finalizeFailuresWhenDue(), 0, "a due finalize reverted in the sequence");
        uint256[] memory h = _holders();
        for (uint256 k; k < RECORDS; ++k) {
            uint256 id = h[k];
            if (id == 0) continue;
            IInferenceMarket.Request memory r = market.getRequest(id);
            bool open = r.status == IInferenceMarket.Status.Committing || r.status == IInferenceMarket.Status.Revealing;
            bool due = (open && block.number > r.finalizeAfter)
                || (r.status == IInferenceMarket.Status.Pending && block.number > r.drawDeadline);
            if (!due) continue;
            try this.probeFinalize(id) {}
            catch (bytes memory reason) {
                vm.assertEq(keccak256(reason), keccak256(abi.encodeWithSelector(ProbeOk.selector)), "finalize failed");
            }
        }
    }

    error ProbeOk();

    /// @dev Sanity check of the handler itself: a long pseudo-random walk reaches every action's success path.
    function test_handler_reachesAllPaths() public {
        uint256 seed = 1;
        for (uint256 step; step < 1500; ++step) {
            seed = uint256(keccak256(abi.encode(seed)));
            uint256 action = seed % 14;
            uint256 x = seed >> 8;
            uint256 y = seed >> 64;
            if (action == 0) handler.register(x, y);
            else if (action == 1) handler.topUp(x, y);
            else if (action == 2 && x % 4 == 0) handler.unbond(y);
            else if (action == 3) handler.withdrawStake(x);
            else if (action == 4) handler.request(x, y, uint8(x >> 8), uint8(x >> 16), uint32(y), uint32(y >> 32), uint32(x >> 40), uint32(y >> 64));
            else if (action == 5 || action == 6) handler.commit(x, y, x >> 128);
            else if (action == 7 || action == 8) handler.reveal(x, y);
            else if (action == 9) handler.finalize(x);
            else if (action == 10) handler.prove(x, y);
            else if (action == 11) handler.draw(x);
            else if (action == 12) handler.aliasAttack(x, y, x >> 64, y % 2 == 0);
            else if (x % 2 == 0) handler.withdraw(y);
            else handler.roll(y);
        }
        vm.assertGe(handler.okRequests(), 5, "requests");
        vm.assertGe(handler.okCommits(), 5, "commits");
        vm.assertGe(handler.okReveals(), 3, "reveals");
        vm.assertGe(handler.okFinalizes(), 3, "finalizes");
        vm.assertGe(handler.okProofs(), 1, "proofs");
        vm.assertGe(handler.okWithdraws(), 1, "withdraws");
        vm.assertGe(handler.okStakeWithdrawals(), 1, "stake withdrawals");
        console.log("requests", handler.okRequests());
        console.log("recycled", handler.okRecycled());
        console.log("RecordBusy", handler.busyRejections());
        console.log("ids skipped", handler.skippedCount());
        console.log("alias calls refused", handler.aliasRejections());
        console.log("reveals", handler.okReveals());
        console.log("finalizes", handler.okFinalizes());
        vm.assertGe(handler.okRecycled(), 5, "records recycled");
        vm.assertGe(handler.busyRejections(), 1, "RecordBusy while all four records' requests are open");
        vm.assertGe(handler.skippedCount(), 1, "ids skipped past a held record");
        vm.assertGe(handler.aliasRejections(), 10, "stale / future ids tried");
        invariant_marketSolvent();
        invariant_registrySolvent();
        invariant_fundsConserved();
        invariant_withdrawableSumsUp();
        invariant_stakesSumUp();
        invariant_treeTotalIsEligibleStake();
        invariant_escrowMatchesOpenRequests();
        invariant_seatsMatchOpenCommittees();
        invariant_neverPaidAndSlashed();
        invariant_nothingStuck();
        invariant_viewsServeLiveIdsOnly();
        invariant_aliasIdsNeverAccepted();
        invariant_everyRequestReusesARecord();
    }

    function probeFinalize(uint256 id) external {
        market.finalize(id);
        revert ProbeOk();
    }
}
