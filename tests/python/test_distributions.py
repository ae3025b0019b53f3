"""Quantile sketches through a real normd: quantiles and histograms against numpy on the
whole data (hostile distributions, arrival orders, batchings, 64 writers), sketches
that survive freezing and restarts, and precise statuses for bad requests."""
import numpy as np
import pytest

import normd
from normd import local as normd_local
from normd.v1 import normd_pb2 as pb
from conftest import NormdProcess

# The in-process side (summaries, local normalisers) needs the native module, which the
# sanitizer build leaves out; there these tests check the server alone.
NATIVE = normd_local.available()

RANKS = np.array([0, 0.001, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 0.99, 0.999, 1])


def hostile(rng, n=20000):
    """name -> (values, center): the distributions a sketch must survive."""
    normal = rng.normal(0.0, 1.0, n)
    point = np.full(n, 7.0)
    point[::10] += rng.normal(0.0, 1e-3, n // 10)
    mixture = np.where(rng.random(n) < 1 / 3, rng.normal(-5, 0.1, n), rng.normal(100, 30, n))
    return {
        "cauchy": (rng.standard_cauchy(n), 0.0),
        "pareto": ((1 - rng.random(n)) ** (-1 / 1.1), 0.0),
        "sorted": (np.sort(rng.normal(3, 2, n)), 0.0),
        "reverse sorted": (np.sort(rng.lognormal(0, 3, n))[::-1].copy(), 0.0),
        "few distinct": (rng.integers(-2, 3, n).astype(np.float64), 0.0),
        "point mass plus noise": (point, 0.0),
        "1e8 + 1e-3 noise, centred": (1e8 + 1e-3 * normal, 1e8),
        "mixture": (mixture, 0.0),
    }


def assert_within_bounds(stats, columns, centers, what):
    """Every quantile within its stated bound of numpy's, and every bound within the
    sketch's relative accuracy of the neighbours' distance from the center."""
    for c, values in enumerate(columns):
        exact = np.quantile(values, RANKS)
        error = np.abs(stats.quantiles[c] - exact)
        assert np.all(error <= stats.quantile_error[c]), (what, c, error, stats.quantile_error[c])
        ordered = np.sort(values)
        below = np.floor(RANKS * (len(values) - 1)).astype(int)
        above = np.minimum(below + 1, len(values) - 1)
        scale = np.maximum(np.abs(ordered[below] - centers[c]), np.abs(ordered[above] - centers[c]))
        allowed = stats.relative_accuracy[c] * scale + 2.0 ** -48 * (
            abs(centers[c]) + np.abs(ordered[above])) + 1e-300
        assert np.all(stats.quantile_error[c] <= allowed), (what, c)


def test_hostile_distributions_stay_within_the_stated_bounds(client):
    rng = np.random.default_rng(31)
    cases = hostile(rng)
    names = list(cases)
    columns = [cases[name][0] for name in names]
    centers = [cases[name][1] for name in names]
    client.create_dataset("hostile", layout="NC", channels=len(names), sketch_center=centers)
    data = np.stack(columns, axis=1)
    client.fit("hostile", np.array_split(data, 40), local=False)
    stats = client.stats("hostile", quantiles=RANKS)
    assert stats.relative_accuracy.tolist() == [2.0 ** -7] * len(names)
    assert_within_bounds(stats, columns, centers, "batches")
    # The same values through local summaries, one value per batch for a slice of them.
    client.create_dataset("local", layout="NC", channels=len(names), sketch_center=centers)
    client.fit("local", [data[i:i + 1] for i in range(300)] + [data[300:]], local=NATIVE)
    local = client.stats("local", quantiles=RANKS)
    np.testing.assert_array_equal(local.quantiles, stats.quantiles)
    np.testing.assert_array_equal(local.quantile_error, stats.quantile_error)


def test_offset_data_without_a_center_keep_the_bound_not_the_resolution(client):
    rng = np.random.default_rng(32)
    values = 1e8 + 1e-3 * rng.normal(size=(5000, 1))
    client.create_dataset("offset", layout="NC", channels=1)
    client.create_dataset("centred", layout="NC", channels=1, sketch_center=[1e8])
    for name in ("offset", "centred"):
        client.fit(name, [values], local=False)
    offset = client.stats("offset", quantiles=RANKS)
    centred = client.stats("centred", quantiles=RANKS)
    assert_within_bounds(offset, [values[:, 0]], [0.0], "no center")
    assert_within_bounds(centred, [values[:, 0]], [1e8], "centred")
    # About 0 every value shares one bucket of width 8 (2^-7 of 1e8's octave), clipped
    # to [min, max]: the bound is about half the data's range. About 1e8, 2^-7 of |x - 1e8|.
    spread = values.max() - values.min()
    assert np.all(offset.quantile_error[0] <= spread / 2 + 2.0 ** -49 * 1e8)
    assert offset.quantile_error[0][6] > 50 * centred.quantile_error[0][6]


def test_order_batching_and_64_writers_give_the_same_answers(client):
    rng = np.random.default_rng(33)
    x = np.concatenate([rng.standard_cauchy((3000, 2)), rng.normal(5, 1, (3000, 2))])
    shuffled = x[rng.permutation(len(x))]
    for name in ("one", "many"):
        client.create_dataset(name, layout="NC", channels=2, max_buckets=256)
    client.fit("one", [x], local=False)
    for w in range(64):  # 64 writers, each a strided share, in shuffled order
        client.fit("many", [shuffled[w::64]], writer_id=f"w{w}")
    one = client.stats("one", quantiles=RANKS, histogram_bins=12)
    many = client.stats("many", quantiles=RANKS, histogram_bins=12)
    np.testing.assert_array_equal(one.quantiles, many.quantiles)
    np.testing.assert_array_equal(one.quantile_error, many.quantile_error)
    assert one.relative_accuracy[0] > 2.0 ** -7  # coarsened to fit 256 buckets
    for (e1, c1), (e2, c2) in zip(one.histograms, many.histograms):
        np.testing.assert_array_equal(e1, e2)
        np.testing.assert_array_equal(c1, c2)
    assert_within_bounds(one, [x[:, 0], x[:, 1]], [0.0, 0.0], "coarsened")


def test_histograms_count_exactly_between_their_edges(client):
    rng = np.random.default_rng(34)
    x = np.stack([rng.integers(-300, 700, 10000), rng.normal(0, 50, 10000)], axis=1)
    client.create_dataset("hist", layout="NC", channels=2)
    client.fit("hist", np.array_split(x, 7), local=False)
    stats = client.stats("hist", histogram_bins=20)
    assert stats.quantiles.shape == (2, 0)
    for c, (edges, counts) in enumerate(stats.histograms):
        values = x[:, c]
        assert len(edges) == len(counts) + 1 <= 21
        assert edges[0] == values.min() and edges[-1] == values.max()
        assert np.all(np.diff(edges) >= 0)
        inside = [np.count_nonzero((values >= lo) & (values < hi)) for lo, hi in
                  zip(edges[:-1], edges[1:])]
        inside[-1] += np.count_nonzero(values == edges[-1])
        np.testing.assert_array_equal(counts, inside)


def test_sketches_freeze_per_split_and_survive_a_restart(tmp_path):
    rng = np.random.default_rng(35)
    train, validation = rng.normal(0, 1, (4000, 3)), rng.exponential(2, (3000, 3))
    server = NormdProcess(tmp_path / "data").start()
    try:
        with normd.Client(server.address, timeout=60) as client:
            client.create_dataset("d", layout="NC", channels=3)
            client.fit("d", [train], local=False)
            client.fit("d", [validation], split="validation", local=False)
            version = client.freeze("d")
            client.fit("d", [rng.normal(9, 1, (100, 3))])  # after the freeze: live only
            frozen = client.stats("d", version, quantiles=RANKS, histogram_bins=8)
            held = client.stats("d", version, split="validation", quantiles=RANKS)
            live = client.stats("d", quantiles=RANKS)
        assert_within_bounds(frozen, list(train.T), [0.0] * 3, "frozen train")
        assert_within_bounds(held, list(validation.T), [0.0] * 3, "frozen validation")
        assert np.all(live.quantiles[:, -1] > 5)  # the later batch moved the live max
        server.stop()
        server.start()
        with normd.Client(server.address, timeout=60) as client:
            again = client.stats("d", version, quantiles=RANKS, histogram_bins=8)
            np.testing.assert_array_equal(again.quantiles, frozen.quantiles)
            for (e1, c1), (e2, c2) in zip(again.histograms, frozen.histograms):
                np.testing.assert_array_equal(e1, e2)
                np.testing.assert_array_equal(c1, c2)
            np.testing.assert_array_equal(client.stats("d", quantiles=RANKS).quantiles,
                                          live.quantiles)
    finally:
        server.stop()


def test_u8_images_and_skipped_non_finite_values(client):
    rng = np.random.default_rng(36)
    images = rng.integers(0, 256, (8, 3, 16, 16), dtype=np.uint8)
    client.create_dataset("img", layout="NCHW", channels=3)
    client.fit("img", [images[:5], images[5:]], local=NATIVE)
    stats = client.stats("img", quantiles=RANKS)
    assert_within_bounds(stats, [images[:, c].ravel().astype(float) for c in range(3)],
                         [0.0] * 3, "uint8")
    x = rng.normal(0, 1, (500, 2))
    x[::7, 0] = np.nan
    x[::11, 1] = np.inf
    client.create_dataset("gaps", layout="NC", channels=2, nonfinite="skip")
    client.fit("gaps", [x], local=False)
    stats = client.stats("gaps", quantiles=RANKS)
    assert_within_bounds(stats, [c[np.isfinite(c)] for c in x.T], [0.0, 0.0], "skipped")


def test_bad_requests_get_precise_statuses_and_change_nothing(client):
    client.create_dataset("d", layout="NC", channels=2)
    client.fit("d", [np.arange(20.0).reshape(10, 2)])
    before = client.stats("d", quantiles=[0.5])
    bad_queries = {
        "quantiles\\[1\\] must be a rank in \\[0, 1\\], got 1.5": dict(quantiles=[0.5, 1.5]),
        "quantiles\\[0\\] must be a rank in \\[0, 1\\], got -0.1": dict(quantiles=[-0.1]),
        "quantiles\\[0\\] must be a rank in \\[0, 1\\], got nan": dict(quantiles=[np.nan]),
        "at most 1000 quantile ranks per request, got 1001": dict(quantiles=[0.5] * 1001),
        "histogram_bins must be at most 10000, got 10001": dict(histogram_bins=10001),
    }
    for match, query in bad_queries.items():
        with pytest.raises(normd.errors.InvalidArgument, match=match):
            client.stats("d", **query)
    bad_specs = {
        "relative_accuracy must be in \\[2\\^-11, 0.5\\]": dict(relative_accuracy=0.7),
        "relative_accuracy must be in \\[2\\^-11, 0.5\\] .*got 1e-05": dict(relative_accuracy=1e-5),
        "sketch max_buckets must be in \\[16, 65536\\], got 8": dict(max_buckets=8),
        "sketch center must hold one value per channel \\(2\\) or none, got 3":
            dict(sketch_center=[0, 0, 0]),
        "sketch center of channel 1 must be finite, got inf": dict(sketch_center=[0, np.inf]),
    }
    for match, options in bad_specs.items():
        with pytest.raises(normd.errors.InvalidArgument, match=match):
            client.create_dataset("e", layout="NC", channels=2, **options)
    assert [d.spec.name for d in client.list_datasets()] == ["d"]
    client.create_dataset("plain", layout="NC", channels=2, sketch=False)
    client.fit("plain", [np.ones((4, 2))])
    assert client.get_dataset("plain").spec.sketch.disabled
    with pytest.raises(normd.errors.FailedPrecondition, match='"plain" keeps no quantile sketch'):
        client.stats("plain", quantiles=[0.5])
    after = client.stats("d", quantiles=[0.5])
    np.testing.assert_array_equal(after.quantiles, before.quantiles)
    np.testing.assert_array_equal(after.count, before.count)


def fitted(client, name, train, **options):
    client.create_dataset(name, layout="NC", channels=train.shape[1], **options)
    client.fit(name, np.array_split(train, 5), local=False)
    return client.freeze(name)


@pytest.mark.parametrize("unit_variance", [False, True])
def test_robust_matches_scikit_learns_robust_scaler_within_the_sketch_bounds(client,
                                                                             unit_variance):
    from scipy.stats import norm
    from sklearn.preprocessing import RobustScaler
    rng = np.random.default_rng(40)
    train = np.stack([rng.normal(3, 2, 20000), rng.lognormal(0, 1, 20000),
                      rng.standard_cauchy(20000)], axis=1)
    version = fitted(client, "robust", train)
    x = np.concatenate([rng.normal(3, 4, (500, 3)), train[:500]])
    got = client.robust(x, "robust", unit_variance=unit_variance, output_dtype=np.float64)
    want = RobustScaler(unit_variance=unit_variance).fit(train).transform(x)
    # The sketch's median and quartiles, each within its stated bound of numpy's.
    stats = client.stats("robust", version, quantiles=[0.5, 0.25, 0.75])
    err = stats.quantile_error
    median, q1, q3 = stats.quantiles[:, 0], stats.quantiles[:, 1], stats.quantiles[:, 2]
    adjust = norm.ppf(0.75) - norm.ppf(0.25) if unit_variance else 1.0
    spread = (q3 - q1) / adjust
    # |(x - m)/s - (x - m')/s'| <= |m - m'|/s' + |x - m| |1/s - 1/s'|, with s' >= s - ds.
    ds = (err[:, 1] + err[:, 2]) / adjust
    bound = (err[:, 0] / (spread - ds) + np.abs(x - median) * ds / (spread * (spread - ds))
             + 1e-12 * (1 + np.abs(want)))
    assert np.all(np.abs(got - want) <= bound)
    # The same bits in process, from the same frozen quantiles.
    if NATIVE:
        local = client.normalizer("robust", version=version, scheme="robust",
                                  unit_variance=unit_variance)
        np.testing.assert_array_equal(local(x, output_dtype=np.float64), got)
    back = client.denormalize(got, "robust", scheme="robust", unit_variance=unit_variance,
                              output_dtype=np.float64)
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-12)


