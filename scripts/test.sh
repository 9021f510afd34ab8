#!/usr/bin/env bash
# Quickstart 2/2: set up (Docker engine, LiveKit image) and run the whole test suite,
# end-to-end tests against the real SFU included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace "$@"
