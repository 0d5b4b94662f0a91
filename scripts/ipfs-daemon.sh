#!/usr/bin/env bash
# Run a real js-ipfs daemon (npm ipfs@0.66.1, Kubo-compatible /api/v0) on 127.0.0.1 until Ctrl-C.
# Prints the API URL; point verinfer at it with `export IPFS_API=<url>`.
# Usage: scripts/ipfs-daemon.sh [--port N] [--repo DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${here}/.venv/bin/python"
[ -x "$py" ] || py="$(command -v python3)"
cd "$here"
exec "$py" -m verinfer.storage.jsipfs "$@"