def test_quantile_clips_bound_inputs_to_the_frozen_quantiles(client):
    rng = np.random.default_rng(41)
    train = np.stack([rng.standard_cauchy(20000), rng.normal(10, 1, 20000)], axis=1)
    version = fitted(client, "clipped", train)
    x = np.concatenate([rng.standard_cauchy((2000, 2)) * 50, train[:100]])
    stats = client.stats("clipped", version, quantiles=[0.01, 0.99])
    low, high = stats.quantiles[:, 0], stats.quantiles[:, 1]
    for c in range(2):  # the clip bounds are the sketch's quantiles, within their bounds
        exact = np.quantile(train[:, c], [0.01, 0.99])
        assert np.all(np.abs(stats.quantiles[c] - exact) <= stats.quantile_error[c])
    clipped = client.clip(x, "clipped", low=0.01, high=0.99, output_dtype=np.float64)
    np.testing.assert_array_equal(clipped, np.clip(x, low, high))
    # As an option of z-score: the clipped input's z-score, rounded once to float32.
    z = client.zscore(x, "clipped", quantile_clip=(0.01, 0.99))
    full = client.stats("clipped", version)
    want = (np.clip(x, low, high) - full.mean) / np.sqrt(full.variance + 1e-5)
    np.testing.assert_allclose(z, want.astype(np.float32), rtol=2e-7, atol=1e-7)
    outside = (x < low) | (x > high)
    assert outside.sum() > 100
    if NATIVE:
        local = client.normalizer("clipped", scheme="zscore", quantile_clip=(0.01, 0.99))
        np.testing.assert_array_equal(local(x), z)
    m = client.minmax(x, "clipped", quantile_clip=(0.05, 0.95), output_dtype=np.float64)
    q = client.stats("clipped", version, quantiles=[0.05, 0.95]).quantiles
    want = (np.clip(x, q[:, 0], q[:, 1]) - full.min) / (full.max - full.min)
    np.testing.assert_allclose(m, want, rtol=1e-12, atol=1e-15)


