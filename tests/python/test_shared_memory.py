"""Shared memory and the lean wire path of the Python client against a real normd:
arrays and tensors in shared buffers are read and written in place (checked against
the TCP path and PyTorch), fit() from a refilled buffer is exact, regions of a killed
process are reclaimed, and the hand-made wire encoding agrees with protobuf's."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import normd
from conftest import PYTHON_PACKAGE_DIR
from oracles import assert_matches_torch
from normd import wire
from normd.v1 import normd_pb2 as pb


@pytest.fixture
def fitted(client):
    """A frozen NCHW dataset of 3 channels, and its training data."""
    rng = np.random.default_rng(7)
    train = rng.normal(4.0, 3.0, (64, 3, 8, 8)).astype(np.float32)
    client.create_dataset("images", layout="NCHW", channels=3)
    client.fit("images", [train[:32], train[32:]])
    client.freeze("images")
    return train


def zscore_reference(x: np.ndarray, train: np.ndarray, eps=1e-5):
    """torch's batch norm in eval mode with the training split's float64 statistics."""
    pooled = torch.from_numpy(train).double().transpose(0, 1).reshape(3, -1)
    mean, var = pooled.mean(dim=1), pooled.var(dim=1, unbiased=False)
    return F.batch_norm(torch.from_numpy(x).double(), mean, var, training=False, eps=eps)


def test_zscore_in_shared_memory_matches_torch_and_the_tcp_path(client, fitted):
    rng = np.random.default_rng(8)
    batch = rng.normal(4.0, 3.0, (16, 3, 8, 8)).astype(np.float32)
    pool = client.shared_pool(1 << 20)
    x, y = pool.array(batch.shape, np.float32), pool.array(batch.shape, np.float32)
    x[...] = batch
    sent = []  # what went over the socket: a reference, not the 12 KiB of values
    send = client._normalize_bytes
    client._normalize_bytes = lambda request, **kw: sent.append(len(request)) or send(request, **kw)
    assert client.zscore(x, "images", out=y) is y
    client._normalize_bytes = send
    assert sent[0] < 200
    assert_matches_torch(torch.from_numpy(y.copy()), zscore_reference(batch, fitted))
    np.testing.assert_array_equal(y, client.zscore(batch, "images"))  # inline, same bits

    # torch tensors over the pool, with a bfloat16 output written in place.
    pool.clear()
    xt = pool.tensor(batch.shape, torch.float32)
    yt = pool.tensor(batch.shape, torch.bfloat16)
    xt.copy_(torch.from_numpy(batch))
    client.zscore(xt, "images", out=yt)
    torch.testing.assert_close(yt.float(), zscore_reference(batch, fitted).float(),
                               rtol=8e-3, atol=1e-2)
    assert torch.equal(yt, client.zscore(torch.from_numpy(batch), "images",
                                         output_dtype=torch.bfloat16))


def test_out_outside_shared_memory_is_filled_from_the_reply(client, fitted):
    batch = np.random.default_rng(9).normal(4.0, 3.0, (4, 3, 8, 8)).astype(np.float32)
    out = np.empty(batch.shape, np.float64)
    assert client.zscore(batch, "images", out=out) is out  # out's dtype picks float64
    np.testing.assert_array_equal(out, client.zscore(batch, "images", output_dtype="float64"))
    out_t = torch.empty(batch.shape, dtype=torch.float16)
    client.scale(torch.from_numpy(batch), 0.5, out=out_t)
    assert torch.equal(out_t, (torch.from_numpy(batch).double() * 0.5).half())


def test_fit_from_a_refilled_shared_buffer_is_exact(client):
    """The usual loop: one shared buffer, refilled for every batch. Each batch is
    acknowledged before the next overwrites it, so statistics are those of the data."""
    rng = np.random.default_rng(10)
    batches = [rng.normal(-2.0, 5.0, (256, 8)) for _ in range(5)]
    client.create_dataset("inline", layout="NC", channels=8)
    client.create_dataset("shared", layout="NC", channels=8)
    client.fit("inline", batches)
    buffer = client.shared_buffer(256 * 8 * 8)
    staging = buffer.array((256, 8), np.float64)

    def refill():
        for batch in batches:
            staging[...] = batch
            yield staging

    result = client.fit("shared", refill(), local=False)  # the server reads the buffer
    assert (result.batches, result.streams) == (5, 5)
    shared, inline = client.stats("shared"), client.stats("inline")
    for field in ("count", "mean", "variance", "min", "max"):
        np.testing.assert_array_equal(getattr(shared, field), getattr(inline, field))
    pooled = np.concatenate(batches)
    np.testing.assert_allclose(shared.mean, pooled.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(shared.variance, pooled.var(axis=0), rtol=1e-12)


def test_shared_batches_fill_streams_by_count_not_by_bytes(client):
    """A batch in shared memory is not sent, so stream_bytes (a bound on what the client
    sends and holds for a resend) does not end its stream: shared_stream_batches does."""
    rng = np.random.default_rng(11)
    pool = client.shared_pool(4 * 64 * 8 * 8)
    batches = [pool.array((64, 8), np.float64) for _ in range(4)]
    for batch in batches:
        batch[...] = rng.normal(1.0, 2.0, batch.shape)
    client.create_dataset("packed", layout="NC", channels=8)
    result = client.fit("packed", batches, stream_bytes=1, shared_stream_batches=4, local=False)
    assert (result.batches, result.streams) == (4, 1)
    pooled = np.concatenate(batches)
    stats = client.stats("packed")
    np.testing.assert_allclose(stats.mean, pooled.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.variance, pooled.var(axis=0), rtol=1e-12)
    # Inline batches still end a stream once it holds stream_bytes of them.
    inline = client.fit("packed", [b.copy() for b in batches], stream_bytes=1, local=False)
    assert (inline.batches, inline.streams) == (4, 4)


def test_regions_are_listed_and_unregistered_on_close(client):
    buffer = client.shared_buffer(4096, name="listed")
    listed = client.regions()
    assert [(r.name, r.size, r.writable, r.client_pid) for r in listed.regions] == \
        [("listed", 4096, True, os.getpid())]
    assert listed.handoff_socket.endswith("regions.sock")
    buffer.close()
    assert list(client.regions().regions) == []
    with pytest.raises(normd.NotFound, match='no region named "listed"'):
        client._call(client._stub.UnregisterRegion, pb.UnregisterRegionRequest(name="listed"))


def test_regions_of_a_killed_process_are_reclaimed(normd, client):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {PYTHON_PACKAGE_DIR!r})
        import normd
        client = normd.Client({normd.address!r})
        pool = client.shared_pool(1 << 20, name="held")
        print("ready", flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert [r.name for r in client.regions().regions] == ["held"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 30
    while [r.name for r in client.regions().regions]:  # the server notices the hang-up
        assert time.monotonic() < deadline, "the killed process's region was never reclaimed"
        time.sleep(0.01)  # the poll interval


def test_the_hand_encoded_request_is_what_protobuf_parses():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    template = pb.NormalizeRequest(dataset="d", version=3, output_dtype=pb.DTYPE_FLOAT64)
    template.zscore.eps = 0.5
    encoded = b"".join([template.SerializeToString(),
                        wire.tensor_field(3, x.shape, pb.DTYPE_FLOAT32, x.nbytes), x])
    expected = pb.NormalizeRequest()
    expected.CopyFrom(template)
    expected.input.shape[:] = [2, 3, 4]
    expected.input.dtype = pb.DTYPE_FLOAT32
    expected.input.data = x.tobytes()
    assert pb.NormalizeRequest.FromString(encoded) == expected

    by_region = template.SerializeToString() + wire.tensor_field(
        3, (1 << 40, 7), pb.DTYPE_UINT8, region=wire.region_slice("buf", 300))
    parsed = pb.NormalizeRequest.FromString(by_region)
    assert (list(parsed.input.shape), parsed.input.region.name, parsed.input.region.offset,
            parsed.input.data) == ([1 << 40, 7], "buf", 300, b"")


def test_the_hand_decoded_reply_is_what_protobuf_wrote():
    reply = pb.NormalizeResponse(version=9)
    reply.output.shape[:] = [5, 300]
    reply.output.dtype = pb.DTYPE_FLOAT16
    reply.output.data = np.linspace(-1, 1, 1500).astype(np.float16).tobytes()
    encoded = reply.SerializeToString()
    tensor, version = wire.normalize_response(encoded)
    assert (tensor.shape, tensor.dtype, version) == ([5, 300], pb.DTYPE_FLOAT16, 9)
    assert encoded[tensor.data_offset:tensor.data_offset + tensor.data_length] == \
        reply.output.data


def test_a_large_input_goes_in_chunks_with_the_same_result(client, fitted):
    batch = np.random.default_rng(12).normal(4.0, 3.0, (64, 3, 8, 8)).astype(np.float32)
    whole = client.zscore(batch, "images")  # 48 KiB: one request at the default chunk size
    sent = []
    send = client._normalize_bytes
    client._normalize_bytes = lambda request, **kw: sent.append(len(request)) or send(request, **kw)
    client.chunk_bytes = 4096  # 5 samples of 768 B per request
    try:
        np.testing.assert_array_equal(client.zscore(batch, "images"), whole)
        assert len(sent) == 13 and max(sent) < 4096 + 200
        out = torch.empty(batch.shape, dtype=torch.bfloat16)
        client.zscore(torch.from_numpy(batch), "images", out=out)
        assert torch.equal(out, client.zscore(torch.from_numpy(batch), "images",
                                              output_dtype=torch.bfloat16))
        # Batch norm in training mode needs the whole batch's statistics: one request.
        sent.clear()
        trained = client.batch_norm_train(batch)
        assert len(sent) == 1
        assert_matches_torch(torch.from_numpy(trained.copy()), F.batch_norm(
            torch.from_numpy(batch).double(), None, None, training=True, eps=1e-5))
    finally:
        client._normalize_bytes = send


def test_a_batch_rewritten_while_the_server_fits_it_is_read_once(client):
    """A caller that rewrites its region while the server fits it (a loader filling the
    next batch early) gets the statistics of some version of the bytes, never a mix:
    the moments and the fixed histogram, each a pass over the batch, count the same
    values. A thread flips the buffer between all-NaN (skipped) and all-one. A value
    read while it is written may be torn, byte by byte, but NaN's and 1.0's bytes mix
    only into inf (skipped too) or 1.5: never a value the fit would refuse."""
    client.create_dataset("torn", layout="NC", channels=1, nonfinite="skip",
                          histogram_edges=[[0.0, 2.0]])
    rows = 1 << 16
    buffer = client.shared_buffer(rows * 8)
    staging = buffer.array((rows, 1), np.float64)
    staging[...] = 1.0
    stop = threading.Event()
    flips = [0]

    def flip():
        while not stop.is_set():
            staging[...] = np.nan
            staging[...] = 1.0
            flips[0] += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        result = client.fit("torn", (staging for _ in range(300)), local=False)
    finally:
        stop.set()
        flipper.join()
    assert result.batches == 300 and flips[0] > 0
    stats = client.stats("torn")
    _, counts, below, above = stats.fixed_histograms[0]
    assert int(np.sum(counts)) + below + above == stats.count[0]
