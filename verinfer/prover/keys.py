"""Proving/verification keys: INSECURE development keys and snarkjs phase-2 ceremonies.

Dev keys (`groth16py.setup`) take seconds but whoever ran setup knows the toxic waste and can
forge proofs: they are labelled INSECURE in every file name, manifest field and CLI line.
A ceremony starts from a phase-1 ptau (checked by sha256), collects named contributions with
`snarkjs zkey contribute`, keeps a JSON transcript, and is verified with `snarkjs zkey verify`.
Every key file's sha256 is recorded and re-checked before use, so a corrupted file is caught.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verinfer.prover import toolchain
from verinfer.prover.artifacts import CompiledCircuit
from verinfer.prover.errors import ArtifactError, CeremonyError, ProverError

DEV_DIR = "dev-INSECURE"
DEV_PK = "proving_key.INSECURE-DEV.g16py"
DEV_VK = "verification_key.INSECURE-DEV.json"
CEREMONY_DIR = "ceremony"
TRANSCRIPT = "transcript.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KeyMaterial:
    """What proving and verifying need: a vk (snarkjs JSON), and a zkey and/or a groth16py key."""

    vk: dict[str, Any]
    vk_path: Path
    zkey_path: Path | None
    g16_pk_path: Path | None
    insecure: bool
    kind: str  # "dev" | "ceremony"
    record: dict[str, Any]

    def check(self) -> None:
        """Re-hash every key file against the record (detects corruption before use)."""
        for key, path in (("zkey_sha256", self.zkey_path), ("g16_pk_sha256", self.g16_pk_path),
                          ("vk_sha256", self.vk_path)):
            want = self.record.get(key)
            if path is None or want is None:
                continue
            if not path.exists():
                raise ArtifactError(f"key file {path} is missing")
            got = toolchain.sha256_file(path)
            if got != want:
                raise ArtifactError(f"{path.name} is corrupt: sha256 {got[:16]}… != recorded {want[:16]}…")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


@contextlib.contextmanager
def key_lock(cc: CompiledCircuit) -> Iterator[None]:
    """Serialise key creation and verifier export for one circuit across processes.

    Several nodes on one machine share the cache; without this, two dev setups racing on the
    same directory leave a proving key from one run beside a verification key from the other.
    """
    lock_dir = cc.dir / "keys"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def dev_setup(cc: CompiledCircuit, *, force: bool = False) -> KeyMaterial:
    """INSECURE single-party key via groth16py (cached per circuit; `force` makes a new one)."""
    with key_lock(cc):
        return _dev_setup_locked(cc, force=force)


def _dev_setup_locked(cc: CompiledCircuit, *, force: bool) -> KeyMaterial:
    import groth16py

    d = cc.dir / "keys" / DEV_DIR
    rec_path = d / "key.json"
    if rec_path.exists() and not force:
        return load_keys(d)
    d.mkdir(parents=True, exist_ok=True)
    import time

    t0 = time.perf_counter()
    try:
        pk, vk = groth16py.setup(str(cc.r1cs_path))
    except Exception as exc:  # groth16py raises its own SetupError
        raise ProverError(f"dev setup failed: {exc}") from None
    setup_s = time.perf_counter() - t0
    pk.save(str(d / DEV_PK))
    vk_obj = json.loads(vk.to_json())
    _write_json(d / DEV_VK, vk_obj)
    record = {
        "format": "verinfer.keys.v1",
        "kind": "dev",
        "insecure": True,
        "warning": "INSECURE development key: the party that ran setup can forge proofs. Never use for value.",
        "circuit_hash": cc.circuit_hash,
        "r1cs_sha256": cc.manifest["r1cs_sha256"],
        "tool": f"groth16py {groth16py.__version__} setup(r1cs)",
        "created": _now(),
        "setup_seconds": round(setup_s, 3),
        "g16_pk": DEV_PK,
        "g16_pk_sha256": toolchain.sha256_file(d / DEV_PK),
        "vk": DEV_VK,
        "vk_sha256": toolchain.sha256_file(d / DEV_VK),
    }
    _write_json(rec_path, record)
    return load_keys(d)


def load_keys(d: Path) -> KeyMaterial:
    """Open a key directory written by dev_setup or a finished ceremony, checking hashes."""
    rec_path = Path(d) / "key.json"
    if not rec_path.exists():
        raise ArtifactError(f"no key record in {d}")
    rec = json.loads(rec_path.read_text())
    vk_path = Path(d) / rec["vk"]
    km = KeyMaterial(
        vk=json.loads(vk_path.read_text()) if vk_path.exists() else {},
        vk_path=vk_path,
        zkey_path=Path(d) / rec["zkey"] if rec.get("zkey") else None,
        g16_pk_path=Path(d) / rec["g16_pk"] if rec.get("g16_pk") else None,
        insecure=bool(rec.get("insecure", True)),
        kind=rec["kind"],
        record=rec,
    )
    km.check()
    return km


# ---------------------------------------------------------------------------------------------
# Ceremony (snarkjs phase 2)


def make_insecure_ptau(power: int, out: Path, *, name: str = "verinfer INSECURE local phase 1") -> Path:
    """A phase-1 ptau made on this machine (one local contribution): INSECURE, for tests and demos.

    `prepare phase2` is single-threaded and slow above 2^12; callers keep power small or cache.
    """
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".ptau-{power}-{secrets.token_hex(4)}"
    work.mkdir()
    try:
        sj = toolchain.snarkjs_cmd()
        toolchain.run(sj + ["powersoftau", "new", "bn128", str(power), str(work / "p0.ptau")], what="ptau new")
        toolchain.run(sj + ["powersoftau", "contribute", str(work / "p0.ptau"), str(work / "p1.ptau"),
                            f"--name={name}", f"-e={secrets.token_hex(32)}"], what="ptau contribute")
        toolchain.run(sj + ["powersoftau", "prepare", "phase2", str(work / "p1.ptau"), str(work / "final.ptau")],
                      what="ptau prepare phase2")
        (work / "final.ptau").replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _ceremony_dir(cc: CompiledCircuit) -> Path:
    return cc.dir / "keys" / CEREMONY_DIR


def _transcript(d: Path) -> dict[str, Any]:
    p = d / TRANSCRIPT
    if not p.exists():
        raise CeremonyError(f"no ceremony in {d}: run `verinfer prover ceremony import-ptau` first")
    return json.loads(p.read_text())


def _zkey_hash_from_output(text: str) -> str:
    """The contribution hash snarkjs prints (4 lines of 8-hex groups), normalised to one hex string."""
    groups = re.findall(r"\b[0-9a-f]{8}\b", text)
    if len(groups) < 16:
        raise CeremonyError(f"could not read the contribution hash from snarkjs output: {text[-400:]}")
    return "".join(groups[-16:])


def import_ptau(cc: CompiledCircuit, ptau: Path, *, expected_sha256: str | None = None,
                insecure: bool = True) -> dict[str, Any]:
    """Start a ceremony: check the ptau's hash, make the initial zkey, write the transcript."""
    ptau = Path(ptau)
    if not ptau.exists():
        raise CeremonyError(f"ptau file {ptau} not found")
    digest = toolchain.sha256_file(ptau)
    if expected_sha256 and digest != expected_sha256.lower():
        raise ArtifactError(f"ptau {ptau.name} is corrupt or not the expected file: sha256 {digest} != {expected_sha256}")
    from verinfer.prover.direct import ptau_power, required_ptau_power

    need = required_ptau_power(cc.n_constraints, len(cc.public_signal_names))
    if ptau_power(ptau) < need:  # snarkjs would fail later with a multi-line trace
        raise CeremonyError(f"model {cc.manifest.get('model')!r} ({cc.mode}) has {cc.n_constraints:,} constraints and "
                            f"needs a 2^{need} ptau; {ptau.name} is 2^{ptau_power(ptau)}")
    d = _ceremony_dir(cc)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    local = d / "phase1.ptau"
    shutil.copyfile(ptau, local)
    z0 = d / "circuit_0000.zkey"
    out = toolchain.run(toolchain.snarkjs_cmd() + ["groth16", "setup", str(cc.r1cs_path), str(local), str(z0)],
                        what="snarkjs groth16 setup")
    transcript = {
        "format": "verinfer.ceremony.v1",
        "circuit_hash": cc.circuit_hash,
        "r1cs_sha256": cc.manifest["r1cs_sha256"],
        "insecure": insecure,
        "ptau": {"file": local.name, "sha256": digest, "source": str(ptau.name)},
        "initial_zkey": {"file": z0.name, "sha256": toolchain.sha256_file(z0)},
        "contributions": [],
        "created": _now(),
        "tool": toolchain.snarkjs_version(),
        "finalized": False,
    }
    del out
    _write_json(d / TRANSCRIPT, transcript)
    return transcript