def test_bad_robust_and_clip_requests_get_precise_statuses(client):
    rng = np.random.default_rng(42)
    fitted(client, "d", rng.normal(0, 1, (100, 2)))
    x = np.zeros((3, 2))
    with pytest.raises(normd.errors.InvalidArgument,
                       match="robust quantile ranks must satisfy 0 <= low < high <= 1, got low "
                             "0.75 and high 0.25"):
        client.robust(x, "d", q_low=0.75, q_high=0.25)
    with pytest.raises(normd.errors.InvalidArgument,
                       match="quantile clip ranks must satisfy .* got low -0.1 and high 0.9"):
        client.zscore(x, "d", quantile_clip=(-0.1, 0.9))
    with pytest.raises(normd.errors.InvalidArgument, match="clip has no inverse"):
        client.denormalize(x, "d", scheme="robust", quantile_clip=(0.1, 0.9))
    with pytest.raises(normd.errors.InvalidArgument, match="needs quantile ranks to clip to"):
        client.normalize(x, pb.NormalizeRequest(dataset="d", clip=pb.Clip()))
    client.create_dataset("plain", layout="NC", channels=2, sketch=False)
    client.fit("plain", [rng.normal(0, 1, (10, 2))])
    client.freeze("plain")
    with pytest.raises(normd.errors.FailedPrecondition, match='"plain" keeps no quantile sketch'):
        client.robust(x, "plain")
    np.testing.assert_array_equal(client.zscore(x, "plain"), client.zscore(x, "plain"))


