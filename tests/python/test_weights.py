"""Sample weights and masks through a real normd: weighted moments against exact
rational arithmetic and scikit-learn's StandardScaler(sample_weight=), numpy.cov's
frequency and reliability weights; padding masks against the kept values; weighted
quantiles against a weighted numpy oracle; the same statistics through local
summaries; durability; and precise statuses for bad weights, with nothing applied."""
from fractions import Fraction

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

import normd
from normd import local as normd_local
from conftest import NormdProcess, refused_summary

NATIVE = normd_local.available()
RANKS = np.array([0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1])


def exact_weighted(values, weights):
    """(count, W, sum(w^2), mean, M2) of one channel in exact rationals."""
    kept = [(Fraction(float(x)), Fraction(float(w))) for x, w in zip(values, weights) if w > 0]
    total = sum(w for _, w in kept)
    mean = sum(w * x for x, w in kept) / total
    m2 = sum(w * (x - mean) ** 2 for x, w in kept)
    return len(kept), total, sum(w * w for _, w in kept), mean, m2


def assert_weighted_stats(stats, columns, weights):
    for c, values in enumerate(columns):
        count, total, squares, mean, m2 = exact_weighted(values, weights)
        assert stats.count[c] == count
        assert stats.weight_sum[c] == pytest.approx(float(total), rel=1e-12)
        assert stats.mean[c] == pytest.approx(float(mean), rel=1e-12, abs=1e-12)
        assert stats.variance[c] == pytest.approx(float(m2 / total), rel=1e-12)
        assert stats.sample_variance[c] == pytest.approx(float(m2 / (total - 1)), rel=1e-12)
        assert stats.reliability_variance[c] == pytest.approx(
            float(m2 / (total - squares / total)), rel=1e-12)
        assert stats.effective_count[c] == pytest.approx(float(total * total / squares),
                                                         rel=1e-12)


def weighted_quantile(values, weights, q):
    """The frequency-weighted linear quantile: value x_i covers positions
    [C_{i-1}, C_i) of the cumulative weight, interpolated at q * (W - 1); for integer
    weights, numpy.quantile of each value repeated w times."""
    keep = weights > 0
    order = np.argsort(values[keep], kind="stable")
    x, w = values[keep][order], weights[keep][order]
    cumulative = np.cumsum(w)
    position = q * (cumulative[-1] - 1)
    below = np.floor(position)

    def at(t):
        return x[min(np.searchsorted(cumulative, t, side="right"), len(x) - 1)]
    return at(below) + (position - below) * (at(below + 1) - at(below))


@pytest.mark.parametrize("local", [False, True] if NATIVE else [False])
def test_weighted_moments_are_exact_and_match_scikit_learn(client, local):
    rng = np.random.default_rng(41)
    data = rng.normal([5.0, -3.0, 1e6], [2.0, 0.1, 1.0], size=(6000, 3))
    # Masked rows, unit weights, dyadic fractions and a few heavy ones.
    weights = rng.choice([0.0, 1.0, 0.25, 3.5, 1000.0], size=6000, p=[0.2, 0.3, 0.3, 0.15, 0.05])
    client.create_dataset("w", layout="NC", channels=3)
    batches = [(data[i:i + 500], weights[i:i + 500]) for i in range(0, 6000, 500)]
    client.fit("w", batches, local=local)
    stats = client.stats("w")
    assert_weighted_stats(stats, list(data.T), weights)
    scaler = StandardScaler().fit(data, sample_weight=weights)
    np.testing.assert_allclose(stats.mean, scaler.mean_, rtol=1e-10)
    np.testing.assert_allclose(stats.variance, scaler.var_, rtol=1e-8)
    kept = weights > 0
    np.testing.assert_allclose(stats.reliability_variance,
                               np.diag(np.cov(data[kept].T, aweights=weights[kept])), rtol=1e-10)
    np.testing.assert_array_equal(stats.min, data[kept].min(axis=0))
    np.testing.assert_array_equal(stats.max, data[kept].max(axis=0))


