"""SIGTERM drains: an Ingest stream in flight when the signal comes is served to its
end and committed, durably, and normd exits 0; one that outlives the grace period is
cancelled, applies nothing, and normd still exits 0.

"In flight" means normd's handler has begun the stream. A call that gRPC has taken off
the wire but not yet handed to a handler is cancelled at shutdown (CANCELLED, nothing
applied) and the client resends it. So each test waits for the
normd_ingest_streams_active gauge before it signals, not merely for the client to
have sent its first batch."""
import signal
import threading

import grpc
import numpy as np
import pytest

import normd
from conftest import NormdProcess, metrics_url, wait_for_sample
from normd.v1 import normd_pb2 as pb
from normd.v1 import normd_pb2_grpc


class HeldStream:
    """An Ingest stream that sends its first batch, then holds the stream open until
    released; the call runs in a thread and its outcome is kept."""

    def __init__(self, address, batches):
        self.first_sent = threading.Event()
        self.release = threading.Event()
        self.reply = None
        self.error = None
        channel = grpc.insecure_channel(address)
        self._stub = normd_pb2_grpc.NormdStub(channel)
        self._batches = batches
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        assert self.first_sent.wait(timeout=60), "the first batch was never taken"

    def _requests(self):
        for i, batch in enumerate(self._batches):
            if i == 1:
                # gRPC asks for the second request only after it took the first.
                self.first_sent.set()
                self.release.wait()
            yield pb.IngestRequest(dataset="drain", split=pb.SPLIT_TRAIN,
                                   batch=pb.Tensor(shape=list(batch.shape),
                                                   dtype=pb.DTYPE_FLOAT64,
                                                   data=batch.tobytes()))

    def _run(self):
        try:
            self.reply = self._stub.Ingest(self._requests(), timeout=120)
        except grpc.RpcError as error:
            self.error = error

    def finish(self):
        self.release.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive()


def batches(seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(2.0, 3.0, (16, 4)) for _ in range(3)]


def assert_counts(address, expected):
    with normd.Client(address, timeout=60) as client:
        np.testing.assert_array_equal(client.stats("drain").count, [expected] * 4)


@pytest.fixture
def draining(tmp_path):
    def start(grace_seconds):
        server = NormdProcess(tmp_path / "data",
                              flags=[f"--shutdown_grace_seconds={grace_seconds}",
                                     "--http_listen=127.0.0.1:0"]).start()
        with normd.Client(server.address, timeout=60) as client:
            if "drain" not in [d.spec.name for d in client.list_datasets()]:
                client.create_dataset("drain", layout="NC", channels=4)
        return server
    return start


def hold_stream(server, batches_to_send):
    """A HeldStream that normd's Ingest handler has begun to serve."""
    stream = HeldStream(server.address, batches_to_send)
    wait_for_sample(metrics_url(server), "normd_ingest_streams_active", 1)
    return stream


def test_sigterm_serves_an_open_stream_to_its_end(draining):
    server = draining(grace_seconds=60)
    sent = batches(1)
    stream = hold_stream(server, sent)
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_stderr("shutting down")
    stream.finish()  # the rest of the stream arrives while the server drains
    assert stream.error is None, stream.error
    assert stream.reply.batches == 3
    assert server.proc.wait(timeout=60) == 0

    server.start()
    try:
        assert_counts(server.address, 48)
    finally:
        server.stop()


def test_a_stream_past_the_grace_period_is_cancelled_and_applies_nothing(draining):
    server = draining(grace_seconds=1)
    with normd.Client(server.address, timeout=60) as client:
        client.fit("drain", batches(2)[:1])
    stream = hold_stream(server, batches(3))
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0  # the grace period ends with the stream open
    stream.finish()
    assert stream.reply is None
    assert stream.error.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)

    server.start()
    try:
        assert_counts(server.address, 16)
    finally:
        server.stop()
