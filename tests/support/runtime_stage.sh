#!/usr/bin/env bash
# Builds the Dockerfile's runtime stage without a container engine, into WORK_DIR/rootfs:
# a minimal Debian bookworm root file system (debootstrap, from the machine's own apt
# sources), the runtime stage's own RUN instruction executed in it through chroot, and
# the two binaries copied to /usr/local/bin as its COPY does. tests/python/test_deploy.py
# then starts normd in it as the image would.
# Usage: tests/support/runtime_stage.sh WORK_DIR NORMD NORMCTL   (root, debootstrap)
set -euo pipefail
work=$(realpath -m "$1")
normd=$2
normctl=$3
dockerfile="$(cd "$(dirname "$0")/../.." && pwd)/Dockerfile"
rootfs="$work/rootfs"
mkdir -p "$work"

# The first Debian archive the machine's apt sources name (deb822 or one-line style).
mirror=$( { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
  awk '/^URIs:/ { print $2; exit }')
if [[ -z "$mirror" && -e /etc/apt/sources.list ]]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit }' /etc/apt/sources.list)
fi
if [[ -z "$mirror" ]]; then
  echo "runtime_stage.sh: no Debian archive in the machine's apt sources" >&2
  exit 1
fi
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}
# The image's apt sources are the machine's (the slim image has updates and security).
rm -f "$rootfs/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
if [[ -e /etc/apt/sources.list ]]; then cp /etc/apt/sources.list "$rootfs/etc/apt/"; fi

# The runtime stage's RUN instruction, continuation lines joined, run as docker would.
run=$(awk '
  /^FROM debian:bookworm-slim/ { runtime = 1; next }
  runtime && /^RUN / { collecting = 1; sub(/^RUN /, "") }
  collecting { line = $0; more = sub(/\\$/, "", line); text = text line " "; if (!more) exit }
  END { print text }' "$dockerfile")
chroot "$rootfs" /bin/sh -c "$run" >"$work/run.log" 2>&1 || {
  tail -20 "$work/run.log" >&2
  exit 1
}
install -m 755 "$normd" "$normctl" "$rootfs/usr/local/bin/"
