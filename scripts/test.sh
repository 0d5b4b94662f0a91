#!/usr/bin/env bash
# README command 2: every test. Installs first, then forge (contracts), slither, ruff + mypy, and pytest
# (Python, on real anvil chains). Every step runs; the script fails if any step failed.
# Slow suites (50 MB CID sweeps, big circuits, ceremonies) run with VERINFER_SLOW=1;
# deep fuzzing/invariants with FOUNDRY_PROFILE=deep.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"

failed=()
step() {  # step NAME CMD...: run, remember a failure, go on
  local name="$1"; shift
  echo "==> $name"
  if ! "$@"; then failed+=("$name"); fi
}

step "forge test (contracts)" npx forge test
step "slither (High/Medium findings must be triaged in contracts/slither.triage.json)" bash scripts/slither.sh
step "ruff (verinfer/)" ruff check verinfer
step "mypy (verinfer/)" mypy

# Three workers on CI's 2 cores (pytest-xdist): a network test spends most of its wall time waiting for blocks and
# node processes (about half of it, measured with --time-report), so with the test clusters' start-up CPU gone
# (no MetaInf selection in test nodes, tests/conftest.py) a third file runs in that time (README, "How pytest runs").
# --dist loadfile keeps each file on one worker (its module fixtures start once); the longest files are collected
# first (tests/conftest.py LONG_FILES) and --no-loadscope-reorder keeps that order (xdist would otherwise start
# files with many tests first). VERINFER_TEST_WORKERS=2 is the previous setting; 0 runs everything in one process.
workers="${VERINFER_TEST_WORKERS:-3}"
echo "==> pytest (-n $workers)"
set +e
python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder --durations=15 "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; rc=1; fi
if [ $rc -ne 0 ]; then failed+=("pytest"); fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'error: failed step(s): %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "==> all steps passed"
