#!/usr/bin/env python3
"""The whole data plane in one run: normd's kernels in process, a bare gRPC echo of
the same bytes, normd's Normalize (zscore) and Ingest over TCP, a Unix socket and
shared memory from C++ (whole_path_bench, Google Benchmark) and from Python (the
client in client/python), and what a user does instead: numpy and torch locally.
Prints a table and the ratios the data plane is held to; writes everything as JSON.

    bench/whole_path.py --build build --out whole_path.json          # ~3 minutes
    bench/whole_path.py --build build --smoke                         # 4 KiB only (CI)

Every GB/s counts the tensor's bytes once; p50/p99 are per call (per Ingest stream,
of about 8 MiB, for the Ingest rows)."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

IMAGE_BYTES = 64 * 3 * 224 * 224 * 4
SIZES = [4096, 192 << 10, 1 << 20, IMAGE_BYTES]


def start(command, pattern):
    """Starts a server that prints its address; returns (process, addresses)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    match = re.search(pattern, line)
    if not match:
        proc.kill()
        raise RuntimeError(f"{command[0]} did not start: {line!r}")
    return proc, match.group(1)


def payload(nbytes, rng):
    """(dataset, array) for a float32 tensor of nbytes: [64, 3, 224, 224] NCHW for the
    image size, else [N, 256] NC, as whole_path_bench uses."""
    if nbytes == IMAGE_BYTES:
        return "img", rng.normal(3.0, 2.0, (64, 3, 224, 224)).astype(np.float32)
    return "tab", rng.normal(3.0, 2.0, (nbytes // 4 // 256, 256)).astype(np.float32)


def batches_per_stream(nbytes):
    return max(1, min(256, (8 << 20) // nbytes))


def measure(name, nbytes, call, min_time, min_iterations=5):
    call()  # warm: connections, caches, first-touch of buffers
    times = []
    began = time.perf_counter()
    while len(times) < min_iterations or time.perf_counter() - began < min_time:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"name": name, "iterations": len(times),
            "bytes_per_second": nbytes * len(times) / sum(times),
            "p50_us": times[len(times) // 2] * 1e6,
            "p99_us": times[min(len(times) - 1, len(times) * 99 // 100)] * 1e6}


def python_side(normd_tcp, normd_unix, echo_tcp, echo_unix, sizes, min_time):
    import grpc
    import torch
    import torch.nn.functional as F
    import normd

    rng = np.random.default_rng(2)
    results = []
    tcp = normd.Client(normd_tcp, max_message_bytes=1 << 30)
    unix = normd.Client(normd_unix, max_message_bytes=1 << 30)
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    echoes = {kind: grpc.insecure_channel(target, options=options).unary_unary("/bench.Echo/Echo")
              for kind, target in (("tcp", echo_tcp), ("unix", echo_unix))}
    for nbytes in sizes:
        dataset, x = payload(nbytes, rng)
        stats = tcp.stats(dataset, version=1)
        shape = (-1,) + (1,) * (x.ndim - 2)  # channel axis 1
        mean = stats.mean.astype(np.float32).reshape(shape)
        inv_std = (1 / np.sqrt(stats.variance + 1e-5)).astype(np.float32).reshape(shape)
        y = np.empty_like(x)
        xt, mean_t = torch.from_numpy(x), torch.from_numpy(stats.mean.astype(np.float32))
        var_t = torch.from_numpy(stats.variance.astype(np.float32))

        def numpy_out():
            np.multiply(np.subtract(x, mean, out=y), inv_std, out=y)

        def numpy_alloc():
            return (x - mean) * inv_std

        def torch_batch_norm():
            return F.batch_norm(xt, mean_t, var_t, training=False, eps=1e-5)

        size = f"/{nbytes}"
        results.append(measure("py/numpy_zscore_out" + size, nbytes, numpy_out, min_time))
        results.append(measure("py/numpy_zscore_alloc" + size, nbytes, numpy_alloc, min_time))
        results.append(measure("py/torch_batch_norm" + size, nbytes, torch_batch_norm, min_time))
        for kind, echo in echoes.items():
            results.append(measure(f"py/echo_{kind}" + size, nbytes,
                                   lambda: echo(x.tobytes()), min_time))
        for kind, client in (("tcp", tcp), ("unix", unix)):
            results.append(measure(f"py/normd_zscore_{kind}" + size, nbytes,
                                   lambda: client.zscore(x, dataset), min_time))
        # The same request, serialised once beforehand and sent raw: the client's floor.
        request = normd.v1.normd_pb2.NormalizeRequest(dataset=dataset)
        request.zscore.SetInParent()
        request.input.shape[:] = x.shape
        request.input.dtype = normd.v1.normd_pb2.DTYPE_FLOAT32
        request.input.data = x.tobytes()
        raw = request.SerializeToString()
        results.append(measure("py/normd_zscore_tcp_preserialised" + size, nbytes,
                               lambda: tcp._normalize_bytes(raw), min_time))
        pool = unix.shared_pool(2 * nbytes + 128)
        xs, ys = pool.array(x.shape, np.float32), pool.array(x.shape, np.float32)
        xs[...] = x
        results.append(measure("py/normd_zscore_shm" + size, nbytes,
                               lambda: unix.zscore(xs, dataset, out=ys), min_time))
        np.testing.assert_array_equal(ys, tcp.zscore(x, dataset))  # the same bits either way

        k = batches_per_stream(nbytes)
        results.append(measure(f"py/normd_fit_tcp" + size, k * nbytes,
                               lambda: tcp.fit(dataset, [x] * k, split="validation"), min_time))
        # Shared memory: the buffer is not refilled between batches, so a stream may
        # hold k of them (see Client.fit's shared_stream_batches).
        results.append(measure(f"py/normd_fit_shm" + size, k * nbytes,
                               lambda: unix.fit(dataset, [xs] * k, split="validation",
                                                shared_stream_batches=k), min_time))
        # Sustained ingest of large batches: four to a stream, one commit for the four.
        if k == 1:
            results.append(measure(f"py/normd_fit_shm_4_per_stream" + size, 4 * nbytes,
                                   lambda: unix.fit(dataset, [xs] * 4, split="validation",
                                                    shared_stream_batches=4), min_time))
        pool.close()
    tcp.close()
    unix.close()
    return results


def table(results, sizes):
    by_name = {r["name"]: r for r in results}
    lines = ["| benchmark | " + " | ".join(f"{s / 1e6:g} MB" if s >= 1e6 else f"{s >> 10} KiB"
                                          for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    names = sorted({r["name"].rsplit("/", 1)[0] for r in results}, key=lambda n: (
        not n.startswith(("BM_", "py/numpy", "py/torch")), n))
    for name in names:
        cells = []
        for s in sizes:
            r = by_name.get(f"{name}/{s}")
            cells.append("" if r is None else
                         f"{r['bytes_per_second'] / 1e9:.2f} GB/s, p50 {r['p50_us']:.0f} µs, "
                         f"p99 {r['p99_us']:.0f} µs")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(results, sizes):
    rate = {r["name"]: r["bytes_per_second"] for r in results}
    p50 = {r["name"]: r["p50_us"] for r in results}
    lines = []

    def ratio(what, a, b, table=rate, target=None, higher=True):
        if a in table and b in table:
            value = table[a] / table[b]
            verdict = "" if target is None else (
                " (met)" if (value >= target if higher else value <= target) else " (NOT met)")
            lines.append(f"- {what}: {value:.2f}x{verdict}")

    big = max(sizes)
    ratio(f"shared memory, Python zscore {big} B / local numpy allocating (target >= 4)",
          f"py/normd_zscore_shm/{big}", f"py/numpy_zscore_alloc/{big}", target=4)
    ratio(f"shared memory, Python zscore {big} B / local numpy into a preallocated out",
          f"py/normd_zscore_shm/{big}", f"py/numpy_zscore_out/{big}")
    ratio(f"shared memory, Python zscore {big} B / in-process kernel (target >= 0.5)",
          f"py/normd_zscore_shm/{big}", f"BM_KernelZScore/{big}", target=0.5)
    ratio(f"shared memory, Python fit {big} B, a stream per batch / fit kernel (target >= 0.5)",
          f"py/normd_fit_shm/{big}", f"BM_KernelFit/{big}", target=0.5)
    ratio(f"shared memory, Python fit {big} B, 4 batches per stream / fit kernel (target >= 0.5)",
          f"py/normd_fit_shm_4_per_stream/{big}", f"BM_KernelFit/{big}", target=0.5)
    for s in sizes:
        ratio(f"TCP, C++ Normalize / C++ echo, {s} B (target >= 0.8)",
              f"Normalize/tcp/{s}", f"Echo/tcp/{s}", target=0.8)
        ratio(f"TCP, C++ Ingest / C++ echo, {s} B (target >= 0.8)",
              f"Ingest/tcp/{s}", f"Echo/tcp/{s}", target=0.8)
        ratio(f"TCP, Python zscore / Python echo, {s} B (target >= 0.8)",
              f"py/normd_zscore_tcp/{s}", f"py/echo_tcp/{s}", target=0.8)
        ratio(f"TCP, Python fit / Python echo, {s} B (target >= 0.8)",
              f"py/normd_fit_tcp/{s}", f"py/echo_tcp/{s}", target=0.8)
    small = min(sizes)
    ratio(f"{small} B Normalize p50, Python client / pre-serialised call (target <= 1.3)",
          f"py/normd_zscore_tcp/{small}", f"py/normd_zscore_tcp_preserialised/{small}", p50,
          target=1.3, higher=False)
    ratio(f"{small} B Normalize p50, C++ over a Unix socket / C++ echo over one (target <= 1.5)",
          f"Normalize/unix/{small}", f"Echo/unix/{small}", p50, target=1.5, higher=False)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="whole_path.json")
    parser.add_argument("--smoke", action="store_true", help="4 KiB only, briefly (CI)")
    parser.add_argument("--min_time", type=float, default=1.0, help="seconds per benchmark")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import normd

    sizes = SIZES[:1] if args.smoke else SIZES
    min_time = 0.05 if args.smoke else args.min_time
    # The store on the build's disk, where a user's would be; sockets in a short path.
    work = tempfile.mkdtemp(prefix="normd-bench-", dir=build)
    sockets = tempfile.mkdtemp(prefix="nb-", dir="/tmp")
    servers = []
    try:
        normd_proc, normd_address = start(
            [os.path.join(build, "normd"), f"--listen=127.0.0.1:0,unix:{sockets}/normd.sock",
             f"--data_dir={work}/data", f"--region_socket={sockets}/regions.sock",
             "--log_requests=false", f"--max_message_bytes={1 << 30}"], r"listening on (\S+)")
        servers.append(normd_proc)
        echo_proc, echo_addresses = start(
            [os.path.join(build, "bench", "echo_server"),
             f"--listen=127.0.0.1:0,unix:{sockets}/echo.sock"], r"echo listening on (\S+)")
        servers.append(echo_proc)
        normd_unix, echo_tcp = f"unix:{sockets}/normd.sock", echo_addresses.split(",")[0]
        echo_unix = f"unix:{sockets}/echo.sock"
        with normd.Client(normd_address) as client:  # the frozen datasets every row uses
            rng = np.random.default_rng(1)
            client.create_dataset("tab", layout="NC", channels=256)
            client.create_dataset("img", layout="NCHW", channels=3)
            client.fit("tab", [rng.normal(3, 2, (1024, 256)).astype(np.float32)])
            client.fit("img", [rng.normal(3, 2, (4, 3, 224, 224)).astype(np.float32)])
            client.freeze("tab")
            client.freeze("img")
        env = dict(os.environ, NORMD_TCP=normd_address, NORMD_UNIX=normd_unix,
                   ECHO_TCP=echo_tcp, ECHO_UNIX=echo_unix)
        if args.smoke:
            env["NORMD_BENCH_SMOKE"] = "1"
        cpp = subprocess.run(
            [os.path.join(build, "bench", "whole_path_bench"), "--benchmark_format=json",
             f"--benchmark_min_time={min_time}"], env=env, check=True, capture_output=True,
            text=True)
        report = json.loads(cpp.stdout)
        errors = [b for b in report["benchmarks"] if b.get("error_occurred")]
        if errors:
            raise RuntimeError(f"C++ benchmarks failed: {errors}")
        results = [{"name": b["name"].replace("/real_time", ""), "iterations": b["iterations"],
                    "bytes_per_second": b["bytes_per_second"], "p50_us": b["p50_us"],
                    "p99_us": b["p99_us"]} for b in report["benchmarks"]]
        results += python_side(normd_address, normd_unix, echo_tcp, echo_unix, sizes, min_time)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sockets, ignore_errors=True)
    with open(args.out, "w") as out:
        json.dump({"context": report["context"], "benchmarks": results}, out, indent=1)
    print(table(results, sizes))
    print()
    print(ratios(results, sizes))


if __name__ == "__main__":
    main()
