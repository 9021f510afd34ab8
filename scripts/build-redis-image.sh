#!/usr/bin/env bash
# Provide the Redis image multi-node scenarios use: sfu-harness/redis:<debian version>.
# There is no registry here, so the image is Debian's own redis-server binary with the
# shared libraries it links (as `ldd` lists them) in a FROM scratch image. Idempotent.
#
# usage: scripts/build-redis-image.sh
set -euo pipefail
image="sfu-harness/redis:7"
say() { printf '[build-redis-image] %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
  say "$image is present"
  exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing Debian's redis-server (its binary only is used; no host service is needed)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Keep the package's service from starting on the host (and leave an existing
  # policy alone).
  ours=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    ours=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  if [ "$ours" = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi
bin="$(command -v redis-server)"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/root/usr/bin" "$ctx/root/tmp"
cp "$bin" "$ctx/root/usr/bin/redis-server"
# The binary's libraries and loader, at the paths it looks for them.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  mkdir -p "$ctx/root$(dirname "$lib")"
  cp -L "$lib" "$ctx/root$lib"
done
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
LABEL org.opencontainers.image.title="redis-server from Debian (built locally by sfu-harness)"
LABEL sfu-harness.built-by="scripts/build-redis-image.sh"
ENTRYPOINT ["/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]
DOCKERFILE
say "building image $image"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null \
  || { say "docker build of $image failed"; exit 3; }
say "$image ready"
