#!/usr/bin/env python3
"""The standing benchmark: what a user gets on the default settings, each path beside
what the user would do instead, in one run against a real normd.

- fit: Client.fit(name, batches) as documented (local summaries, the dataset's default
  sketches) of small (4 KiB, [16, 64]) and large (38.5 MB, [64, 3, 224, 224]) batches,
  float32 and uint8, beside numpy computing the same means and variances;
- zscore of 4 KiB and 38.5 MB float32 over TCP, in shared memory and in process
  (Client.normalizer), beside numpy, torch (batch_norm in eval mode) and a bare gRPC
  echo of the same bytes;
- the exported torch module (Client.export(format="module")) beside
  torchvision.transforms.Normalize;
- `normctl ingest` of a 45 MB .npy beside numpy loading it and computing the same
  statistics.

Each ratio is the baseline's time over normd's (above 1: normd is faster). It writes
the table as BENCHMARKS.md (with the date and the machine) and everything as JSON.

    bench/standing.py --build build                 # about two minutes; writes BENCHMARKS.md
    bench/standing.py --build build --smoke         # small sizes, briefly (CI; no timing asserted)
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from whole_path import measure, start  # the timing loop; a server that prints its address

SMALL = (16, 64)              # 4 KiB of float32
IMAGE = (64, 3, 224, 224)     # 38.5 MB of float32
NPY_SHAPE = (11008, 1024)     # 45 MB of float32


def best_of(call, min_time, min_iterations=3):
    """The median wall time, in seconds, of `call` (whole_path's timing loop)."""
    return measure("", 1, call, min_time, min_iterations)["p50_us"] / 1e6


def size_label(nbytes):
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e6 else f"{nbytes / 1024:g} KiB"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"


class Rows:
    def __init__(self):
        self.rows = []

    def add(self, path, what, normd_seconds, baseline, baseline_seconds, nbytes):
        self.rows.append({"path": path, "what": what, "normd_s": normd_seconds,
                          "baseline": baseline, "baseline_s": baseline_seconds,
                          "bytes": nbytes, "ratio": baseline_seconds / normd_seconds})


def fit_rows(client, rows, smoke, min_time):
    rng = np.random.default_rng(3)
    large = (2, 3, 16, 16) if smoke else IMAGE
    cases = [(SMALL, np.float32, 64 if smoke else 2048), ((64, 64), np.uint8, 64 if smoke else 2048),
             (large, np.float32, 2 if smoke else 4), (large, np.uint8, 2 if smoke else 4)]
    for shape, dtype, count in cases:
        if dtype == np.uint8:
            batches = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]
        else:
            batches = [rng.normal(3.0, 2.0, shape).astype(dtype) for _ in range(count)]
        layout, channels = ("NC", shape[1]) if len(shape) == 2 else ("NCHW", shape[1])
        axes = (0,) if len(shape) == 2 else (0, 2, 3)
        name = f"fit-{len(rows.rows)}"
        client.create_dataset(name, layout=layout, channels=channels)

        def fit():
            client.fit(name, batches)

        def numpy_stats():
            pooled = np.concatenate(batches).astype(np.float64)
            return pooled.mean(axis=axes), pooled.var(axis=axes)

        nbytes = sum(b.nbytes for b in batches)
        label = f"{size_label(batches[0].nbytes)} {np.dtype(dtype).name}"
        rows.add("fit", f"Client.fit, {count} batches of {label}", best_of(fit, min_time),
                 "numpy mean + var", best_of(numpy_stats, min_time), nbytes)


def zscore_rows(client, unix, echo, rows, smoke, min_time):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    for dataset, shape in (("tab", SMALL), ("img", (2, 3, 16, 16) if smoke else IMAGE)):
        x = rng.normal(3.0, 2.0, shape).astype(np.float32)
        label = size_label(x.nbytes)
        stats = client.stats(dataset, version=1)
        view = (-1,) + (1,) * (x.ndim - 2)
        mean = stats.mean.astype(np.float32).reshape(view)
        inv_std = (1 / np.sqrt(stats.variance + 1e-5)).astype(np.float32).reshape(view)
        xt = torch.from_numpy(x)
        mean_t = torch.from_numpy(stats.mean.astype(np.float32))
        var_t = torch.from_numpy(stats.variance.astype(np.float32))
        numpy_s = best_of(lambda: (x - mean) * inv_std, min_time)
        torch_s = best_of(lambda: F.batch_norm(xt, mean_t, var_t, training=False, eps=1e-5),
                          min_time)
        echo_s = best_of(lambda: echo(x.tobytes()), min_time)
        tcp_s = best_of(lambda: client.zscore(x, dataset), min_time)
        pool = unix.shared_pool(2 * x.nbytes + 128)
        xs, ys = pool.array(x.shape, np.float32), pool.array(x.shape, np.float32)
        xs[...] = x
        shm_s = best_of(lambda: unix.zscore(xs, dataset, out=ys), min_time)
        local = client.normalizer(dataset)
        out = np.empty_like(x)
        local_s = best_of(lambda: local(x, out=out), min_time)
        np.testing.assert_array_equal(ys, out)  # the same bits either way
        pool.close()
        for path, seconds in (("zscore over TCP", tcp_s), ("zscore in shared memory", shm_s),
                              ("zscore in process", local_s)):
            rows.add("zscore", f"{path}, {label} float32", seconds, "numpy", numpy_s, x.nbytes)
        rows.add("zscore", f"zscore over TCP, {label} float32", tcp_s, "torch batch_norm",
                 torch_s, x.nbytes)
        rows.add("zscore", f"zscore over TCP, {label} float32", tcp_s, "bare gRPC echo", echo_s,
                 x.nbytes)