def test_integer_weights_are_frequencies(client):
    rng = np.random.default_rng(42)
    data = rng.normal(0.0, 1.0, size=(2000, 2))
    counts = rng.integers(0, 4, size=2000)
    counts[0] = 1
    client.create_dataset("f", layout="NC", channels=2)
    client.fit("f", [(data, counts)], local=False)
    stats = client.stats("f")
    repeated = np.repeat(data, counts, axis=0)
    np.testing.assert_allclose(stats.sample_variance, np.var(repeated, axis=0, ddof=1),
                               rtol=1e-12)
    np.testing.assert_allclose(stats.sample_variance,
                               np.diag(np.cov(data.T, fweights=counts)), rtol=1e-12)
    np.testing.assert_allclose(stats.mean, repeated.mean(axis=0), rtol=1e-12, atol=1e-15)
    stats = client.stats("f", quantiles=RANKS)
    for c in range(2):
        exact = np.quantile(repeated[:, c], RANKS)
        assert np.all(np.abs(stats.quantiles[c] - exact) <= stats.quantile_error[c])


@pytest.mark.parametrize("local", [False, True] if NATIVE else [False])
def test_a_padding_mask_leaves_padded_steps_out(client, local):
    """Ragged sequences padded to [N, T, F] with NaN, and a [N, T] mask: the statistics
    of the real steps alone."""
    rng = np.random.default_rng(43)
    n, t, f = 64, 40, 5
    lengths = rng.integers(1, t + 1, size=n)
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float32)
    data = rng.normal(2.0, 3.0, size=(n, t, f)).astype(np.float32)
    data[mask == 0] = np.nan  # padding: a reject-policy dataset never sees it
    client.create_dataset("seq", layout="NHWC", channels=f)
    client.fit("seq", [(data[:32], mask[:32]), (data[32:], mask[32:])], local=local)
    stats = client.stats("seq", quantiles=RANKS)
    real = data[mask == 1].astype(np.float64)  # [steps, F]
    assert stats.count.tolist() == [len(real)] * f
    np.testing.assert_array_equal(stats.weight_sum, [float(len(real))] * f)
    np.testing.assert_allclose(stats.mean, real.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, real.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.sample_variance, real.var(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(stats.reliability_variance, stats.sample_variance, rtol=1e-12)
    for c in range(f):
        exact = np.quantile(real[:, c], RANKS)
        assert np.all(np.abs(stats.quantiles[c] - exact) <= stats.quantile_error[c])


def test_weighted_quantiles_stay_within_their_bounds(client):
    rng = np.random.default_rng(44)
    values = np.stack([rng.standard_cauchy(20000), rng.lognormal(0, 2, 20000)], axis=1)
    weights = rng.integers(0, 9, size=20000) / 4.0  # dyadic: cumulative sums are exact
    client.create_dataset("q", layout="NC", channels=2)
    client.fit("q", [(values[i::7], weights[i::7]) for i in range(7)], local=False)
    stats = client.stats("q", quantiles=RANKS, histogram_bins=16)
    for c in range(2):
        exact = np.array([weighted_quantile(values[:, c], weights, q) for q in RANKS])
        assert np.all(np.abs(stats.quantiles[c] - exact) <= stats.quantile_error[c]), c
        edges, counts = stats.histograms[c]
        assert counts.sum() == pytest.approx(weights.sum(), rel=1e-12)  # weight per bin


def test_local_and_server_weighted_fits_agree(client):
    if not NATIVE:
        pytest.skip("the native module is not built (sanitizer build)")
    rng = np.random.default_rng(45)
    images = rng.random((16, 3, 20, 20)).astype(np.float32)
    per_sample = rng.random(16)
    per_pixel = (rng.random((16, 3, 20, 20)) < 0.7).astype(np.float64)
    for name, weights in (("sample", per_sample), ("pixel", per_pixel)):
        for where in ("server", "local"):
            client.create_dataset(f"{name}-{where}", layout="NCHW", channels=3)
            client.fit(f"{name}-{where}", [(images[:8], weights[:8]), (images[8:], weights[8:])],
                       local=where == "local")
        server, local = client.stats(f"{name}-server"), client.stats(f"{name}-local")
        np.testing.assert_allclose(local.mean, server.mean, rtol=1e-14)
        np.testing.assert_allclose(local.variance, server.variance, rtol=1e-13)
        np.testing.assert_array_equal(local.count, server.count)
        summary = normd.moments(images, layout="NCHW", weights=weights)
        np.testing.assert_allclose(summary.mean, server.mean, rtol=1e-14)
        np.testing.assert_allclose(summary.weight_sum, server.weight_sum, rtol=1e-14)
        broadcast = np.broadcast_to(weights.reshape(16, *([1] * (weights.ndim == 1) * 3),
                                                    *weights.shape[1:]), images.shape)
        mean = (images * broadcast).sum(axis=(0, 2, 3)) / broadcast.sum(axis=(0, 2, 3))
        np.testing.assert_allclose(server.mean, mean, rtol=1e-6)


def test_weighted_statistics_survive_a_restart(tmp_path):
    rng = np.random.default_rng(46)
    data = rng.normal(1.0, 2.0, size=(3000, 2))
    weights = rng.random(3000)
    server = NormdProcess(tmp_path / "data").start()
    try:
        with normd.Client(server.address, timeout=60) as client:
            client.create_dataset("d", layout="NC", channels=2)
            client.fit("d", [(data, weights)], local=False)
            version = client.freeze("d")
            before = client.stats("d", version, quantiles=RANKS)
        server.stop()
        server.start()
        with normd.Client(server.address, timeout=60) as client:
            after = client.stats("d", version, quantiles=RANKS)
            live = client.stats("d")
        for field in ("count", "mean", "variance", "sample_variance", "reliability_variance",
                      "weight_sum", "effective_count", "quantiles", "quantile_error"):
            np.testing.assert_array_equal(getattr(after, field), getattr(before, field))
        np.testing.assert_array_equal(live.weight_sum, before.weight_sum)
        assert_weighted_stats(after, list(data.T), weights)
    finally:
        server.stop()


@pytest.mark.parametrize("weights, fragment", [
    (lambda n: np.r_[-1.0, np.ones(n - 1)], "weights[0] is -1; expected a finite weight >= 0"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], "is nan; expected a finite weight >= 0"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], "weights[0] is inf"),
    (lambda n: np.ones(n - 1), "weights has shape [99]; expected a leading part of the "
                               "batch's shape [100, 2]"),
    (lambda n: np.ones((n, 3)), "weights has shape [100, 3]"),
    (lambda n: np.zeros(n), "weights are all 0"),
])
@pytest.mark.parametrize("local", [False, True] if NATIVE else [False])
def test_bad_weights_are_refused_and_nothing_is_applied(client, weights, fragment, local):
    data = np.random.default_rng(47).normal(size=(100, 2))
    client.create_dataset("bad", layout="NC", channels=2)
    client.fit("bad", [data], local=False)
    before = client.stats("bad")
    with pytest.raises(normd.InvalidArgument) as error:
        client.fit("bad", [data, (data, weights(100))], local=local)
    assert fragment in str(error.value), str(error.value)
    after = client.stats("bad")
    for field in ("count", "mean", "variance", "weight_sum"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field))


