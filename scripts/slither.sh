#!/usr/bin/env bash
# Static analysis of contracts/src with slither (crytic), through the foundry build (forge + scripts/solc).
# Fails on any High or Medium finding that contracts/slither.triage.json does not accept with a reason.
#
# slither-analyzer pins web3<8 while verinfer pins web3==8.0.0, so slither lives in its own venv,
# .venv-slither (created on first use from scripts/slither-requirements.txt; SLITHER=/path/to/slither overrides).
# Usage (repo root): bash scripts/slither.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$PATH"
SLITHER="${SLITHER:-$ROOT/.venv-slither/bin/slither}"
if [ ! -x "$SLITHER" ]; then
  python3 -m venv "$ROOT/.venv-slither"
  "$ROOT/.venv-slither/bin/pip" install -q -r "$ROOT/scripts/slither-requirements.txt" > "$ROOT/.venv-slither/pip.log" 2>&1 \
    || { tail -20 "$ROOT/.venv-slither/pip.log" >&2; echo "error: installing slither failed" >&2; exit 1; }
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# slither exits non-zero whenever it finds anything; the triage below decides
"$SLITHER" . --filter-paths "node_modules|contracts/test" --exclude-informational --exclude-low \
  --exclude-optimization --json "$OUT/slither.json" > "$OUT/slither.log" 2>&1 || true
if [ ! -s "$OUT/slither.json" ]; then
  tail -30 "$OUT/slither.log" >&2
  echo "error: slither produced no report" >&2
  exit 1
fi
python3 - "$OUT/slither.json" "$ROOT/contracts/slither.triage.json" <<'PY'
import fnmatch, json, sys
report = json.load(open(sys.argv[1]))
if not report.get("success", False):
    sys.exit(f"slither failed: {report.get('error')}")
accepted = json.load(open(sys.argv[2]))["accepted"]
findings = report["results"].get("detectors", [])
used, bad = set(), []
for f in findings:
    if f["impact"] not in ("High", "Medium"):
        continue
    fns = {e["type_specific_fields"]["parent"]["name"] + "." + e["name"]
           for e in f["elements"] if e["type"] == "function"}
    # a finding on a local variable names its function through the variable's parent
    fns |= {p["type_specific_fields"]["parent"]["name"] + "." + p["name"]
            for e in f["elements"] if e["type"] == "variable"
            for p in [e.get("type_specific_fields", {}).get("parent", {})]
            if p.get("type") == "function" and "parent" in p.get("type_specific_fields", {})}
    hit = [i for i, a in enumerate(accepted)
           if a["check"] == f["check"] and any(fnmatch.fnmatchcase(fn, a["function"]) for fn in fns)]
    if hit:
        used.update(hit)
    else:
        bad.append(f)
print(f"slither: {len(findings)} High/Medium findings, {len(findings) - len(bad)} accepted in contracts/slither.triage.json")
for i, a in enumerate(accepted):
    if i not in used:
        print(f"note: triage entry no longer needed: {a['check']} {a['function']}")
for f in bad:
    print(f"UNEXPLAINED [{f['impact']}] {f['check']}: {f['description'].strip()}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
