"""Storage faults against a real normd and a real RocksDB: a full disk, a file-size
limit, a damaged store, an unwritable data directory. normd must answer UNAVAILABLE or
refuse to start with a message naming the problem, keep serving what it has, and never
serve statistics that lost or half-applied an acknowledged batch."""
import os
import resource
import signal
import subprocess

import grpc
import numpy as np
import pytest

import normd
from conftest import NormdProcess

CHANNELS = 4096  # each commit writes a ~200 KiB record, so a few MiB fill up fast


class TmpfsNamespace:
    """A private user and mount namespace in which `mount_dir` is a tmpfs of `size`,
    held open by a process that does nothing else; normd is started inside it with
    `enter` and outlives nothing of it. Skips where user namespaces are not allowed."""

    def __init__(self, mount_dir, size):
        self.mount_dir = str(mount_dir)
        self.holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             'mount -t tmpfs -o size="$1" tmpfs "$0" && echo mounted && exec sleep infinity',
             self.mount_dir, size],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.holder.stdout.readline().strip() != "mounted":
            self.holder.kill()
            pytest.skip("cannot mount a tmpfs in a user namespace here: "
                        + self.holder.communicate()[1].strip())
        self.enter = ["nsenter", "-t", str(self.holder.pid), "-U", "-m",
                      "--preserve-credentials"]

    def resize(self, size):
        subprocess.run([*self.enter, "mount", "-o", f"remount,size={size}", self.mount_dir],
                       check=True, capture_output=True)

    def close(self):
        self.holder.kill()
        self.holder.wait()


