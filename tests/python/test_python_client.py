"""The Python client (client/python/normd) against a real normd: datasets, fit with
backpressure, statistics against numpy float64, errors, and the README's example."""
import logging
import re
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

import normd
from conftest import run_python_snippet

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PYTHON_GUIDE = REPO / "docs" / "python.md"


def test_fit_freeze_and_zscore_against_numpy(client):
    client.create_dataset("cifar", layout="NCHW", channels=3)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8) for n in (16, 5, 32)]
    reply = client.fit("cifar", iter(batches))  # any iterable, consumed lazily
    assert (reply.batches, reply.samples) == (3, 53)
    version = client.freeze("cifar")
    stats = client.stats("cifar", version=version)
    pooled = np.concatenate(batches).astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_array_equal(stats.count, [pooled.shape[1]] * 3)
    np.testing.assert_allclose(stats.mean, pooled.mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(stats.variance, pooled.var(axis=1), rtol=1e-13)
    np.testing.assert_allclose(stats.sample_variance, pooled.var(axis=1, ddof=1), rtol=1e-13)
    info = client.get_dataset("cifar")
    assert info.latest_version == version
    assert [d.spec.name for d in client.list_datasets()] == ["cifar"]

    x = rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    got = client.zscore(x, "cifar", eps=0.0, output_dtype="float64")
    expected = (x - stats.mean[:, None, None]) / np.sqrt(stats.variance[:, None, None])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    scaled = client.scale(torch.from_numpy(x), 1 / 255)
    assert isinstance(scaled, torch.Tensor) and scaled.dtype == torch.float32
    torch.testing.assert_close(scaled, torch.from_numpy(x).float() / 255, rtol=1e-7, atol=0)
    low_high = client.minmax(x, "cifar", low=-1, high=1, output_dtype=np.float64)
    lo, hi = stats.min[:, None, None], stats.max[:, None, None]
    np.testing.assert_allclose(low_high, -1 + (x - lo) / (hi - lo) * 2, rtol=1e-12, atol=1e-15)
    client.delete_dataset("cifar")
    assert client.list_datasets() == []


def test_fit_is_paced_by_flow_control(client):
    """A generator over 256 MiB of batches is pulled only as the server takes them:
    the client side holds one unacknowledged stream (kept for a resend), never more."""
    client.create_dataset("big", layout="NC", channels=64)
    batch_rows, batches = 8192, 128  # 2 MiB per float32 batch

    def epoch():
        rng = np.random.default_rng(1)
        for _ in range(batches):
            yield rng.standard_normal((batch_rows, 64), dtype=np.float32)

    tracemalloc.start()
    try:
        reply = client.fit("big", epoch(), stream_bytes=8 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.samples == batch_rows * batches
    total = batch_rows * batches * 64 * 4
    assert peak < total / 8, f"client held {peak >> 20} MiB of a {total >> 20} MiB stream"


@pytest.mark.parametrize("local", [False, pytest.param(True, marks=pytest.mark.skipif(
    not normd.local.available(), reason="normd._native not built"))], ids=["batches", "summaries"])
def test_fit_is_exactly_once_per_writer(client, local):
    """Resending what was already committed (a job restarted, a reply lost) changes
    nothing; streams of a few batches give the same statistics as one stream. The same
    holds when fit sends each batch's summary instead of the batch."""
    chunked = dict(local=local, stream_bytes=4096, summaries_per_stream=5)
    client.create_dataset("once", layout="NC", channels=5)
    client.create_dataset("reference", layout="NC", channels=5)
    rng = np.random.default_rng(6)
    batches = [rng.normal(3e3, 7, (int(rng.integers(1, 50)), 5)) for _ in range(30)]
    first = client.fit("once", batches[:12], writer_id="job-1", **chunked)
    assert (first.batches, first.writer_sequence) == (12, 12) and first.streams > 1
    # The job restarts and replays its whole epoch under the same writer id.
    again = client.fit("once", batches, writer_id="job-1", **chunked)
    assert (again.duplicate_batches, again.batches, again.writer_sequence) == (12, 18, 30)
    client.fit("reference", batches, local=False)
    got, want = client.stats("once"), client.stats("reference")
    pooled = np.concatenate(batches)
    np.testing.assert_array_equal(got.count, [len(pooled)] * 5)
    np.testing.assert_allclose(got.mean, pooled.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(got.variance, pooled.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-15)
    assert got.batches == want.batches == 30
    with pytest.raises(normd.FailedPrecondition, match="the next batch must be 31, got 40"):
        client.fit("once", batches[:1], writer_id="job-1", first_sequence=40, local=local)


def test_a_refused_batch_rejects_the_whole_stream(client):
    client.create_dataset("tabular", layout="NC", channels=3)
    good = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(normd.InvalidArgument) as error:
        client.fit("tabular", [good, np.ones((4, 5), dtype=np.float32)])
    assert error.value.code.name == "INVALID_ARGUMENT"
    assert "batch 1 rejected" in error.value.details and "expects 3 channels" in error.value.details
    stats = client.stats("tabular")
    assert stats.batches == 0 and list(stats.count) == [0, 0, 0]


def test_a_failing_iterable_raises_its_own_error_and_applies_nothing(client):
    client.create_dataset("tabular", layout="NC", channels=3)

    def broken():
        yield np.ones((4, 3), dtype=np.float32)
        raise RuntimeError("the data loader failed")

    with pytest.raises(RuntimeError, match="the data loader failed"):
        client.fit("tabular", broken())
    assert client.stats("tabular").batches == 0


def test_errors_carry_the_status_code(client):
    with pytest.raises(normd.NotFound) as error:
        client.stats("missing")
    assert error.value.code.name == "NOT_FOUND" and '"missing" does not exist' in error.value.details
    client.create_dataset("once", layout="NC", channels=1)
    with pytest.raises(normd.AlreadyExists):
        client.create_dataset("once", layout="NC", channels=1)
    with pytest.raises(normd.FailedPrecondition, match="no training data"):
        client.freeze("once")
    with pytest.raises(normd.FailedPrecondition, match="call Freeze first"):
        client.zscore(np.zeros((2, 1), np.float32), "once")
    with pytest.raises(TypeError, match="got int64"):
        client.layer_norm(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="layout must be one of"):
        client.create_dataset("x", layout="HWC", channels=1)


def run_example(normd, example):
    result = run_python_snippet(normd.address, example)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_python_guides_pytorch_example_runs(normd):
    """docs/python.md's PyTorch example, run as written against a real server."""
    blocks = re.findall(r"```python\n(.*?)```", PYTHON_GUIDE.read_text(), re.S)
    example = next(b for b in blocks if "import torch" in b and "normd.Client" in b)
    assert "match the local computation" in run_example(normd, example)


def test_the_readmes_ten_line_example_runs_and_is_right(normd):
    """The README's first Python example, as written: it prints the z-scores of the
    first rows, which the test checks against numpy's from the same data."""
    example = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    assert len(example.strip().splitlines()) <= 10
    printed = run_example(normd, example)
    train = np.random.default_rng(0).normal([10, 20, 1e8], [1, 2, 0.5], (10000, 3))
    expected = np.round((train[:5] - train.mean(0)) / np.sqrt(train.var(0) + 1e-5), 3)
    got = np.array([[float(v) for v in row.strip(" []").split()]
                    for row in printed.strip().splitlines()])
    np.testing.assert_allclose(got, expected, atol=1.5e-3)


class SlowHandshakeProxy:
    """A TCP proxy to a normd that holds the server's first bytes (its HTTP/2 SETTINGS)
    of every new connection for `delay` seconds, as a loaded server or a long link
    answers the handshake. Its threads stop with the sockets it closes."""

    def __init__(self, target, delay):
        self.target, self.delay = target, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target.rsplit(":", 1))
            self.sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, 0.0),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self.delay),
                             daemon=True).start()

    @staticmethod
    def _pipe(source, sink, delay):
        time.sleep(delay)  # the delay under test, not a synchronisation
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self):
        for sock in self.sockets:
            sock.close()


