#!/usr/bin/env bash
# The README's test command (CI runs it through .ci/run). Installs what is missing,
# then builds and runs every test in three builds, each ctest running as many tests at a
# time as the machine has cores:
#   build/           the plain build: every suite, C++ and Python, the benchmarks'
#                    smokes, and the container image built by podman and run;
#   build-sanitize/  clang with AddressSanitizer, UBSan and libFuzzer's coverage: every
#                    suite but the image's and those that check files, not code (the
#                    deployment files', the docs'), against this build's normd and
#                    normctl, then each fuzz target for NORMD_FUZZ_SECONDS (default 60);
#   build-tsan/      ThreadSanitizer, against Abseil rebuilt with it: every suite but the
#                    kernels' and the fuzz targets' (code that runs on one thread).
# Any sanitizer report fails its test. The sanitizer builds compile the kernels for two
# SIMD targets; every build has line tables only and compiles the tests' own code with
# -Og (see CMakeLists.txt); unity builds share each folder's headers across its files.
#
# `scripts/test.sh quick`: the loop to run after a change, on an existing build/: the
# build, then `ctest -L quick` (the C++ suites and the layering check).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

if [[ "${1:-}" == quick ]]; then
  cmake --build build
  exec ctest --test-dir build -L quick -j"$jobs" --output-on-failure
fi

scripts/install-deps.sh test
# The container image's base (debootstrap) and build (apt inside, then a build of normd)
# wait on the network as much as they compute: start them beside the plain build. The
# container test then builds the same Dockerfile again, from podman's layer cache, and
# reports any failure itself.
mkdir -p build
(scripts/podman.sh base && scripts/podman.sh build) > build/image.log 2>&1 &
image=$!
scripts/build.sh -DCMAKE_UNITY_BUILD=ON -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=ON
wait "$image" || echo "test.sh: the image's early build failed (build/image.log); the container test builds it again" >&2
ctest --test-dir build -j"$jobs" --output-on-failure --timeout 900

CXX=clang++-14 cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_UNITY_BUILD=ON -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=OFF \
  -DNORMD_SANITIZE=address,undefined -DNORMD_FUZZ=ON \
  -DNORMD_FUZZ_SECONDS="${NORMD_FUZZ_SECONDS:-60}" >/dev/null
cmake --build build-sanitize
ctest --test-dir build-sanitize -j"$jobs" --output-on-failure --timeout 900

scripts/tsan-abseil.sh build-tsan/abseil
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_UNITY_BUILD=ON \
  -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=OFF -DNORMD_SANITIZE=thread \
  -DNORMD_TSAN_ABSEIL_DIR="$PWD/build-tsan/abseil/lib" >/dev/null
cmake --build build-tsan
ctest --test-dir build-tsan -j"$jobs" --output-on-failure --timeout 900
