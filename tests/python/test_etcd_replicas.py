"""normd replicas sharing one real etcd cluster (--store=etcd:...): exactly once through
member crashes, replica crashes, lost answers and a lost quorum; the same bits on every
replica; dense immutable versions. Every process is real and stopped by its pid.

Oracle: exact rational arithmetic over the values sent (fractions.Fraction)."""
import os
import random
import subprocess
import threading
from fractions import Fraction

import numpy as np
import pytest

import normd
from conftest import NormdProcess
from etcd_cluster import ETCD_BIN, EtcdCluster

pytestmark = pytest.mark.skipif(ETCD_BIN is None, reason="etcd-server is not installed")

CHANNELS = 4


def make_batches(seed, count, rows=32):
    """Batches whose channels sit at very different scales and offsets, so an inexact
    merge shows."""
    rng = np.random.default_rng(seed)
    scale = np.array([1e-3, 1.0, 1e3, 7.0])
    offset = np.array([0.0, -5.0, 1e6, 3.0])
    return [rng.normal(size=(rows, CHANNELS)) * scale + offset for _ in range(count)]


def assert_exact(stats, batches):
    """Counts exact; mean and population variance within 1e-12 of exact arithmetic."""
    values = np.concatenate(batches)
    for c in range(CHANNELS):
        exact = [Fraction(float(v)) for v in values[:, c]]
        n = len(exact)
        mean = sum(exact) / n
        variance = sum((v - mean) ** 2 for v in exact) / n
        assert stats.count[c] == n
        assert abs(Fraction(stats.mean[c]) - mean) <= abs(mean) * Fraction(1, 10 ** 12) + \
            Fraction(1, 10 ** 300)
        assert abs(Fraction(stats.variance[c]) - variance) <= variance * Fraction(1, 10 ** 12)
        assert stats.min[c] == float(min(exact)) and stats.max[c] == float(max(exact))


def same_bits(a, b):
    return all(np.array_equal(getattr(a, f).view(np.uint64) if getattr(a, f).dtype == np.float64
                              else getattr(a, f), getattr(b, f).view(np.uint64)
                              if getattr(b, f).dtype == np.float64 else getattr(b, f))
               for f in ("count", "mean", "variance", "min", "max")) and \
        (a.batches, a.samples) == (b.batches, b.samples)


def start_replicas(tmp_path, cluster, count, *flags):
    return [NormdProcess(str(tmp_path / f"replica{i}"),
                         flags=[cluster.store_flag, "--region_socket=off", "--log_requests=false",
                                *flags]).start()
            for i in range(count)]


@pytest.fixture
def cluster(tmp_path):
    etcd = EtcdCluster(str(tmp_path / "etcd"), size=3).start()
    yield etcd
    etcd.stop()


class HeldStream:
    """Holds one stream open after its first batch until the test releases it, so that
    a crash lands mid-stream by construction, not by timing."""

    def __init__(self, writer, chunk):
        self.writer, self.chunk = writer, chunk
        self.holding, self.release = threading.Event(), threading.Event()
        self.replica = None  # where the held stream went

    def batches(self, batches, replica):
        self.replica = replica
        yield batches[0]
        self.holding.set()
        assert self.release.wait(120)
        yield from batches[1:]


class RotatingWriter:
    """A data-loader worker: one writer id, each stream to the next replica, and on a
    failure the same batches resent to another (exactly once makes that safe)."""

    def __init__(self, writer_id, batches, replicas, progress, held=None):
        self.writer_id, self.batches, self.replicas = writer_id, batches, replicas
        self.progress = progress          # a Condition with a .committed counter
        self.held = held
        self.applied = self.duplicates = self.resends = 0
        self.error = None

    def run(self, dataset, chunk=2):
        try:
            turn = 0
            for index, start in enumerate(range(0, len(self.batches), chunk)):
                while True:
                    replica = self.replicas[turn % len(self.replicas)]
                    turn += 1
                    if replica.proc is None:
                        continue  # killed: the client's load balancer would skip it too
                    batches = self.batches[start:start + chunk]
                    if self.held is not None and self.held.chunk == index and \
                            self.held.replica is None:
                        batches = self.held.batches(batches, replica)
                    try:
                        result = normd.Client(replica.address).fit(
                            dataset, batches, writer_id=self.writer_id,
                            first_sequence=start + 1, retry_for=1.0)
                        break
                    except normd.errors.NormdError:
                        self.resends += 1
                self.applied += result.batches
                self.duplicates += result.duplicate_batches
                with self.progress:
                    self.progress.committed += chunk
                    self.progress.notify_all()
        except Exception as error:  # surfaced by the test thread
            self.error = error
            with self.progress:
                self.progress.notify_all()