def test_running_average_train_batches_refuse_weights(client):
    data = np.random.default_rng(48).normal(size=(10, 4, 3, 3)).astype(np.float32)
    client.create_dataset("bn", layout="NCHW", channels=4, running_average=True)
    with pytest.raises(normd.FailedPrecondition) as error:
        client.fit("bn", [(data, np.ones(10))], local=False)
    assert "keeps a running average" in str(error.value)
    assert client.stats("bn").count.tolist() == [0] * 4
    client.fit("bn", [(data, np.ones(10))], split="validation", local=False)  # other splits do
    assert client.stats("bn", split="validation").count.tolist() == [90] * 4


def test_summaries_with_inconsistent_weights_are_refused(client):
    """A hand-made weighted summary is untrusted input: W^2 / count <= sum(w^2) <= W^2."""
    if not NATIVE:
        pytest.skip("the native module is not built (sanitizer build)")
    data = np.random.default_rng(49).normal(size=(50, 2))
    summary = normd.moments(data, weights=np.linspace(0.5, 2.0, 50))
    message = normd_local.summary_message(summary)
    message.weight_square_sum_hi[1] = message.weight_sum_hi[1] ** 2 * 2
    client.create_dataset("s", layout="NC", channels=2)
    assert "summary channel 1: expected weight_sum > 0 and weight_sum^2 / count" in \
        refused_summary(client, "s", message)
    assert client.stats("s").count.tolist() == [0, 0]
