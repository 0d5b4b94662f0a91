#!/usr/bin/env bash
# README command 1: the end-to-end demo on a fresh local devnet with the embedded content store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
exec verinfer demo "$@"