def test_member_and_replica_crashes_lose_nothing_and_count_nothing_twice(tmp_path, cluster):
    replicas = start_replicas(tmp_path, cluster, 3, "--etcd_timeout=1s", "--etcd_retry_budget=20s")
    normd.Client(replicas[0].address).create_dataset("crash", layout="NC", channels=CHANNELS)
    progress = threading.Condition()
    progress.committed = 0
    # Writer 0's 6th stream is open when the etcd leader dies, writer 1's 11th when its
    # normd replica does.
    across_leader, across_replica = HeldStream(0, 5), HeldStream(1, 10)
    writers = [RotatingWriter(f"loader-{w}", make_batches(w, 60), replicas, progress,
                              held={0: across_leader, 1: across_replica}.get(w))
               for w in range(3)]
    threads = [threading.Thread(target=w.run, args=("crash",)) for w in writers]
    for thread in threads:
        thread.start()

    assert across_leader.holding.wait(120)
    leader = cluster.leader()
    leader.kill()
    across_leader.release.set()  # its commit now meets an election
    assert across_replica.holding.wait(120)
    across_replica.replica.kill()  # mid-stream: the writer resends elsewhere
    across_replica.release.set()
    with progress:
        assert progress.wait_for(lambda: progress.committed >= 120 or
                                 any(w.error for w in writers), timeout=120)
    leader.start()
    leader.wait_ready()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(w.error for w in writers), [w.error for w in writers]

    everything = [b for w in writers for b in w.batches]
    print([(w.applied, w.duplicates, w.resends) for w in writers])
    # Each batch applied once, or acknowledged as a duplicate when a stream whose answer
    # was lost (its replica died after committing) was resent.
    for w in writers:
        assert w.applied + w.duplicates == len(w.batches)
    assert writers[1].resends >= 1  # the stream the replica crash broke was sent again
    live = [r.address for r in replicas if r.proc is not None]
    assert len(live) == 2
    first, second = (normd.Client(address).stats("crash") for address in live)
    assert_exact(first, everything)
    assert same_bits(first, second)
    # A resend of everything now: every batch acknowledged as a duplicate.
    again = normd.Client(live[1]).fit("crash", writers[0].batches, writer_id="loader-0")
    assert (again.batches, again.duplicate_batches) == (0, len(writers[0].batches))
    for replica in replicas:
        if replica.proc is not None:
            replica.stop()


def count_events(replica, event):
    return sum(f'"event":"{event}"' in line for line in replica.stderr_lines())


def test_commits_whose_answer_is_lost_are_recognised_not_applied_twice(tmp_path, cluster):
    # A deadline shorter than a replicated, fsynced commit: many commits land after
    # normd stopped waiting for them. Each must be found by its commit id on re-read.
    (replica,) = start_replicas(tmp_path, cluster, 1, "--etcd_timeout=500us",
                                "--etcd_retry_budget=30s")
    client = normd.Client(replica.address)
    client.create_dataset("ambiguous", layout="NC", channels=CHANNELS)
    sent = []
    # Until the case this test is about has happened a few times (most runs: at once).
    for chunk in range(200):
        if count_events(replica, "etcd_commit_recognised") >= 5:
            break
        batches = make_batches(chunk, 2)
        result = client.fit("ambiguous", batches, writer_id="w", first_sequence=2 * chunk + 1)
        assert result.batches + result.duplicate_batches == 2
        sent += batches
    assert count_events(replica, "etcd_commit_recognised") >= 5
    for batch in make_batches(1000, 10):  # writers without an id: the shared partition
        client.fit("ambiguous", [batch])
        sent.append(batch)
    assert_exact(client.stats("ambiguous"), sent)
    replica.stop()


