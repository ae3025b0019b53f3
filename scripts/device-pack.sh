#!/usr/bin/env bash
# Packs what the GPU checks run into .device/ (ignored by git) for the device tool,
# which lends a GPU machine that has CUDA's driver but none of Debian's libraries: the
# CUDA tests, the CUDA benchmark and normd itself (for --device's measurement), built
# here with the CUDA path and stripped, with every shared library they load but the C
# library's own and the driver's.
#
#   scripts/device-pack.sh [build-dir]     # then: device run, carry .device,
#                                          #   command: scripts/device-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
cmake -S . -B "$build" -G Ninja -DNORMD_CUDA=ON -DNORMD_BUILD_TESTS=ON -DNORMD_BUILD_BENCHMARKS=ON \
  >/dev/null
cmake --build "$build" --target cuda_device_test kernel_test cuda_bench normd
rm -rf .device && mkdir -p .device/lib
for binary in "$build/tests/cuda_device_test" "$build/tests/kernel_test" \
              "$build/bench/cuda_bench" "$build/normd"; do
  cp "$binary" .device/
  strip .device/"$(basename "$binary")"
  ldd "$binary" | awk '/=> \// {print $3}' | while read -r library; do
    case "$(basename "$library")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*) ;;
      *) cp -nL "$library" .device/lib/ ;;
    esac
  done
done
strip --strip-unneeded .device/lib/*.so* 2>/dev/null || true
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
du -sh .device