@pytest.mark.parametrize("output", ["uniform", "normal"])
def test_quantile_transform_matches_scikit_learn_within_the_sketch_bounds(client, output):
    from sklearn.preprocessing import QuantileTransformer
    rng = np.random.default_rng(43)
    point = np.where(rng.random(20000) < 0.2, 5.0, rng.normal(5, 1, 20000))
    train = np.stack([rng.normal(3, 2, 20000), rng.lognormal(0, 1, 20000), point], axis=1)
    version = fitted(client, "qt", train)
    x = np.concatenate([rng.normal(3, 3, (2000, 3)), train[:2000], [[5.0, 5.0, 5.0]]])
    got = client.quantile_transform(x, "qt", output=output, output_dtype=np.float64)
    sk = QuantileTransformer(n_quantiles=1000, output_distribution=output,
                             subsample=10 ** 9)  # all of it: 1.2 takes no None
    sk.fit(train)
    # Our knots are the sketch's quantiles, each within its bound e of numpy's: x maps
    # as sklearn maps some value within e of x (both maps rise), and between sub-knots
    # the normal output is linear in Phi^-1 (steps of at most 0.02).
    ranks = np.arange(1000) / 999
    stats = client.stats("qt", version, quantiles=ranks)
    slack = 1e-12 if output == "uniform" else 0.02
    for c in range(3):
        knots, err = stats.quantiles[c], stats.quantile_error[c]
        k = np.clip(np.searchsorted(knots, x[:, c], side="right"), 1, 999)
        e = np.maximum(err[k - 1], err[k]) + 1e-12 * np.abs(x[:, c])
        column = lambda v: sk.transform(np.repeat(v[:, None], 3, axis=1))[:, c]
        low, high = column(x[:, c] - e), column(x[:, c] + e)
        inside = (got[:, c] >= low - slack) & (got[:, c] <= high + slack)
        assert inside.all(), (c, x[~inside, c][:5], got[~inside, c][:5], low[~inside][:5])
    if NATIVE:
        local = client.normalizer("qt", scheme="quantile", normal_output=output == "normal")
        np.testing.assert_array_equal(local(x, output_dtype=np.float64), got)
    # The inverse maps back within the data's own resolution at the knots.
    back = client.denormalize(got, "qt", scheme="quantile", normal_output=output == "normal",
                              output_dtype=np.float64)
    inner = (x > stats.quantiles[:, 1]) & (x < stats.quantiles[:, -2])
    inner[:, 2] &= x[:, 2] != 5.0  # a point mass has no inverse but its own value
    np.testing.assert_allclose(back[inner], x[inner], rtol=1e-6, atol=1e-6)


