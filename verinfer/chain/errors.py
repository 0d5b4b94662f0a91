"""Chain errors a user can act on, and decoding of revert data into them.

Reverts are decoded against the ABIs of *all* committed artifacts because a custom error can
bubble up from a contract the called one called (e.g. the market calling the node registry).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from verinfer.chain import artifacts
from verinfer.errors import VerinferError

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

PANIC_REASONS = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory / array too large",
    0x51: "call to an uninitialized function pointer",
}


class ChainError(VerinferError):
    """Something went wrong talking to the chain (not a contract revert)."""


class RpcError(ChainError):
    """The RPC endpoint cannot be reached or answered nonsense."""


class TxTimeout(ChainError):
    """A transaction was sent but no receipt arrived in time."""


class ContractError(ChainError):
    """A contract reverted; `error_name`/`error_args` are the decoded custom error (or Error/Panic)."""

    def __init__(
        self,
        contract: str,
        error_name: str,
        error_args: dict[str, Any] | None = None,
        data: bytes = b"",
        tx_hash: str | None = None,
        function: str | None = None,
    ) -> None:
        self.contract = contract
        self.error_name = error_name
        self.error_args = dict(error_args or {})
        self.data = data
        self.tx_hash = tx_hash
        self.function = function
        super().__init__(self._message())

    def _message(self) -> str:
        if self.error_name == "Error":
            inner = json.dumps(self.error_args.get("reason", ""))
        elif self.error_name == "Panic":
            code = self.error_args.get("code", 0)
            inner = f"0x{code:02x}: {self.error_args.get('reason', 'unknown panic')}"
        else:
            inner = ", ".join(f"{k}={_fmt(v)}" for k, v in self.error_args.items())
        return f"{self._reverted()}: {self.error_name}({inner})"

    def _reverted(self) -> str:
        return f"{self.contract} reverted" + (f" in {self.function}" if self.function else "")


class RequestPrunedError(ContractError):
    """RequestPruned: the request's record (id % requestRecords) now holds the later request `recycled_by`. A record
    is reused only once its request settled, so the request (if it was ever made: a skipped id never was) is settled;
    its history is in the market's events, and its views at an older block."""

    @property
    def request_id(self) -> int:
        return int(self.error_args.get("requestId", 0))

    @property
    def recycled_by(self) -> int:
        return int(self.error_args.get("recycledBy", 0))

    def _message(self) -> str:
        rid = self.request_id
        return (f"request {rid} is pruned: its on-chain record was recycled by request {self.recycled_by}; it "
                f"settled before that, and its history is in the market's events (InferenceRequested .. Finalized "
                f"for request {rid}), or in views read at an older block on an archive node (verinfer audit {rid} "
                f"does that)")


class RecordBusyError(ContractError):
    """RecordBusy: the records of the next 4 ids (requestInference skips a held record) all hold unsettled requests;
    `pending_request_id` is the request holding the first record tried (the record's tag)."""

    @property
    def pending_request_id(self) -> int:
        return int(self.error_args.get("pendingRequestId", 0))

    def _message(self) -> str:
        pending = self.pending_request_id
        return (f"{self._reverted()}: RecordBusy: every "
                f"request record a new request may use is held by an unsettled request (the first: request "
                f"{pending}); the market has as many requests in flight as records. Anyone may finalize such a "
                f"request once its deadline has passed, then retry")


#: Custom errors with their own message (and class, for callers that handle them).
_ERROR_CLASSES: dict[str, type[ContractError]] = {"RequestPruned": RequestPrunedError, "RecordBusy": RecordBusyError}


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v if v.startswith("0x") else json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def _abi_type(inp: dict[str, Any]) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[len("tuple"):]
    return t


def normalize(value: Any, abi_input: dict[str, Any], *, hex_bytes: bool = True) -> Any:
    """Make a decoded ABI value plain Python: checksummed addresses, structs as dicts, bytes as
    0x-hex (for messages) or kept as bytes (`hex_bytes=False`, for programs)."""
    t = abi_input["type"]
    if t.endswith("]"):
        inner = dict(abi_input, type=t[: t.rindex("[")])
        return [normalize(v, inner, hex_bytes=hex_bytes) for v in value]
    if t == "tuple":
        comps = abi_input["components"]
        if isinstance(value, Mapping):
            value = [value[c["name"]] for c in comps]
        return {
            c.get("name") or str(i): normalize(v, c, hex_bytes=hex_bytes) for i, (c, v) in enumerate(zip(comps, value, strict=True))
        }
    if t == "address":
        return to_checksum_address(value)
    if t.startswith("bytes"):
        return "0x" + bytes(value).hex() if hex_bytes else bytes(value)
    return value


