#!/usr/bin/env bash
# Make sure a Docker engine answers. Idempotent: does nothing when `docker info` works.
# Where none answers, installs the distro's docker.io (Debian) and starts dockerd by hand,
# logging to $SFU_HARNESS_STATE/dockerd.log (there is no systemd on CI machines).
set -euo pipefail
state="${SFU_HARNESS_STATE:-/var/tmp/sfu-harness}"
mkdir -p "$state"
say() { printf '[setup-docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  say "docker engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! command -v dockerd >/dev/null 2>&1; then
  say "no dockerd: installing Debian's docker.io (takes ~1 min)"
  ok=0
  for try in 1 2 3; do
    if $sudo apt-get update -qq >"$state/apt-docker.log" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker.io >>"$state/apt-docker.log" 2>&1; then
      ok=1; break
    fi
    say "apt-get failed (try $try of 3); retrying in 5 s"
    sleep 5
  done
  [ "$ok" = 1 ] || { say "apt-get install docker.io failed; see $state/apt-docker.log"; exit 3; }
fi

pid_is_dockerd() { [ -f "$state/dockerd.pid" ] && [ "$(cat "/proc/$(cat "$state/dockerd.pid")/comm" 2>/dev/null)" = dockerd ]; }
if pid_is_dockerd; then
  say "dockerd already started (pid $(cat "$state/dockerd.pid")), waiting for it"
else
  say "starting dockerd (log: $state/dockerd.log)"
  # setsid: dockerd must not die with this shell or the caller's process group.
  $sudo setsid dockerd >"$state/dockerd.log" 2>&1 < /dev/null &
  echo $! >"$state/dockerd.pid"
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    say "docker engine is up"
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within 60 s; last lines of $state/dockerd.log:"
tail -n 20 "$state/dockerd.log" >&2 || true
exit 3