@pytest.mark.parametrize("writers", [1, 2, 7, 64])
def test_any_split_over_writers_gives_the_same_statistics_on_every_replica(
        tmp_path, cluster, writers):
    a, b = start_replicas(tmp_path, cluster, 2)
    batches = make_batches(11, 64, rows=8)
    rng = random.Random(writers)
    owner = [rng.randrange(writers) for _ in batches]  # which writer sends each batch
    name = f"split{writers}"
    normd.Client(a.address).create_dataset(name, layout="NC", channels=CHANNELS)
    order = list(range(writers))
    rng.shuffle(order)
    for turn, w in enumerate(order):  # writers in shuffled order, alternating replicas
        mine = [batch for batch, o in zip(batches, owner) if o == w]
        if mine:
            normd.Client((a, b)[turn % 2].address).fit(name, mine, writer_id=f"worker-{w}")
    on_a, on_b = normd.Client(a.address).stats(name), normd.Client(b.address).stats(name)
    assert same_bits(on_a, on_b)
    assert_exact(on_a, batches)
    # The quantile sketches merge in any order: the same answers on both replicas, each
    # within its stated bound of numpy's on all the values.
    ranks = [0, 0.1, 0.5, 0.9, 1]
    q_a = normd.Client(a.address).stats(name, quantiles=ranks, histogram_bins=8)
    q_b = normd.Client(b.address).stats(name, quantiles=ranks, histogram_bins=8)
    np.testing.assert_array_equal(q_a.quantiles, q_b.quantiles)
    for (edges_a, counts_a), (edges_b, counts_b) in zip(q_a.histograms, q_b.histograms):
        np.testing.assert_array_equal(edges_a, edges_b)
        np.testing.assert_array_equal(counts_a, counts_b)
    values = np.concatenate(batches)
    for c in range(CHANNELS):
        exact = np.quantile(values[:, c], ranks)
        assert np.all(np.abs(q_a.quantiles[c] - exact) <= q_a.quantile_error[c])
    a.stop()
    b.stop()


def test_many_writers_fold_into_the_shared_partition_and_stay_exactly_once(tmp_path, cluster):
    (replica,) = start_replicas(tmp_path, cluster, 1, "--etcd_fold_above=4")
    client = normd.Client(replica.address)
    client.create_dataset("fold", layout="NC", channels=CHANNELS)
    batches = make_batches(12, 21)
    for w in range(7):
        client.fit("fold", batches[3 * w:3 * w + 3], writer_id=f"worker-{w}")
    assert_exact(client.stats("fold"), batches)  # reading folds the oldest writers
    assert any('"applied":true' in line for line in replica.stderr_lines()
               if '"event":"etcd_fold"' in line)
    assert_exact(client.stats("fold"), batches)  # and the folded state reads the same
    # A folded writer's mark lives on in the shared partition: its resend is refused
    # as duplicates, and it continues where it was.
    again = client.fit("fold", batches[0:3], writer_id="worker-0")
    assert (again.batches, again.duplicate_batches) == (0, 3)
    more = make_batches(13, 2)
    client.fit("fold", more, writer_id="worker-0", first_sequence=4)
    assert_exact(client.stats("fold"), batches + more)
    replica.stop()


