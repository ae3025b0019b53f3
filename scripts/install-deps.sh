#!/usr/bin/env bash
# Installs the Debian bookworm packages normd needs that are missing; a no-op when
# everything is present. Usage: scripts/install-deps.sh [build|run|test]
#   build: what building and running normd needs (default; the image's build stage)
#   run:   build + numpy, which the README's worked example uses to make its .npy files
#   test:  build + what the test suites need
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev librocksdb-dev libhwy-dev libssl-dev
)
test_packages=(
  libgtest-dev libgmock-dev libgmp-dev libbenchmark-dev pybind11-dev python3-dev
  libcpp-httplib-dev
  python3-torchvision
  python3 python3-pytest python3-numpy python3-torch python3-grpcio python3-protobuf
  clang-14 libclang-rt-14-dev dpkg-dev openssl
  prometheus yamllint docker-compose python3-kubernetes python3-yaml debootstrap
  etcd-server etcd-client python3-dask python3-distributed python3-pandas podman runc
  python3-sklearn python3-scipy python3-selenium chromium chromium-driver
)

run_packages=(python3 python3-numpy)

packages=("${build_packages[@]}")
case "${1:-build}" in
  build) ;;
  run) packages+=("${run_packages[@]}") ;;
  test) packages+=("${run_packages[@]}" "${test_packages[@]}") ;;
  *) echo "install-deps: unknown set '$1'; expected build, run or test" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