@functools.lru_cache(maxsize=1)
def _error_table() -> dict[bytes, list[tuple[str, dict[str, Any]]]]:
    """selector -> [(contract name, error ABI entry)] over every committed artifact."""
    table: dict[bytes, list[tuple[str, dict[str, Any]]]] = {}
    for art in artifacts.load_all():
        seen: set[bytes] = set()
        for entry in art.abi:
            if entry.get("type") != "error":
                continue
            sig = f"{entry['name']}(" + ",".join(_abi_type(i) for i in entry.get("inputs", [])) + ")"
            sel = function_signature_to_4byte_selector(sig)
            if sel in seen:
                continue
            seen.add(sel)
            table.setdefault(sel, []).append((art.name, entry))
    return table


def extra_error_abis(abi: list[dict[str, Any]], contract: str) -> None:
    """Teach the decoder errors of a contract that has no committed artifact (e.g. a test contract)."""
    table = _error_table()
    for entry in abi:
        if entry.get("type") != "error":
            continue
        sig = f"{entry['name']}(" + ",".join(_abi_type(i) for i in entry.get("inputs", [])) + ")"
        sel = function_signature_to_4byte_selector(sig)
        rows = table.setdefault(sel, [])
        if not any(name == contract for name, _ in rows):
            rows.append((contract, entry))


def decode_revert(
    data: bytes | str | None,
    contract: str,
    *,
    tx_hash: str | None = None,
    function: str | None = None,
    message: str | None = None,
) -> ContractError:
    """Turn raw revert data into a ContractError naming the error and its arguments."""
    raw: bytes
    if isinstance(data, str):
        h = data[2:] if data.startswith("0x") else data
        try:
            raw = bytes.fromhex(h)
        except ValueError:
            raw = b""
    else:
        raw = data or b""

    def error(name: str, args: dict[str, Any]) -> ContractError:
        return ContractError(contract, name, args, data=raw, tx_hash=tx_hash, function=function)

    if len(raw) < 4:
        args: dict[str, Any] = {"reason": message} if message and message != "execution reverted" else {}
        return error("Revert" if not args else "Error", args)
    sel, body = raw[:4], raw[4:]
    try:
        if sel == ERROR_STRING_SELECTOR:
            (reason,) = abi_decode(["string"], body)
            return error("Error", {"reason": reason})
        if sel == PANIC_SELECTOR:
            (code,) = abi_decode(["uint256"], body)
            return error("Panic", {"code": code, "reason": PANIC_REASONS.get(code, "unknown panic")})
    except Exception:  # malformed standard error: fall through to the unknown case
        pass
    candidates = _error_table().get(sel, [])
    # Prefer the called contract's own declaration, then any other contract declaring it.
    candidates = sorted(candidates, key=lambda c: c[0] != contract)
    for _, entry in candidates:
        inputs = entry.get("inputs", [])
        try:
            values = abi_decode([_abi_type(i) for i in inputs], body)
        except Exception:
            continue
        args = {(i.get("name") or f"arg{n}"): normalize(v, i) for n, (i, v) in enumerate(zip(inputs, values, strict=True))}
        cls = _ERROR_CLASSES.get(entry["name"], ContractError)
        return cls(contract, entry["name"], args, data=raw, tx_hash=tx_hash, function=function)
    return error("UnknownError", {"selector": "0x" + sel.hex(), "data": "0x" + body.hex()})


def revert_data_from_exception(exc: BaseException) -> tuple[bytes | None, str | None]:
    """Dig revert data and message out of whatever web3 raised for an eth_call/estimateGas."""
    data = getattr(exc, "data", None)
    message = getattr(exc, "message", None)
    if isinstance(data, dict):
        data = data.get("data") or data.get("result")
    rpc = getattr(exc, "rpc_response", None)
    if data is None and isinstance(rpc, dict):
        err = rpc.get("error") or {}
        if isinstance(err, dict):
            data = err.get("data")
            message = message or err.get("message")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:]), message
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), message
    return None, message if isinstance(message, str) else (str(exc.args[0]) if exc.args else None)
