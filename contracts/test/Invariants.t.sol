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
    uint256 public busyRejections; // requests refused RecordBusy (the record's previous request unsettled)
    uint256 public aliasRejections; // calls with a pruned or future id aliasing a live record, refused
    uint256 public aliasAccepted; // ... and accepted: must stay 0

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

    /// @notice The oldest request whose record has not been taken over (0 when there is none yet).
    function oldestLive() public view returns (uint256) {
        uint256 count = market.requestCount();
        if (count == 0) return 0;
        uint256 records = market.requestRecords();
        return count > records ? count - records + 1 : 1;
    }

    /// @dev A live request id (the views revert RequestPruned for older ones), or 0 when there is none.
    function _pickRequest(uint256 seed) internal view returns (uint256) {
        uint256 oldest = oldestLive();
        if (oldest == 0) return 0;
        return oldest + (seed % (market.requestCount() - oldest + 1));
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
        vm.prank(r);
        try market.requestInference{value: fee}(model, "bafkreiinput", bytes32(uint256(42)), p) returns (uint256 id) {
            ++okRequests;
            totalIn += fee;
            if (id > market.requestRecords()) ++okRecycled;
        } catch (bytes memory reason) {
            uint256 next = market.requestCount() + 1;
            if (keccak256(reason) == keccak256(abi.encodeWithSelector(IInferenceMarket.RecordBusy.selector, next - market.requestRecords()))) {
                ++busyRejections;
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
    ///         the same record that is pruned (id - k * requestRecords) or not made yet (id + k * requestRecords):
    ///         every call must revert (the commitment binds the live id, so reveal fails CommitmentMismatch).
    function aliasAttack(uint256 reqSeed, uint256 memberSeed, uint256 k, bool future) external {
        uint256 id = _pickRequest(reqSeed);
        if (id == 0) return;
        address[] memory c = market.getCommittee(id);
        if (c.length == 0) return;
        uint256 step = market.requestRecords() * bound(k, 1, 3);
        if (!future && id <= step) return;
        uint256 other = future ? id + step : id - step;
        address n = c[memberSeed % c.length];
        bytes32 salt = keccak256(abi.encode(id, n));
        bytes32 out = chosen[id][n];
        uint256[8] memory proof;
        vm.startPrank(n);
        _aliasCall(abi.encodeCall(market.commit, (other, keccak256(abi.encode(other, out, salt, n)))));
        _aliasCall(abi.encodeCall(market.reveal, (other, out, salt, "bafkreioutput")));
        _aliasCall(abi.encodeCall(market.draw, (other)));
        _aliasCall(abi.encodeCall(market.finalize, (other)));
        _aliasCall(abi.encodeCall(market.submitProof, (other, outcomes[0], proof)));
        vm.stopPrank();
    }

    function _aliasCall(bytes memory data) internal {
        (bool ok,) = address(market).call(data);
        if (ok) ++aliasAccepted;
        else ++aliasRejections;
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
        // wrap the ring before the run: RECORDS requests, expired, so every request of a run takes over a record
        for (uint256 i; i < RECORDS; ++i) {
            handler.request(i, 0, 0, 0, 0, 0, 0, 0);
        }
        vm.roll(200); // past their draw deadlines
        for (uint256 i; i < RECORDS; ++i) {
            handler.finalize(i);
        }
        vm.assertEq(market.requestCount(), RECORDS, "ring full");
        for (uint256 id = 1; id <= RECORDS; ++id) {
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

    /// @notice Request ids the views still serve: the latest RECORDS (older records were taken over).
    function _live() internal view returns (uint256 first, uint256 last) {
        last = market.requestCount();
        first = last > RECORDS ? last - RECORDS + 1 : 1;
    }

    /// @notice The views serve exactly the live ids (recycling only settled records is checked by the escrow and
    ///         seat invariants): the newest pruned id reverts RequestPruned(id, oldestLive), the next id RequestNotFound.
    function invariant_viewsServeLiveIdsOnly() public view {
        (uint256 first, uint256 last) = _live();
        if (first > 1) {
            uint256 pruned = first - 1;
            try market.getRequest(pruned) {
                vm.assertTrue(false, "a pruned id still served");
            } catch (bytes memory reason) {
                vm.assertEq(
                    keccak256(reason),
                    keccak256(abi.encodeWithSelector(IInferenceMarket.RequestPruned.selector, pruned, first)),
                    "RequestPruned(id, oldestLive)"
                );
            }
        }
        try market.getRequest(last + 1) {
            vm.assertTrue(false, "a future id served");
        } catch (bytes memory reason) {
            vm.assertEq(
                keccak256(reason),
                keccak256(abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, last + 1)),
                "RequestNotFound(future id)"
            );
        }
        vm.assertEq(uint256(market.statusOf(last + 1)), uint256(IInferenceMarket.Status.None), "future: None");
    }

    /// @notice Every request made during a run took over a record (setUp filled the ring), and the handler saw the
    ///         request ids it expected (made requests == requestCount).
    function invariant_everyRequestReusesARecord() public view {
        vm.assertEq(handler.okRequests(), market.requestCount(), "requests made == requestCount");
        vm.assertEq(handler.okRecycled(), handler.okRequests() - RECORDS, "every request after setUp's reuses a record");
    }

    /// @notice No call with a pruned or future id aliasing a live record ever succeeded.
    function invariant_aliasIdsNeverAccepted() public view {
        vm.assertEq(handler.aliasAccepted(), 0, "a call with a stale or future id was accepted");
    }

    function invariant_escrowMatchesOpenRequests() public view {
        uint256 open;
        (uint256 first, uint256 last) = _live();
        for (uint256 id = first; id <= last; ++id) {
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
    ///         of a proven one (a reveal frees the seat, finalize the lock). Pruned requests are settled, so the
    ///         live ones account for every seat.
    function invariant_seatsMatchOpenCommittees() public view {
        uint256 seats;
        uint256 unrevealed;
        (uint256 first, uint256 last) = _live();
        for (uint256 id = first; id <= last; ++id) {
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
        (uint256 first, uint256 last) = _live();
        for (uint256 id = first; id <= last; ++id) {
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
        (uint256 first, uint256 last) = _live();
        for (uint256 id = first; id <= last; ++id) {
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
        console.log("alias calls refused", handler.aliasRejections());
        console.log("reveals", handler.okReveals());
        console.log("finalizes", handler.okFinalizes());
        vm.assertGe(handler.okRecycled(), 5, "records recycled");
        vm.assertGe(handler.busyRejections(), 1, "RecordBusy while a record's request is open");
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
