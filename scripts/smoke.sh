#!/usr/bin/env bash
# Quickstart 1/2: set up (Docker engine, LiveKit image), build, and run the smoke scenario
# against a real LiveKit; ends with the verdict. Exit code is the harness's.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/setup.sh
echo "[smoke] building sfu-harness (first build: several minutes on 2 cores)" >&2
cargo build -q -p sfu-harness --bin sfu-harness
echo "[smoke] set-up and build took $(( $(date +%s) - t0 )) s" >&2
exec target/debug/sfu-harness run scenarios/smoke.toml "$@"