def contribute(cc: CompiledCircuit, name: str, entropy: str | None = None) -> dict[str, Any]:
    """Add one named contribution (`snarkjs zkey contribute`) and record its hash."""
    d = _ceremony_dir(cc)
    t = _transcript(d)
    if t.get("finalized"):
        raise CeremonyError("ceremony already finalized")
    prev = t["contributions"][-1] if t["contributions"] else t["initial_zkey"]
    prev_path = d / prev["file"]
    if toolchain.sha256_file(prev_path) != prev["sha256"]:
        raise ArtifactError(f"{prev_path.name} does not match the transcript (corrupt or replaced)")
    idx = len(t["contributions"]) + 1
    nxt = d / f"circuit_{idx:04d}.zkey"
    out = toolchain.run(
        toolchain.snarkjs_cmd() + ["zkey", "contribute", str(prev_path), str(nxt), f"--name={name}",
                                   f"-e={entropy or secrets.token_hex(32)}", "-v"],
        what="snarkjs zkey contribute",
    )
    entry = {"index": idx, "name": name, "time": _now(), "file": nxt.name,
             "sha256": toolchain.sha256_file(nxt),
             "contribution_hash": _zkey_hash_from_output(out.stdout + out.stderr)}
    t["contributions"].append(entry)
    _write_json(d / TRANSCRIPT, t)
    return entry


