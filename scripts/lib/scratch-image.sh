# Shared by the build-*-image.sh scripts: a Debian package's binary, with the shared
# libraries `ldd` lists, in a FROM scratch image (there is no registry here).
#
# usage (sourced): scratch_image IMAGE PACKAGE BINARY-NAME SAY-PREFIX
#   with $extra_files (a function that adds files under "$ctx/root", optional) and
#   $entrypoint (the Dockerfile's ENTRYPOINT JSON array) set by the caller.

say() { printf '[%s] %s\n' "$say_prefix" "$*" >&2; }

scratch_image() {
  local image="$1" package="$2" binary="$3"
  say_prefix="$4"
  if docker image inspect "$image" >/dev/null 2>&1; then
    say "$image is present"
    return 0
  fi
  if ! command -v "$binary" >/dev/null 2>&1; then
    say "installing Debian's $package (its binary only is used; no host service is needed)"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # Keep the package's service from starting on the host (and leave an existing
    # policy alone).
    local ours=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
      $sudo chmod +x /usr/sbin/policy-rc.d
      ours=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
    if [ "$ours" = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  fi
  local bin; bin="$(command -v "$binary")"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  mkdir -p "$ctx/root/usr/bin" "$ctx/root/tmp"
  cp "$bin" "$ctx/root/usr/bin/$binary"
  # The binary's libraries and loader, at the paths it looks for them.
  local lib
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$ctx/root$(dirname "$lib")"
    cp -L "$lib" "$ctx/root$lib"
  done
  if declare -F extra_files >/dev/null; then extra_files; fi
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY root/ /
LABEL org.opencontainers.image.title="$binary from Debian's $package (built locally by sfu-harness)"
LABEL sfu-harness.built-by="scripts/$say_prefix.sh"
ENTRYPOINT $entrypoint
DOCKERFILE
  say "building image $image"
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" >/dev/null \
    || { say "docker build of $image failed"; exit 3; }
  say "$image ready"
}
