#!/usr/bin/env bash
# Everything a run needs on a fresh machine: a Docker engine and the SFU image.
# Idempotent and quick when already done.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup-docker.sh"
"$here/build-sfu-image.sh" "${LIVEKIT_VERSION:-v1.13.5}"
