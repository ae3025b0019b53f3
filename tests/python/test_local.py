"""normd's kernels in the client's process (normd._native): summaries against exact
rational arithmetic, summaries merged any way against one batch, fit() through
summaries against fit() of the batches, hostile summaries refused with nothing
changed, and the in-process normaliser against the server's Normalize byte for byte."""
import itertools
import pickle
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

import normd
from normd import local
from normd.v1 import normd_pb2 as pb

pytestmark = pytest.mark.skipif(not local.available(),
                                reason="normd._native not built (pybind11-dev missing)")


def exact_moments(values):
    """(count, mean, M2, min, max) of float values in exact rational arithmetic."""
    exact = [Fraction(float(v)) for v in values]
    n = len(exact)
    mean = sum(exact) / n
    return n, mean, sum((v - mean) ** 2 for v in exact), min(exact), max(exact)


def channel_values(x: np.ndarray, layout: str):
    """Each channel's values, flattened: [C][values]."""
    axis = 1 if layout in ("NC", "NCHW") else x.ndim - 1
    moved = np.moveaxis(x, axis, 0)
    return moved.reshape(moved.shape[0], -1)


@pytest.mark.parametrize("dtype,layout", [
    (np.float32, "NC"), (np.float64, "NCHW"), (np.float16, "NHWC"), (np.uint8, "NCHW")])
def test_moments_agree_with_exact_arithmetic(dtype, layout):
    rng = np.random.default_rng(1)
    shape = {"NC": (257, 3), "NCHW": (5, 3, 7, 6), "NHWC": (5, 7, 6, 3)}[layout]
    if dtype == np.uint8:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        x = (1e4 + rng.normal(0, 3, shape)).astype(dtype)  # |mean| >> std
    summary = normd.moments(x, layout=layout)
    assert (summary.layout, summary.channels, summary.samples, summary.batches) == (
        layout, 3, shape[0], 1)
    count, mean_hi, mean_lo, m2_hi, m2_lo, low, high, *_ = summary.parts()
    for c, values in enumerate(channel_values(x, layout)):
        n, mean, m2, lo, hi = exact_moments(values)
        assert count[c] == n and low[c] == lo and high[c] == hi
        # Within float64's resolution (the kernels' bound, batch_moments.cc).
        assert abs(Fraction(mean_hi[c]) + Fraction(mean_lo[c]) - mean) <= abs(mean) * Fraction(
            1, 10 ** 15)
        assert abs(Fraction(m2_hi[c]) + Fraction(m2_lo[c]) - m2) <= m2 * Fraction(1, 10 ** 12)
        assert abs(summary.mean[c] - float(mean)) <= 2.0 ** -52 * abs(float(mean))  # 1 ulp
        assert abs(summary.variance[c] - float(m2 / n)) <= 1e-12 * float(m2 / n)


def test_summaries_merged_any_way_agree_with_one_batch():
    rng = np.random.default_rng(2)
    x = rng.normal(-7.0, 0.01, (200, 4, 3, 3)).astype(np.float32)
    whole = normd.moments(x, layout="NCHW")
    for _ in range(5):
        cuts = np.sort(rng.choice(np.arange(1, 200), size=int(rng.integers(1, 12)),
                                  replace=False))
        pieces = [normd.moments(p, layout="NCHW") for p in np.split(x, cuts)]
        order = rng.permutation(len(pieces))
        merged = normd.Summary("NCHW", 4)
        for i in order:
            merged += pieces[i]
        assert (merged.samples, merged.batches) == (200, len(pieces))
        np.testing.assert_array_equal(merged.count, whole.count)
        np.testing.assert_array_equal(merged.min, whole.min)
        np.testing.assert_array_equal(merged.max, whole.max)
        np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-15)
        np.testing.assert_allclose(merged.variance, whole.variance, rtol=1e-12)
    again = pickle.loads(pickle.dumps(whole))  # a worker's summary sent to its driver
    for a, b in zip(again.parts(), whole.parts()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(normd.InvalidArgument, match="cannot merge a summary of NHWC"):
        whole + normd.Summary("NHWC", 4)
    with pytest.raises(normd.InvalidArgument, match="3 channels into one of 4"):
        whole + normd.Summary("NCHW", 3)


def test_strided_inputs_are_reduced_as_they_lie():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(2.0, 3.0, (8, 3, 5, 4)).astype(np.float32))
    contiguous = normd.moments(x, layout="NCHW")
    strided = [x.to(memory_format=torch.channels_last),         # NHWC memory, NCHW shape
               x[:, :, ::2, :], x.numpy()[::2], x.double().numpy().transpose(0, 1, 3, 2)]
    for view in strided:
        got = normd.moments(view, layout="NCHW")
        want = normd.moments(np.ascontiguousarray(np.asarray(view, dtype=np.float64)),
                             layout="NCHW")
        assert got.layout == "NCHW"
        np.testing.assert_array_equal(got.count, want.count)
        np.testing.assert_allclose(got.mean, want.mean, rtol=1e-15)
        np.testing.assert_allclose(got.variance, want.variance, rtol=1e-12)
    np.testing.assert_allclose(normd.moments(strided[0], layout="NCHW").mean, contiguous.mean,
                               rtol=1e-15)


