#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs every test (C++ and Python).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
scripts/build.sh -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=ON
ctest --test-dir build --output-on-failure --timeout 600