def test_racing_freezes_give_dense_immutable_versions_served_everywhere(tmp_path, cluster):
    replicas = start_replicas(tmp_path, cluster, 3)
    clients = [normd.Client(r.address) for r in replicas]
    clients[0].create_dataset("race", layout="NC", channels=CHANNELS)
    batches = make_batches(21, 12)
    clients[0].fit("race", batches[:4], writer_id="w")
    frozen, errors = [], []

    def freezer(client, sequence_start):
        try:
            for k in range(4):
                # Each replica fits a little and freezes, racing the others.
                client.fit("race", [batches[sequence_start + k]], writer_id=f"r{sequence_start}",
                           first_sequence=k + 1)
                frozen.append(client.freeze("race"))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=freezer, args=(c, 4 * i)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(frozen) == list(range(1, 13))  # dense and unique
    # Every replica serves every version with the same bits, now and after more data.
    before = {v: clients[0].stats("race", version=v) for v in frozen}
    clients[1].fit("race", make_batches(22, 3), writer_id="late")
    for client in clients:
        for v in frozen:
            assert same_bits(client.stats("race", version=v), before[v])

    # Freeze on A, then at once Normalize that version on B: B reads it through.
    x = make_batches(23, 1)[0]
    version = clients[0].freeze("race")
    stats = clients[0].stats("race", version=version)
    y = clients[1].zscore(x, "race", version=version, output_dtype="float64")
    np.testing.assert_allclose(y, (x - stats.mean) / np.sqrt(stats.variance + 1e-5), rtol=1e-12,
                               atol=1e-12)

    # Delete and re-create: version numbers go on, so an old number names nothing; the
    # old statistics are never served as the new dataset's.
    clients[0].delete_dataset("race")
    clients[0].create_dataset("race", layout="NC", channels=CHANNELS)
    fresh = make_batches(24, 2)
    clients[0].fit("race", fresh, writer_id="w")
    new_version = clients[0].freeze("race")
    assert new_version > version
    new_stats = clients[2].stats("race", version=new_version)
    assert_exact(new_stats, fresh)
    with pytest.raises(normd.errors.NotFound):
        clients[2].stats("race", version=version)
    y = clients[1].zscore(x, "race", version=new_version, output_dtype="float64")
    np.testing.assert_allclose(y, (x - new_stats.mean) / np.sqrt(new_stats.variance + 1e-5),
                               rtol=1e-12, atol=1e-12)
    for replica in replicas:
        replica.stop()


def test_without_quorum_writes_fail_cleanly_and_cached_versions_keep_serving(tmp_path, cluster):
    (replica,) = start_replicas(tmp_path, cluster, 1, "--etcd_timeout=300ms",
                                "--etcd_retry_budget=2s")
    client = normd.Client(replica.address)
    client.create_dataset("quorum", layout="NC", channels=CHANNELS)
    before = make_batches(31, 4)
    client.fit("quorum", before, writer_id="w")
    version = client.freeze("quorum")
    x = make_batches(32, 1)[0]
    served = client.zscore(x, "quorum", version=version, output_dtype="float64")

    leader = cluster.leader()
    lost = [m for m in cluster.members if m is not leader]
    for member in lost:
        member.kill()  # two of three: no quorum
    during = make_batches(33, 2)
    with pytest.raises(normd.errors.Unavailable):
        client.fit("quorum", during, writer_id="w", first_sequence=5, retry_for=0)
    with pytest.raises(normd.errors.Unavailable):
        client.freeze("quorum")
    # Normalize on a version this replica holds never asks etcd.
    again = client.zscore(x, "quorum", version=version, output_dtype="float64")
    assert np.array_equal(again, served)

    for member in lost:
        member.start()
    for member in lost:
        member.wait_ready()
    # The client resends what was refused; it counts once.
    result = client.fit("quorum", during, writer_id="w", first_sequence=5, retry_for=60)
    assert result.batches + result.duplicate_batches == 2
    assert_exact(client.stats("quorum"), before + during)
    assert client.freeze("quorum") == version + 1
    replica.stop()