@pytest.mark.parametrize("layout,shape,dtype", [
    ("NC", (64, 6), np.float64), ("NCHW", (4, 3, 9, 9), np.float32),
    ("NHWC", (4, 9, 9, 3), np.float16), ("NCHW", (4, 3, 9, 9), np.uint8)])
def test_fit_through_summaries_matches_fit_of_the_batches(client, layout, shape, dtype):
    rng = np.random.default_rng(4)
    channels = shape[1] if layout != "NHWC" else shape[-1]
    batches = [(rng.integers(0, 256, shape) if dtype == np.uint8
                else rng.normal(50.0, 4.0, shape)).astype(dtype) for _ in range(6)]
    client.create_dataset("summaries", layout=layout, channels=channels)
    client.create_dataset("batches", layout=layout, channels=channels)
    sent = []
    transport = client._transport  # what fit sends through
    ingest = transport.ingest_bytes
    transport.ingest_bytes = lambda requests, **kw: ingest(
        (sent.append(len(r)) or r for r in requests), **kw)
    result = client.fit("summaries", batches, local=True)
    transport.ingest_bytes = ingest
    assert (result.batches, result.streams, len(sent)) == (6, 1, 1)  # one message of six
    # O(channels) of moments per batch, plus at most a few bytes per sketch bucket
    values = int(np.prod(shape)) // channels
    assert sent[0] < 100 + 6 * (20 + 70 * channels + channels * (16 + 5 * min(values, 256)))
    client.fit("batches", batches, local=False)
    ranks = [0, 0.01, 0.5, 0.9, 1]
    got = client.stats("summaries", quantiles=ranks, histogram_bins=5)
    want = client.stats("batches", quantiles=ranks, histogram_bins=5)
    # The same sketches wherever the values were reduced: the same answers.
    np.testing.assert_array_equal(got.quantiles, want.quantiles)
    np.testing.assert_array_equal(got.quantile_error, want.quantile_error)
    for (ge, gc), (we, wc) in zip(got.histograms, want.histograms):
        np.testing.assert_array_equal(ge, we)
        np.testing.assert_array_equal(gc, wc)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_array_equal(got.min, want.min)
    np.testing.assert_array_equal(got.max, want.max)
    assert (got.batches, got.samples) == (want.batches, want.samples)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-15)
    np.testing.assert_allclose(got.variance, want.variance, rtol=1e-12)


def summary_request(dataset, *summaries: pb.MomentsSummary, split=pb.SPLIT_TRAIN,
                    **fields) -> pb.IngestRequest:
    return pb.IngestRequest(dataset=dataset, split=split,
                            summaries=pb.MomentsSummaries(summaries=summaries), **fields)


def refused(client, request_bytes):
    with pytest.raises(normd.NormdError) as error:
        try:
            client._ingest_bytes(iter([request_bytes]), timeout=30)
        except Exception as rpc_error:  # grpc.RpcError
            raise normd.errors.from_rpc_error(rpc_error) from None
    return error.value


