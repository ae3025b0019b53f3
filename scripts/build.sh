#!/usr/bin/env bash
# Configures and builds normd into build/. Extra arguments go to CMake's configure;
# BUILD_TARGETS (space-separated) builds only those targets and what they need.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# shellcheck disable=SC2086  # the targets are words
cmake --build build ${BUILD_TARGETS:+--target $BUILD_TARGETS}
