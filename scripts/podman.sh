#!/usr/bin/env bash
# Runs podman the way it works on a machine without a container runtime set up for it
# (a CI VM, a build box, these development machines): vfs storage, chroot isolation
# for builds, runc, the host's network, cgroupfs. Usage: scripts/podman.sh ARGS...
#   scripts/podman.sh base     makes the Debian base images the Dockerfile names from
#                              debootstrap (registries are not reachable everywhere)
#   scripts/podman.sh build    builds the Dockerfile as normd:latest
#   scripts/podman.sh ARGS     any other podman command with the same settings
# NORMD_PODMAN_ROOT keeps podman's storage (default: /var/tmp/normd-podman).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${NORMD_PODMAN_ROOT:-/var/tmp/normd-podman}
mkdir -p "$root"
conf="$root/containers.conf"
cat > "$conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$conf"
podman=(podman --root "$root/storage" --runroot "$root/run" --storage-driver=vfs
        --runtime=runc --cgroup-manager=cgroupfs)

case "${1:-}" in
  base)
    # The Dockerfile's two bases, debian:bookworm and debian:bookworm-slim, as one
    # minimal bookworm made here (the slim image is the same system with docs pruned;
    # minbase is smaller still).
    if "${podman[@]}" image exists docker.io/library/debian:bookworm &&
       "${podman[@]}" image exists docker.io/library/debian:bookworm-slim; then
      exit 0
    fi
    rootfs="$root/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | "${podman[@]}" import - docker.io/library/debian:bookworm >&2
    "${podman[@]}" tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
    rm -rf "$rootfs"
    ;;
  build)
    shift
    "${podman[@]}" build --isolation=chroot --network=host -t normd:latest "$@" .
    ;;
  *)
    exec "${podman[@]}" "$@"
    ;;
esac