def test_hostile_summaries_are_refused_and_change_nothing(client):
    client.create_dataset("tab", layout="NC", channels=2)
    rng = np.random.default_rng(5)
    client.fit("tab", [rng.normal(1.0, 2.0, (50, 2))], local=False)
    before = client.stats("tab")
    sketch = client.get_dataset("tab").spec.sketch
    good = local.summary_message(normd.moments(rng.normal(0.0, 1.0, (10, 2)), layout="NC",
                                               sketch=sketch))

    def mutated(**changes):
        message = pb.MomentsSummary()
        message.CopyFrom(good)
        for field, value in changes.items():
            if isinstance(value, list):
                del getattr(message, field)[:]
                getattr(message, field).extend(value)
            else:
                setattr(message, field, value)
        return summary_request("tab", message).SerializeToString()

    inf, nan = float("inf"), float("nan")
    lo, hi = list(good.min), list(good.max)
    cases = {
        "3 channels": mutated(count=[10, 10, 10], mean_hi=[0, 0, 0], mean_lo=[0, 0, 0],
                              m2_hi=[1, 1, 1], m2_lo=[0, 0, 0], min=[-1] * 3, max=[1] * 3,
                              sketches=[]),
        "summary.mean_lo holds 1 values": mutated(mean_lo=[0.0]),
        "count is 0, so expected mean 0": mutated(count=[0, 10]),
        "m2 must lie in": mutated(m2_hi=[-1.0, good.m2_hi[1]]),
        "got 1e\\+300": mutated(m2_hi=[1e300, good.m2_hi[1]]),
        "expected finite min <= max": mutated(min=[hi[0] + 1, lo[1]]),
        "lies outside \\[min, max\\]": mutated(mean_hi=[hi[0] + 1, good.mean_hi[1]]),
        "finite, normalised double-doubles": mutated(mean_hi=[nan, good.mean_hi[1]]),
        "normalised double-doubles \\(hi": mutated(m2_lo=[inf, 0.0]),
        "\\(hi \\+ lo == hi\\)": mutated(mean_lo=[good.mean_hi[0], 0.0]),
        "count must be at most 2\\^53": mutated(count=[2 ** 53 + 1, 10]),
        "11 of them; got 20 values": mutated(samples=11),
        "every channel has them all": mutated(count=[9, 11]),
        "rejects them \\(nonfinite_policy=reject\\)": mutated(skipped_nonfinite=1),
        "expected batches >= 1": mutated(batches=0),
        "samples >= batches": mutated(batches=11),
        "reduced as NCHW data": mutated(layout=pb.LAYOUT_NCHW),
        "summary.layout must be one of": mutated(layout=pb.LAYOUT_UNSPECIFIED),
        # The quantile sketches beside the moments.
        "keeps quantile sketches and the summary holds none": mutated(sketches=[]),
        "summary.sketches holds 1 sketches, expected one per channel":
            mutated(sketches=[good.sketches[0]]),
        "centred on 5; dataset \"tab\" centres it on 0": mutated(sketch_center=[5.0, 5.0]),
        "sketch centers hold 1 values": mutated(sketch_center=[0.0]),
        "counts 11 values; the channel's moments count 10": mutated(sketches=[
            sketch_with(good.sketches[0], integer_count=[good.sketches[0].integer_count[0] + 1]
                        + list(good.sketches[0].integer_count[1:])),
            good.sketches[1]]),
        "expected a rise above 0": mutated(sketches=[
            sketch_with(good.sketches[0], index_delta=[good.sketches[0].index_delta[0], 0]
                        + list(good.sketches[0].index_delta[2:])),
            good.sketches[1]]),
        "expected a finite count above 0": mutated(sketches=[
            sketch_with(good.sketches[0], integer_count=[],
                        count=[nan] + [1.0] * (len(good.sketches[0].index_delta) - 1)),
            good.sketches[1]]),
        "in count or integer_count but not both": mutated(sketches=[
            sketch_with(good.sketches[0], count=[1.0]), good.sketches[1]]),
        "has resolution 40; expected -11 to 10": mutated(sketches=[
            sketch_with(good.sketches[0], resolution=40), good.sketches[1]]),
        "outside the channel's \[min, max\]": mutated(sketches=[
            sketch_with(good.sketches[0],  # 128 and up, far above N(0, 1)'s ten values
                        index_delta=[1030 << 6] + list(good.sketches[0].index_delta[1:])),
            good.sketches[1]]),
    }
    for match, request in cases.items():
        error = refused(client, request)
        assert error.code.name == "INVALID_ARGUMENT", (match, error)
        assert "batch 0 rejected, nothing from this stream was applied" in error.details
        assert re.search(match, error.details), (match, error.details)
    # A batch and a summary in one message (protobuf keeps the last; the server sees both).
    batch = pb.IngestRequest(batch=pb.Tensor(shape=[1, 2], dtype=pb.DTYPE_FLOAT64,
                                             data=np.zeros(2).tobytes()))
    both = batch.SerializeToString() + summary_request("tab", good).SerializeToString()
    assert "both a batch and summaries" in refused(client, both).details
    empty = pb.IngestRequest(dataset="tab", split=pb.SPLIT_TRAIN,
                             summaries=pb.MomentsSummaries()).SerializeToString()
    assert "summaries is empty" in refused(client, empty).details
    # A summary whose counts would pass 2^53 once merged with the stream's others.
    big = pb.MomentsSummary(count=[2 ** 52] * 2, mean_hi=[1.0] * 2, mean_lo=[0.0] * 2,
                            m2_hi=[0.0] * 2, m2_lo=[0.0] * 2, min=[1.0] * 2, max=[1.0] * 2,
                            samples=2 ** 52, batches=1, layout=pb.LAYOUT_NC,
                            sketches=[pb.ChannelSketch(resolution=6, index_delta=[1023 << 6],
                                                       integer_count=[2 ** 52])] * 2)
    two = [summary_request("tab", big).SerializeToString()] * 3
    with pytest.raises(Exception) as error:
        client._ingest_bytes(iter(two), timeout=30)
    assert "more than 2^53" in normd.errors.from_rpc_error(error.value).details

    after = client.stats("tab")
    for field in ("count", "mean", "variance", "min", "max"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field))
    assert (after.batches, after.samples) == (before.batches, before.samples)
    # The unmutated summary is accepted: the refusals above were the mutations'.
    client._ingest_bytes(iter([summary_request("tab", good).SerializeToString()]), timeout=30)
    assert client.stats("tab").batches == before.batches + 1


