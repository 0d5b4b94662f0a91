"""Where the protocol lives on a chain: the one file every verinfer component reads to find contracts.

Format (JSON, `format: "verinfer.manifest.v2"`): chain_id, rpc_url, deploy_block, addresses by
contract name (including the TimelockController that owns the protocol), and the ProtocolParams the
deployment was configured with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from web3 import Web3

from verinfer.chain.types import ModelInfo
from verinfer.constants import ETHER, GWEI
from verinfer.errors import ConfigError

MANIFEST_FORMAT = "verinfer.manifest.v2"  # v2: protocol V2 contracts + timelock owner
DEFAULT_MANIFEST = Path(".verinfer/devnet/manifest.json")


class ProtocolParams(BaseModel):
    """Governance parameters applied at deployment (PROTOCOL_V2 devnet defaults); windows in blocks.

    Every value must lie inside the contracts' hard bounds (e.g. slash_amount <= min_stake / 4, windows and
    proof_blocks in [10, 1000]); deploy_protocol fails with the contract's decoded error otherwise.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_stake: int = 1 * ETHER
    unbonding_delay: int = 20
    epoch_length: int = 20
    min_fee: int = ETHER // 1000
    slash_amount: int = ETHER // 10
    min_commit_blocks: int = 10
    min_reveal_blocks: int = 10
    proof_blocks: int = 20
    callback_gas_price: int = 2 * GWEI
    #: InferenceMarket request records (constructor, fixed; in [1, 2^20]): request id lives in record id % records,
    #: so at most this many requests are in flight and the market's views serve the latest this many (docs/contracts.md).
    request_records: int = 1024
    #: TimelockController minDelay in seconds. 0 on the devnet ONLY (governance executes at once);
    #: a public deployment must use a delay longer than the unbonding delay (docs/chain.md).
    timelock_min_delay: int = 0


class ManifestModel(BaseModel):
    """A model registered on this deployment, by (publisher, name, version) — so a dApp developer reads its id
    here instead of re-computing keccak or enumerating `modelIdAt` (issue 9)."""

    model_config = ConfigDict(extra="ignore")
    publisher: str
    name: str
    version: int
    model_id: str  # 0x + 32 bytes
    proof_mode: int
    input_bits: int
    output_bits: int

    @field_validator("publisher")
    @classmethod
    def _checksum(cls, v: str) -> str:
        return Web3.to_checksum_address(v)

    @classmethod
    def of(cls, info: ModelInfo) -> "ManifestModel":
        return cls(publisher=info.publisher, name=info.name, version=info.version, model_id=info.model_id_hex,
                   proof_mode=info.proof_mode, input_bits=info.input_bits, output_bits=info.output_bits)


class Manifest(BaseModel):
    """Addresses of one protocol deployment on one chain (unknown keys are ignored: forward compatible)."""

    model_config = ConfigDict(extra="ignore")

    format: str = MANIFEST_FORMAT
    chain_id: int
    rpc_url: str
    deploy_block: int
    addresses: dict[str, str]
    params: ProtocolParams = Field(default_factory=ProtocolParams)
    deployer: str | None = None
    #: The owner of NodeRegistry, InferenceMarket and AttestationRegistry (None: the deployer EOA).
    timelock: str | None = None
    #: models registered through verinfer (model publish, the devnet), oldest first
    models: list[ManifestModel] = Field(default_factory=list)

    @field_validator("addresses")
    @classmethod
    def _checksum_all(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: Web3.to_checksum_address(a) for k, a in v.items()}

    def address(self, name: str) -> str:
        """Address of contract `name`; a ConfigError naming the manifest's contents if absent."""
        try:
            return self.addresses[name]
        except KeyError:
            raise ConfigError(f"manifest has no {name} address (has: {', '.join(sorted(self.addresses))})") from None

    def record_model(self, entry: ManifestModel) -> None:
        """Add (or replace, by model id) a registered model."""
        self.models = [m for m in self.models if m.model_id != entry.model_id] + [entry]

    def model_id(self, name: str, publisher: str | None = None, version: int | None = None) -> str:
        """The 0x model id of `name` (latest version unless given); refuses a name two publishers registered."""
        hits = [m for m in self.models if m.name == name
                and (publisher is None or m.publisher.lower() == publisher.lower())
                and (version is None or m.version == version)]
        if not hits:
            known = ", ".join(sorted({m.name for m in self.models})) or "none"
            raise ConfigError(f"manifest lists no model {name!r}" + (f" v{version}" if version else "")
                              + f" (listed: {known}; all registered models: `verinfer model list`)")
        publishers = sorted({m.publisher for m in hits})
        if len(publishers) > 1:
            raise ConfigError(f"model name {name!r} is registered by {len(publishers)} publishers "
                              f"({', '.join(publishers)}): pass publisher=")
        return max(hits, key=lambda m: m.version).model_id

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (tmp + rename) so a reader never sees half a manifest."""
        p = Path(path) if path is not None else default_manifest_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Manifest":
        """Read a manifest; missing or malformed files become a ConfigError with a hint."""
        p = Path(path) if path is not None else default_manifest_path()
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no deployment manifest at {p} (start a devnet: `verinfer devnet up`)") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"manifest {p} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and data.get("format") != MANIFEST_FORMAT:
            raise ConfigError(f"manifest {p} is {data.get('format')!r}, this verinfer needs {MANIFEST_FORMAT!r} "
                              "(protocol V2): redeploy, e.g. `verinfer devnet down && verinfer devnet up`")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            raise ConfigError(f"manifest {p} is invalid: {where}: {first.get('msg')}") from None


def default_manifest_path() -> Path:
    """$VERINFER_MANIFEST, else .verinfer/devnet/manifest.json under the current directory."""
    env = os.environ.get("VERINFER_MANIFEST")
    return Path(env) if env else DEFAULT_MANIFEST
