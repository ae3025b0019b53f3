#!/usr/bin/env python3
"""What watching the live traffic costs Normalize: the same zscore requests through the
Python client to three normd servers in one run, with traffic off
(--traffic_sample_rate=0), sampled at the default 5%, and folding every request; beside
a bare gRPC echo of the same bytes and numpy doing the z-score locally. Rounds alternate
between the servers and the median round counts, so that drift of the machine lands on
all of them alike. Writes JSON; prints a table and the overhead ratios.

    bench/traffic_overhead.py --build build --out traffic.json     # ~1 minute
    bench/traffic_overhead.py --build build --smoke                # CI: 4 KiB, briefly

The target: <= 10% at 1 MiB with sampling on (the 5% server against the one with
traffic off)."""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from whole_path import start  # noqa: E402  (the same way of starting a server)

RATES = {"off": 0.0, "sampled": 0.05, "every": 1.0}
SIZES = [4096, 1 << 20, 8 << 20]


def throughput(call, nbytes, min_time):
    """Bytes per second of `call` over at least `min_time` seconds."""
    calls, began = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - began
        if elapsed >= min_time and calls >= 3:
            return nbytes * calls / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="traffic_overhead.json")
    parser.add_argument("--smoke", action="store_true", help="4 KiB only, briefly (CI)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min_time", type=float, default=0.4, help="seconds per round")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import grpc
    import normd

    sizes = SIZES[:1] if args.smoke else SIZES
    rounds, min_time = (2, 0.02) if args.smoke else (args.rounds, args.min_time)
    work = tempfile.mkdtemp(prefix="normd-traffic-", dir=build)
    servers, clients, results = [], {}, []
    try:
        for label, rate in RATES.items():
            proc, address = start(
                [os.path.join(build, "normd"), "--listen=127.0.0.1:0",
                 f"--data_dir={work}/{label}", "--region_socket=off", "--log_requests=false",
                 f"--traffic_sample_rate={rate}", f"--max_message_bytes={1 << 30}"],
                r"listening on (\S+)")
            servers.append(proc)
            clients[label] = normd.Client(address, max_message_bytes=1 << 30)
        echo_proc, echo_addresses = start(
            [os.path.join(build, "bench", "echo_server"), "--listen=127.0.0.1:0"],
            r"echo listening on (\S+)")
        servers.append(echo_proc)
        channel = grpc.insecure_channel(echo_addresses.split(",")[0], options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
        echo = channel.unary_unary("/bench.Echo/Echo")
        rng = np.random.default_rng(5)
        for client in clients.values():
            client.create_dataset("tab", layout="NC", channels=256)
            client.fit("tab", [rng.normal(3, 2, (1024, 256)).astype(np.float32)])
            client.freeze("tab")
        for nbytes in sizes:
            x = rng.normal(3.2, 2, (nbytes // 4 // 256, 256)).astype(np.float32)
            stats = clients["off"].stats("tab", version=1)
            mean = stats.mean.astype(np.float32)
            inv_std = (1 / np.sqrt(stats.variance + 1e-5)).astype(np.float32)
            y = np.empty_like(x)
            calls = {f"normd_zscore_traffic_{label}": (lambda c=c: c.zscore(x, "tab"))
                     for label, c in clients.items()}
            calls["echo"] = lambda: echo(x.tobytes())
            calls["numpy_zscore_out"] = lambda: np.multiply(np.subtract(x, mean, out=y),
                                                            inv_std, out=y)
            for call in calls.values():
                call()  # warm
            per_round = {name: [] for name in calls}
            for _ in range(rounds):
                for name, call in calls.items():
                    per_round[name].append(throughput(call, nbytes, min_time))
            for name, values in per_round.items():
                results.append({"name": f"{name}/{nbytes}", "rounds": values,
                                "bytes_per_second": statistics.median(values)})
            # Every server saw the requests its rate says (the 'every' one folds all).
            every = clients["every"].stats("tab", traffic=True)
            assert every.traffic_requests == every.traffic_sampled_requests > 0
    finally:
        for client in clients.values():
            client.close()
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    with open(args.out, "w") as out:
        json.dump({"benchmarks": results}, out, indent=1)
    by_name = {r["name"]: r["bytes_per_second"] for r in results}
    print(f"{'':34}" + "".join(f"{n:>14}" for n in sizes))
    for name in ["numpy_zscore_out", "echo"] + [f"normd_zscore_traffic_{l}" for l in RATES]:
        print(f"{name + ' GB/s':34}" + "".join(f"{by_name[f'{name}/{n}'] / 1e9:14.3f}"
                                              for n in sizes))
    for label in ("sampled", "every"):
        print(f"{'overhead, ' + label + ' vs off':34}" + "".join(
            f"{1 - by_name[f'normd_zscore_traffic_{label}/{n}'] / by_name[f'normd_zscore_traffic_off/{n}']:14.1%}"
            for n in sizes))
    print(f"{'normd (sampled) / echo':34}" + "".join(
        f"{by_name[f'normd_zscore_traffic_sampled/{n}'] / by_name[f'echo/{n}']:14.2f}"
        for n in sizes))


if __name__ == "__main__":
    main()