def verify_ceremony(cc: CompiledCircuit, *, fresh: bool = True) -> dict[str, Any]:
    """`snarkjs zkey verify` of the latest zkey against r1cs + ptau, and every transcript hash.

    `fresh=False` reuses the output of an earlier snarkjs verification of the very same files
    (keyed by their sha256s) and re-checks only the transcript; auditors use the default.
    """
    d = _ceremony_dir(cc)
    t = _transcript(d)
    if not t["contributions"]:
        raise CeremonyError("the ceremony has no contributions yet")
    for entry in [t["initial_zkey"], *t["contributions"]]:
        p = d / entry["file"]
        if not p.exists() or toolchain.sha256_file(p) != entry["sha256"]:
            raise ArtifactError(f"{entry['file']} does not match its transcript hash")
    if toolchain.sha256_file(d / t["ptau"]["file"]) != t["ptau"]["sha256"]:
        raise ArtifactError("the ceremony's ptau does not match its transcript hash")
    if toolchain.sha256_file(cc.r1cs_path) != t["r1cs_sha256"]:
        raise ArtifactError("the circuit's r1cs changed since the ceremony started")
    last = d / t["contributions"][-1]["file"]
    key = f"{t['r1cs_sha256']}:{t['ptau']['sha256']}:{t['contributions'][-1]['sha256']}"
    log = d / "zkey_verify.log.json"
    cached = json.loads(log.read_text()) if log.exists() else {}
    if not fresh and cached.get("key") == key:
        text = cached["output"]
    else:
        try:
            out = toolchain.run(toolchain.snarkjs_cmd() + ["zkey", "verify", str(cc.r1cs_path),
                                                           str(d / t["ptau"]["file"]), str(last)],
                                what="snarkjs zkey verify")
        except ProverError as exc:
            raise CeremonyError(f"ceremony does not verify: {exc}") from None
        text = out.stdout + out.stderr
        _write_json(log, {"key": key, "output": text})
    if "ZKey Ok!" not in text:
        raise CeremonyError(f"snarkjs zkey verify did not confirm the key: {text[-400:]}")
    # snarkjs lists each contribution hash it verified: every transcript hash must be among them.
    norm = re.sub(r"[^0-9a-f]", "", text.replace("\n", " "))
    missing = [c["name"] for c in t["contributions"] if c["contribution_hash"] not in norm]
    if missing:
        raise CeremonyError(f"contribution(s) {missing} are in the transcript but not in the zkey")
    return t


def finalize(cc: CompiledCircuit) -> KeyMaterial:
    """Verify, then export the verification key and mark the ceremony final (key.json)."""
    t = verify_ceremony(cc)
    d = _ceremony_dir(cc)
    last = d / t["contributions"][-1]["file"]
    final = d / ("circuit_final.INSECURE.zkey" if t["insecure"] else "circuit_final.zkey")
    shutil.copyfile(last, final)
    vk_name = "verification_key.INSECURE.json" if t["insecure"] else "verification_key.json"
    toolchain.run(toolchain.snarkjs_cmd() + ["zkey", "export", "verificationkey", str(final), str(d / vk_name)],
                  what="snarkjs zkey export verificationkey")
    t["finalized"] = True
    t["final_zkey"] = {"file": final.name, "sha256": toolchain.sha256_file(final)}
    _write_json(d / TRANSCRIPT, t)
    record = {
        "format": "verinfer.keys.v1",
        "kind": "ceremony",
        "insecure": t["insecure"],
        "circuit_hash": cc.circuit_hash,
        "r1cs_sha256": t["r1cs_sha256"],
        "tool": toolchain.snarkjs_version(),
        "created": _now(),
        "contributors": [c["name"] for c in t["contributions"]],
        "zkey": final.name,
        "zkey_sha256": t["final_zkey"]["sha256"],
        "vk": vk_name,
        "vk_sha256": toolchain.sha256_file(d / vk_name),
        "transcript": TRANSCRIPT,
    }
    if t["insecure"]:
        record["warning"] = "INSECURE: phase 1 was generated locally, not by a public ceremony."
    _write_json(d / "key.json", record)
    return load_keys(d)


def ceremony_keys(cc: CompiledCircuit) -> KeyMaterial:
    """The finalized ceremony keys of a circuit."""
    d = _ceremony_dir(cc)
    if not (d / "key.json").exists():
        raise CeremonyError(f"no finalized ceremony for circuit {cc.circuit_hash[:12]}: run the ceremony commands")
    return load_keys(d)
