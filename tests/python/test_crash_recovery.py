"""normd killed with SIGKILL at random moments under concurrent exactly-once ingest:
after restarts on the same data directory and the clients' resends, the statistics
equal those of one clean run and the frozen versions are unchanged byte for byte."""
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import normd
from conftest import PYTHON_PACKAGE_DIR, NormdProcess

HERE = Path(__file__).resolve().parent
# (dataset, writer, seed, batches, per-sample shape): two writers share one dataset.
JOBS = [
    ("shared", "job-a", 1, 60, (8,)),
    ("shared", "job-b", 2, 60, (8,)),
    ("solo", "job-c", 3, 60, (3, 4, 4)),
]
STREAM_BYTES = 3000  # a few batches per stream, so there are many commits to interrupt
SUMMARIES_PER_STREAM = 4  # the same where fit sends summaries (normd._native built)
KILL_ROUNDS = 8
SIGTERM_ROUNDS = {5}  # a graceful stop instead: drains, flushes, exits 0


def create_datasets(client):
    client.create_dataset("shared", layout="NC", channels=8)
    # One writer: its running average sees batches in one order in every run.
    client.create_dataset("solo", layout="NCHW", channels=3, running_average=True,
                          momentum=0.1)


def start_jobs(address):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PYTHON_PACKAGE_DIR, str(HERE)]))
    return [subprocess.Popen(
        [sys.executable, str(HERE / "crash_client.py"), address, dataset, writer, str(seed),
         str(count), "x".join(map(str, shape)), str(STREAM_BYTES), str(SUMMARIES_PER_STREAM)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for dataset, writer, seed, count, shape in JOBS]


def finish_jobs(jobs):
    results = []
    for job in jobs:
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
        results.append(json.loads(out))
    return results


def committed_batches(address, names=("shared", "solo")) -> int:
    """Train batches committed so far across the datasets; -1 while unreachable."""
    try:
        with normd.Client(address, timeout=5) as client:
            return sum(t.batches for name in names for t in client.get_dataset(name).totals)
    except normd.NormdError:
        return -1


def wait_for_progress(address, at_least, jobs, names=("shared", "solo")) -> int:
    """Polls the server until `at_least` batches are committed or every job ended."""
    while True:
        done = committed_batches(address, names)
        if done >= at_least or all(job.poll() is not None for job in jobs):
            return done
        time.sleep(0.01)


def all_stats(address):
    with normd.Client(address) as client:
        return {name: client.stats(name) for name in ("shared", "solo")}


def test_sigkill_during_concurrent_ingest_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(int(os.environ.get("NORMD_CRASH_SEED", "20261124")))
    server = NormdProcess(tmp_path / "crashed").start()
    try:
        with normd.Client(server.address) as client:
            create_datasets(client)
        jobs = start_jobs(server.address)
        frozen = None
        done = 0
        for round_ in range(KILL_ROUNDS):
            done = wait_for_progress(server.address, done + rng.randint(3, 12), jobs)
            if round_ == 2:
                # Freeze needs training data in "shared": its writers may start later
                # than "solo"'s (a slow sanitizer build), so wait for theirs too.
                wait_for_progress(server.address, 1, jobs, names=("shared",))
                with normd.Client(server.address) as client:
                    version = client.freeze("shared")
                    frozen = client._stub.GetStats(normd.client.pb.GetStatsRequest(
                        dataset="shared", version=version)).SerializeToString()
            if round_ in SIGTERM_ROUNDS:
                server.stop()  # asserts exit status 0
            else:
                server.kill()
            server.start()
        results = finish_jobs(jobs)
        crashed = all_stats(server.address)
        with normd.Client(server.address) as client:
            after = client._stub.GetStats(normd.client.pb.GetStatsRequest(
                dataset="shared", version=1)).SerializeToString()
        assert after == frozen, "a frozen version changed across the crashes"
    finally:
        server.stop()

    retries = sum(r["retries"] for r in results)
    duplicates = sum(r["duplicate_batches"] for r in results)
    print(f"{KILL_ROUNDS - len(SIGTERM_ROUNDS)} SIGKILL and {len(SIGTERM_ROUNDS)} SIGTERM "
          f"rounds survived; {retries} streams resent, {duplicates} batches deduplicated")
    for result, (_, _, _, count, _) in zip(results, JOBS):
        # A batch committed but not acknowledged before a crash comes back as a duplicate.
        assert result["batches"] + result["duplicate_batches"] == count, result
        assert result["writer_sequence"] == count, result

    clean_server = NormdProcess(tmp_path / "clean").start()
    try:
        with normd.Client(clean_server.address) as client:
            create_datasets(client)
        finish_jobs(start_jobs(clean_server.address))
        clean = all_stats(clean_server.address)
    finally:
        clean_server.stop()

    for name in ("shared", "solo"):
        got, want = crashed[name], clean[name]
        assert (got.batches, got.samples) == (want.batches, want.samples)
        np.testing.assert_array_equal(got.count, want.count)
        np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
        np.testing.assert_allclose(got.variance, want.variance, rtol=1e-12)
        np.testing.assert_array_equal(got.min, want.min)
        np.testing.assert_array_equal(got.max, want.max)
    np.testing.assert_allclose(crashed["solo"].running_mean, clean["solo"].running_mean,
                               rtol=1e-12)
    np.testing.assert_allclose(crashed["solo"].running_var, clean["solo"].running_var,
                               rtol=1e-12)
    assert crashed["solo"].num_batches_tracked == clean["solo"].num_batches_tracked == 60