def test_running_average_datasets_update_in_order_as_torch_does(tmp_path, cluster):
    torch = pytest.importorskip("torch")
    a, b = start_replicas(tmp_path, cluster, 2)
    normd.Client(a.address).create_dataset("bn", layout="NC", channels=CHANNELS,
                                           running_average=True, momentum=0.1)
    batches = make_batches(41, 12)
    for i, batch in enumerate(batches):  # one writer, its batches alternating replicas
        normd.Client((a, b)[i % 2].address).fit("bn", [batch], writer_id="loader",
                                                 first_sequence=i + 1)
    reference = torch.nn.BatchNorm1d(CHANNELS, momentum=0.1, dtype=torch.float64)
    for batch in batches:
        reference(torch.from_numpy(batch))
    stats = normd.Client(b.address).stats("bn")
    np.testing.assert_allclose(stats.running_mean, reference.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats.running_var, reference.running_var.numpy(), rtol=1e-12)
    assert stats.num_batches_tracked == len(batches)
    a.stop()
    b.stop()


def test_bad_requests_get_precise_statuses_and_change_nothing(tmp_path, cluster):
    (replica,) = start_replicas(tmp_path, cluster, 1)
    client = normd.Client(replica.address)
    with pytest.raises(normd.errors.InvalidArgument, match=r"channels must be at most \d+ with "
                                                           r"the etcd store.*got 1000000"):
        client.create_dataset("wide", layout="NC", channels=1_000_000)
    client.create_dataset("d", layout="NC", channels=CHANNELS)
    with pytest.raises(normd.errors.AlreadyExists):
        client.create_dataset("d", layout="NC", channels=CHANNELS)
    with pytest.raises(normd.errors.FailedPrecondition, match="no training data"):
        client.freeze("d")
    batches = make_batches(51, 3)
    client.fit("d", batches, writer_id="w")
    with pytest.raises(normd.errors.FailedPrecondition, match="next batch must be 4, got 6"):
        client.fit("d", batches[:1], writer_id="w", first_sequence=6)
    with pytest.raises(normd.errors.NotFound):
        client.stats("d", version=1)
    with pytest.raises(normd.errors.NotFound):
        client.fit("missing", batches, writer_id="w")
    assert_exact(client.stats("d"), batches)
    replica.stop()


def test_normd_refuses_to_start_without_a_reachable_etcd(tmp_path):
    for flags, message in [
            (["--store=etcd:http://127.0.0.1:1", "--etcd_retry_budget=1s"], "etcd Range at"),
            (["--store=etcd:"], "etcd endpoints are empty"),
            (["--store=etcd:http://a:1,https://b:2"], "mix http:// and https://")]:
        code, stderr = NormdProcess(str(tmp_path / "refused"), flags=flags).start_failure()
        assert code != 0 and message in stderr, stderr


def test_a_round_robin_client_spreads_calls_over_every_replica(tmp_path, cluster):
    replicas = [NormdProcess(str(tmp_path / f"rr{i}"),
                             flags=[cluster.store_flag, "--region_socket=off"]).start()
                for i in range(3)]
    # What a headless Service's DNS name resolves to, written out.
    target = "ipv4:" + ",".join(r.address for r in replicas)
    with normd.Client(target, load_balancing="round_robin") as client:
        client.create_dataset("spread", layout="NC", channels=CHANNELS)
        batches = make_batches(61, 30)
        for i, batch in enumerate(batches):
            client.fit("spread", [batch], writer_id="w", first_sequence=i + 1)
        assert_exact(client.stats("spread"), batches)
    for replica in replicas:
        served = sum('"method":"/normd.v1.Normd/Ingest"' in line for line in replica.stderr_lines())
        assert served >= 3, f"{replica.address} served {served} of 30 Ingest streams"
        replica.stop()


MAKE_CERTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "support", "make_certs.sh")


def test_etcd_over_mutual_tls(tmp_path):
    certs = str(tmp_path / "certs")
    subprocess.run([MAKE_CERTS, certs], check=True, timeout=60)
    cluster = EtcdCluster(str(tmp_path / "etcd"), size=1, tls=certs).start()
    try:
        tls = [f"--etcd_ca_file={certs}/ca.pem", f"--etcd_cert_file={certs}/client.pem",
               f"--etcd_key_file={certs}/client.key"]
        (replica,) = start_replicas(tmp_path, cluster, 1, *tls)
        with normd.Client(replica.address) as client:
            client.create_dataset("tls", layout="NC", channels=CHANNELS)
            batches = make_batches(71, 3)
            client.fit("tls", batches, writer_id="w")
            assert_exact(client.stats("tls"), batches)
        replica.stop()
        # etcd wants a client certificate; without one normd cannot start.
        code, stderr = NormdProcess(str(tmp_path / "no-cert"), flags=[
            cluster.store_flag, f"--etcd_ca_file={certs}/ca.pem", "--etcd_retry_budget=1s",
            "--region_socket=off"]).start_failure()
        assert code != 0 and "etcd Range at" in stderr, stderr
    finally:
        cluster.stop()


