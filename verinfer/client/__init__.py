"""dApp SDK: request inference, wait for settlement, read back a result checked against chain and store.

    from verinfer.client import Client
    c = Client(rpc_url, manifest_path, account=acct)
    rid = c.submit("digits-mlp", pixels, fee=10**16)
    res = c.wait(rid, timeout=60)          # finalizes itself if nobody else does
    print(res.prediction, res.consensus, res.display_status)
"""

from verinfer.client.result import MemberResult, RequestResult, WaitUpdate
from verinfer.client.sdk import Client, MarketBusyError, ModelInfo, RequestTimeout, ResultError

__all__ = ["Client", "MarketBusyError", "ModelInfo", "MemberResult", "RequestResult", "RequestTimeout", "ResultError", "WaitUpdate"]
