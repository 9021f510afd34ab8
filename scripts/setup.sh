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
# iproute2: network sites are namespaces with veths (ip), bandwidth faults use tc.
if ! command -v ip >/dev/null 2>&1 || ! command -v tc >/dev/null 2>&1; then
  echo "[setup] installing iproute2" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq iproute2 >/dev/null
fi
"$here/build-sfu-image.sh" "${LIVEKIT_VERSION:-v1.13.5}"
"$here/build-redis-image.sh"
"$here/build-nginx-image.sh"
