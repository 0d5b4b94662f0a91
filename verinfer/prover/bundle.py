"""Prover bundles: a model's proving artifacts published through the content store.

A node or auditor on another machine needs the circuit's witness calculator (wasm), the proving
key (snarkjs zkey, or groth16py key for INSECURE dev setups) and the verification key. The
publisher stores each file and a JSON bundle naming them by CID, and records the bundle's CID in
ModelRegistry (`setArtifacts`):

    cid = publish_bundle(store, arts)                  # publisher
    protocol.models.set_artifacts(model_id, cid)
    arts = fetch_bundle(store, protocol.models.artifacts_cid(model_id),
                        expected_commitment=model.commitment)   # node / auditor

What a fetch proves: every file is the one the bundle names (the store re-hashes content against
its CID, and sizes/sha256s are re-checked); in public mode (proof mode 1) the bundle's vk is the
one the registered commitment names (`vk_commitment(vk) == commitment`). In private mode the
commitment is the weights' hash, so the vk is not bound by it: proofs made with a wrong key simply
fail the on-chain verifier (auditors compare the vk with the verifier's bytecode).
The ceremony transcript travels with the bundle so anyone can re-run `snarkjs zkey verify` after
compiling the circuit themselves (the bundle records the r1cs sha256 to compare against).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from verinfer.errors import VerinferError
from verinfer.prover import toolchain
from verinfer.prover.artifacts import CIRCUIT_NAME, CompiledCircuit
from verinfer.prover.errors import ArtifactError
from verinfer.prover.keys import load_keys
from verinfer.prover.types import CircuitArtifacts

FORMAT = "verinfer.prover-bundle.v1"
MAX_BUNDLE_BYTES = 1 << 20
#: Largest single artifact fetched (a zkey grows with the circuit; 4 GiB is far above any model here).
MAX_FILE_BYTES = 4 << 30
MODES = ("public", "private")
DONE = "bundle.json"

# bundle "files" key -> file name inside the cache directory (relative to the circuit dir)
_CIRCUIT_FILES = {
    "wasm": f"{CIRCUIT_NAME}_js/{CIRCUIT_NAME}.wasm",
    "witness_calculator": f"{CIRCUIT_NAME}_js/witness_calculator.js",
    "sym": f"{CIRCUIT_NAME}.sym",
    "circuit_manifest": "manifest.json",
}
_KEY_FILES = ("zkey", "g16_pk", "vk", "verifier_sol", "transcript")


class BundleError(ArtifactError):
    """A prover bundle is malformed, incomplete or does not match what it claims (or the chain)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add_file(store: Any, path: Path | None, name: str | None = None) -> dict[str, Any] | None:
    if path is None or not Path(path).exists():
        return None
    data = Path(path).read_bytes()
    return {"cid": store.add(data), "sha256": _sha256(data), "size": len(data), "name": name or Path(path).name}


def bundle_document(store: Any, artifacts: CircuitArtifacts) -> dict[str, Any]:
    """Store every artifact file and return the bundle document (not yet stored)."""
    cc, km = artifacts.compiled, artifacts.keys
    km.check()  # never publish a corrupt key
    if artifacts.mode not in MODES:
        raise BundleError(f"unknown proof mode {artifacts.mode!r}")
    files: dict[str, Any] = {}
    for key, rel in _CIRCUIT_FILES.items():
        entry = _add_file(store, cc.dir / rel)
        if entry is not None:
            files[key] = entry
    for key, path in (("zkey", km.zkey_path), ("g16_pk", km.g16_pk_path), ("vk", km.vk_path),
                      ("verifier_sol", artifacts.verifier_sol)):
        entry = _add_file(store, path)
        if entry is not None:
            files[key] = entry
    if km.record.get("transcript"):
        entry = _add_file(store, km.vk_path.parent / km.record["transcript"])
        if entry is not None:
            files["transcript"] = entry
    for required in ("wasm", "witness_calculator", "vk"):
        if required not in files:
            raise BundleError(f"cannot publish: the circuit's {required} file is missing under {cc.dir}")
    if "zkey" not in files and "g16_pk" not in files:
        raise BundleError("cannot publish: no proving key (zkey or groth16py key) in the key material")
    return {
        "format": FORMAT,
        "model": cc.manifest.get("model"),
        "mode": artifacts.mode,
        "setup": artifacts.extra.get("setup", km.kind),
        "key_kind": km.kind,
        "insecure": bool(km.insecure),
        "circuit_hash": cc.circuit_hash,
        "r1cs_sha256": cc.manifest.get("r1cs_sha256") or km.record.get("r1cs_sha256"),
        "commitment": str(int(artifacts.commitment)),
        "public_signal_names": list(cc.public_signal_names),
        "verifier_contract": artifacts.verifier_contract,
        "constraints": cc.manifest.get("constraints"),
        "contributors": list(km.record.get("contributors", [])),
        "files": files,
    }


