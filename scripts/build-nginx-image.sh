#!/usr/bin/env bash
# Provide the nginx image scenarios with an [nginx] table use: sfu-harness/nginx:1.22,
# Debian's nginx binary and its libraries in a FROM scratch image (no registry here).
# The harness bind-mounts the config it generates at /etc/nginx/nginx.conf. Idempotent.
#
# usage: scripts/build-nginx-image.sh
set -euo pipefail
. "$(dirname "$0")/lib/scratch-image.sh"
extra_files() {
  local r="$ctx/root"
  # The paths nginx opens before it reads its config, and its temp directories.
  mkdir -p "$r/etc/nginx" "$r/var/log/nginx" "$r/var/lib/nginx" "$r/run"
  # It resolves its worker user at start: root and nobody, from files.
  printf 'root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'passwd: files\ngroup: files\n' >"$r/etc/nsswitch.conf"
  local nss
  for nss in /lib/x86_64-linux-gnu/libnss_files.so.2 /usr/lib/x86_64-linux-gnu/libnss_files.so.2; do
    if [ -e "$nss" ]; then mkdir -p "$r$(dirname "$nss")"; cp -L "$nss" "$r$nss"; fi
  done
  printf 'events {}\n' >"$r/etc/nginx/nginx.conf"
}
entrypoint='["/usr/bin/nginx", "-g", "daemon off;"]'
scratch_image "sfu-harness/nginx:1.22" nginx nginx build-nginx-image
