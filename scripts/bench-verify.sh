#!/usr/bin/env bash
# Startup and runtime footprint of every variant: `imgopt verify` with
# RUNS starts per variant (default 5), table on stdout, the JSON document
# saved beside it. The figures in the README ("Does it still start?") come from this script.
#
# Usage: scripts/bench-verify.sh [RUNS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-5}"

cargo build --quiet
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
target/debug/imgopt build >/dev/null
target/debug/imgopt verify --no-build --runs "$RUNS" --format json \
    >"$ROOT/.imgopt/bench-verify.json"
target/debug/imgopt verify --no-build --runs "$RUNS"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "JSON: .imgopt/bench-verify.json" >&2