def publish_bundle(store: Any, artifacts: CircuitArtifacts) -> str:
    """Store the artifacts' files and their bundle document (all pinned); returns the bundle's CID."""
    return store.add_json(bundle_document(store, artifacts))


def _check_document(doc: Any, cid: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise BundleError(f"{cid} is not a prover bundle (format {got!r}, expected {FORMAT!r})")
    if doc.get("mode") not in MODES:
        raise BundleError(f"bundle {cid}: unknown proof mode {doc.get('mode')!r}")
    files = doc.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"bundle {cid}: no file table")
    for key in ("wasm", "witness_calculator", "vk"):
        if key not in files:
            raise BundleError(f"bundle {cid} has no {key} file")
    if "zkey" not in files and "g16_pk" not in files:
        raise BundleError(f"bundle {cid} has no proving key (zkey or g16_pk)")
    for key, entry in files.items():
        if key not in _CIRCUIT_FILES and key not in _KEY_FILES:
            raise BundleError(f"bundle {cid}: unknown file entry {key!r}")
        if not isinstance(entry, dict) or not all(k in entry for k in ("cid", "sha256", "size", "name")):
            raise BundleError(f"bundle {cid}: malformed {key} entry")
        name = str(entry["name"])
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise BundleError(f"bundle {cid}: unsafe file name {name!r} for {key}")
        if not isinstance(entry["size"], int) or not 0 <= entry["size"] <= MAX_FILE_BYTES:
            raise BundleError(f"bundle {cid}: {key} size {entry['size']!r} out of range")
    try:
        int(doc["commitment"])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"bundle {cid}: missing or malformed commitment") from None
    names = doc.get("public_signal_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise BundleError(f"bundle {cid}: missing public signal names")


def _key_dir(root: Path, doc: dict[str, Any]) -> Path:
    return root / "keys" / f"bundle-{doc.get('key_kind', 'key')}"


def _open(root: Path, doc: dict[str, Any], spec: Any) -> CircuitArtifacts:
    """CircuitArtifacts over a complete cache directory (key hashes re-checked by load_keys)."""
    from verinfer.prover.pipeline import vk_commitment

    manifest_path = root / _CIRCUIT_FILES["circuit_manifest"]
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault("model", doc.get("model"))
    manifest.setdefault("r1cs_sha256", doc.get("r1cs_sha256"))
    manifest.setdefault("constraints", doc.get("constraints") or 0)
    names = tuple(doc["public_signal_names"])
    cc = CompiledCircuit(root, doc["circuit_hash"], doc["mode"], names, manifest, spec)
    km = load_keys(_key_dir(root, doc))
    commitment = int(doc["commitment"])
    if doc["mode"] == "public" and vk_commitment(km.vk) != commitment:
        raise BundleError(
            f"prover bundle for {doc.get('model')!r}: its verification key hashes to commitment "
            f"{vk_commitment(km.vk)} but the bundle claims {commitment}: the bundle was tampered with or "
            "mixes keys from another setup; refusing it"
        )
    if int(km.vk.get("nPublic", len(names))) != len(names):
        raise BundleError(f"prover bundle for {doc.get('model')!r}: vk has {km.vk.get('nPublic')} public "
                          f"signals, the bundle names {len(names)}")
    sol_name = doc["files"].get("verifier_sol", {}).get("name")
    sol = _key_dir(root, doc) / sol_name if sol_name else _key_dir(root, doc) / f"{doc.get('verifier_contract')}.sol"
    extra = {"setup": doc.get("setup"), "bundle": True}
    return CircuitArtifacts(cc, km, commitment, sol, str(doc.get("verifier_contract") or ""), extra=extra)


def fetch_bundle(store: Any, cid: str, cache_dir: Path | str | None = None, *,
                 expected_commitment: int | None = None, spec: Any = None) -> CircuitArtifacts:
    """Rebuild usable CircuitArtifacts from the bundle `cid` in `store`, cached on disk.

    Files land in `cache_dir` (default: `<prover cache>/bundles/<cid>`); a finished cache is reused
    after its key hashes are re-checked. Raises BundleError (a VerinferError) when the bundle is
    malformed, a file does not match its recorded size/sha256, the public-mode vk does not hash to
    the bundle's commitment, or the commitment differs from `expected_commitment` (the on-chain one).
    `spec` (optional) is attached to the compiled circuit for callers that want it.
    """
    cid = str(cid).strip()
    if not cid:
        raise BundleError("no prover bundle CID (the publisher has not called setArtifacts)")
    root = Path(cache_dir) if cache_dir is not None else toolchain.cache_root() / "bundles" / cid
    try:
        doc = store.cat_json(cid, max_bytes=MAX_BUNDLE_BYTES)
    except VerinferError as exc:
        raise BundleError(f"cannot read prover bundle {cid}: {exc}") from None
    _check_document(doc, cid)
    if expected_commitment is not None and int(doc["commitment"]) != int(expected_commitment):
        raise BundleError(f"prover bundle {cid} is for commitment {doc['commitment']}, the model's registered "
                          f"commitment is {int(expected_commitment)}: wrong bundle for this model")
    done = root / DONE
    if done.exists():
        try:
            if json.loads(done.read_text()) == doc:
                return _open(root, doc, spec)
        except (OSError, ValueError, ArtifactError):
            pass  # damaged cache: fetch again
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=root.parent))
    try:
        key_dir = _key_dir(tmp, doc)
        key_dir.mkdir(parents=True)
        record: dict[str, Any] = {
            "format": "verinfer.keys.v1",
            "kind": doc.get("key_kind", "ceremony"),
            "insecure": bool(doc.get("insecure", True)),
            "circuit_hash": doc.get("circuit_hash"),
            "r1cs_sha256": doc.get("r1cs_sha256"),
            "source": f"prover bundle {cid}",
            "contributors": doc.get("contributors", []),
        }
        if record["insecure"]:
            record["warning"] = "INSECURE keys (published as such by the model's publisher)."
        for key, entry in doc["files"].items():
            try:
                data = store.cat(entry["cid"], max_bytes=int(entry["size"]))
            except VerinferError as exc:
                raise BundleError(f"prover bundle {cid}: cannot fetch {key} ({entry['cid']}): {exc}") from None
            if len(data) != entry["size"] or _sha256(data) != entry["sha256"]:
                raise BundleError(f"prover bundle {cid}: {key} ({entry['cid']}) does not match its recorded "
                                  "size/sha256")
            if key in _CIRCUIT_FILES:
                dest = tmp / _CIRCUIT_FILES[key]
            else:
                dest = key_dir / entry["name"]
                if key in ("zkey", "g16_pk", "vk", "transcript"):
                    record[key] = entry["name"]
                    if key != "transcript":
                        record[f"{key}_sha256"] = entry["sha256"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (key_dir / "key.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        arts = _open(tmp, doc, spec)  # checks before the cache entry becomes visible
        (tmp / DONE).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        if root.exists():
            if not (root / DONE).exists() and any(root.iterdir()):
                raise BundleError(f"{root} is not empty and is not a prover bundle cache: choose another cache_dir")
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:
            if not (root / DONE).exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent fetch of the same bundle won
        del arts
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _open(root, doc, spec)
