#!/usr/bin/env bash
# Provide the Redis image multi-node scenarios use: sfu-harness/redis:<debian version>.
# There is no registry here, so the image is Debian's own redis-server binary with the
# shared libraries it links (as `ldd` lists them) in a FROM scratch image. Idempotent.
#
# usage: scripts/build-redis-image.sh
set -euo pipefail
. "$(dirname "$0")/lib/scratch-image.sh"
entrypoint='["/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]'
scratch_image "sfu-harness/redis:7" redis-server redis-server build-redis-image
