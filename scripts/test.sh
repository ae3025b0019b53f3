#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test (C++ and Python):
# first the normal build, then the whole suite again built with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/), where any report fails the run; then the
# whole suite built with ThreadSanitizer (build-tsan/) against Debian's Abseil source
# rebuilt with TSan; and last the libFuzzer targets built with clang (build-fuzz/), each
# fuzzing for NORMD_FUZZ_SECONDS (default 60) under ASan and UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
scripts/build.sh -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=ON
ctest --test-dir build --output-on-failure --timeout 600

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNORMD_BUILD_TESTS=ON \
  -DNORMD_BUILD_BENCHMARKS=OFF -DNORMD_SANITIZE=address,undefined >/dev/null
cmake --build build-asan
ctest --test-dir build-asan --output-on-failure --timeout 900

scripts/tsan-abseil.sh build-tsan/abseil
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNORMD_BUILD_TESTS=ON \
  -DNORMD_BUILD_BENCHMARKS=OFF -DNORMD_SANITIZE=thread \
  -DNORMD_TSAN_ABSEIL_DIR="$PWD/build-tsan/abseil/lib" >/dev/null
cmake --build build-tsan
ctest --test-dir build-tsan --output-on-failure --timeout 900

CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNORMD_BUILD_TESTS=OFF -DNORMD_BUILD_BENCHMARKS=OFF -DNORMD_FUZZ=ON \
  -DNORMD_FUZZ_SECONDS="${NORMD_FUZZ_SECONDS:-60}" -DNORMD_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz --target request_fuzzer npy_fuzzer
ctest --test-dir build-fuzz -L fuzz -j2 --verbose
