// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Fixture} from "./utils/Fixture.sol";
import {Vm, console} from "./utils/Vm.sol";
import {MockVerifier} from "./utils/MockVerifier.sol";
import {InferenceMarket} from "../src/InferenceMarket.sol";
import {IInferenceMarket} from "../src/interfaces/IInferenceMarket.sol";
import {INodeRegistry} from "../src/interfaces/INodeRegistry.sol";
import {IModelRegistry} from "../src/interfaces/IModelRegistry.sol";

/// @notice Recycled request records: request `id` lives in record `id % requestRecords`, whose slot 0 tags it with
///         the id it holds (commit decb35d). Two records here, so request 3 takes over request 1's record. Checked:
///         a record still held by an unsettled request is skipped (its id never exists) and RecordBusy only when all
///         tried records are held; RequestPruned(id, recycledBy) / RequestNotFound from every id-taking function and
///         view; calls with a pruned, future or skipped id of a live record (written as an attacking committee member
///         would) change nothing; nothing of a record's previous request (committee, values, masks, proof) leaks into
///         the next; the constructor bounds, the fee and model-index bounds; and the gas a reused (or skipped) record
///         costs.
contract RequestRecordsTest is Fixture {
    uint256 internal constant RECORDS = 2;
    /// @dev Storage slot of InferenceMarket._requests (`forge inspect InferenceMarket storageLayout`).
    uint256 internal constant REQUESTS_SLOT = 6;
    address internal constant PROVER = address(0x9800F);
    address internal constant OTHER_REQUESTER = address(0xD00D);
    bytes32 internal constant OUT_C = bytes32(uint256(0xC));

    MockVerifier internal verifier;
    bytes32 internal provenModel;
    address[] internal all; // the 5 nodes, each serving both models

    function _requestRecords() internal pure override returns (uint256) {
        return RECORDS;
    }

    function setUp() public override {
        super.setUp();
        verifier = new MockVerifier(true);
        provenModel = _registerModel(publisher, "proven-public", address(verifier), 1, false);
        INodeRegistry.ModelShard[] memory s = new INodeRegistry.ModelShard[](2);
        s[0] = _fullShard(modelId)[0];
        s[1] = _fullShard(provenModel)[0];
        for (uint256 i; i < 5; ++i) {
            address n = _node(i);
            all.push(n);
            vm.deal(n, STAKE);
            vm.prank(n);
            nodes.register{value: STAKE}("http://n", s);
        }
        _nextEpoch();
    }

    // ------------------------------------------------------------------ helpers

    /// @dev Storage slot `offset` of record `record` (slot 0: createdBlock.., 1: requester|fee, 2: inputHash,
    ///      3: provenHash, 4: prover, 5-9: committee words, 10-16: values).
    function _recordSlot(uint256 record, uint256 offset) internal pure returns (bytes32) {
        return bytes32(uint256(keccak256(abi.encode(record, REQUESTS_SLOT))) + offset);
    }

    function _word(uint256 record, uint256 offset) internal view returns (uint256) {
        return uint256(vm.load(address(market), _recordSlot(record, offset)));
    }

    function _status(uint256 id) internal view returns (IInferenceMarket.Status) {
        return market.statusOf(id);
    }

    /// @dev Draw, all commit and reveal `out`: a proof-less, callback-less request settles at the last reveal.
    function _settleUnanimous(uint256 id, bytes32 out) internal returns (address[] memory c) {
        c = _draw(id);
        _commitAll(id, c, out);
        _revealAll(id, c, out);
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "settled at the last reveal");
    }

    function _expectRequestBusy(uint256 pending) internal {
        vm.deal(requester, requester.balance + FEE);
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RecordBusy.selector, pending));
        market.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(3, 2));
    }

    /// @dev RequestPruned(id, recycledBy): `recycledBy` is the later id that now holds id's record.
    function _pruned(uint256 id, uint256 recycledBy) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IInferenceMarket.RequestPruned.selector, id, recycledBy);
    }

    function _notFound(uint256 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IInferenceMarket.RequestNotFound.selector, id);
    }

    function _proof() internal pure returns (uint256[8] memory p) {
        for (uint256 i; i < 8; ++i) {
            p[i] = 1000 + i;
        }
    }

    function _hasEvent(Vm.Log[] memory logs, bytes32 topic0, uint256 requestId) internal pure returns (bool) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics.length > 1 && logs[i].topics[0] == topic0 && uint256(logs[i].topics[1]) == requestId) {
                return true;
            }
        }
        return false;
    }

    /// @dev Requests 1 and 2 settled (records 1 and 0), request 3 drawn in record 1 (proof-less, no callback).
    function _liveThird() internal returns (uint256 id, address[] memory c) {
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A);
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A);
        id = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(id, 3, "third request");
        c = _draw(id);
    }

    // ================================================================== RecordBusy

    /// A record is taken over only once its previous request settled: request 3 is refused while request 1 is
    /// pending, drawn or revealing, and takes record 1 once request 1 settled; request 4 waits for request 2, which
    /// stays Pending past its draw deadline until someone finalizes (expires) it.
    function test_recordBusy_untilThePreviousRequestSettles() public {
        uint256 a = _request(requester, FEE, _params(3, 2), modelId);
        uint256 b = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(a, 1, "id 1 -> record 1");
        vm.assertEq(b, 2, "id 2 -> record 0");
        _expectRequestBusy(1); // request 1 pending
        vm.assertEq(market.requestCount(), 2, "the refused request took no id");
        address[] memory c = _draw(a);
        _expectRequestBusy(1); // drawn (committing)
        _commitAll(a, c, OUT_A);
        _expectRequestBusy(1); // revealing
        _reveal(a, c[0], OUT_A);
        _reveal(a, c[1], OUT_A);
        _expectRequestBusy(1); // quorum revealed, not settled
        _reveal(a, c[2], OUT_A); // unanimous: settles
        vm.assertEq(uint256(_status(a)), uint256(IInferenceMarket.Status.Accepted), "request 1 settled");
        uint256 record1Before = _word(1, 0);

        uint256 fee3 = FEE + 123;
        uint256 d = _request(OTHER_REQUESTER, fee3, _params(3, 2), modelId);
        vm.assertEq(d, 3, "request 3 made");
        // it really took record 1: slot 0 rewritten (createdBlock, status Pending, masks 0), slot 1 its requester
        uint256 w0 = _word(1, 0);
        vm.assertTrue(w0 != record1Before, "record 1 rewritten");
        vm.assertEq(w0 & ((1 << 40) - 1), block.number, "request 3's createdBlock in record 1");
        vm.assertEq((w0 >> 72) & 0xff, uint256(IInferenceMarket.Status.Pending), "status Pending");
        vm.assertEq((w0 >> 80) & 0xffffff, 0, "committed / revealed masks and committee size cleared");
        vm.assertEq(_word(1, 1), uint256(uint160(OTHER_REQUESTER)) | (fee3 << 160), "requester and fee of request 3");
        vm.assertEq(_word(3, 0), 0, "no record 3: the ring has two records");
        IInferenceMarket.Request memory q = market.getRequest(3);
        vm.assertEq(q.requester, OTHER_REQUESTER, "request 3's requester");
        vm.assertEq(q.fee, fee3, "request 3's fee");

        // request 2 (record 0) never drawn: busy until someone expires it, even past its draw deadline
        _expectRequestBusy(2);
        vm.roll(market.getRequest(b).drawDeadline + 1);
        _expectRequestBusy(2);
        vm.assertEq(uint256(_status(b)), uint256(IInferenceMarket.Status.Pending), "still pending");
        uint256 before = market.withdrawable(requester);
        market.finalize(b);
        vm.assertEq(uint256(_status(b)), uint256(IInferenceMarket.Status.Expired), "expired by finalize");
        vm.assertEq(market.withdrawable(requester) - before, FEE, "refunded");
        uint256 e = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(e, 4, "request 4 takes record 0");
        vm.assertEq(uint256(_status(4)), uint256(IInferenceMarket.Status.Pending), "pending");
        vm.assertEq(market.totalEscrowed(), fee3 + FEE, "escrow: requests 3 and 4");
    }

    // ================================================================== pruned / unknown ids

    function test_pruned_viewsRevertRequestPruned_unknownIdsRequestNotFound() public {
        (uint256 id3,) = _liveThird();
        address member1 = market.getCommittee(2)[0];
        // request 1's record now holds request 3: RequestPruned(1, 3)
        vm.expectRevert(_pruned(1, 3));
        market.getRequest(1);
        vm.expectRevert(_pruned(1, 3));
        market.getCommittee(1);
        vm.expectRevert(_pruned(1, 3));
        market.getReveal(1, member1);
        vm.expectRevert(_pruned(1, 3));
        market.getMemberSettlement(1, member1);
        vm.expectRevert(_pruned(1, 3));
        market.statusOf(1);
        vm.expectRevert(_pruned(1, 3));
        market.redeliver(1);
        // live ids: 2 (settled) and 3 (drawn)
        IInferenceMarket.Request memory q2 = market.getRequest(2);
        vm.assertEq(uint256(q2.status), uint256(IInferenceMarket.Status.Accepted), "request 2 readable");
        vm.assertEq(q2.outputHash, OUT_A, "request 2's output");
        IInferenceMarket.Request memory q = market.getRequest(id3);
        vm.assertEq(q.requester, requester, "requester");
        vm.assertEq(q.modelId, modelId, "model");
        vm.assertEq(q.inputHash, INPUT_HASH, "input");
        vm.assertEq(q.fee, FEE, "fee");
        vm.assertEq(uint256(q.status), uint256(IInferenceMarket.Status.Committing), "committing");
        vm.assertEq(uint256(q.committeeSize), 3, "3 members");
        vm.assertEq(uint256(q.commitCount), 0, "no commit of request 1 carried over");
        vm.assertEq(uint256(q.revealCount), 0, "no reveal of request 1 carried over");
        vm.assertEq(q.outputHash, bytes32(0), "no output yet");
        vm.assertFalse(q.proven, "not proven");
        vm.assertFalse(q.callbackFailed, "no callback failure");
        vm.assertEq(market.getCommittee(id3).length, 3, "committee of 3");
        // unknown ids: 0 and the future
        for (uint256 k; k < 2; ++k) {
            uint256 bad = k == 0 ? 0 : 4;
            vm.expectRevert(_notFound(bad));
            market.getRequest(bad);
            vm.expectRevert(_notFound(bad));
            market.getCommittee(bad);
            vm.expectRevert(_notFound(bad));
            market.getReveal(bad, member1);
            vm.expectRevert(_notFound(bad));
            market.getMemberSettlement(bad, member1);
            vm.assertEq(uint256(market.statusOf(bad)), uint256(IInferenceMarket.Status.None), "statusOf: None");
        }
        vm.expectRevert(_notFound(type(uint256).max));
        market.getRequest(type(uint256).max);
        // one more request (4, record 0) prunes request 2; request 1 still names its own recycler, 3
        vm.assertEq(_request(requester, FEE, _params(3, 2), modelId), 4, "request 4");
        vm.expectRevert(_pruned(2, 4));
        market.getRequest(2);
        vm.expectRevert(_pruned(2, 4));
        market.statusOf(2);
        vm.expectRevert(_pruned(1, 3));
        market.statusOf(1);
        vm.assertEq(market.getRequest(id3).fee, FEE, "request 3 still served");
    }

    // ================================================================== alias attacks

    /// Attack: a member of live request 3 (record 1) calls commit / reveal / draw / finalize / redeliver with
    /// request 1's id (pruned: RequestPruned(1, 3)) or 3 + 2k (not made yet, same record: RequestNotFound), hoping to
    /// act on record 1 under another id. Every call reverts on the id itself (the record's tag is 3), before any
    /// commitment check, and nothing changes; the honest lifecycle of request 3 then runs as usual.
    function test_aliasAttack_staleAndFutureIdsOfALiveRecordChangeNothing() public {
        (uint256 id, address[] memory c) = _liveThird();
        address attacker = c[0];
        vm.recordLogs();
        vm.startPrank(attacker);
        vm.expectRevert(_pruned(1, 3));
        market.commit(1, _commitmentOf(1, OUT_B, attacker));
        for (uint256 k = 1; k <= 3; ++k) {
            uint256 future = id + RECORDS * k;
            vm.expectRevert(_notFound(future));
            market.commit(future, _commitmentOf(future, OUT_B, attacker));
        }
        vm.stopPrank();
        (bool committed,,) = market.getReveal(id, attacker);
        vm.assertFalse(committed, "no commitment recorded for request 3");
        vm.assertEq(uint256(market.getRequest(id).commitCount), 0, "commit mask unchanged");

        _commitAll(id, c, OUT_A); // everyone commits honestly to request 3
        // reveal with the pruned / a future id: refused on the id (the record's tag is 3), whatever the salt
        bytes32 salt = _salt(id, attacker);
        vm.startPrank(attacker);
        vm.expectRevert(_pruned(1, 3));
        market.reveal(1, OUT_A, salt, "cid");
        vm.expectRevert(_notFound(5));
        market.reveal(5, OUT_A, salt, "cid");
        vm.expectRevert(_pruned(1, 3));
        market.reveal(1, OUT_A, _salt(1, attacker), "cid");
        vm.stopPrank();
        // a non-member gets the same answer: the id is checked before the caller
        vm.prank(requester);
        vm.expectRevert(_pruned(1, 3));
        market.reveal(1, OUT_A, salt, "cid");
        // draw / finalize / redeliver with the aliases
        vm.expectRevert(_pruned(1, 3));
        market.draw(1);
        vm.expectRevert(_notFound(5));
        market.draw(5);
        vm.expectRevert(_pruned(1, 3));
        market.finalize(1);
        vm.expectRevert(_notFound(5));
        market.finalize(5);
        vm.expectRevert(_notFound(5));
        market.redeliver(5);
        vm.assertEq(vm.getRecordedLogs().length, 3, "only request 3's three Committed events");

        IInferenceMarket.Request memory q = market.getRequest(id);
        vm.assertEq(uint256(q.commitCount), 3, "commit mask: the honest commits");
        vm.assertEq(uint256(q.revealCount), 0, "reveal mask unchanged");
        vm.assertEq(uint256(q.status), uint256(IInferenceMarket.Status.Revealing), "revealing");
        (, bool revealed,) = market.getReveal(id, attacker);
        vm.assertFalse(revealed, "not revealed");

        // the honest lifecycle is intact
        uint256[3] memory w;
        for (uint256 i; i < 3; ++i) {
            w[i] = market.withdrawable(c[i]);
        }
        vm.recordLogs();
        _revealAll(id, c, OUT_A);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertTrue(_hasEvent(logs, IInferenceMarket.Finalized.selector, id), "Finalized(3)");
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        for (uint256 i; i < 3; ++i) {
            vm.assertEq(market.withdrawable(c[i]) - w[i], FEE / 3 + (i == 0 ? FEE % 3 : 0), "each paid its share once");
        }
        // once the record is settled the aliases get the precise errors
        vm.prank(attacker);
        vm.expectRevert(_pruned(1, 3));
        market.reveal(1, OUT_A, salt, "cid");
        vm.prank(attacker);
        vm.expectRevert(_notFound(5));
        market.reveal(5, OUT_A, salt, "cid");
    }

    /// Attack: proofs for a pruned or future id of a live proven record (single and batch) revert.
    function test_aliasAttack_proofsForStaleOrFutureIdsRevert() public {
        uint256 r1 = _request(requester, FEE, _params(3, 2), provenModel);
        address[] memory c1 = _draw(r1);
        _commitAll(r1, c1, OUT_A);
        _revealAll(r1, c1, OUT_A);
        vm.prank(PROVER);
        market.submitProof(r1, OUT_A, _proof());
        market.finalize(r1);
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A);
        uint256 id = _request(requester, FEE, _params(3, 2), provenModel); // record 1, proven, unproven yet
        address[] memory c = _draw(id);
        _commitAll(id, c, OUT_B);
        _revealAll(id, c, OUT_B);

        vm.startPrank(PROVER);
        vm.expectRevert(_pruned(1, 3));
        market.submitProof(1, OUT_B, _proof());
        vm.expectRevert(_notFound(5));
        market.submitProof(5, OUT_B, _proof());
        uint256[] memory ids = new uint256[](2);
        bytes32[] memory outs = new bytes32[](2);
        uint256[8][] memory proofs = new uint256[8][](2);
        (ids[0], ids[1], outs[0], outs[1], proofs[0], proofs[1]) = (id, 1, OUT_B, OUT_B, _proof(), _proof());
        vm.expectRevert(_pruned(1, 3));
        market.submitProofBatch(ids, outs, proofs);
        ids[1] = 5;
        vm.expectRevert(_notFound(5));
        market.submitProofBatch(ids, outs, proofs);
        vm.stopPrank();
        vm.assertFalse(market.getRequest(id).proven, "request 3 not proven by an alias");
        vm.assertEq(market.getRequest(id).outputHash, bytes32(0), "nothing settled");
        // request 1's proof did not carry over to request 3, which still takes its own proof
        vm.prank(PROVER);
        market.submitProof(id, OUT_B, _proof());
        vm.assertTrue(market.getRequest(id).proven, "proven now");
    }

    /// Attack (the alias reveal found on the first design, fixed by the tag). The last member of live request 3
    /// commits, under id 3, a commitment bound to the pruned id 1, then reveals with reveal(1, ...), hoping the
    /// reveal counts for request 3 (same record) and settles it under Revealed(1) / Finalized(1) events. Now reveal
    /// checks the id first: RequestPruned(1, 3), no event, nothing counted; request 3 settles later on its own
    /// events with the attacker as a no-show (its commitment binds id 1, so it can never reveal for 3).
    function test_aliasAttack_commitmentBoundToPrunedIdMustNotReveal() public {
        _aliasRevealAttack(1, _pruned(1, 3));
    }

    /// The same with the future id 5 (record 1 again): RequestNotFound(5), no Revealed(5) / Finalized(5) before
    /// request 5 exists.
    function test_aliasAttack_commitmentBoundToFutureIdMustNotReveal() public {
        _aliasRevealAttack(5, _notFound(5));
    }

    function _aliasRevealAttack(uint256 aliasId, bytes memory expected) internal {
        (uint256 id, address[] memory c) = _liveThird();
        _commit(id, c[0], OUT_A);
        _commit(id, c[1], OUT_A);
        bytes32 salt = keccak256("attacker's salt");
        vm.prank(c[2]);
        market.commit(id, keccak256(abi.encode(aliasId, OUT_A, salt, c[2]))); // opaque to the market
        _reveal(id, c[0], OUT_A);
        _reveal(id, c[1], OUT_A);
        uint256 word0 = _word(1, 0);
        vm.recordLogs();
        vm.prank(c[2]);
        (bool ok, bytes memory reason) = address(market).call(abi.encodeCall(market.reveal, (aliasId, OUT_A, salt, "cid")));
        vm.assertFalse(ok, "reveal with an alias id accepted");
        vm.assertEq(keccak256(reason), keccak256(expected), "refused on the id");
        vm.assertEq(vm.getRecordedLogs().length, 0, "no event");
        vm.assertEq(_word(1, 0), word0, "record 1's slot 0 (masks, status) unchanged");
        vm.assertEq(uint256(market.getRequest(id).revealCount), 2, "the alias reveal does not count for request 3");
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Revealing), "request 3 still revealing");
        // the attacker cannot reveal for 3 with its alias-bound commitment either
        vm.prank(c[2]);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.CommitmentMismatch.selector, id, c[2]));
        market.reveal(id, OUT_A, salt, "cid");
        // request 3 settles on its own id: c[0], c[1] paid, the attacker slashed as a no-show
        uint256 stake2 = nodes.stakeOf(c[2]);
        _rollPastReveal(id);
        vm.recordLogs();
        market.finalize(id);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertTrue(_hasEvent(logs, IInferenceMarket.Finalized.selector, id), "Finalized(3)");
        vm.assertFalse(_hasEvent(logs, IInferenceMarket.Finalized.selector, aliasId), "no Finalized(alias)");
        vm.assertEq(uint256(_status(id)), uint256(IInferenceMarket.Status.Accepted), "accepted");
        (bool slashed, bool paid) = market.getMemberSettlement(id, c[2]);
        vm.assertTrue(slashed && !paid, "the attacker: a no-show");
        vm.assertEq(stake2 - nodes.stakeOf(c[2]), 0.1 ether, "slashed once");
    }

    /// Liveness (the halting bug of the first design, fixed by skipping). Windows go up to 10,000 commit + 10,000
    /// reveal blocks: a member that never commits keeps its request open ~20,000 blocks. With the previous design a
    /// RecordBusy revert took no id, so that one request halted every new request. Now the next request skips the
    /// held record: it gets id 4 in the free record 0 while request 1 is still open, and id 3 never exists.
    function test_liveness_oneSlowRequestMustNotHaltNewRequests() public {
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 10_000;
        p.revealBlocks = 10_000;
        uint256 slow = _request(requester, FEE, p, modelId); // record 1
        address[] memory c = _draw(slow);
        _commit(slow, c[0], OUT_A);
        _commit(slow, c[1], OUT_A); // c[2] never commits
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A); // request 2: record 0 free again
        _rollPastCommit(slow);
        _reveal(slow, c[0], OUT_A);
        _reveal(slow, c[1], OUT_A); // a quorum, but finalize must wait for the reveal deadline
        uint64 revealDeadline = market.getRequest(slow).revealDeadline;
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.TooEarlyToFinalize.selector, slow, revealDeadline));
        market.finalize(slow);
        vm.deal(OTHER_REQUESTER, FEE);
        vm.prank(OTHER_REQUESTER);
        (bool ok, bytes memory ret) = address(market).call{value: FEE}(
            abi.encodeCall(market.requestInference, (modelId, "bafkreiinput", INPUT_HASH, _params(3, 2)))
        );
        console.log("blocks until anyone can finalize request 1", revealDeadline + 1 - block.number);
        vm.assertTrue(ok, "one unsettled request halts new requests while another record is free");
        vm.assertEq(abi.decode(ret, (uint256)), 4, "id 3 (request 1's record) skipped: id 4 in record 0");
        vm.assertEq(market.requestCount(), 4, "requestCount past the skipped id");
        vm.assertEq(market.getRequest(4).requester, OTHER_REQUESTER, "request 4 served");
        vm.assertEq(uint256(_status(3)), uint256(IInferenceMarket.Status.None), "id 3 never exists");
        vm.assertEq(uint256(_status(slow)), uint256(IInferenceMarket.Status.Revealing), "request 1 still open");
    }

    // ================================================================== no leakage from the previous request

    /// Record 1 first holds a 5-member proven request with dissenters (outputs left in values[3], values[4]), a
    /// proof and a prover reward; then a 3-member proof-less request with a dissenter; then a 5-member proof-less
    /// request drawn from the same five nodes, two of whom never commit, so request 1's values[3] / values[4]
    /// (OUT_B) are still in the record: counted, they would give OUT_B a quorum. Each settles on its own data only.
    function test_noLeakage_fromTheRecordsPreviousRequest() public {
        // ---- request 1 (record 1): proven model, 5 members, 3 x OUT_A, 2 x OUT_B, proof of OUT_A
        uint256 r1 = _request(requester, FEE, _params(5, 3), provenModel);
        address[] memory c1 = _draw(r1);
        vm.assertEq(c1.length, 5, "five members");
        for (uint256 i; i < 5; ++i) {
            _commit(r1, c1[i], i < 3 ? OUT_A : OUT_B);
        }
        for (uint256 i; i < 5; ++i) {
            _reveal(r1, c1[i], i < 3 ? OUT_A : OUT_B);
        }
        vm.prank(PROVER);
        market.submitProof(r1, OUT_A, _proof());
        market.finalize(r1);
        vm.assertEq(uint256(_status(r1)), uint256(IInferenceMarket.Status.Accepted), "request 1 accepted");
        uint256 proverReward = market.withdrawable(PROVER);
        vm.assertGe(proverReward, 1, "prover rewarded for request 1");
        vm.assertEq(bytes32(_word(1, 13)), OUT_B, "request 1's member 3 output left in the record");
        vm.assertEq(bytes32(_word(1, 14)), OUT_B, "request 1's member 4 output left in the record");
        vm.assertEq(bytes32(_word(1, 3)), OUT_A, "request 1's proven hash left in the record");
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A); // request 2, record 0

        // ---- request 3 (record 1): proof-less, 3 members, OUT_B, OUT_B, OUT_C
        uint256 r3 = _request(requester, FEE, _params(3, 2), modelId);
        address[] memory c3 = _draw(r3);
        IInferenceMarket.Request memory q = market.getRequest(r3);
        vm.assertEq(uint256(q.committeeSize), 3, "three members");
        vm.assertEq(uint256(q.commitCount) + uint256(q.revealCount), 0, "no commits or reveals");
        vm.assertFalse(q.proven, "not proven");
        vm.assertEq(q.outputHash, bytes32(0), "no output");
        vm.assertEq(uint256(q.proofMode), 0, "proof-less");
        for (uint256 i; i < 5; ++i) {
            (bool committed, bool revealed, bytes32 out) = market.getReveal(r3, all[i]);
            vm.assertFalse(committed || revealed, "nothing of request 1's masks");
            vm.assertEq(out, bytes32(0), "no output");
            (bool slashed, bool paid) = market.getMemberSettlement(r3, all[i]);
            vm.assertFalse(slashed || paid, "nothing of request 1's settlement");
        }
        bytes32[3] memory outs3 = [OUT_B, OUT_B, OUT_C];
        for (uint256 i; i < 3; ++i) {
            _commit(r3, c3[i], outs3[i]);
        }
        for (uint256 i; i < 3; ++i) {
            _reveal(r3, c3[i], outs3[i]);
        }
        uint256[5] memory w;
        uint256[5] memory stake;
        for (uint256 i; i < 5; ++i) {
            (w[i], stake[i]) = (market.withdrawable(all[i]), nodes.stakeOf(all[i]));
        }
        uint256 reqBefore = market.withdrawable(requester);
        vm.recordLogs();
        market.finalize(r3);
        vm.assertFalse(
            _hasEvent(vm.getRecordedLogs(), IInferenceMarket.ProverRewarded.selector, r3), "no prover reward"
        );
        q = market.getRequest(r3);
        vm.assertEq(uint256(q.status), uint256(IInferenceMarket.Status.Accepted), "accepted");
        vm.assertEq(q.outputHash, OUT_B, "its own output, not request 1's proven OUT_A");
        vm.assertFalse(q.proven, "not proven");
        vm.assertEq(market.withdrawable(PROVER), proverReward, "request 1's prover gets nothing");
        vm.assertEq(market.withdrawable(requester), reqBefore, "fee fully paid out");
        for (uint256 i; i < 3; ++i) {
            uint256 k = _indexIn(c3[i]);
            (bool slashed, bool paid) = market.getMemberSettlement(r3, c3[i]);
            vm.assertEq(paid, i < 2, "the OUT_B revealers paid");
            vm.assertEq(slashed, i == 2, "the dissenter slashed");
            vm.assertEq(market.withdrawable(c3[i]) - w[k], i < 2 ? FEE / 2 : 0, "fee shared by the two");
            vm.assertEq(stake[k] - nodes.stakeOf(c3[i]), i == 2 ? 0.1 ether : 0, "only the dissenter slashed");
        }
        _assertAllFree();

        // ---- request 4 (record 0), then request 5 (record 1): the five nodes again, two never commit
        _request(requester, FEE, _params(3, 2), modelId);
        uint256 r5 = _request(requester, FEE, _params(5, 3), modelId);
        vm.assertEq(r5 % RECORDS, 1, "record 1 again");
        address[] memory c5 = _draw(r5);
        for (uint256 i; i < 5; ++i) {
            vm.assertTrue(_indexIn(c5[i]) < 5 && _isIn(c5[i], c1), "request 1's members");
        }
        bytes32[3] memory outs5 = [OUT_C, OUT_B, OUT_B];
        for (uint256 i; i < 3; ++i) {
            _commit(r5, c5[i], outs5[i]);
        }
        _rollPastCommit(r5);
        for (uint256 i; i < 3; ++i) {
            _reveal(r5, c5[i], outs5[i]);
        }
        vm.assertEq(bytes32(_word(1, 13)), OUT_B, "values[3] still request 1's OUT_B");
        vm.assertEq(bytes32(_word(1, 14)), OUT_B, "values[4] still request 1's OUT_B");
        for (uint256 i; i < 5; ++i) {
            (w[i], stake[i]) = (market.withdrawable(all[i]), nodes.stakeOf(all[i]));
        }
        reqBefore = market.withdrawable(requester);
        _rollPastReveal(r5);
        market.finalize(r5);
        q = market.getRequest(r5);
        vm.assertEq(uint256(q.status), uint256(IInferenceMarket.Status.NoQuorum), "2 x OUT_B < quorum 3");
        vm.assertEq(q.outputHash, bytes32(0), "no output");
        vm.assertFalse(q.proven, "not proven");
        vm.assertEq(uint256(q.revealCount), 3, "three reveals");
        for (uint256 i; i < 5; ++i) {
            uint256 k = _indexIn(c5[i]);
            (bool committed, bool revealed, bytes32 out) = market.getReveal(r5, c5[i]);
            vm.assertEq(committed, i < 3, "committed: the first three");
            vm.assertEq(revealed, i < 3, "revealed: the first three");
            vm.assertEq(out, i < 3 ? outs5[i] : bytes32(0), "own output only");
            (bool slashed, bool paid) = market.getMemberSettlement(r5, c5[i]);
            vm.assertFalse(slashed, "NoQuorum slashes nobody");
            vm.assertEq(paid, i < 3, "in-time revealers paid");
            vm.assertEq(market.withdrawable(c5[i]) - w[k], i < 3 ? FEE / 5 : 0, "fee / replicas each");
            vm.assertEq(nodes.stakeOf(c5[i]), stake[k], "stake intact");
        }
        vm.assertEq(market.withdrawable(requester) - reqBefore, FEE - 3 * (FEE / 5), "the rest refunded");
        vm.assertEq(market.withdrawable(PROVER), proverReward, "request 1's prover gets nothing");
        _assertAllFree();
        vm.assertEq(market.totalEscrowed(), FEE, "only request 4 escrowed");
    }

    /// Record 1's next request drawn from exactly request 1's members, unanimous: settles at the last reveal with
    /// its own output, every member paid once, nobody slashed (request 1's slashed / paid marks do not carry over).
    function test_noLeakage_sameMembersAsThePreviousRequest() public {
        uint256 r1 = _request(requester, FEE, _params(5, 3), modelId);
        address[] memory c1 = _draw(r1);
        for (uint256 i; i < 5; ++i) {
            _commit(r1, c1[i], i < 3 ? OUT_A : OUT_B);
        }
        for (uint256 i; i < 5; ++i) {
            _reveal(r1, c1[i], i < 3 ? OUT_A : OUT_B);
        }
        market.finalize(r1);
        for (uint256 i; i < 5; ++i) {
            (bool slashed,) = market.getMemberSettlement(r1, c1[i]);
            vm.assertEq(slashed, i >= 3, "request 1: two dissenters slashed");
        }
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A);
        uint256 r3 = _request(requester, FEE, _params(5, 3), modelId);
        uint256[5] memory w;
        uint256[5] memory stake;
        for (uint256 i; i < 5; ++i) {
            (w[i], stake[i]) = (market.withdrawable(all[i]), nodes.stakeOf(all[i]));
        }
        address[] memory c3 = _settleUnanimous(r3, OUT_C);
        for (uint256 i; i < 5; ++i) {
            vm.assertTrue(_isIn(c3[i], c1), "the same five members");
        }
        IInferenceMarket.Request memory q = market.getRequest(r3);
        vm.assertEq(q.outputHash, OUT_C, "its own output");
        vm.assertFalse(q.proven, "not proven");
        for (uint256 i; i < 5; ++i) {
            uint256 k = _indexIn(c3[i]);
            (bool slashed, bool paid) = market.getMemberSettlement(r3, c3[i]);
            vm.assertTrue(paid && !slashed, "paid, not slashed");
            vm.assertEq(market.withdrawable(c3[i]) - w[k], FEE / 5, "one fee share each");
            vm.assertEq(nodes.stakeOf(c3[i]), stake[k], "stake intact");
            (,, bytes32 out) = market.getReveal(r3, c3[i]);
            vm.assertEq(out, OUT_C, "own output");
        }
        _assertAllFree();
    }

    function _indexIn(address n) internal view returns (uint256) {
        for (uint256 i; i < all.length; ++i) {
            if (all[i] == n) return i;
        }
        return type(uint256).max;
    }

    function _isIn(address n, address[] memory list) internal pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == n) return true;
        }
        return false;
    }

    /// @dev No seat and no withdrawal lock left on any node (every request so far settled).
    function _assertAllFree() internal view {
        for (uint256 i; i < all.length; ++i) {
            vm.assertEq(uint256(nodes.getNode(all[i]).inFlight), 0, "no seat left");
            vm.assertEq(nodes.openAssignments(all[i]), 0, "no lock left");
        }
        vm.assertEq(address(market).balance, market.totalEscrowed() + market.totalWithdrawable(), "market balance");
    }

    // ================================================================== constructor

    function test_constructor_requestRecordsBounds() public {
        vm.assertEq(market.requestRecords(), RECORDS, "fixture's value");
        uint256 max = 1 << 20;
        uint256[2] memory bad = [uint256(0), max + 1];
        for (uint256 i; i < 2; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IInferenceMarket.InvalidParameter.selector, bytes32("requestRecords"), bad[i])
            );
            new InferenceMarket(owner, address(nodes), address(models), bad[i]);
        }
        vm.assertEq(new InferenceMarket(owner, address(nodes), address(models), 1).requestRecords(), 1, "1");
        vm.assertEq(new InferenceMarket(owner, address(nodes), address(models), max).requestRecords(), max, "2^20");
    }

    /// A one-record market: every request reuses the record, and the ids still work (views, RecordBusy).
    function test_oneRecord_everyRequestReusesIt() public {
        InferenceMarket one = new InferenceMarket(owner, address(nodes), address(models), 1);
        vm.deal(requester, 1 ether);
        vm.startPrank(requester);
        uint256 a = one.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.RecordBusy.selector, a));
        one.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(3, 2));
        vm.stopPrank();
        vm.roll(one.getRequest(a).drawDeadline + 1);
        one.finalize(a); // expires (never drawn)
        vm.prank(requester);
        uint256 b = one.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(3, 2));
        vm.assertEq(b, 2, "id 2");
        vm.expectRevert(_pruned(1, 2));
        one.getRequest(1);
        vm.assertEq(uint256(one.statusOf(2)), uint256(IInferenceMarket.Status.Pending), "pending");
    }

    // ================================================================== gas

    /// @dev requestInference from cold storage (as in its own transaction). Run with --isolate for per-transaction
    ///      numbers; in a plain run the whole test is one transaction (EIP-2200 prices a slot against its value at
    ///      the start of the test), so a reused record looks even cheaper, never dearer.
    function _measuredRequest(uint8 replicas, uint8 quorum) internal returns (uint256 id, uint256 gasUsed) {
        vm.deal(requester, requester.balance + FEE);
        vm.cool(address(market));
        vm.cool(address(models));
        vm.prank(requester);
        id = market.requestInference{value: FEE}(modelId, "bafkreiinput", INPUT_HASH, _params(replicas, quorum));
        gasUsed = vm.lastCallGas().gasTotalUsed;
    }

    /// The request that takes over a record rewrites slots 0-2 left non-zero (~5k gas each, or ~2.2k when the
    /// value is unchanged) instead of writing fresh ones (~22k each).
    function test_gas_reusedRecordCheaperThanAFreshOne() public {
        _settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A); // request 1 (model's first)
        (uint256 id2, uint256 fresh) = _measuredRequest(3, 2); // record 0, never written
        _settleUnanimous(id2, OUT_A);
        (uint256 id3, uint256 reused) = _measuredRequest(3, 2); // record 1, request 1's
        vm.assertEq(id3 % RECORDS, 1, "request 3 reuses record 1");
        console.log("requestInference gas, fresh record", fresh);
        console.log("requestInference gas, reused record", reused);
        vm.assertLe(reused + 40_000, fresh, "reuse saves the zero -> non-zero writes of slots 0-2");
    }

    /// requestInference touches slots 0-2 only: its gas with a reused record is the same whether the record's
    /// previous request had a 5-member committee (4 committee words, 5 values, a proof) or a single member.
    function test_gas_reuseIndependentOfThePreviousCommitteeSize() public {
        uint256 big = _request(requester, FEE, _params(5, 3), provenModel); // record 1: 5 members, proven
        uint256 small = _request(requester, FEE, _params(1, 1), modelId); // record 0: 1 member
        address[] memory cb = _draw(big);
        _commitAll(big, cb, OUT_A);
        _revealAll(big, cb, OUT_A);
        vm.prank(PROVER);
        market.submitProof(big, OUT_A, _proof());
        market.finalize(big);
        _settleUnanimous(small, OUT_A);
        vm.assertTrue(_word(1, 8) != 0, "record 1 holds 4 committee words (5 members)");
        vm.assertTrue(_word(0, 5) != 0 && _word(0, 6) == 0, "record 0 holds 1 committee word (1 member)");
        (uint256 id3, uint256 afterBig) = _measuredRequest(3, 2);
        (uint256 id4, uint256 afterSmall) = _measuredRequest(3, 2);
        vm.assertEq(id3 % RECORDS, 1, "request 3 reuses the 5-member record");
        vm.assertEq(id4 % RECORDS, 0, "request 4 reuses the 1-member record");
        console.log("requestInference gas, record of a 5-member request", afterBig);
        console.log("requestInference gas, record of a 1-member request", afterSmall);
        vm.assertEq(afterBig, afterSmall, "same gas whatever the previous occupant's committee");
    }

    // ================================================================== skipping held records

    /// @dev The id record `record` holds: its tag, the top 32 bits of slot 0.
    function _tag(uint256 record) internal view returns (uint256) {
        return _word(record, 0) >> 224;
    }

    /// @dev Request 1 (record 1) stuck: windows of 10,000 blocks, drawn, two of its three members committed (the
    ///      third never will); request 2 (record 0) settled.
    function _stuckFirst() internal returns (uint256 slow, address[] memory c) {
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.commitBlocks = 10_000;
        p.revealBlocks = 10_000;
        slow = _request(requester, FEE, p, modelId);
        vm.assertEq(slow, 1, "request 1");
        c = _draw(slow);
        _commit(slow, c[0], OUT_A);
        _commit(slow, c[1], OUT_A);
        vm.assertEq(_settleUnanimous(_request(requester, FEE, _params(3, 2), modelId), OUT_A).length, 3, "request 2");
    }

    /// Every entry point and view with id `id` reverts `reason` and changes nothing.
    function _assertNoSuchId(uint256 id, bytes memory reason, address member) internal {
        vm.expectRevert(reason);
        market.getRequest(id);
        vm.expectRevert(reason);
        market.getCommittee(id);
        vm.expectRevert(reason);
        market.getReveal(id, member);
        vm.expectRevert(reason);
        market.getMemberSettlement(id, member);
        vm.recordLogs();
        vm.startPrank(member);
        vm.expectRevert(reason);
        market.draw(id);
        vm.expectRevert(reason);
        market.commit(id, _commitmentOf(id, OUT_A, member));
        vm.expectRevert(reason);
        market.reveal(id, OUT_A, _salt(id, member), "cid");
        vm.expectRevert(reason);
        market.submitProof(id, OUT_A, _proof());
        vm.expectRevert(reason);
        market.finalize(id);
        vm.expectRevert(reason);
        market.redeliver(id);
        vm.stopPrank();
        vm.assertEq(vm.getRecordedLogs().length, 0, "no event");
    }

    /// Request 1 (record 1) is stuck, request 2 (record 0) settled: the next request skips id 3 (record 1 held)
    /// and gets id 4 in record 0. Id 3 never exists (statusOf None, RequestNotFound everywhere); request 1 stays
    /// fully served and settles normally later (the two revealers paid, the no-show slashed); once it settled the
    /// next request takes its record, and from then on the skipped ids read RequestPruned like pruned ones.
    function test_skip_heldRecordSkipped_itsIdNeverExists_theHolderSettlesLater() public {
        (uint256 slow, address[] memory c) = _stuckFirst();
        uint256 id = _request(OTHER_REQUESTER, FEE + 1, _params(3, 2), modelId);
        vm.assertEq(id, 4, "id 3 skipped");
        vm.assertEq(market.requestCount(), 4, "requestCount past the skipped id");
        vm.assertEq(_tag(0), 4, "record 0 holds request 4");
        vm.assertEq(_tag(1), 1, "record 1 still holds request 1");
        vm.assertEq(market.getRequest(4).requester, OTHER_REQUESTER, "request 4's requester");
        vm.assertEq(market.getRequest(4).fee, FEE + 1, "request 4's fee");

        // id 3 never exists
        vm.assertEq(uint256(_status(3)), uint256(IInferenceMarket.Status.None), "statusOf(3): None");
        _assertNoSuchId(3, _notFound(3), c[0]);

        // request 1 is served as before
        IInferenceMarket.Request memory q = market.getRequest(slow);
        vm.assertEq(q.requester, requester, "request 1's requester");
        vm.assertEq(q.fee, FEE, "request 1's fee");
        vm.assertEq(uint256(q.status), uint256(IInferenceMarket.Status.Committing), "request 1 committing");
        vm.assertEq(uint256(q.commitCount), 2, "its two commits");
        vm.assertEq(market.getCommittee(slow)[2], c[2], "its committee");
        (bool committed,,) = market.getReveal(slow, c[0]);
        vm.assertTrue(committed, "c[0] committed to request 1");

        // request 4 settles; the next request skips id 5 (record 1 again) and gets id 6
        _settleUnanimous(id, OUT_B);
        vm.assertEq(_request(requester, FEE, _params(3, 2), modelId), 6, "id 5 skipped");
        vm.assertEq(uint256(_status(5)), uint256(IInferenceMarket.Status.None), "statusOf(5): None");
        vm.assertEq(uint256(_status(3)), uint256(IInferenceMarket.Status.None), "statusOf(3): still None");
        vm.expectRevert(_notFound(5));
        market.getRequest(5);

        // request 1 settles normally: c[0], c[1] reveal OUT_A after the commit deadline, finalize after the reveal one
        _rollPastCommit(slow);
        _reveal(slow, c[0], OUT_A);
        _reveal(slow, c[1], OUT_A);
        _rollPastReveal(slow);
        uint256[3] memory w;
        uint256[3] memory stake;
        for (uint256 i; i < 3; ++i) {
            (w[i], stake[i]) = (market.withdrawable(c[i]), nodes.stakeOf(c[i]));
        }
        uint256 reqBefore = market.withdrawable(requester);
        market.finalize(slow);
        q = market.getRequest(slow);
        vm.assertEq(uint256(q.status), uint256(IInferenceMarket.Status.Accepted), "request 1 accepted");
        vm.assertEq(q.outputHash, OUT_A, "its output");
        for (uint256 i; i < 3; ++i) {
            (bool slashed, bool paid) = market.getMemberSettlement(slow, c[i]);
            vm.assertEq(paid, i < 2, "the two revealers paid");
            vm.assertEq(slashed, i == 2, "the no-show slashed");
            vm.assertEq(market.withdrawable(c[i]) - w[i], i < 2 ? FEE / 2 : 0, "fee shared by the two");
            vm.assertEq(stake[i] - nodes.stakeOf(c[i]), i == 2 ? 0.1 ether : 0, "only the no-show slashed");
        }
        vm.assertEq(market.withdrawable(requester), reqBefore, "nothing refunded: the fee went to the revealers");
        vm.assertEq(market.totalEscrowed(), FEE, "escrow: request 6 only");
        _assertAllFree(); // request 6 is not drawn: no seat, no lock

        // record 1 is free again: request 7 takes it; 1 is pruned by 7, and so read the skipped 3 and 5
        vm.assertEq(_request(requester, FEE, _params(3, 2), modelId), 7, "no skip now");
        vm.assertEq(_tag(1), 7, "record 1 holds request 7");
        vm.expectRevert(_pruned(1, 7));
        market.getRequest(1);
        vm.expectRevert(_pruned(3, 7));
        market.statusOf(3);
        _assertNoSuchId(5, _pruned(5, 7), c[0]);
    }

    /// RecordBusy only when every record a request tries is held by an unsettled request: two records, requests 1
    /// and 2 both open -> RecordBusy(1) (and no id taken); once one settles, requests flow again.
    function test_recordBusy_onlyWhenEveryTriedRecordIsHeld() public {
        uint256 a = _request(requester, FEE, _params(3, 2), modelId); // record 1
        uint256 b = _request(requester, FEE, _params(3, 2), modelId); // record 0
        _expectRequestBusy(1);
        vm.assertEq(market.requestCount(), 2, "the refused request took no id");
        _settleUnanimous(a, OUT_A);
        vm.assertEq(_request(requester, FEE, _params(3, 2), modelId), 3, "record 1 free: id 3, nothing skipped");
        _expectRequestBusy(2); // 2 (record 0) and 3 (record 1) open
        vm.roll(market.getRequest(b).drawDeadline + 1);
        market.finalize(b); // expires request 2
        vm.assertEq(_request(requester, FEE, _params(3, 2), modelId), 4, "record 0 free: id 4");
        _expectRequestBusy(3); // 3 and 4 open
        vm.assertEq(market.requestCount(), 4, "no id taken by the refusals");
        vm.assertEq(market.totalEscrowed(), 2 * FEE, "escrow: requests 3 and 4");
    }

    /// FAILS (contract bug): RecordBusy's argument is documented as the pending request holding the first tried
    /// record ("Finalize one and retry"), but _claim reverts RecordBusy(next - requestRecords), which after a skip is
    /// the SKIPPED id, a request that never existed. Here: request 1 stuck in record 1, request 2 settled, request 4
    /// (id 3 skipped) open in record 0; the next request tries ids 5-8, all held, and reverts RecordBusy(3), while
    /// finalize(3) / getRequest(3) revert RequestNotFound(3). It should name record 1's holder, request 1 (the
    /// record's tag: `revert RecordBusy(_requests[next % requestRecords].tag)`, no gas on the success path).
    function test_recordBusy_namesTheRequestHoldingTheRecord() public {
        (uint256 slow,) = _stuckFirst();
        vm.assertEq(_request(requester, FEE, _params(3, 2), modelId), 4, "id 3 skipped");
        vm.deal(requester, requester.balance + FEE);
        vm.prank(requester);
        (bool ok, bytes memory reason) = address(market).call{value: FEE}(
            abi.encodeCall(market.requestInference, (modelId, "bafkreiinput", INPUT_HASH, _params(3, 2)))
        );
        vm.assertFalse(ok, "both records held: refused");
        vm.assertEq(bytes4(reason), IInferenceMarket.RecordBusy.selector, "RecordBusy");
        uint256 named;
        assembly {
            named := mload(add(reason, 36))
        }
        console.log("RecordBusy names request", named);
        vm.expectRevert(_notFound(3));
        market.finalize(3); // what the error tells a client to finalize
        vm.assertEq(named, slow, "RecordBusy must name the request holding the record (1), not the skipped id 3");
    }

    /// A request that skips one held record costs about one cold slot read (2,100 gas, + ~400 for the loop) more than one that takes
    /// the first record it tries. Same state but for request 1: settled (A: the next request takes its record 1,
    /// id 3) or still open (B: it skips record 1 and takes record 0, id 4); records 0 and 1 held the same requester,
    /// fee and input before. Run with --isolate for per-transaction numbers (the difference is the same).
    function test_gas_skippingOneHeldRecordCostsAboutOneColdRead() public {
        (uint256 slow, address[] memory c) = _stuckFirst();
        uint256 snap = vm.snapshotState();
        _rollPastCommit(slow);
        _reveal(slow, c[0], OUT_A);
        _reveal(slow, c[1], OUT_A);
        _rollPastReveal(slow);
        market.finalize(slow);
        uint256 rolledTo = block.number;
        (uint256 idA, uint256 noSkip) = _measuredRequest(3, 2);
        vm.assertEq(idA, 3, "A: record 1 free, id 3");
        vm.assertTrue(vm.revertToState(snap), "back to the stuck request");
        vm.roll(rolledTo);
        (uint256 idB, uint256 oneSkip) = _measuredRequest(3, 2);
        vm.assertEq(idB, 4, "B: record 1 held, id 3 skipped, id 4");
        console.log("requestInference gas, no record skipped", noSkip);
        console.log("requestInference gas, one held record skipped", oneSkip);
        vm.assertGe(oneSkip, noSkip + 2_100, "a skip reads the held record's slot 0 (cold)");
        // the rest is the loop's second round (id, modulo, mapping slot hash, status check): ~400 gas here
        vm.assertLe(oneSkip, noSkip + 2_100 + 700, "and little else");
    }

    // ================================================================== fee and model-index bounds

    /// The fee is stored in 72 bits: above 2^72 - 1 wei requestInference reverts FeeTooHigh(fee); the fee is what
    /// is left of msg.value after the callback deposit. 2^72 - 1 itself is stored exactly.
    function test_fee_aboveUint72RevertsFeeTooHigh() public {
        uint256 max = type(uint72).max;
        IInferenceMarket.RequestParams memory p = _params(3, 2);
        p.callbackGasLimit = 100_000;
        uint256 deposit = uint256(p.callbackGasLimit) * market.parameters().callbackGasPrice;
        vm.deal(requester, 4 * max);
        vm.startPrank(requester);
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooHigh.selector, max + 1));
        market.requestInference{value: max + 1}(modelId, "bafkreiinput", INPUT_HASH, _params(3, 2));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.FeeTooHigh.selector, max + 1));
        market.requestInference{value: max + 1 + deposit}(modelId, "bafkreiinput", INPUT_HASH, p);
        uint256 id = market.requestInference{value: max + deposit}(modelId, "bafkreiinput", INPUT_HASH, p);
        vm.stopPrank();
        IInferenceMarket.Request memory q = market.getRequest(id);
        vm.assertEq(q.fee, max, "fee 2^72 - 1 stored exactly");
        vm.assertEq(q.callbackDeposit, deposit, "deposit");
        vm.assertEq(uint256(q.params.callbackGasLimit), 100_000, "callbackGasLimit next to the fee");
        vm.assertEq(q.requester, requester, "requester");
        vm.assertEq(market.totalEscrowed(), max + deposit, "escrow");
    }

    /// ModelRegistry stops at MAX_MODELS = 2^24 registrations (the market keeps a model index in 24 bits): with
    /// the ids array's length set to 2^24 - 1 (slot 2, `forge inspect ModelRegistry storageLayout`), one more model
    /// registers with index 2^24 - 1 and the next reverts RegistryFull(2^24). A request for the last model keeps its
    /// index in its 24 bits (nothing spills into the fields after it) and resolves to the right model id.
    function test_modelRegistry_registryFullAt2pow24() public {
        bytes32 lenSlot = bytes32(uint256(2)); // ModelRegistry._modelIds
        vm.assertEq(uint256(vm.load(address(models), lenSlot)), 2, "slot 2 is _modelIds: the fixture's two models");
        uint256 maxModels = 1 << 24;
        vm.store(address(models), lenSlot, bytes32(maxModels - 1));
        bytes32 last = _registerModel(publisher, "last", address(0), 0, false);
        vm.assertEq(uint256(models.getModelCore(last).index), maxModels - 1, "index 2^24 - 1");
        vm.prank(publisher);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.RegistryFull.selector, maxModels));
        models.registerModel(_modelInput("one too many", address(0), 0, false));

        uint256 id = _request(requester, FEE, _params(3, 2), last);
        uint256 w0 = _word(id % RECORDS, 0);
        vm.assertEq((w0 >> 184) & (maxModels - 1), maxModels - 1, "modelIndex: 24 bits");
        vm.assertEq((w0 >> 208) & 0xffff, 0, "sameMask and firstRevealer untouched");
        vm.assertEq(w0 >> 224, id, "tag");
        vm.assertEq(market.getRequest(id).modelId, last, "resolves to the last model");
    }

    // ================================================================== id bound of the tag

    /// @dev Sets requestCount (InferenceMarket._cur, slot 2, bits 192-255) so that the next id is `next` at best.
    function _setRequestCount(uint256 count) internal {
        bytes32 curSlot = bytes32(uint256(2));
        uint256 cur = uint256(vm.load(address(market), curSlot));
        vm.assertEq(cur >> 192, market.requestCount(), "slot 2 bits 192-255 are requestCount");
        vm.store(address(market), curSlot, bytes32((cur & ((1 << 192) - 1)) | (count << 192)));
        vm.assertEq(market.requestCount(), count, "requestCount set");
    }

    /// The tag keeps 32 bits: id 2^32 - 1 is the last one it holds exactly (served, settles).
    function test_ids_lastTaggableId() public {
        uint256 last = type(uint32).max;
        _setRequestCount(last - 1);
        uint256 id = _request(requester, FEE, _params(3, 2), modelId);
        vm.assertEq(id, last, "id 2^32 - 1");
        vm.assertEq(_tag(id % RECORDS), last, "tag 2^32 - 1");
        _settleUnanimous(id, OUT_A);
        vm.assertEq(market.getRequest(id).outputHash, OUT_A, "served and settled");
    }

    /// FAILS (contract bug, far-fetched trigger: 2^32 requests, ~2.6e14 gas by the contract's own estimate).
    /// requestCount is 64 bits but the tag 32: requestInference accepts id 2^32 and writes tag 0 (requestId << 224
    /// drops the high bits), so the request can never be reached: getRequest / draw / finalize(2^32) revert
    /// RequestNotFound, its fee stays escrowed for good, and its record (status Pending) is skipped forever. A
    /// guard in _claim (`if (requestId > type(uint32).max) revert ...`) would refuse it instead.
    function test_ids_aRequestPast2pow32MustNotBeAcceptedUnreachable() public {
        _setRequestCount(type(uint32).max);
        vm.deal(requester, requester.balance + FEE);
        vm.prank(requester);
        (bool ok, bytes memory ret) = address(market).call{value: FEE}(
            abi.encodeCall(market.requestInference, (modelId, "bafkreiinput", INPUT_HASH, _params(3, 2)))
        );
        if (!ok) return; // refused: fine
        uint256 id = abi.decode(ret, (uint256));
        console.log("accepted id", id);
        console.log("its record's tag", _tag(id % RECORDS));
        (bool served,) = address(market).staticcall(abi.encodeCall(market.getRequest, (id)));
        vm.assertEq(market.totalEscrowed(), FEE, "its fee is escrowed");
        vm.assertTrue(served, "an accepted request must be reachable by its id (else its fee is stranded)");
    }
}
