#!/usr/bin/env bash
# The project's tests: the sample service's own tests, then imgopt's unit
# and integration tests against the real engine (set up first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh --tests

echo "== app: npm test" >&2
npm --prefix app ci --no-audit --no-fund --loglevel=error
npm --prefix app test

# Integration tests share one engine and two cores: two threads at most.
echo "== imgopt: cargo test" >&2
cargo test --locked -- --test-threads=2
