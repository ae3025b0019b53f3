#!/usr/bin/env python3
"""Fit and normalise where the data lives: normd's kernels in the caller's process.

Measures in one run, on a [64, 3, 224, 224] batch (float32, 38.5 MB, and uint8):
normd's fit and normalise kernels in C++ (bench/kernel_bench, single-threaded and on a
pool of two) beside a read-only pass and memcpy of the same bytes; from Python,
normd.moments (the summary), numpy's mean + var, Client.fit sending summaries (reduce +
send + commit, through a real normd), Client.fit sending the batches, the in-process
normaliser with out= and numpy allocating. Prints the table and the issue's ratios
and writes all of it as JSON.

    bench/local_path.py --build build --out local_path.json     # about a minute
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from whole_path import measure  # the same timing loop as the whole-path table

SHAPE = (64, 3, 224, 224)
KERNELS = ("Fit/(f32|u8)_NCHW_64x3x224x224_(simd|pool2)|Normalize/f32_NCHW_64x3x224x224_"
           "(simd|pool2)|BM_ReadOnlySum/(9633792|38535168)|BM_Memcpy/38535168")


def kernel_side(build, min_time):
    run = subprocess.run(
        [os.path.join(build, "bench", "kernel_bench"), f"--benchmark_filter={KERNELS}",
         "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
        check=True, capture_output=True, text=True)
    return [{"name": "kernel/" + b["name"], "iterations": b["iterations"],
             "bytes_per_second": b["bytes_per_second"],
             "p50_us": b["real_time"] if b["time_unit"] == "us" else b["real_time"] / 1e3}
            for b in json.loads(run.stdout)["benchmarks"]]


def python_side(address, min_time):
    import normd

    rng = np.random.default_rng(1)
    f32 = rng.normal(3.0, 2.0, SHAPE).astype(np.float32)
    u8 = rng.integers(0, 256, SHAPE, dtype=np.uint8)
    results = []
    with normd.Client(address, max_message_bytes=1 << 30) as client:
        for name, x in (("f32", f32), ("u8", u8)):
            results.append(measure(f"py/moments_{name}", x.nbytes,
                                   lambda: normd.moments(x, layout="NCHW"), min_time))
            results.append(measure(f"py/numpy_mean_var_{name}", x.nbytes,
                                   lambda: (x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))),
                                   min_time))
            client.create_dataset(f"fit_{name}", layout="NCHW", channels=3)
            # reduce + send + commit: one fit() of 32 batches (one message, one commit),
            # of 8, and of 1.
            for k in (32, 8):
                results.append(measure(f"py/fit_summaries_{k}_{name}", k * x.nbytes,
                                       lambda: client.fit(f"fit_{name}", [x] * k), min_time))
            results.append(measure(f"py/fit_summaries_1_{name}", x.nbytes,
                                   lambda: client.fit(f"fit_{name}", [x]), min_time))
            results.append(measure(f"py/fit_batches_{name}", x.nbytes,
                                   lambda: client.fit(f"fit_{name}", [x], local=False),
                                   min_time))
        client.freeze("fit_f32")
        normalize = client.normalizer("fit_f32")
        out = np.empty_like(f32)
        stats = client.stats("fit_f32", version=normalize.version)
        mean = stats.mean.astype(np.float32).reshape(-1, 1, 1)
        inv_std = (1 / np.sqrt(stats.variance + 1e-5)).astype(np.float32).reshape(-1, 1, 1)
        results.append(measure("py/normalizer_out_f32", 2 * f32.nbytes,
                               lambda: normalize(f32, out=out), min_time))
        results.append(measure("py/numpy_zscore_alloc_f32", 2 * f32.nbytes,
                               lambda: (f32 - mean) * inv_std, min_time))
        results.append(measure("py/numpy_zscore_out_f32", 2 * f32.nbytes,
                               lambda: np.multiply(np.subtract(f32, mean, out=out), inv_std,
                                                   out=out), min_time))
    return results


def report(results):
    rate = {r["name"]: r["bytes_per_second"] for r in results}
    lines = ["| path | GB/s | p50 |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['bytes_per_second'] / 1e9:.2f} | {r['p50_us']:.0f} µs |"
              for r in results]
    lines.append("")

    def ratio(what, a, b, target=None):
        value = rate[a] / rate[b]
        verdict = "" if target is None else (" (met)" if value >= target else " (NOT met)")
        goal = "" if target is None else f" (target >= {target})"
        lines.append(f"- {what}{goal}: {value:.2f}x{verdict}")

    k = "kernel/Fit/{}_NCHW_64x3x224x224_pool2/0"
    for name in ("f32", "u8"):
        ratio(f"local fit {name} (normd.moments) / the fit kernel on 2 threads",
              f"py/moments_{name}", k.format(name), 0.7)
        ratio(f"local fit {name} / numpy mean + var", f"py/moments_{name}",
              f"py/numpy_mean_var_{name}", 5)
        ratio(f"summary path end to end {name}, 32 batches per fit / the fit kernel",
              f"py/fit_summaries_32_{name}", k.format(name), 0.6)
        ratio(f"summary path end to end {name}, 8 batches per fit / the fit kernel",
              f"py/fit_summaries_8_{name}", k.format(name))
        ratio(f"summary path end to end {name}, 1 batch per fit / the fit kernel",
              f"py/fit_summaries_1_{name}", k.format(name))
        ratio(f"summary path / sending the batch {name}", f"py/fit_summaries_1_{name}",
              f"py/fit_batches_{name}")
    ratio("u8 fit kernel (1 thread) / a read-only pass of the same bytes",
          "kernel/Fit/u8_NCHW_64x3x224x224_simd/0", "kernel/BM_ReadOnlySum/9633792", 0.8)
    ratio("f32 fit kernel (1 thread) / a read-only pass", "kernel/Fit/f32_NCHW_64x3x224x224_simd/0",
          "kernel/BM_ReadOnlySum/38535168")
    ratio("local normaliser with out= / the normalise kernel on 2 threads",
          "py/normalizer_out_f32", "kernel/Normalize/f32_NCHW_64x3x224x224_pool2/0", 0.7)
    ratio("local normaliser with out= / numpy allocating", "py/normalizer_out_f32",
          "py/numpy_zscore_alloc_f32", 5)
    ratio("local normaliser with out= / numpy into out", "py/normalizer_out_f32",
          "py/numpy_zscore_out_f32")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="local_path.json")
    parser.add_argument("--min_time", type=float, default=1.0, help="seconds per benchmark")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    results = kernel_side(build, args.min_time)
    work = tempfile.mkdtemp(prefix="normd-bench-", dir=build)  # the store on the build's disk
    server = subprocess.Popen(
        [os.path.join(build, "normd"), "--listen=127.0.0.1:0", f"--data_dir={work}/data",
         "--region_socket=off", "--log_requests=false", f"--max_message_bytes={1 << 30}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        match = re.search(r"listening on (\S+)", server.stdout.readline())
        if not match:
            raise RuntimeError("normd did not start")
        results += python_side(match.group(1), args.min_time)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    with open(args.out, "w") as out:
        json.dump({"benchmarks": results}, out, indent=1)
    print(report(results))


if __name__ == "__main__":
    main()
