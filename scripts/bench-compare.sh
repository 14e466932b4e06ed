#!/usr/bin/env bash
# Measures a warm `imgopt compare`: every variant already built, so the run
# is cache hits plus measuring. Uses hyperfine when installed (Debian
# package `hyperfine`), a plain timed loop otherwise. Needs a baseline
# file; the first (warm-up) run writes one in a scratch copy if needed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-10}"

cargo build --quiet --locked
BIN="$ROOT/target/debug/imgopt"
[ -f imgopt-baseline.json ] || "$BIN" compare --update-baseline >/dev/null

# The first run builds whatever is missing; the measured runs are warm.
"$BIN" compare >/dev/null 2>&1 || true

if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs "$RUNS" --ignore-failure \
        "$BIN compare" "$BIN compare --no-build"
else
    for cmd in "compare" "compare --no-build"; do
        start=$(date +%s.%N)
        for _ in $(seq "$RUNS"); do "$BIN" $cmd >/dev/null 2>&1 || true; done
        end=$(date +%s.%N)
        echo "imgopt $cmd: $(echo "($end - $start) / $RUNS" | bc -l | cut -c1-5) s mean over $RUNS runs"
    done
fi
