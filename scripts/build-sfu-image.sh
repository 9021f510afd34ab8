#!/usr/bin/env bash
# Provide the SFU image the scenarios ask for: livekit/livekit-server:<version>.
# Idempotent: an image that is already present is used as is.
# Otherwise the same tag is built locally from LiveKit's Go module (CGO_ENABLED=0, a static
# binary) into a FROM scratch image. Pulling from a registry is opt-in
# (SFU_HARNESS_ALLOW_PULL=1): on machines whose only network is package registries, an
# attempt to reach Docker Hub would be traffic to an address outside the run.
#
# usage: scripts/build-sfu-image.sh [VERSION]        (default v1.13.5, or $LIVEKIT_VERSION)
set -euo pipefail
version="${1:-${LIVEKIT_VERSION:-v1.13.5}}"
image="livekit/livekit-server:${version}"
state="${SFU_HARNESS_STATE:-/var/tmp/sfu-harness}"
mkdir -p "$state/bin"
say() { printf '[build-sfu-image] %s\n' "$*" >&2; }
t0=$(date +%s)

if docker image inspect "$image" >/dev/null 2>&1; then
  say "$image is present"
  exit 0
fi

if [ "${SFU_HARNESS_ALLOW_PULL:-0}" = 1 ]; then
  say "pulling $image"
  if timeout 300 docker pull "$image"; then
    say "pulled $image in $(( $(date +%s) - t0 )) s"
    exit 0
  fi
  say "pull failed; building from the Go module instead"
fi

bin="$state/bin/livekit-server-${version}"
if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || { say "go is needed to build $image and is not on PATH"; exit 3; }
  say "building livekit-server ${version} from its Go module (first time: ~5 min on 2 cores)"
  gobin=$(mktemp -d)
  trap 'rm -rf "$gobin"' EXIT
  CGO_ENABLED=0 GOBIN="$gobin" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "github.com/livekit/livekit-server/cmd/server@${version}" \
    || { say "go install of livekit-server ${version} failed"; exit 3; }
  mv "$gobin/server" "$bin"
  say "built $bin in $(( $(date +%s) - t0 )) s"
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx" ${gobin:-}' EXIT
cp "$bin" "$ctx/livekit-server"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY livekit-server /livekit-server
LABEL org.opencontainers.image.title="livekit-server ${version} (built locally by sfu-harness)"
LABEL sfu-harness.built-by="scripts/build-sfu-image.sh"
ENTRYPOINT ["/livekit-server"]
DOCKERFILE
say "building image $image"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null \
  || { say "docker build of $image failed"; exit 3; }
say "$image ready in $(( $(date +%s) - t0 )) s"
