#!/usr/bin/env bash
# README command 2: every test. Installs first, then forge (contracts) and pytest (Python, on a real anvil).
# Slow suites (50 MB CID sweeps, big circuits, ceremonies) run with VERINFER_SLOW=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"

echo "==> forge test (contracts)"
npx forge test

echo "==> ruff + mypy (verinfer/, config in pyproject.toml)"
ruff check verinfer
mypy

echo "==> pytest"
set +e
python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi
exit $rc
