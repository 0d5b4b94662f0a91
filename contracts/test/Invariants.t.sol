// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {previewCommittee} from "./utils/Preview.sol";
import {TestBase} from "./utils/Vm.sol";
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
    bytes32 public modelId;

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

    constructor(ModelRegistry m, NodeRegistry n, InferenceMarket mk, bytes32 id) {
        models = m;
        nodes = n;
        market = mk;
        modelId = id;
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
        s = new INodeRegistry.ModelShard[](1);
        s[0] = INodeRegistry.ModelShard({modelId: modelId, layerStart: 0, layerEnd: partialShard ? 1 : type(uint16).max});
    }

    function _pickRequest(uint256 seed) internal view returns (uint256) {
        uint256 count = market.requestCount();
        if (count == 0) return 0;
        return 1 + (seed % count);
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
        try market.requestInference{value: fee}(modelId, "bafkreiinput", bytes32(uint256(42)), p) {
            ++okRequests;
            totalIn += fee;
        } catch {}
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

    function setUp() public {
        vm.roll(100);
        models = new ModelRegistry();
        nodes = new NodeRegistry(address(this), address(models), address(0), 1 ether, 10, 10);
        market = new InferenceMarket(address(this), address(nodes), address(models), 4); // a small ring: records are recycled within a run
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
        handler = new Handler(models, nodes, market, modelId);
        for (uint256 i; i < 4; ++i) {
            handler.register(i, 2 ether);
        }
        vm.roll(120);
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
        uint256 sum;
        for (uint256 i; i < handler.N_NODES(); ++i) {
            address n = handler.nodeAt(i);
            INodeRegistry.Node memory node = nodes.getNode(n);
            INodeRegistry.ModelShard[] memory s = nodes.getShards(n);
            bool full = s.length == 1 && s[0].layerEnd == type(uint16).max;
            if (node.registered && node.unbondingSince == 0 && node.stake >= nodes.minStake() && full) {
                sum += (node.stake / 1 gwei) * 1 gwei;
                vm.assertTrue(nodes.isEligible(n, modelId), "eligible node has weight");
            } else {
                vm.assertFalse(nodes.isEligible(n, modelId), "ineligible node has no weight");
            }
        }
        vm.assertEq(nodes.eligibleStake(modelId), sum, "tree total == sum of eligible weights");
    }

    function invariant_escrowMatchesOpenRequests() public view {
        uint256 open;
        uint256 count = market.requestCount();
        for (uint256 id = 1; id <= count; ++id) {
            IInferenceMarket.Request memory r = market.getRequest(id);
            if (
                r.status == IInferenceMarket.Status.Pending || r.status == IInferenceMarket.Status.Committing
                    || r.status == IInferenceMarket.Status.Revealing
            ) open += r.fee + r.callbackDeposit;
        }
        vm.assertEq(open, market.totalEscrowed(), "escrow == fee + deposit of unsettled requests");
    }

    /// @notice Withdrawal locks == committee seats of drawn, unsettled requests; capacity seats == those of them
    ///         whose member has not revealed (a reveal frees the seat, finalize the lock).
    function invariant_seatsMatchOpenCommittees() public view {
        uint256 seats;
        uint256 unrevealed;
        uint256 count = market.requestCount();
        for (uint256 id = 1; id <= count; ++id) {
            IInferenceMarket.Status st = market.statusOf(id);
            if (st == IInferenceMarket.Status.Committing || st == IInferenceMarket.Status.Revealing) {
                address[] memory c = market.getCommittee(id);
                seats += c.length;
                for (uint256 i; i < c.length; ++i) {
                    (, bool revealed,) = market.getReveal(id, c[i]);
                    if (!revealed) ++unrevealed;
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
        vm.assertEq(held, unrevealed, "inFlight sum == open seats not yet revealed");
    }

    /// @notice Nothing is both paid and slashed (or paid and refunded beyond the fee) for one request.
    function invariant_neverPaidAndSlashed() public view {
        uint256 count = market.requestCount();
        for (uint256 id = 1; id <= count; ++id) {
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
        uint256 count = market.requestCount();
        for (uint256 id = 1; id <= count; ++id) {
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
            uint256 action = seed % 13;
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
    }

    function probeFinalize(uint256 id) external {
        market.finalize(id);
        revert ProbeOk();
    }
}
