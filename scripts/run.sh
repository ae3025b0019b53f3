#!/usr/bin/env bash
# Installs what is missing, builds, and starts normd in the foreground with its
# RocksDB store under ./data. Flags are passed to normd (see build/normd --help).
#   NORMD_LISTEN (default 127.0.0.1:50051), NORMD_DATA_DIR (default ./data)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
scripts/build.sh -DNORMD_BUILD_TESTS=OFF -DNORMD_BUILD_BENCHMARKS=OFF
exec build/normd --listen="${NORMD_LISTEN:-127.0.0.1:50051}" \
  --data_dir="${NORMD_DATA_DIR:-./data}" "$@"