def export_rows(client, rows, smoke, min_time):
    import torch
    import torchvision.transforms as T

    x = torch.from_numpy(np.random.default_rng(5).normal(
        3.0, 2.0, (2, 3, 16, 16) if smoke else IMAGE).astype(np.float32))
    module = client.export("img", format="module")
    given = client.export("img", format="torchvision")
    reference = T.Normalize(given["mean"], given["std"])
    with torch.no_grad():
        module_s = best_of(lambda: module(x), min_time)
        reference_s = best_of(lambda: reference(x), min_time)
    rows.add("export", f"exported torch module, {size_label(x.numel() * 4)} float32", module_s,
             "torchvision Normalize", reference_s, x.numel() * 4)


def normctl_rows(build, address, client, rows, smoke, work, min_time):
    shape = (256, 64) if smoke else NPY_SHAPE
    path = os.path.join(work, "train.npy")
    np.save(path, np.random.default_rng(6).normal(3.0, 2.0, shape).astype(np.float32))
    client.create_dataset("npy", layout="NC", channels=shape[1])
    normctl = os.path.join(build, "normctl")

    def ingest():
        subprocess.run([normctl, f"--server={address}", "ingest", "npy", path], check=True,
                       capture_output=True)

    def numpy_stats():
        x = np.load(path).astype(np.float64)
        return x.mean(axis=0), x.var(axis=0)

    rows.add("normctl", f"normctl ingest of a {size_label(os.path.getsize(path))} .npy",
             best_of(ingest, min_time), "numpy load + mean + var", best_of(numpy_stats, min_time),
             os.path.getsize(path))


def markdown(rows, context):
    lines = [
        "# Benchmarks: the default paths",
        "",
        f"Measured {context['date']} on {context['machine']} by `bench/standing.py` "
        "(the normd and Python client of this tree, default settings). Ratio: the "
        "baseline's time over normd's; above 1, normd is faster. Rerun it and compare "
        "before and after a change; a ratio that fell is explained in the change's note.",
        "",
        "| path | normd | time | baseline | time | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['path']} | {r['what']} | {r['normd_s'] * 1e3:.3f} ms | "
                     f"{r['baseline']} | {r['baseline_s'] * 1e3:.3f} ms | {r['ratio']:.2f}x |")
    lines += ["", "The older per-part measurements (kernels beside memcpy, the whole data plane, "
              "replicas on etcd, live traffic, the CUDA path) are in "
              "[docs/benchmark-notes.md](docs/benchmark-notes.md)."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default=None, help="JSON of every row")
    parser.add_argument("--markdown", default="BENCHMARKS.md",
                        help="the table, written unless --smoke")
    parser.add_argument("--smoke", action="store_true", help="small sizes, briefly (CI)")
    parser.add_argument("--min_time", type=float, default=1.0, help="seconds per measurement")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import grpc
    import normd

    min_time = 0.0 if args.smoke else args.min_time
    work = tempfile.mkdtemp(prefix="normd-standing-", dir=build)
    sockets = tempfile.mkdtemp(prefix="ns-", dir="/tmp")
    servers = []
    rows = Rows()
    try:
        normd_proc, address = start(
            [os.path.join(build, "normd"), f"--listen=127.0.0.1:0,unix:{sockets}/normd.sock",
             f"--data_dir={work}/data", f"--region_socket={sockets}/regions.sock",
             "--log_requests=false"], r"listening on (\S+)")
        servers.append(normd_proc)
        echo_proc, echo_addresses = start(
            [os.path.join(build, "bench", "echo_server"), "--listen=127.0.0.1:0"],
            r"echo listening on (\S+)")
        servers.append(echo_proc)
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        echo = grpc.insecure_channel(echo_addresses.split(",")[0], options=options).unary_unary(
            "/bench.Echo/Echo")
        with normd.Client(address) as client, normd.Client(f"unix:{sockets}/normd.sock") as unix:
            rng = np.random.default_rng(1)
            client.create_dataset("tab", layout="NC", channels=SMALL[1])
            client.create_dataset("img", layout="NCHW", channels=3)
            client.fit("tab", [rng.normal(3, 2, (1024, SMALL[1])).astype(np.float32)])
            client.fit("img", [rng.normal(3, 2, (4, 3, 224, 224)).astype(np.float32)])
            client.freeze("tab")
            client.freeze("img")
            fit_rows(client, rows, args.smoke, min_time)
            zscore_rows(client, unix, echo, rows, args.smoke, min_time)
            export_rows(client, rows, args.smoke, min_time)
            normctl_rows(build, address, client, rows, args.smoke, work, min_time)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sockets, ignore_errors=True)
    context = {"date": datetime.date.today().isoformat(), "machine": machine(),
               "smoke": args.smoke}
    table = markdown(rows.rows, context)
    print(table)
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"context": context, "rows": rows.rows}, out, indent=1)
    if not args.smoke and args.markdown:
        with open(args.markdown, "w") as out:
            out.write(table)


if __name__ == "__main__":
    main()
