#!/usr/bin/env python3
"""normd replicas on a shared etcd, in one run (real processes on loopback):

- commit latency (one writer, one small batch per fit, sequential) against the embedded
  RocksDB store and against a three-member etcd, beside a bare gRPC echo round trip;
- aggregate ingest with 1, 2 and 3 replicas on the etcd store (six writer processes,
  spread over the replicas), and with one RocksDB normd, as batches per second, beside one
  process computing the same batches' mean and variance with numpy (no service at all);
- a running-average dataset's commit rate (one key, serialised compare-and-swap);
- failover: the longest gap between acknowledged commits of a steady writer when the
  etcd leader is SIGKILLed.

    bench/scale_out.py --build build --out scale_out.json

Everything shares this machine's cores: the replicas, etcd's members and the writers.
Ratios are what carries over to other machines, not the absolute rates."""
import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
from etcd_cluster import EtcdCluster  # noqa: E402


def start(command, pattern):
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    match = re.search(pattern, proc.stdout.readline())
    if not match:
        proc.kill()
        raise RuntimeError(f"{command[0]} did not start")
    return proc, match.group(1)


def percentiles(times):
    times = sorted(times)
    return {"p50_us": times[len(times) // 2] * 1e6,
            "p99_us": times[min(len(times) - 1, len(times) * 99 // 100)] * 1e6,
            "iterations": len(times)}


def commit_latency(address, dataset, seconds):
    import numpy as np
    import normd
    batch = np.random.default_rng(0).normal(size=(64, 8))
    with normd.Client(address) as client:
        client.fit(dataset, [batch], writer_id="latency")  # warm
        times, sequence, began = [], 2, time.perf_counter()
        while time.perf_counter() - began < seconds:
            t0 = time.perf_counter()
            client.fit(dataset, [batch], writer_id="latency", first_sequence=sequence)
            times.append(time.perf_counter() - t0)
            sequence += 1
    return percentiles(times)


def echo_latency(address, seconds):
    import grpc
    echo = grpc.insecure_channel(address).unary_unary("/bench.Echo/Echo")
    payload = bytes(64 * 8 * 8)
    echo(payload)
    times, began = [], time.perf_counter()
    while time.perf_counter() - began < seconds:
        t0 = time.perf_counter()
        echo(payload)
        times.append(time.perf_counter() - t0)
    return percentiles(times)


def numpy_locally(seconds):
    """What a training script does without normd: numpy's mean and variance of the same
    batches, in process, nothing kept, nothing durable."""
    import numpy as np
    batches = [np.random.default_rng(i).normal(size=(256, 8)).astype(np.float32)
               for i in range(4)]
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for batch in batches:
            batch.mean(axis=0, dtype=np.float64)
            batch.var(axis=0, dtype=np.float64)
        done += len(batches)
    return {"batches_per_second": done / (time.perf_counter() - began)}


def writer(args):
    """One writer process: fits of 4 batches of [256, 8] float32 for `seconds`."""
    address, dataset, writer_id, seconds, start_at = args
    import numpy as np
    import normd
    batches = [np.random.default_rng(i).normal(size=(256, 8)).astype(np.float32)
               for i in range(4)]
    with normd.Client(address) as client:
        while time.time() < start_at:  # every writer begins at once
            time.sleep(0.001)
        done, sequence = 0, 1
        while time.time() < start_at + seconds:
            client.fit(dataset, batches, writer_id=writer_id, first_sequence=sequence)
            sequence += len(batches)
            done += len(batches)
    return done


def aggregate(addresses, dataset, writers, seconds):
    start_at = time.time() + 1.0
    jobs = [(addresses[i % len(addresses)], dataset, f"{dataset}-w{i}", seconds, start_at)
            for i in range(writers)]
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        batches = sum(pool.map(writer, jobs))
    return {"batches_per_second": batches / seconds, "writers": writers,
            "replicas": len(addresses)}


def failover(cluster, address, dataset):
    """Commits as fast as one writer can; kills the leader once commits flow; returns
    the longest gap between two acknowledged commits."""
    import numpy as np
    import normd
    batch = np.random.default_rng(1).normal(size=(64, 8))
    acknowledged, stop = [], threading.Event()

    def run():
        with normd.Client(address) as client:
            sequence = 1
            while not stop.is_set():
                client.fit(dataset, [batch], writer_id="failover", first_sequence=sequence,
                           retry_for=60)
                acknowledged.append(time.perf_counter())
                sequence += 1

    thread = threading.Thread(target=run)
    thread.start()
    while len(acknowledged) < 200:
        time.sleep(0.01)
    leader = cluster.leader()
    killed_at = time.perf_counter()
    leader.kill()
    before = len(acknowledged)
    while len(acknowledged) < before + 200:
        time.sleep(0.01)
    stop.set()
    thread.join()
    after = [t for t in acknowledged if t > killed_at]
    gaps = [b - a for a, b in zip(acknowledged, acknowledged[1:])]
    leader.start()
    leader.wait_ready()
    return {"first_commit_after_kill_ms": (after[0] - killed_at) * 1e3,
            "longest_gap_ms": max(gaps) * 1e3, "leader": leader.name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--out", default="scale_out.json")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(build, "python"))
    os.environ["PYTHONPATH"] = os.path.join(build, "python")
    import normd

    results, processes = {}, []
    with tempfile.TemporaryDirectory(prefix="normd-scale-") as tmp:
        cluster = EtcdCluster(os.path.join(tmp, "etcd")).start()
        try:
            def normd_proc(name, *flags):
                proc, address = start(
                    [os.path.join(build, "normd"), "--listen=127.0.0.1:0",
                     f"--data_dir={tmp}/{name}", "--region_socket=off", "--log_requests=false",
                     *flags], r"listening on (\S+)")
                processes.append(proc)
                return address

            rocksdb = normd_proc("rocksdb")
            replicas = [normd_proc(f"etcd{i}", cluster.store_flag) for i in range(3)]
            echo_proc, echo = start([os.path.join(build, "bench", "echo_server"),
                                     "--listen=127.0.0.1:0"], r"echo listening on (\S+)")
            processes.append(echo_proc)
            for address, name in ((rocksdb, "latency"), (replicas[0], "latency")):
                normd.Client(address).create_dataset(name, layout="NC", channels=8)
            results["commit_latency"] = {
                "echo": echo_latency(echo.split(",")[0], args.seconds),
                "rocksdb": commit_latency(rocksdb, "latency", args.seconds),
                "etcd": commit_latency(replicas[0], "latency", args.seconds)}

            results["aggregate"] = {"numpy_locally_1_process": numpy_locally(args.seconds)}
            normd.Client(rocksdb).create_dataset("agg", layout="NC", channels=8)
            results["aggregate"]["rocksdb_1"] = aggregate([rocksdb], "agg", 6, args.seconds)
            for count in (1, 2, 3):
                name = f"agg{count}"
                normd.Client(replicas[0]).create_dataset(name, layout="NC", channels=8)
                results["aggregate"][f"etcd_{count}"] = aggregate(replicas[:count], name, 6,
                                                                  args.seconds)

            normd.Client(replicas[0]).create_dataset("running", layout="NC", channels=8,
                                                     running_average=True)
            results["running_average"] = aggregate(replicas, "running", 3, args.seconds)

            normd.Client(replicas[0]).create_dataset("failover", layout="NC", channels=8)
            results["failover"] = failover(cluster, replicas[1], "failover")
        finally:
            for proc in processes:
                proc.terminate()
                proc.wait(timeout=60)
            cluster.stop()

    agg = results["aggregate"]
    lat = results["commit_latency"]
    results["ratios"] = {
        "etcd_2 / etcd_1 aggregate": agg["etcd_2"]["batches_per_second"] /
        agg["etcd_1"]["batches_per_second"],
        "etcd_3 / etcd_1 aggregate": agg["etcd_3"]["batches_per_second"] /
        agg["etcd_1"]["batches_per_second"],
        "etcd_1 / rocksdb_1 aggregate": agg["etcd_1"]["batches_per_second"] /
        agg["rocksdb_1"]["batches_per_second"],
        "etcd / rocksdb commit p50": lat["etcd"]["p50_us"] / lat["rocksdb"]["p50_us"],
        "rocksdb commit p50 / echo p50": lat["rocksdb"]["p50_us"] / lat["echo"]["p50_us"],
    }
    with open(args.out, "w") as out:
        json.dump(results, out, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
