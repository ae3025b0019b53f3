#!/usr/bin/env bash
# Times the README's first command as a new user meets it: a clean clone of HEAD in a
# fresh debian:bookworm container (scripts/podman.sh base makes one with debootstrap),
# from `./scripts/run.sh` to normd's "listening on" line, apt included. Prints the
# seconds; the build's log stays in the container's output above them.
# Usage: scripts/first-start-time.sh   (root, as scripts/podman.sh; a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/src"
scripts/podman.sh base
# Inside: run.sh in the background, its output to a file, until the line that says
# normd serves; the container's exit then stops normd.
scripts/podman.sh run --rm --network=host \
  -v "$work/src:/src" -w /src docker.io/library/debian:bookworm bash -c '
    start=$(date +%s.%N)
    ./scripts/run.sh --listen=127.0.0.1:0 --data_dir=/tmp/data > /tmp/run.log 2>&1 &
    until grep -q "listening on" /tmp/run.log; do
      if ! kill -0 $! 2>/dev/null; then cat /tmp/run.log; exit 1; fi
      sleep 0.5
    done
    tail -n 3 /tmp/run.log
    awk -v start="$start" -v end="$(date +%s.%N)" \
      "BEGIN { printf \"first start: %.0f s to listening, apt included, on %d cores\\n\", end - start, $(nproc) }"'
