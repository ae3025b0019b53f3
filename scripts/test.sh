#!/usr/bin/env bash
# The README's test command (CI runs it through .ci/run). Installs what is missing,
# then builds and runs every test in three builds, each ctest running as many tests at a
# time as the machine has cores, the next build compiling at the lowest priority
# meanwhile:
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
mkdir -p build build-sanitize build-tsan

# Work that waits as much as it computes runs beside the work on the critical path, and
# each sanitizer build compiles at the lowest priority while the build before it runs
# its tests (which wait on servers, etcd and podman as much as they compute): the cores
# a phase leaves idle go to the next one, and a foreground phase barely notices.
# Each starts in a session of its own (setsid), so that stopping it on the way out
# stops its compilers too.
background=()
cleanup() { for pid in "${background[@]}"; do kill -- "-$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
# `finish NAME PID LOG`: waits for a background job; on failure shows its log's end.
finish() {
  if ! wait "$2"; then
    echo "test.sh: $1 failed; the end of $3:" >&2
    tail -n 60 "$3" >&2
    exit 1
  fi
}

# The container image's base (debootstrap) and build (apt inside, then a build of normd)
# wait on the network as much as they compute. The container test then builds the same
# Dockerfile again, from podman's layer cache, and reports any failure itself.
setsid bash -c 'scripts/podman.sh base && scripts/podman.sh build' > build/image.log 2>&1 &
image=$!
background+=("$image")
# Abseil for TSan (a minute's compile) needs nothing of ours.
setsid nice -n 19 scripts/tsan-abseil.sh build-tsan/abseil > build-tsan/abseil.log 2>&1 &
abseil=$!
background+=("$abseil")

scripts/build.sh -DCMAKE_UNITY_BUILD=ON -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=ON
wait "$image" || echo "test.sh: the image's early build failed (build/image.log); the container test builds it again" >&2

CXX=clang++-14 cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_UNITY_BUILD=ON -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=OFF \
  -DNORMD_SANITIZE=address,undefined -DNORMD_FUZZ=ON \
  -DNORMD_FUZZ_SECONDS="${NORMD_FUZZ_SECONDS:-60}" >/dev/null
setsid nice -n 19 cmake --build build-sanitize > build-sanitize/build.log 2>&1 &
sanitize=$!
background+=("$sanitize")
ctest --test-dir build -j"$jobs" --output-on-failure --timeout 900
finish "the sanitizer build" "$sanitize" build-sanitize/build.log
echo "test.sh: build-sanitize built ($(grep -c . build-sanitize/build.log) lines in build-sanitize/build.log)"

finish "Abseil's TSan build" "$abseil" build-tsan/abseil.log
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_UNITY_BUILD=ON \
  -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=OFF -DNORMD_SANITIZE=thread \
  -DNORMD_TSAN_ABSEIL_DIR="$PWD/build-tsan/abseil/lib" >/dev/null
setsid nice -n 19 cmake --build build-tsan > build-tsan/build.log 2>&1 &
tsan=$!
background+=("$tsan")
ctest --test-dir build-sanitize -j"$jobs" --output-on-failure --timeout 900
finish "the TSan build" "$tsan" build-tsan/build.log
echo "test.sh: build-tsan built ($(grep -c . build-tsan/build.log) lines in build-tsan/build.log)"
ctest --test-dir build-tsan -j"$jobs" --output-on-failure --timeout 900
