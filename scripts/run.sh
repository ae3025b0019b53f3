#!/usr/bin/env bash
# Installs what is missing, builds, and starts normd in the foreground: gRPC on
# 127.0.0.1:50051, its RocksDB store under ./data. Arguments go to normd, and every
# flag can also come from the environment as NORMD_<FLAG> (see build/normd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
# Only what serving and the README's worked example need: the server and normctl.
# A unity build: each folder's files compiled together, sharing the gRPC and Protobuf
# headers that dominate a first build.
BUILD_TARGETS="normd normctl" scripts/build.sh -DCMAKE_UNITY_BUILD=ON \
  -DNORMD_BUILD_TESTS=OFF -DNORMD_BUILD_BENCHMARKS=OFF
exec build/normd "$@"