def test_a_server_slow_to_answer_the_handshake_is_waited_for(client):
    """A connection whose HTTP/2 handshake takes 0.5 s still serves the call. (The client
    once set grpc.min_reconnect_backoff_ms to 100, which is also gRPC's connect timeout:
    every call to a server slower than 100 ms to answer failed UNAVAILABLE.)"""
    proxy = SlowHandshakeProxy(client.target, delay=0.5)
    try:
        with normd.Client(proxy.address, timeout=10) as slow:
            assert slow.list_datasets() == []
    finally:
        proxy.close()


def test_with_no_server_fit_logs_its_wait_and_names_the_address(caplog):
    """Nobody listens at the address: every call's Unavailable names it, fit logs each
    wait (logger "normd") and, when retry_for runs out, says whom it waited for and the
    failure that kept it away, not only DEADLINE_EXCEEDED."""
    with normd.Client("127.0.0.1:1", timeout=5) as client:
        with pytest.raises(normd.Unavailable, match=r"normd at 127\.0\.0\.1:1"):
            client.list_datasets()
        with caplog.at_level(logging.WARNING, logger="normd"):
            with pytest.raises(normd.Unavailable) as error:
                client.fit("tab", [np.ones((4, 2))], retry_for=2)
        assert error.value.details.startswith(
            "normd at 127.0.0.1:1 did not come back before fit's retry_for ran out; the last "
            "failure: UNAVAILABLE"), error.value.details
        assert any("waiting for normd at 127.0.0.1:1" in record.getMessage()
                   for record in caplog.records)
