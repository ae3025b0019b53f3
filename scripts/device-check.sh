#!/usr/bin/env bash
# The GPU checks, run on the device tool's machine over what scripts/device-pack.sh
# carried in .device/: the device tests (bit-identity of normalise with the CPU for
# every scheme, dtype and layout; the fit against the CPU and the host emulation; the
# batch-statistics schemes), the host emulation on that machine's CPU, the CUDA
# benchmark, and normd --device=cuda:0's own measurement of where the GPU beats the
# CPU. Everything lands in $OUT (JSON and logs).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/normd-device-check}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
status=0
.device/cuda_device_test --gtest_output="json:$out/cuda_device_test.json" > "$out/cuda_device_test.log" 2>&1 || status=1
.device/kernel_test --gtest_filter='Cuda*' --gtest_output="json:$out/emulation_test.json" > "$out/emulation_test.log" 2>&1 || status=1
.device/cuda_bench --benchmark_format=json --benchmark_min_time=0.3 > "$out/cuda_bench.json" 2> "$out/cuda_bench.log" || status=1
# normd measures itself against the CPU before it listens; its first stdout line says it
# listens, by which time the measurement is in its log.
data="$(mktemp -d)"
coproc NORMD { exec timeout 300 .device/normd --listen=127.0.0.1:0 --data_dir="$data" \
  --region_socket=off --device=cuda:0 2> "$out/normd_device.log"; }
normd_pid=$NORMD_PID
read -r -t 300 listening <&"${NORMD[0]}" || status=1
echo "${listening:-normd did not start}" >> "$out/normd_device.log"
kill "$normd_pid" 2>/dev/null
wait "$normd_pid" 2>/dev/null
grep '"event":"device"' "$out/normd_device.log" || status=1
tail -n 3 "$out/cuda_device_test.log"
exit "$status"
