#!/usr/bin/env python3
"""The CUDA path against the yardsticks and what a user would do instead, in one run
on one GPU (it needs one, a CUDA build of torch, and normd built with its CUDA path):

- kernels (bench/cuda_bench): normalise against a device-to-device copy of the same
  bytes, fit against a read-only reduction of the same bytes, batch norm in training
  mode, for [64, 3, 224, 224] and [256, 64, 28, 28] float32;
- in process (torch CUDA tensors through normd's Python module) against torch's own
  F.batch_norm (training and eval), a torch copy, and torch's mean/var for the fit;
- through a server: Client.zscore of the image batch (host memory) from a normd with
  --device=cuda:0 and from one on the CPU, beside a bare gRPC echo of the same bytes
  and numpy on the host.

Prints the ratios the CUDA issue names and writes every figure as JSON.

    bench/cuda_path.py --build build --out cuda_path.json     # about a minute
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np

from whole_path import measure, start  # the same timing loop and server start

SHAPES = {"images": (64, 3, 224, 224), "activations": (256, 64, 28, 28)}


def kernel_side(build, min_time):
    run = subprocess.run([os.path.join(build, "bench", "cuda_bench"), "--benchmark_format=json",
                          f"--benchmark_min_time={min_time}"],
                         check=True, capture_output=True, text=True)
    report = json.loads(run.stdout)["benchmarks"]
    failed = [b["name"] for b in report if b.get("error_occurred")]
    if failed:
        raise RuntimeError(f"cuda_bench could not run: {failed}")
    return [{"name": "kernel/" + b["name"].replace("/manual_time", ""),
             "bytes_per_second": b["bytes_per_second"],
             "p50_us": b["real_time"] / (1e3 if b["time_unit"] == "ns" else 1)}
            for b in report]


def gpu_time(call, repeats=50):
    """Median GPU time of `call` in seconds, by CUDA events on the current stream."""
    import torch
    for _ in range(5):
        call()
    times = []
    for _ in range(repeats):
        start_event = torch.cuda.Event(enable_timing=True)
        stop_event = torch.cuda.Event(enable_timing=True)
        start_event.record()
        call()
        stop_event.record()
        stop_event.synchronize()
        times.append(start_event.elapsed_time(stop_event) / 1e3)
    times.sort()
    return times[len(times) // 2]


def in_process():
    import torch
    import torch.nn.functional as F
    import normd
    from normd import local

    results = []
    for label, shape in SHAPES.items():
        x = (torch.randn(shape, device="cuda") * 3 + 7).contiguous()
        y = torch.empty_like(x)
        nbytes = x.numel() * 4
        channels = shape[1]
        stats = types.SimpleNamespace(
            count=np.full(channels, 1000, np.uint64), mean=np.full(channels, 7.0),
            variance=np.full(channels, 9.0), min=np.full(channels, -20.0),
            max=np.full(channels, 30.0), quantile_ranks=None, quantiles=None)
        zscore = local.Normalizer("bench", 1, "zscore", {}, "NCHW", channels, stats)
        training = local.Normalizer("", 0, "batchnorm_training", {}, "NCHW", channels)
        running_mean = torch.full((channels,), 7.0, device="cuda")
        running_var = torch.full((channels,), 9.0, device="cuda")
        rows = {
            "torch_copy": (lambda: y.copy_(x), 2 * nbytes),
            "torch_batch_norm_training": (
                lambda: F.batch_norm(x, None, None, training=True), 2 * nbytes),
            "torch_batch_norm_eval": (
                lambda: F.batch_norm(x, running_mean, running_var, training=False), 2 * nbytes),
            "normd_batchnorm_training_out": (lambda: training(x, out=y), 2 * nbytes),
            "normd_zscore_out": (lambda: zscore(x, out=y), 2 * nbytes),
            "torch_mean_var": (lambda: torch.var_mean(x, dim=(0, 2, 3), unbiased=False), nbytes),
            "normd_moments": (lambda: normd.moments(x, layout="NCHW"), nbytes),
        }
        for name, (call, moved) in rows.items():
            seconds = gpu_time(call)
            results.append({"name": f"py/{name}/{label}", "bytes_per_second": moved / seconds,
                            "p50_us": seconds * 1e6})
    return results


def through_servers(build, min_time):
    import grpc
    import normd

    work = tempfile.mkdtemp(prefix="normd-cuda-bench-", dir=build)
    sockets = tempfile.mkdtemp(prefix="nc-", dir="/tmp")
    procs, results = [], []
    try:
        addresses = {}
        for name, flags in (("cpu", []), ("device", ["--device=cuda:0"])):
            proc, address = start(
                [os.path.join(build, "normd"), "--listen=127.0.0.1:0",
                 f"--data_dir={work}/{name}", "--region_socket=off", "--log_requests=false",
                 f"--max_message_bytes={1 << 30}", *flags], r"listening on (\S+)")
            procs.append(proc)
            addresses[name] = address
        echo_proc, echo_address = start(
            [os.path.join(build, "bench", "echo_server"), "--listen=127.0.0.1:0"],
            r"echo listening on (\S+)")
        procs.append(echo_proc)
        rng = np.random.default_rng(1)
        x = rng.normal(3.0, 2.0, SHAPES["images"]).astype(np.float32)
        y = np.empty_like(x)
        nbytes = x.nbytes
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        echo = grpc.insecure_channel(echo_address, options=options).unary_unary("/bench.Echo/Echo")
        results.append(measure("server/echo_tcp", nbytes, lambda: echo(x.tobytes()), min_time))
        mean = np.full((1, 3, 1, 1), 3.0, np.float32)
        inv_std = np.full((1, 3, 1, 1), 0.5, np.float32)
        results.append(measure("server/numpy_zscore_out", nbytes, lambda: np.multiply(
            np.subtract(x, mean, out=y), inv_std, out=y), min_time))
        outputs = {}
        for name, address in addresses.items():
            with normd.Client(address, max_message_bytes=1 << 30) as client:
                client.create_dataset("img", layout="NCHW", channels=3)
                client.fit("img", [x[:8]])
                client.freeze("img")
                results.append(measure(f"server/normd_zscore_{name}", nbytes,
                                       lambda: client.zscore(x, "img"), min_time))
                outputs[name] = client.zscore(x, "img")
        np.testing.assert_array_equal(outputs["device"], outputs["cpu"])  # the same bits
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return results


def ratios(results):
    rate = {r["name"]: r["bytes_per_second"] for r in results}
    lines = []
    for label, copy_name, sum_name in (("images", "images_64x3x224x224", "images_f32"),
                                       ("activations", "activations_256x64x28x28",
                                        "activations_f32")):
        copy = rate[f"kernel/BM_DeviceCopy/{copy_name}"]
        read = rate[f"kernel/BM_DeviceReadOnlySum/{sum_name}"]
        lines.append(f"{label}: normalise / D2D copy = "
                     f"{rate[f'kernel/BM_CudaNormalize/f32_{label}'] / copy:.2f} (target >= 0.8)")
        lines.append(f"{label}: fit / read-only reduction = "
                     f"{rate[f'kernel/BM_CudaFit/f32_{label}'] / read:.2f} (target >= 0.7)")
        lines.append(f"{label}: normd batch norm (training) / torch F.batch_norm = "
                     f"{rate[f'py/normd_batchnorm_training_out/{label}'] / rate[f'py/torch_batch_norm_training/{label}']:.2f}"
                     " (target > 1)")
        lines.append(f"{label}: normd zscore / torch F.batch_norm eval = "
                     f"{rate[f'py/normd_zscore_out/{label}'] / rate[f'py/torch_batch_norm_eval/{label}']:.2f}")
    if "server/normd_zscore_device" in rate:
        lines.append("server, 38.5 MB zscore: device / CPU = "
                     f"{rate['server/normd_zscore_device'] / rate['server/normd_zscore_cpu']:.2f}, "
                     f"device / echo = {rate['server/normd_zscore_device'] / rate['server/echo_tcp']:.2f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="cuda_path.json")
    parser.add_argument("--min_time", type=float, default=0.5, help="seconds per benchmark")
    parser.add_argument("--no_servers", action="store_true",
                        help="kernels and in-process only (where the server cannot be built)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    results = kernel_side(build, args.min_time)
    results += in_process()
    if not args.no_servers:
        results += through_servers(build, args.min_time)
    summary = ratios(results)
    print(summary)
    with open(args.out, "w") as out:
        json.dump({"results": results, "ratios": summary.splitlines()}, out, indent=1)


if __name__ == "__main__":
    main()
