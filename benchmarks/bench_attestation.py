#!/usr/bin/env python3
"""Attestation verify time per quote, offline, on every vendored real vector and the devnet test PKI.

Each row is the median (and p90) of `--repeats` full verifications of one quote with its collateral "as of"
the instant the vector is valid: dcap-qvl for SGX/TDX (PCK chain + CRLs, TCB info, QE identity, signatures,
TCB match), `cryptography` for SEV-SNP (ARK → ASK → VCEK, report signature). One thread, one process.

    python benchmarks/bench_attestation.py               # ~10 s
    python benchmarks/bench_attestation.py --repeats 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from verinfer.attestation.binding import binding_report_data
from verinfer.attestation.dcap import load_collateral, trim_quote, verify_dcap
from verinfer.attestation.snp import verify_snp
from verinfer.attestation.testpki import TestPKI

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "attestation"


def cases() -> list[tuple[str, str, Callable[[], object]]]:
    phala = int(datetime(2025, 6, 19, 12, tzinfo=UTC).timestamp())
    sgx = (DATA / "dcap-qvl" / "sgx_quote").read_bytes()
    sgx_c = load_collateral(DATA / "dcap-qvl" / "sgx_quote_collateral.json")
    tdx = trim_quote((DATA / "dcap-qvl" / "tdx_quote").read_bytes())
    tdx_c = load_collateral(DATA / "dcap-qvl" / "tdx_quote_collateral.json")
    near = trim_quote(bytes(json.loads((DATA / "near-mpc" / "quote.json").read_text())))
    near_c = load_collateral(DATA / "near-mpc" / "collateral.json")
    snp_dir = DATA / "virtee-sev"
    snp = bytes.fromhex("".join((snp_dir / "report_milan.hex").read_text().split()))
    vcek, chain = (snp_dir / "vcek_milan.der").read_bytes(), (snp_dir / "cert_chain_milan").read_bytes()
    snp_at = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    pki = TestPKI.generate()
    now = datetime.now(UTC)
    tq = pki.quote(binding_report_data("0x" + "ab" * 20, 31337, "0x" + "12" * 20, 1, bytes(32)))
    tc = pki.collateral(now - timedelta(hours=1))
    return [
        ("dcap-qvl sample SGX v3 (Intel root)", "ConfigurationAndSWHardeningNeeded",
         lambda: verify_dcap(sgx, sgx_c, as_of=phala)),
        ("dcap-qvl sample TDX v4 (Intel root)", "UpToDate", lambda: verify_dcap(tdx, tdx_c, as_of=phala)),
        ("near/mpc dstack TDX v4 (Intel root)", "UpToDate", lambda: verify_dcap(near, near_c, as_of=1786622400)),
        ("verinfer test PKI SGX v3 (INSECURE root)", "UpToDate",
         lambda: verify_dcap(tq, tc, as_of=int(now.timestamp()), root_ca_der=pki.root_der)),
        ("virtee/sev SEV-SNP Milan (AMD ARK)", "signature + chain ok",
         lambda: verify_snp(snp, vcek, chain, as_of=snp_at)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=100)
    args = ap.parse_args()
    console = Console()
    table = Table(title=f"verify time per quote ({args.repeats} runs each, median / p90)")
    for col in ("vector", "result", "median ms", "p90 ms"):
        table.add_column(col, justify="right" if "ms" in col else "left")
    for name, expect, fn in cases():
        r = fn()
        status = getattr(r, "status", expect)
        assert status == expect, (name, status)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        table.add_row(name, str(status), f"{statistics.median(times):.2f}", f"{times[int(0.9 * len(times)) - 1]:.2f}")
    console.print(table)
    console.print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