def assert_statistics_of(stats, batches):
    """Count exactly, mean and variance against numpy float64 of every acknowledged
    batch, min and max exactly."""
    values = np.concatenate(batches)
    np.testing.assert_array_equal(stats.count, np.full(CHANNELS, len(values)))
    np.testing.assert_allclose(stats.mean, values.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.variance, values.var(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(stats.min, values.min(axis=0))
    np.testing.assert_array_equal(stats.max, values.max(axis=0))
    assert stats.batches == len(batches)


def assert_same_statistics(a, b):
    for field in ("count", "mean", "variance", "min", "max"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def fill_until_refused(client, rng, acked):
    """Fits batches until the store refuses one; returns that error."""
    for _ in range(1000):
        batch = rng.normal(3.0, 2.0, (8, CHANNELS))
        try:
            client.fit("wide", [batch], retry_for=0)
        except normd.NormdError as error:
            return error
        acked.append(batch)
    pytest.fail("1000 commits never filled the store")


def test_a_full_disk_refuses_writes_keeps_serving_and_loses_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    disk = TmpfsNamespace(data, "4m")
    server = NormdProcess(data, wrapper=disk.enter)
    try:
        server.start()
        rng = np.random.default_rng(11)
        with normd.Client(server.address, timeout=60) as client:
            client.create_dataset("wide", layout="NC", channels=CHANNELS)
            acked = [rng.normal(3.0, 2.0, (8, CHANNELS))]
            client.fit("wide", acked)
            version = client.freeze("wide")
            frozen = client.stats("wide", version)
            x = rng.normal(3.0, 2.0, (4, CHANNELS)).astype(np.float32)
            served = client.zscore(x, "wide")

            error = fill_until_refused(client, rng, acked)
            assert error.code == grpc.StatusCode.UNAVAILABLE, error
            assert "No space left on device" in error.details
            live = client.stats("wide")
            assert_statistics_of(live, acked)

            # Every write is refused whole; reads and Normalize go on as before.
            with pytest.raises(normd.Unavailable):
                client.fit("wide", [rng.normal(size=(8, CHANNELS))], retry_for=0)
            with pytest.raises(normd.Unavailable):
                client.freeze("wide")
            with pytest.raises(normd.Unavailable):
                client.create_dataset("more", layout="NC", channels=2)
            assert [d.spec.name for d in client.list_datasets()] == ["wide"]
            assert_same_statistics(client.stats("wide"), live)
            assert_same_statistics(client.stats("wide", version), frozen)
            np.testing.assert_array_equal(client.zscore(x, "wide"), served)

            # Space comes back: RocksDB clears its error by itself, and the client's
            # resends (backing off meanwhile) get the batch in exactly once.
            disk.resize("256m")
            batch = rng.normal(3.0, 2.0, (8, CHANNELS))
            result = client.fit("wide", [batch], retry_for=120)
            assert result.batches == 1 and result.duplicate_batches == 0
            acked.append(batch)
            assert_statistics_of(client.stats("wide"), acked)

        server.stop()
        server.start()
        with normd.Client(server.address, timeout=60) as client:
            assert_statistics_of(client.stats("wide"), acked)
            assert_same_statistics(client.stats("wide", version), frozen)
            np.testing.assert_array_equal(client.zscore(x, "wide"), served)
    finally:
        server.stop()
        disk.close()


def file_size_limit(limit_bytes):
    """A preexec_fn: writes past `limit_bytes` fail with EFBIG instead of raising
    SIGXFSZ, as on a volume with a per-file quota."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_a_failed_write_is_unavailable_and_a_restart_loses_nothing(tmp_path):
    """Without namespaces: RLIMIT_FSIZE makes the write-ahead log's appends fail."""
    limited = NormdProcess(tmp_path / "data", preexec_fn=file_size_limit(4 << 20)).start()
    rng = np.random.default_rng(12)
    acked = []
    try:
        with normd.Client(limited.address, timeout=60) as client:
            client.create_dataset("wide", layout="NC", channels=CHANNELS)
            error = fill_until_refused(client, rng, acked)
            assert error.code == grpc.StatusCode.UNAVAILABLE, error
            assert "File too large" in error.details
            assert len(acked) >= 2
            assert_statistics_of(client.stats("wide"), acked)
    finally:
        limited.stop()
    unlimited = NormdProcess(tmp_path / "data").start()
    try:
        with normd.Client(unlimited.address, timeout=60) as client:
            assert_statistics_of(client.stats("wide"), acked)
            batch = rng.normal(3.0, 2.0, (8, CHANNELS))
            client.fit("wide", [batch])
            assert_statistics_of(client.stats("wide"), acked + [batch])
    finally:
        unlimited.stop()


def store_file(data, pattern):
    """The newest file of the store matching `pattern`."""
    files = sorted((data / "db").glob(pattern))
    assert files, f"no {pattern} in {data / 'db'}"
    return files[-1]


def halve(path):
    os.truncate(path, path.stat().st_size // 2)


def flip_byte(path, offset):
    content = bytearray(path.read_bytes())
    content[offset] ^= 0x01
    path.write_bytes(bytes(content))


def make_store(tmp_path, flushed):
    """A store holding a dataset with acknowledged batches and a frozen version; with
    `flushed`, restarted once so that its records sit in a table file (.sst), not only
    in the write-ahead log."""
    data = tmp_path / "data"
    server = NormdProcess(data).start()
    with normd.Client(server.address, timeout=60) as client:
        client.create_dataset("kept", layout="NC", channels=3)
        for seed in range(20):
            client.fit("kept", [np.random.default_rng(seed).normal(size=(50, 3))])
        client.freeze("kept")
    server.stop()
    if flushed:
        server.start().stop()
        store_file(data, "*.sst")  # a restart flushed the log into a table
    return data


DAMAGE = {  # name: (flushed into a table first, damage, what the refusal says)
    # A byte in the middle of the write-ahead log: acknowledged batches after it
    # would be lost, so the store refuses to open (RocksDB's default recovery would
    # replay up to the damage and drop the rest without a word).
    "log-middle": (False, lambda log: flip_byte(log, log.stat().st_size // 2), "*.log",
                   "checksum mismatch"),
    "table-block": (True, lambda table: flip_byte(table, 100), "*.sst",
                    "block checksum mismatch"),
    "table-truncated": (True, halve, "*.sst", "too short"),
    "table-missing": (True, os.unlink, "*.sst", "No such file or directory"),
    "manifest": (True, lambda manifest: flip_byte(manifest, 40), "MANIFEST-*", "MANIFEST"),
    # Without CURRENT (and the empty log a clean stop leaves), RocksDB would start a
    # new, empty store beside the old tables and normd would serve no datasets.
    "current-missing": (True, lambda current: [os.unlink(path) for path in
                                               [current, *current.parent.glob("*.log")]],
                        "CURRENT", "no CURRENT file"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_store_refuses_to_start(tmp_path, damage):
    flushed, corrupt, pattern, message = DAMAGE[damage]
    data = make_store(tmp_path, flushed)
    corrupt(store_file(data, pattern))
    code, stderr = NormdProcess(data).start_failure()
    assert code == 1, stderr
    assert "DATA_LOSS" in stderr and message in stderr, stderr
    assert str(data / "db") in stderr, stderr


def test_a_torn_log_tail_drops_only_the_unacknowledged_write(tmp_path):
    """What a crash during a write leaves: the last record cut short. The store opens
    without it and with everything before it."""
    data = make_store(tmp_path, flushed=True)
    server = NormdProcess(data).start()
    with normd.Client(server.address, timeout=60) as client:
        before = client.stats("kept")
        log = store_file(data, "*.log")
        size_before = log.stat().st_size
        client.fit("kept", [np.ones((5, 3))])
        record = log.stat().st_size - size_before
    server.kill()
    os.truncate(log, size_before + record // 2)
    server.start()
    try:
        with normd.Client(server.address, timeout=60) as client:
            assert_same_statistics(client.stats("kept"), before)
    finally:
        server.stop()


def read_only_namespace(data):
    """Runs normd where `data` is a read-only bind mount: as root, permissions alone
    would not stop it."""
    if os.geteuid() != 0:
        os.chmod(data, 0o555)
        return []
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root without user namespaces: {probe.stderr.strip()}")
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(data)]


@pytest.mark.parametrize("existing_store", [False, True], ids=["empty", "existing-store"])
def test_an_unwritable_data_directory_refuses_to_start(tmp_path, existing_store):
    data = make_store(tmp_path, flushed=False) if existing_store else tmp_path / "data"
    data.mkdir(exist_ok=True)
    code, stderr = NormdProcess(data, wrapper=read_only_namespace(data)).start_failure()
    os.chmod(data, 0o755)
    assert code == 1, stderr
    assert str(data) in stderr, stderr
    assert "Read-only file system" in stderr or "Permission denied" in stderr, stderr
    if existing_store:
        server = NormdProcess(data).start()  # writable again: everything is there
        try:
            with normd.Client(server.address, timeout=60) as client:
                assert client.stats("kept").batches == 20
        finally:
            server.stop()


def test_a_data_directory_that_is_a_file_refuses_to_start(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    code, stderr = NormdProcess(tmp_path / "file" / "data").start_failure()
    assert code == 1, stderr
    assert "cannot create data directory" in stderr and "Not a directory" in stderr, stderr