def test_etcd_with_authentication(tmp_path):
    cluster = EtcdCluster(str(tmp_path / "etcd"), size=1).start()
    try:
        cluster.etcdctl("user", "add", "root:hunter2")
        cluster.etcdctl("auth", "enable")
        (tmp_path / "password").write_text("hunter2\n")
        (replica,) = start_replicas(tmp_path, cluster, 1, "--etcd_user=root",
                                    f"--etcd_password_file={tmp_path / 'password'}")
        with normd.Client(replica.address) as client:
            client.create_dataset("auth", layout="NC", channels=CHANNELS)
            batches = make_batches(72, 2)
            client.fit("auth", batches, writer_id="w")
            assert_exact(client.stats("auth"), batches)
        replica.stop()
        (tmp_path / "wrong").write_text("hunter3\n")
        code, stderr = NormdProcess(str(tmp_path / "wrong-password"), flags=[
            cluster.store_flag, "--etcd_user=root", f"--etcd_password_file={tmp_path / 'wrong'}",
            "--region_socket=off"]).start_failure()
        assert code != 0 and 'refused authentication as "root"' in stderr, stderr
    finally:
        cluster.stop()


def wait_until(condition, timeout=60):
    """Polls `condition` until it holds: what the replicas converge to, not a sleep."""
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the replicas did not converge"
        time.sleep(0.05)


def test_pins_gates_and_traffic_over_replicas(tmp_path, cluster):
    a, b = start_replicas(tmp_path, cluster, 2, "--traffic_sample_rate=1",
                          "--traffic_persist_interval=100ms")
    rng = np.random.default_rng(71)
    x = rng.normal(0, 1, (16, CHANNELS))
    try:
        with normd.Client(a.address) as on_a, normd.Client(b.address) as on_b:
            on_a.create_dataset("p", layout="NC", channels=CHANNELS)
            on_a.fit("p", make_batches(1, 4, rows=500))
            assert on_a.freeze("p", min_train_count=2000, drift_gate=True) == 1
            on_b.fit("p", [batch + 50 for batch in make_batches(2, 4, rows=500)])
            with pytest.raises(normd.FailedPrecondition, match="fails"):
                on_b.freeze("p", drift_gate=True)  # the gate reads version 1 through the store
            assert on_b.freeze("p", drift_gate=True, mark=True) == 2
            assert on_a.get_dataset("p").versions[1].gate_findings
            v1 = on_a.zscore(x, "p", version=1)
            on_a.pin_version("p", 1)
            wait_until(lambda: on_b.get_dataset("p").pinned_version == 1)
            np.testing.assert_array_equal(on_b.zscore(x, "p"), v1)  # the pin, not version 2
            assert on_b.pin_version("p", rollback=True).pinned_version == 0
            with pytest.raises(normd.FailedPrecondition, match="no earlier pin"):
                on_a.pin_version("p", rollback=True)
            # Traffic: each replica folds what it served; each answers for both.
            seen = [rng.normal(0, 1, (40, CHANNELS)) for _ in range(5)]
            for i, batch in enumerate(seen):
                (on_a if i % 2 else on_b).zscore(batch, "p", version=2)
            wait_until(lambda: all(c.stats("p", version=2, traffic=True).traffic_requests == 5
                                   for c in (on_a, on_b)))
            for c in (on_a, on_b):
                stats = c.stats("p", version=2, traffic=True)
                assert_exact(stats, seen)
    finally:
        for replica in (a, b):
            replica.stop()