def sketch_with(sketch, **changes):
    """A copy of a ChannelSketch message with `changes` (repeated fields replaced)."""
    changed = pb.ChannelSketch()
    changed.CopyFrom(sketch)
    for field, value in changes.items():
        if isinstance(value, list):
            del getattr(changed, field)[:]
            getattr(changed, field).extend(value)
        else:
            setattr(changed, field, value)
    return changed


def test_a_message_of_summaries_is_consecutive_batches_exactly_once(client):
    rng = np.random.default_rng(10)
    batches = [rng.normal(0.0, 1.0, (20, 2)) for _ in range(3)]
    client.create_dataset("once", layout="NC", channels=2)
    sketch = client.get_dataset("once").spec.sketch
    message = summary_request(
        "once", *[local.summary_message(normd.moments(b, layout="NC", sketch=sketch))
                  for b in batches],
        writer_id="w", sequence=1).SerializeToString()
    first = client._ingest_bytes(iter([message]), timeout=30)
    assert (first.batches, first.writer_sequence, first.duplicate_batches) == (3, 3, 0)
    again = client._ingest_bytes(iter([message]), timeout=30)  # a lost reply, resent
    assert (again.batches, again.writer_sequence, again.duplicate_batches) == (0, 3, 3)
    stats = client.stats("once")
    assert stats.batches == 3 and list(stats.count) == [60, 60]
    np.testing.assert_allclose(stats.mean, np.concatenate(batches).mean(axis=0), rtol=1e-13)


def test_running_average_takes_single_batch_summaries_in_order(client):
    rng = np.random.default_rng(6)
    batches = [rng.normal(3.0, 2.0, (16, 3, 4, 4)).astype(np.float32) for _ in range(5)]
    for name in ("summaries", "batches"):
        client.create_dataset(name, layout="NCHW", channels=3, running_average=True,
                              momentum=0.1)
    client.fit("summaries", batches, local=True)
    client.fit("batches", batches, local=False)
    got, want = client.stats("summaries"), client.stats("batches")
    # Each batch's moments are the same bits either way, so the average is too.
    np.testing.assert_array_equal(got.running_mean, want.running_mean)
    np.testing.assert_array_equal(got.running_var, want.running_var)
    assert got.num_batches_tracked == want.num_batches_tracked == 5
    sketch = client.get_dataset("summaries").spec.sketch
    merged = (normd.moments(batches[0], layout="NCHW", sketch=sketch)
              + normd.moments(batches[1], layout="NCHW", sketch=sketch))
    request = summary_request("summaries", local.summary_message(merged))
    error = refused(client, request.SerializeToString())
    assert error.code.name == "FAILED_PRECONDITION"
    assert "must cover exactly one batch (batches = 1), got one of 2 batches" in error.details
    assert client.stats("summaries").num_batches_tracked == 5
    # Other splits keep no running average: a merged summary is fine there.
    request.split = pb.SPLIT_VALIDATION
    client._ingest_bytes(iter([request.SerializeToString()]), timeout=30)
    assert client.stats("summaries", split="validation").batches == 2


INPUTS = {
    "float32": lambda x: x.astype(np.float32),
    "float64": lambda x: x,
    "float16": lambda x: x.astype(np.float16),
    "uint8": lambda x: np.clip(x * 20 + 128, 0, 255).astype(np.uint8),
    "bfloat16": lambda x: torch.from_numpy(x).to(torch.bfloat16),
}
OUTPUTS = ["float32", "float64", "float16", "bfloat16"]


def as_bytes(result) -> bytes:
    if isinstance(result, torch.Tensor):
        if result.dtype == torch.bfloat16:
            result = result.view(torch.int16)
        return result.numpy().tobytes()
    return np.asarray(result).tobytes()


@pytest.mark.parametrize("layout,shape", [("NC", (33, 5)), ("NCHW", (3, 5, 4, 7)),
                                          ("NHWC", (3, 4, 7, 5))])
