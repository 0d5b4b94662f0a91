"""`verinfer prover …`: compile circuits, dev (INSECURE) setup, snarkjs ceremonies, prove, verify.

Every line that shows a development key or a locally made ptau says INSECURE.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

from verinfer.errors import ConfigError

app = typer.Typer(help="Groth16 circuits, keys and proofs for proven models.", no_args_is_help=True)
ceremony_app = typer.Typer(help="snarkjs phase-2 ceremony: import-ptau, contribute, verify, finalize.",
                           no_args_is_help=True)
app.add_typer(ceremony_app, name="ceremony")

_MODEL = typer.Option(None, "--model", "-m", help="built-in model name (e.g. digits-mlp)")
_SPEC = typer.Option(None, "--spec", help="path to a model spec JSON (§1.4)")
_MODE = typer.Option("public", "--mode", help="proof mode: public (weights as constants) | private")


def _install(arts: Any) -> Path:
    """Copy the exported verifier (in the prover cache) into the checkout the command runs in."""
    import shutil

    dest_dir = Path.cwd() / "contracts" / "src" / "verifiers"
    if not dest_dir.is_dir():
        raise ConfigError(f"--install: {dest_dir} does not exist; run from the repository root")
    dest = dest_dir / f"{arts.verifier_contract.removeprefix('Groth16Verifier')}Verifier.sol"
    shutil.copyfile(arts.verifier_sol, dest)
    return dest


def _spec(model: Optional[str], spec: Optional[Path]) -> Any:
    from verinfer.models import spec as specs

    if (model is None) == (spec is None):
        raise ConfigError("give exactly one of --model NAME or --spec FILE")
    return specs.load_builtin(model) if model else specs.load(spec)  # type: ignore[arg-type]


def _compiled(model: Optional[str], spec: Optional[Path], mode: str) -> Any:
    from verinfer.prover.artifacts import compile_circuit

    return compile_circuit(_spec(model, spec), mode)


def _say_keys(km: Any) -> None:
    tag = "INSECURE " if km.insecure else ""
    typer.echo(f"keys:        {tag}{km.kind} ({km.vk_path.parent})")
    if km.insecure:
        typer.echo("WARNING:     INSECURE keys: whoever made them can forge proofs. Development only.")


@app.command("compile")
def compile_cmd(model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE) -> None:
    """Generate and compile the model's circuit (cached by circuit hash)."""
    t0 = time.perf_counter()
    cc = _compiled(model, spec, mode)
    typer.echo(f"circuit:     {cc.circuit_hash}")
    typer.echo(f"mode:        {cc.mode} (public signals: {', '.join(cc.public_signal_names)})")
    typer.echo(f"constraints: {cc.n_constraints}")
    typer.echo(f"r1cs sha256: {cc.manifest['r1cs_sha256']}")
    typer.echo(f"directory:   {cc.dir}  ({time.perf_counter() - t0:.1f} s)")


@app.command("setup")
def setup_cmd(
    model: Optional[str] = _MODEL,
    spec: Optional[Path] = _SPEC,
    mode: str = _MODE,
    dev: bool = typer.Option(False, "--dev", help="INSECURE single-party key via groth16py (seconds)"),
    force: bool = typer.Option(False, "--force", help="make a new dev key even if one is cached"),
    install: bool = typer.Option(False, "--install", help="copy the verifier into ./contracts/src/verifiers (run from the repository root)"),
) -> None:
    """Development setup (`--dev`); production keys come from `verinfer prover ceremony …`."""
    from verinfer.prover import keys, pipeline

    if not dev:
        raise ConfigError("use --dev for an INSECURE development key, or the ceremony commands: "
                          "verinfer prover ceremony import-ptau/contribute/verify/finalize")
    s = _spec(model, spec)
    cc = _compiled(model, spec, mode)
    keys.dev_setup(cc, force=force)
    if force:
        for old in (cc.dir / "keys" / keys.DEV_DIR).glob("Groth16Verifier*.sol"):
            old.unlink()
    arts = pipeline.prepare(s, mode, setup="dev")
    _say_keys(arts.keys)
    typer.echo(f"commitment:  {arts.commitment}")
    typer.echo(f"verifier:    {arts.verifier_sol} (contract {arts.verifier_contract}, INSECURE dev key)")
    if install:
        typer.echo(f"installed:   {_install(arts)}")


@ceremony_app.command("new-ptau")
def new_ptau(power: int = typer.Option(10, "--power", help="2^power constraints"),
             out: Path = typer.Option(..., "--out", help="output .ptau file")) -> None:
    """Make an INSECURE local phase-1 ptau (single contributor; slow above 2^12)."""
    from verinfer.prover import keys, toolchain

    p = keys.make_insecure_ptau(power, out)
    typer.echo(f"ptau:        {p} (INSECURE local phase 1, 2^{power})")
    typer.echo(f"sha256:      {toolchain.sha256_file(p)}")


