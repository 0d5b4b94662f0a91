"""Write the digits batch verifier and its fixture into contracts/ (`python scripts/render_batch_verifier.py`).

A repository tool, not the library: verinfer.prover.batch renders the sources; this script decides
where in the checkout they go.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from verinfer.prover.batch import digits_batch_artifacts, digits_batch_verifier

ROOT = Path(__file__).resolve().parents[1] / "contracts"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--verifier-only", action="store_true",
                    help="rewrite only the verifier (no proving; the committed fixture stays)")
    a = ap.parse_args()
    if a.verifier_only:
        (ROOT / "src" / "verifiers" / "BatchGroth16VerifierDigitsMlp.sol").write_text(digits_batch_verifier())
        print("wrote BatchGroth16VerifierDigitsMlp.sol (INSECURE keys)")
        return 0
    ver, fix = digits_batch_artifacts(a.n)
    (ROOT / "src" / "verifiers" / "BatchGroth16VerifierDigitsMlp.sol").write_text(ver)
    (ROOT / "test" / "fixtures" / "batch").mkdir(parents=True, exist_ok=True)
    (ROOT / "test" / "fixtures" / "batch" / "DigitsBatchFixture.sol").write_text(fix)
    print("wrote BatchGroth16VerifierDigitsMlp.sol and fixtures/batch/DigitsBatchFixture.sol (INSECURE keys)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