def test_local_normalizer_is_bit_identical_to_the_server(client, layout, shape):
    rng = np.random.default_rng(7)
    client.create_dataset("frozen", layout=layout, channels=5)
    client.fit("frozen", [rng.normal(1e3, 5.0, shape), rng.normal(1e3, 5.0, shape)])
    version = client.freeze("frozen")
    gamma, beta = list(rng.normal(1, 0.2, 5)), list(rng.normal(0, 1, 5))
    schemes = {
        "zscore": ({"eps": 1e-3}, lambda x, **kw: client.zscore(x, "frozen", eps=1e-3, **kw)),
        "minmax": ({"low": -1.0, "high": 1.0},
                   lambda x, **kw: client.minmax(x, "frozen", low=-1.0, high=1.0, **kw)),
        "batchnorm": ({"gamma": gamma, "beta": beta},
                      lambda x, **kw: client.batch_norm(x, "frozen", gamma=gamma, beta=beta,
                                                        **kw)),
        "scale": ({"factor": 1 / 255, "offset": -0.5},
                  lambda x, **kw: client.scale(x, 1 / 255, -0.5, **kw)),
    }
    x64 = rng.normal(1e3, 5.0, shape)
    for (scheme, (params, remote)), (in_name, make), out_name in itertools.product(
            schemes.items(), INPUTS.items(), OUTPUTS):
        normalizer = client.normalizer("frozen" if scheme != "scale" else "", scheme=scheme,
                                       **params)
        assert normalizer.version == (version if scheme != "scale" else 0)
        x = make(x64)
        if out_name == "bfloat16" and not isinstance(x, torch.Tensor):
            x = torch.from_numpy(np.ascontiguousarray(x))
        got, want = normalizer(x, output_dtype=out_name), remote(x, output_dtype=out_name)
        assert as_bytes(got) == as_bytes(want), (scheme, in_name, out_name)


