#!/usr/bin/env python3
"""Soak: 8 normalising clients and 2 exactly-once writers against one normd, for
minutes. Reports calls/s, p50/p99 latency and errors (there must be none), checks
that the train statistics count exactly what the writers sent, and samples the
server's RSS over time (it must level off).

    bench/soak.py --build build --seconds 600 --out soak.json

Run by hand (it takes as long as asked); figures go in the issue notes."""
import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

CHANNELS = 16


def normaliser(address, until, index, results):
    import normd
    rng = np.random.default_rng(index)
    latencies, errors, calls = [], 0, 0
    with normd.Client(address, timeout=30) as client:
        pool = client.shared_pool(1 << 20) if index % 2 else None  # half through shared memory
        x = rng.normal(0, 1, (32, CHANNELS)).astype(np.float32)
        if pool is not None:
            xs, ys = pool.array(x.shape), pool.array(x.shape)
            xs[...] = x
        while time.time() < until:
            t0 = time.perf_counter()
            try:
                if pool is None:
                    client.zscore(x, "soak")
                else:
                    client.zscore(xs, "soak", out=ys)
            except normd.NormdError:
                errors += 1
            latencies.append(time.perf_counter() - t0)
            calls += 1
    results.put(("normalise", calls, errors, latencies[::10]))


def writer(address, until, index, results):
    import normd
    rng = np.random.default_rng(100 + index)
    rows, errors, streams = 0, 0, 0
    writer_id = f"soak-writer-{index}"
    sequence = 1
    with normd.Client(address, timeout=60) as client:
        while time.time() < until:
            batches = [rng.normal(5, 2, (256, CHANNELS)) for _ in range(8)]
            try:
                client.fit("soak", batches, writer_id=writer_id, first_sequence=sequence)
                sequence += len(batches)
                rows += 256 * len(batches)
                streams += 1
            except normd.NormdError:
                errors += 1
    results.put(("write", rows, errors, streams))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+) kB", status.read()).group(1)) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--normd", help="the binary (default: BUILD/normd)")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--sample_every", type=float, default=10)
    parser.add_argument("--out", default="soak.json")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    import normd

    work = tempfile.mkdtemp(prefix="normd-soak-", dir=build)
    sockets = tempfile.mkdtemp(prefix="ns-", dir="/tmp")
    server = subprocess.Popen(
        [args.normd or os.path.join(build, "normd"), "--listen=127.0.0.1:0",
         f"--data_dir={work}/data", f"--region_socket={sockets}/regions.sock",
         "--log_requests=false"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = re.search(r"listening on (\S+)", server.stdout.readline()).group(1)
    try:
        with normd.Client(address) as client:
            client.create_dataset("soak", layout="NC", channels=CHANNELS)
            client.fit("soak", [np.zeros((2, CHANNELS))], writer_id="seed")
            client.freeze("soak")
        # Each worker its own process, spawned: gRPC does not survive a fork.
        spawn = mp.get_context("spawn")
        results = spawn.Queue()
        until = time.time() + args.seconds
        workers = [spawn.Process(target=normaliser, args=(address, until, i, results))
                   for i in range(8)]
        workers += [spawn.Process(target=writer, args=(address, until, i, results))
                    for i in range(2)]
        for w in workers:
            w.start()
        began, samples = time.time(), []
        while time.time() < until:
            samples.append((round(time.time() - began), rss_mib(server.pid)))
            time.sleep(min(args.sample_every, max(0.0, until - time.time())))  # the sampling pace
        outcomes = [results.get(timeout=120) for _ in workers]
        for w in workers:
            w.join()
        samples.append((round(time.time() - began), rss_mib(server.pid)))
        calls = sum(o[1] for o in outcomes if o[0] == "normalise")
        errors = sum(o[2] for o in outcomes)
        latencies = sorted(t for o in outcomes if o[0] == "normalise" for t in o[3])
        rows = sum(o[1] for o in outcomes if o[0] == "write")
        with normd.Client(address) as client:
            counted = int(client.stats("soak").count[0])
        report = {
            "seconds": args.seconds, "normalize_calls": calls,
            "normalize_per_second": calls / args.seconds,
            "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[len(latencies) * 99 // 100] * 1e3,
            "errors": errors, "rows_written": rows, "rows_counted": counted - 2,
            "exact": counted - 2 == rows, "rss_mib": samples,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sockets, ignore_errors=True)
    with open(args.out, "w") as out:
        json.dump(report, out, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mib"}, indent=1))
    print("RSS MiB over time:", " ".join(f"{t}s:{m:.0f}" for t, m in samples))
    sys.exit(0 if report["errors"] == 0 and report["exact"] else 1)


if __name__ == "__main__":
    main()