def test_bucketize_counts_the_frozen_boundaries_at_or_below_each_value(client):
    rng = np.random.default_rng(44)
    train = np.stack([rng.normal(0, 1, 10000), rng.integers(0, 4, 10000).astype(float)], axis=1)
    version = fitted(client, "buckets", train)
    ranks = [0.1, 0.25, 0.5, 0.75, 0.9]
    boundaries = client.stats("buckets", version, quantiles=ranks).quantiles
    x = np.concatenate([rng.normal(0, 2, (3000, 2)), train[:500], boundaries.T])
    got = client.bucketize(x, "buckets", ranks, output_dtype=np.float64)
    for c in range(2):
        np.testing.assert_array_equal(got[:, c], np.digitize(x[:, c], boundaries[c]))
    if NATIVE:
        local = client.normalizer("buckets", scheme="bucketize", ranks=ranks)
        np.testing.assert_array_equal(local(x, output_dtype=np.float64), got)
    with pytest.raises(normd.errors.InvalidArgument, match="bucketize has no inverse"):
        client.denormalize(x, "buckets", scheme="bucketize", ranks=ranks)
    with pytest.raises(normd.errors.InvalidArgument,
                       match="bucketize ranks must rise strictly within \\[0, 1\\]; ranks\\[1\\]"):
        client.bucketize(x, "buckets", [0.5, 0.5])
    with pytest.raises(normd.errors.InvalidArgument, match="n_quantiles must be in \\[2, 1000\\]"):
        client.quantile_transform(x, "buckets", n_quantiles=1001)
