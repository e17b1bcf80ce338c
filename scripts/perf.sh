#!/usr/bin/env bash
# `make perf`: size and cold-start init time of the `health` function, against
# the budgets (init median < 30 ms, binary < 8 MB). Prints a Markdown snippet
# for docs/perf.md; exits 1 when a budget is missed.
#
#  1. cargo build --release -p functions --bin health      (host target)
#  2. size of target/release/health
#  3. scripts/lambda_runtime.py init --runs $RUNS           (spawn to first GET /next)
#  4. arm64: cargo lambda build --release --arm64 --bin health, when the
#     aarch64-unknown-linux-gnu standard library is installed (else skipped)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-25}"
INIT_BUDGET_MS=30
SIZE_BUDGET_BYTES=$((8 * 1024 * 1024))
OUT="$ROOT/.tools/perf"
mkdir -p "$OUT"

echo "==> cargo build --release -p functions --bin health"
cargo build --release -p functions --bin health
BIN="$ROOT/target/release/health"
SIZE=$(stat -c %s "$BIN")

echo "==> scripts/lambda_runtime.py init --binary target/release/health --runs $RUNS"
python3 scripts/lambda_runtime.py init --binary "$BIN" --function-name health --runs "$RUNS" --json "$OUT/init.json"
read -r MIN MEDIAN P90 < <(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["min_ms"], d["median_ms"], d["p90_ms"])' "$OUT/init.json")

ARM64="skipped"
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
	echo "==> cargo lambda build --release --arm64 --bin health"
	bash "$ROOT/scripts/tools.sh" build
	PATH="$ROOT/.tools/venv/bin:$PATH" cargo lambda build --release --arm64 --bin health
	ARM_BIN="$ROOT/target/lambda/health/bootstrap"
	ARM64="$(stat -c %s "$ARM_BIN") bytes ($(python3 -c "print(f'{$(stat -c %s "$ARM_BIN") / 1048576:.2f}')") MB)"
else
	ARM64="skipped: the aarch64-unknown-linux-gnu standard library is not installed (rustup target add aarch64-unknown-linux-gnu)"
fi

MB=$(python3 -c "print(f'{$SIZE / 1048576:.2f}')")
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
verdict() { if python3 -c "import sys; sys.exit(not ($1))"; then echo "within budget"; else echo "OVER BUDGET"; fi; }
INIT_VERDICT=$(verdict "$MEDIAN < $INIT_BUDGET_MS")
SIZE_VERDICT=$(verdict "$SIZE < $SIZE_BUDGET_BYTES")

cat <<EOF

| measure | value | budget |
| --- | --- | --- |
| \`health\` release binary (host, $(uname -m)) | $SIZE bytes ($MB MB) | < 8 MB: $SIZE_VERDICT |
| init, spawn to first \`GET /next\` ($RUNS cold starts) | min $MIN ms, median $MEDIAN ms, p90 $P90 ms | median < $INIT_BUDGET_MS ms: $INIT_VERDICT |
| \`health\` arm64 \`bootstrap\` (cargo lambda) | $ARM64 | < 8 MB |

Machine: $(nproc) cores, $CPU; rustc $(rustc --version | cut -d' ' -f2); $(date -u +%Y-%m-%d).
EOF

[[ $INIT_VERDICT == "within budget" && $SIZE_VERDICT == "within budget" ]] || {
	echo "make perf: a budget is missed (see above)" >&2
	exit 1
}