def test_local_normalizer_writes_into_out_and_reports_errors(client):
    rng = np.random.default_rng(8)
    client.create_dataset("img", layout="NCHW", channels=3)
    client.fit("img", [rng.normal(5.0, 2.0, (8, 3, 6, 6))])
    with pytest.raises(normd.FailedPrecondition, match="no frozen version"):
        client.normalizer("img")
    client.freeze("img")
    normalize = client.normalizer("img")
    x = rng.normal(5.0, 2.0, (4, 3, 6, 6)).astype(np.float32)
    out = np.empty_like(x)
    assert normalize(x, out=out) is out
    assert out.tobytes() == client.zscore(x, "img").tobytes()
    out_t = torch.empty(x.shape, dtype=torch.float16)
    assert normalize(torch.from_numpy(x), out=out_t) is out_t
    assert torch.equal(out_t, client.zscore(torch.from_numpy(x), "img", output_dtype="float16"))
    with pytest.raises(normd.InvalidArgument, match="expects 3 channels"):
        normalize(np.zeros((4, 5, 6, 6), np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        normalize(x, out=np.empty((4, 3, 6, 5), np.float32))
    with pytest.raises(normd.NotFound):
        client.normalizer("img", version=9)


def test_fit_from_a_refilled_buffer_reduces_each_batch_before_the_next(client):
    """fit pulls the next batch only once the last one is reduced, so a loop refilling
    one buffer fits its data."""
    rng = np.random.default_rng(9)
    batches = [rng.normal(-2.0, 5.0, (256, 8)) for _ in range(6)]
    staging = np.empty((256, 8))
    pulled = []

    def refill():
        for i, batch in enumerate(batches):
            staging[...] = batch
            pulled.append(i)
            yield staging

    client.create_dataset("refilled", layout="NC", channels=8)
    result = client.fit("refilled", refill(), local=True, summaries_per_stream=4)
    assert (result.batches, result.streams, pulled) == (6, 2, list(range(6)))
    stats, pooled = client.stats("refilled"), np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, pooled.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.variance, pooled.var(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(stats.min, pooled.min(axis=0))


def test_minmax_clip_clamps_to_the_range_and_keeps_nan(client):
    rng = np.random.default_rng(14)
    client.create_dataset("ranged", layout="NCHW", channels=2)
    train = rng.uniform(10.0, 20.0, (8, 2, 4, 4))
    client.fit("ranged", [train])
    client.freeze("ranged")
    x = rng.uniform(0.0, 30.0, (3, 2, 4, 4))  # much of it outside the training range
    x[0, 0, 0, 0] = np.nan
    lo = torch.from_numpy(train.min(axis=(0, 2, 3))).view(1, 2, 1, 1)
    hi = torch.from_numpy(train.max(axis=(0, 2, 3))).view(1, 2, 1, 1)
    reference = torch.clamp(-1 + (torch.from_numpy(x) - lo) / (hi - lo) * 2, -1.0, 1.0)
    for dtype in ("float64", "float32", "bfloat16"):
        xt = torch.from_numpy(x)
        got = client.minmax(xt, "ranged", low=-1, high=1, clip=True, output_dtype=dtype)
        torch.testing.assert_close(got.double(), reference.to(got.dtype).double(),
                                   rtol=1e-6 if dtype != "bfloat16" else 1e-2, atol=1e-6,
                                   equal_nan=True)
        finite = got[~torch.isnan(got)]
        assert float(finite.max()) == 1.0 and float(finite.min()) == -1.0
        assert torch.isnan(got[0, 0, 0, 0])
        local_got = client.normalizer("ranged", scheme="minmax", low=-1, high=1, clip=True)(
            xt, output_dtype=dtype)
        assert as_bytes(local_got) == as_bytes(got)
    unclipped = client.minmax(x, "ranged", low=-1, high=1)
    assert np.nanmax(unclipped) > 1.0 and np.nanmin(unclipped) < -1.0


def test_denormalize_inverts_each_frozen_scheme_locally_and_on_the_server(client):
    rng = np.random.default_rng(15)
    client.create_dataset("targets", layout="NC", channels=3)
    client.fit("targets", [rng.normal([100.0, -5.0, 1e4], [10.0, 0.5, 300.0], (64, 3))])
    client.freeze("targets")
    stats = client.stats("targets", version=1)
    x = rng.normal([100.0, -5.0, 1e4], [10.0, 0.5, 300.0], (9, 3))
    gamma, beta = [1.5, -0.5, 2.0], [0.1, 0.2, 0.3]
    cases = [
        ("zscore", {}, lambda t: t * torch.sqrt(torch.from_numpy(stats.variance) + 1e-5)
         + torch.from_numpy(stats.mean)),
        ("minmax", {"low": -1.0, "high": 1.0},
         lambda t: (t + 1) / 2 * torch.from_numpy(stats.max - stats.min)
         + torch.from_numpy(stats.min)),
        ("scale", {"factor": 0.25, "offset": 3.0}, lambda t: (t - 3.0) / 0.25),
        ("batchnorm", {"gamma": gamma, "beta": beta},
         lambda t: (t - torch.tensor(beta, dtype=torch.float64)) / torch.tensor(
             gamma, dtype=torch.float64) * torch.sqrt(torch.from_numpy(stats.variance) + 1e-5)
         + torch.from_numpy(stats.mean)),
    ]
    for scheme, params, oracle in cases:
        dataset = "" if scheme == "scale" else "targets"
        forward = {"zscore": lambda v: client.zscore(v, dataset, output_dtype="float64"),
                   "minmax": lambda v: client.minmax(v, dataset, output_dtype="float64",
                                                     **params),
                   "scale": lambda v: client.scale(v, output_dtype="float64", **params),
                   "batchnorm": lambda v: client.batch_norm(v, dataset, output_dtype="float64",
                                                            **params)}[scheme]
        y = np.array(forward(x))
        back = client.denormalize(y, dataset, scheme=scheme, output_dtype="float64", **params)
        np.testing.assert_allclose(back, x, rtol=1e-13, atol=1e-11)  # the round trip
        torch.testing.assert_close(torch.from_numpy(np.array(back)), oracle(torch.from_numpy(y)),
                                   rtol=1e-13, atol=1e-11)
        local_back = client.normalizer(dataset, scheme=scheme, **params).inverse(
            y, output_dtype="float64")
        assert local_back.tobytes() == np.asarray(back).tobytes()
    module = client.export("targets", format="module")
    xt = torch.from_numpy(x)
    torch.testing.assert_close(torch.jit.script(module).inverse(module(xt)), xt, rtol=1e-12,
                               atol=1e-9)


def test_denormalize_refuses_schemes_without_an_inverse(client):
    client.create_dataset("flat", layout="NC", channels=2)
    client.fit("flat", [np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])])  # channel 1 constant
    client.freeze("flat")
    y = np.zeros((2, 2))
    with pytest.raises(normd.FailedPrecondition, match="channel 1 .* constant in training"):
        client.denormalize(y, "flat", scheme="minmax")
    with pytest.raises(normd.InvalidArgument, match="minmax with clip has no inverse"):
        client.denormalize(y, "flat", scheme="minmax", clip=True)
    with pytest.raises(normd.InvalidArgument, match="zero scale factor or gamma"):
        client.denormalize(y, "", scheme="scale", factor=0.0)
    with pytest.raises(normd.InvalidArgument, match="zero scale factor or gamma"):
        client.normalizer("", scheme="scale", factor=0.0).inverse(y)
    request = pb.NormalizeRequest()
    request.layernorm.SetInParent()
    request.input.shape[:] = [2, 2]
    request.input.dtype = pb.DTYPE_FLOAT64
    request.input.data = y.tobytes()
    with pytest.raises(Exception) as error:
        client._denormalize_bytes(request.SerializeToString(), timeout=30)
    refusal = normd.errors.from_rpc_error(error.value)
    assert refusal.code.name == "INVALID_ARGUMENT" and "has no inverse" in refusal.details
    with pytest.raises(ValueError, match="scheme must be one of"):
        client.denormalize(y, "flat", scheme="layernorm")


def nist_numacc():
    """NIST StRD univariate summary statistics, NumAcc1-4: (name, values, certified mean,
    certified sample standard deviation)."""
    yield "NumAcc1", [10000001.0, 10000003.0, 10000002.0], 10000002.0, 1.0
    for name, base in (("NumAcc2", 1.2), ("NumAcc3", 1000000.2), ("NumAcc4", 10000000.2)):
        low, high = round(base - 0.1, 1), round(base + 0.1, 1)
        yield name, [base] + [low, high] * 500, base, 0.1


@pytest.mark.parametrize("name,values,mean,std", list(nist_numacc()),
                         ids=[n for n, *_ in nist_numacc()])
def test_nist_strd_through_summaries(client, name, values, mean, std):
    """Fitted as summaries of uneven pieces: the exact rational moments of the float64
    inputs to 1e-13 (mean) and 1e-12 (variance), and NIST's certified values to what the
    decimal inputs' float64 rounding leaves (NumAcc4's 10000000.1 is 1e-9 off in float64)."""
    x = np.array(values).reshape(-1, 1)
    rng = np.random.default_rng(len(values))
    cuts = np.sort(rng.choice(np.arange(1, len(x)), size=min(6, len(x) - 1), replace=False))
    client.create_dataset(name, layout="NC", channels=1)
    result = client.fit(name, np.split(x, cuts), local=True)
    assert result.batches == len(cuts) + 1
    stats = client.stats(name)
    n, exact_mean, m2, _, _ = exact_moments(x[:, 0])
    assert abs(Fraction(stats.mean[0]) - exact_mean) <= abs(exact_mean) * Fraction(1, 10 ** 13)
    assert abs(Fraction(stats.sample_variance[0]) - m2 / (n - 1)) <= m2 / (n - 1) * Fraction(
        1, 10 ** 12)
    tolerance = {"NumAcc1": 1e-15, "NumAcc2": 1e-13, "NumAcc3": 1e-9, "NumAcc4": 1e-8}[name]
    assert abs(stats.mean[0] - mean) <= 1e-15 * abs(mean)
    assert abs(np.sqrt(stats.sample_variance[0]) - std) <= tolerance * std


@pytest.mark.parametrize("layout,shape", [("NCHW", (3, 4, 5, 6)), ("NHWC", (3, 5, 6, 4))])
def test_batch_statistics_schemes_in_process_give_the_servers_bytes(client, layout, shape):
    rng = np.random.default_rng(16)
    channels = shape[1] if layout == "NCHW" else shape[-1]
    client.create_dataset("maps", layout=layout, channels=channels)
    gamma, beta = list(rng.normal(1, 0.2, channels)), list(rng.normal(0, 1, channels))
    trailing = list(shape[2:])
    cases = [
        ("batchnorm_training", {"gamma": gamma, "beta": beta},
         lambda v, **kw: client.batch_norm_train(v, dataset="maps", gamma=gamma, beta=beta,
                                                 **kw)),
        ("layernorm", {"normalized_shape": trailing},
         lambda v, **kw: client.layer_norm(v, trailing, **kw)),
        ("instancenorm", {"gamma": gamma, "beta": beta, "eps": 1e-3},
         lambda v, **kw: client.instance_norm(v, dataset="maps", gamma=gamma, beta=beta,
                                              eps=1e-3, **kw)),
        ("groupnorm", {"num_groups": 2},
         lambda v, **kw: client.group_norm(v, 2, dataset="maps", **kw)),
    ]
    for (scheme, params, remote), (in_name, make), out_name in itertools.product(
            cases, INPUTS.items(), OUTPUTS):
        dataset = "" if scheme == "layernorm" else "maps"
        normalizer = client.normalizer(dataset, scheme=scheme, **params)
        x = make(rng.normal(3.0, 2.0, shape))
        if out_name == "bfloat16" and not isinstance(x, torch.Tensor):
            x = torch.from_numpy(np.ascontiguousarray(x))
        got, want = normalizer(x, output_dtype=out_name), remote(x, output_dtype=out_name)
        assert as_bytes(got) == as_bytes(want), (scheme, in_name, out_name)
    # Without a dataset: the layout given (default NCHW), as the scheme methods take it.
    x = rng.normal(0.0, 1.0, shape).astype(np.float32)
    assert as_bytes(client.normalizer("", scheme="groupnorm", num_groups=2, layout=layout)(x)) \
        == as_bytes(client.group_norm(x, 2, layout=layout))
    with pytest.raises(normd.InvalidArgument, match="has no inverse"):
        client.normalizer("", scheme="layernorm").inverse(x)
    with pytest.raises(normd.InvalidArgument, match="does not match dataset"):
        client.normalizer("maps", scheme="instancenorm",
                          layout="NHWC" if layout == "NCHW" else "NCHW")


def test_out_may_be_x_itself_only_for_element_wise_schemes(client):
    rng = np.random.default_rng(17)
    client.create_dataset("inplace", layout="NC", channels=4)
    client.fit("inplace", [rng.normal(5.0, 2.0, (40, 4))])
    client.freeze("inplace")
    x = rng.normal(5.0, 2.0, (6, 4)).astype(np.float32)
    want = client.zscore(x, "inplace")
    y = x.copy()
    assert client.normalizer("inplace")(y, out=y) is y
    assert y.tobytes() == np.asarray(want).tobytes()
    with pytest.raises(ValueError, match="out overlaps x"):
        client.normalizer("", scheme="layernorm")(x, out=x)
    shared = rng.normal(5.0, 2.0, 28).astype(np.float32)
    with pytest.raises(ValueError, match="out overlaps x"):  # shifted by one sample
        client.normalizer("inplace")(shared[:24].reshape(6, 4), out=shared[4:].reshape(6, 4))


def test_a_message_of_many_summaries_is_applied_whole_or_not_at_all(client):
    """The server applies a message's summaries in slices (other streams are served
    between them): 3,000 one-row summaries apply exactly once, in order; one bad
    summary in the last slice refuses the whole message, with the slices before it
    unapplied; a field sent in two pieces is their concatenation, as protobuf's."""
    client.create_dataset("many", layout="NC", channels=1)
    sketch = client.get_dataset("many").spec.sketch
    values = np.arange(3000, dtype=np.float64)
    entries = [local.summary_message(normd.moments(values[i:i + 1].reshape(1, 1), layout="NC",
                                                   sketch=sketch)) for i in range(3000)]
    bad = pb.MomentsSummary()
    bad.CopyFrom(entries[2500])
    del bad.count[:]
    spoiled = summary_request("many", *entries[:2500], bad, *entries[2501:],
                              writer_id="w", sequence=1).SerializeToString()
    error = refused(client, spoiled)
    assert "summaries[2500]" in error.details and "summary.count" in error.details
    assert client.stats("many").batches == 0

    first = summary_request("many", *entries[:1800], writer_id="w", sequence=1)
    rest = pb.IngestRequest(summaries=pb.MomentsSummaries(summaries=entries[1800:]))
    message = first.SerializeToString() + rest.SerializeToString()
    assert len(pb.IngestRequest.FromString(message).summaries.summaries) == 3000
    reply = client._ingest_bytes(iter([message]), timeout=60)
    assert (reply.batches, reply.writer_sequence) == (3000, 3000)
    again = client._ingest_bytes(iter([message]), timeout=60)
    assert (again.batches, again.duplicate_batches) == (0, 3000)
    stats = client.stats("many")
    # 0..2999: mean 1499.5 and population variance (n^2 - 1) / 12, exactly.
    assert (stats.batches, list(stats.count)) == (3000, [3000])
    assert stats.mean[0] == Fraction(2999, 2)
    assert stats.variance[0] == float(Fraction(3000 ** 2 - 1, 12))


def sketch_oracle(parts_sketch):
    """ChannelSketch messages built by protobuf from a summary's parts: the encoding
    the native module's sketch_fields must match."""
    _, _, sketches = parts_sketch
    out = []
    for resolution, indices, counts in sketches:
        counts = np.asarray(counts, np.float64)
        whole = bool(np.all(counts == np.floor(counts)))
        out.append(pb.ChannelSketch(
            resolution=resolution, index_delta=np.diff(np.asarray(indices, np.int64), prepend=0),
            integer_count=counts.astype(np.uint64) if whole else [],
            count=[] if whole else counts))
    return out


@pytest.mark.parametrize("dtype,weighted", [(np.float32, False), (np.uint8, False),
                                            (np.float64, True)])
def test_the_native_sketch_encoding_is_protobufs(dtype, weighted):
    """summary_bytes encodes the sketches in C++ (fast); parsed by protobuf they are
    the messages protobuf builds from the same parts, integer and weighted counts."""
    rng = np.random.default_rng(21)
    x = (rng.integers(0, 256, (50, 3, 4, 4)) if dtype == np.uint8
         else rng.normal(-5, 40, (50, 3, 4, 4))).astype(dtype)
    weights = rng.uniform(0.1, 2.0, 50) if weighted else None
    summary = normd.moments(x, layout="NCHW", sketch=pb.QuantileSketchOptions(),
                            weights=weights)
    message = local.summary_message(summary)
    expected = sketch_oracle(summary.parts()[11])
    assert len(message.sketches) == 3
    assert list(message.sketches) == expected
    assert any(len(s.count) for s in message.sketches) == weighted
    # The bytes parse to a summary the server-side checks take: merged with itself
    # through the wire, it is the summary merged with itself.
    again = normd.Summary.from_parts(summary.parts())
    assert local.summary_message(again + summary) == local.summary_message(summary + summary)
