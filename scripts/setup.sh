#!/usr/bin/env bash
# Everything a run needs on a fresh machine: a Docker engine and the SFU image.
# Idempotent and quick when already done.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup-docker.sh"
# nftables: the network faults (block-udp) add and remove their own tables.
if ! command -v nft >/dev/null 2>&1; then
  echo "[setup] installing nftables" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nftables >/dev/null
fi
"$here/build-sfu-image.sh" "${LIVEKIT_VERSION:-v1.13.5}"
"$here/build-redis-image.sh"
