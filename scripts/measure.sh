#!/usr/bin/env bash
# The main job: build the three variants and measure them side by side.
# Extra arguments go to `imgopt measure` (e.g. --format json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh
# The first run compiles imgopt (a few minutes on two cores).
cargo run --locked -- measure "$@"
