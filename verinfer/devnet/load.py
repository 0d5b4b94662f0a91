"""Submit many requests at once (attack 13 test, load benchmark): threads share one TxSender per account,
whose local nonce counter lets a burst land in the next blocks instead of one receipt wait per request."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from verinfer.chain.protocol import Protocol, RequestParams


@dataclass(frozen=True)
class Submitted:
    request_id: int
    sent_at: float  # time.time() when the transaction was handed to the node
    mined_block: int
    gas_used: int


def submit_burst(protocols: Sequence[Protocol], model_id: bytes, items: Sequence[tuple[str, int]], params: RequestParams,
                 *, fee: int | None = None, threads: int = 24) -> list[Submitted]:
    """Request inference on every (input CID, input hash); round-robin over `protocols` (requester accounts)."""
    fee = fee if fee is not None else protocols[0].market.quote(model_id, params)[0]

    def one(i: int) -> Submitted:
        p = protocols[i % len(protocols)]
        cid, h = items[i]
        t = time.time()
        receipt, rid = p.market.request_inference(model_id, cid, h, params, fee)
        return Submitted(rid, t, int(receipt["blockNumber"]), int(receipt["gasUsed"]))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(one, range(len(items))))