@ceremony_app.command("import-ptau")
def import_ptau(ptau: Path = typer.Argument(..., help="phase-1 .ptau (prepared for phase 2)"),
                model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE,
                sha256: Optional[str] = typer.Option(None, "--sha256", help="expected sha256 of the ptau"),
                secure: bool = typer.Option(False, "--secure", help="the ptau comes from a public ceremony")) -> None:
    """Start a ceremony for the circuit from a phase-1 ptau (checked by hash)."""
    from verinfer.prover import keys

    cc = _compiled(model, spec, mode)
    t = keys.import_ptau(cc, ptau, expected_sha256=sha256, insecure=not secure)
    typer.echo(f"ceremony:    started for circuit {cc.circuit_hash[:16]}… (ptau sha256 {t['ptau']['sha256'][:16]}…)")
    if t["insecure"]:
        typer.echo("WARNING:     INSECURE ceremony (local phase 1); pass --secure only for a public ptau")


@ceremony_app.command("contribute")
def contribute(name: str = typer.Option(..., "--name", help="contributor name (recorded in the transcript)"),
               entropy: Optional[str] = typer.Option(None, "--entropy", help="extra entropy (default: random)"),
               model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE) -> None:
    """Add a phase-2 contribution."""
    from verinfer.prover import keys

    e = keys.contribute(_compiled(model, spec, mode), name, entropy)
    typer.echo(f"contribution {e['index']}: {e['name']} hash {e['contribution_hash']}")


@ceremony_app.command("verify")
def verify_ceremony(model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE) -> None:
    """snarkjs zkey verify against r1cs + ptau, and every transcript hash."""
    from verinfer.prover import keys

    t = keys.verify_ceremony(_compiled(model, spec, mode))
    typer.echo(f"ceremony OK: {len(t['contributions'])} contribution(s): "
               f"{', '.join(c['name'] for c in t['contributions'])}{' (INSECURE phase 1)' if t['insecure'] else ''}")


@ceremony_app.command("finalize")
def finalize(model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE,
             install: bool = typer.Option(False, "--install", help="copy the verifier into ./contracts/src/verifiers (run from the repository root)")) -> None:
    """Verify, export the verification key and the Solidity verifier."""
    from verinfer.prover import keys, pipeline

    s = _spec(model, spec)
    km = keys.finalize(_compiled(model, spec, mode))
    arts = pipeline.prepare(s, mode, setup="ceremony")
    _say_keys(km)
    typer.echo(f"commitment:  {arts.commitment}")
    typer.echo(f"verifier:    {arts.verifier_sol} (contract {arts.verifier_contract})")
    if install:
        typer.echo(f"installed:   {_install(arts)}")


def _read_input(path: Path) -> list[int]:
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read input {path}: {exc}") from None
    if isinstance(obj, dict):
        obj = obj.get("data", obj.get("pixels"))
    if not isinstance(obj, list):
        raise ConfigError("input must be a JSON list of ints or a verinfer.tensor.v1 payload")
    return obj


@app.command("prove")
def prove_cmd(
    input_path: Path = typer.Option(..., "--input", help="JSON list of ints or a tensor payload (§1.3)"),
    request_id: int = typer.Option(..., "--request-id"),
    prover_address: str = typer.Option(..., "--prover", help="address that will submit the proof"),
    model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE,
    setup: str = typer.Option("dev", "--setup", help="dev | ceremony | shipped"),
    backend: str = typer.Option("best", "--backend", help="groth16py | snarkjs | best"),
    out: Optional[Path] = typer.Option(None, "--out", help="write {proof, publicSignals, calldata} JSON here"),
) -> None:
    """Prove one inference for a request; prints outputHash and the submitProof calldata."""
    from verinfer.prover import backends, pipeline

    s = _spec(model, spec)
    arts = pipeline.prepare(s, mode, setup=setup)
    be = backends.backend_by_name(backend)
    t0 = time.perf_counter()
    proof = pipeline.prove_for_request(arts, s, _read_input(input_path), request_id, prover_address, be)
    dt = time.perf_counter() - t0
    sig = dict(zip(arts.public_signal_names, proof.public_signals, strict=True))
    doc = {"proof": proof.to_snarkjs()[0], "publicSignals": [str(v) for v in proof.public_signals],
           "publicSignalNames": list(arts.public_signal_names), "calldata": [str(v) for v in proof.to_calldata()],
           "insecure": arts.insecure, "circuit_hash": arts.circuit_hash}
    if out:
        out.write_text(json.dumps(doc, indent=1) + "\n")
    typer.echo(f"outputHash:  0x{sig['outputHash']:064x}")
    typer.echo(f"calldata:    {json.dumps(doc['calldata'])}")
    typer.echo(f"backend:     {be.name} ({dt:.2f} s){' [INSECURE dev key]' if arts.insecure else ''}")


@app.command("verify")
def verify_cmd(proof_path: Path = typer.Argument(..., help="JSON written by `prove --out`"),
               model: Optional[str] = _MODEL, spec: Optional[Path] = _SPEC, mode: str = _MODE,
               setup: str = typer.Option("dev", "--setup"),
               backend: str = typer.Option("best", "--backend")) -> None:
    """Verify a proof locally against the model's verification key."""
    from verinfer.prover import backends, pipeline
    from verinfer.prover.types import Proof

    arts = pipeline.prepare(_spec(model, spec), mode, setup=setup)
    doc = json.loads(proof_path.read_text())
    proof = Proof.from_snarkjs(doc["proof"], doc["publicSignals"])
    ok = backends.backend_by_name(backend).verify(arts.vk, proof)
    typer.echo("proof OK" if ok else "proof INVALID")
    if not ok:
        from verinfer.prover.errors import ProverError

        raise ProverError("the proof does not verify against this model's verification key")
