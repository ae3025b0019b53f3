"""Histograms over bin edges fixed on create, through a real normd: exact counts
against numpy.histogram (per split, weighted, through local summaries), kept across
freezes and restarts, and precise statuses for bad edges and summaries."""
import numpy as np
import pytest

import normd
from normd import local as normd_local
from conftest import NormdProcess, refused_summary

NATIVE = normd_local.available()


def numpy_counts(values, edges, weights=None):
    """numpy.histogram's counts, and the finite values below and above the edges."""
    finite = np.isfinite(values)
    values = values[finite]
    weights = None if weights is None else weights[finite]
    counts, _ = np.histogram(values, bins=edges, weights=weights)
    w = np.ones_like(values) if weights is None else weights
    return counts, w[values < edges[0]].sum(), w[values > edges[-1]].sum()


def assert_histograms(stats, columns, edge_lists, weights=None):
    assert len(stats.fixed_histograms) == len(columns)
    for c, (edges, counts, below, above) in enumerate(stats.fixed_histograms):
        want_edges = edge_lists[0 if len(edge_lists) == 1 else c]
        np.testing.assert_array_equal(edges, want_edges)
        want, want_below, want_above = numpy_counts(columns[c], np.array(want_edges), weights)
        np.testing.assert_allclose(counts, want, rtol=1e-12)
        assert below == pytest.approx(want_below, rel=1e-12)
        assert above == pytest.approx(want_above, rel=1e-12)


@pytest.mark.parametrize("local", [False, True] if NATIVE else [False])
def test_fixed_histograms_count_exactly_per_split(client, local):
    rng = np.random.default_rng(61)
    train = np.round(rng.normal(0, 2, (5000, 3)) * 4) / 4  # many values on the edges
    validation = rng.exponential(3, (2000, 3))
    edges = [[-4, -1, 0, 0.5, 1, 4], [-2, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8]]
    client.create_dataset("h", layout="NC", channels=3, histogram_edges=edges)
    assert len(client.get_dataset("h").spec.histogram_edges) == 3
    client.fit("h", np.array_split(train, 7), local=local)
    client.fit("h", [validation], split="validation", local=local)
    assert_histograms(client.stats("h"), list(train.T), edges)
    assert_histograms(client.stats("h", split="validation"), list(validation.T), edges)


@pytest.mark.parametrize("local", [False, True] if NATIVE else [False])
def test_weighted_fixed_histograms_sum_weights(client, local):
    rng = np.random.default_rng(62)
    images = rng.normal(0.5, 0.3, (12, 2, 16, 16)).astype(np.float32)
    weights = rng.integers(0, 5, 12) / 2.0
    weights[0] = 1.0
    shared = [-1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0]
    client.create_dataset("hw", layout="NCHW", channels=2, histogram_edges=shared)
    client.fit("hw", [(images[:6], weights[:6]), (images[6:], weights[6:])], local=local)
    per_value = np.broadcast_to(weights[:, None, None, None], images.shape)
    columns = [images[:, c].astype(np.float64).ravel() for c in range(2)]
    column_weights = per_value[:, 0].ravel()
    stats = client.stats("hw")
    for c in range(2):
        counts, below, above = numpy_counts(columns[c], np.array(shared), column_weights)
        np.testing.assert_allclose(stats.fixed_histograms[c][1], counts, rtol=1e-12)
        assert stats.fixed_histograms[c][2] == pytest.approx(below)
        assert stats.fixed_histograms[c][3] == pytest.approx(above)
        total = stats.fixed_histograms[c][1].sum() + below + above
        assert total == pytest.approx(stats.weight_sum[c], rel=1e-12)


def test_fixed_histograms_freeze_and_survive_a_restart(tmp_path):
    rng = np.random.default_rng(63)
    data = rng.normal(0, 1, (3000, 2))
    edges = [list(np.linspace(-3, 3, 25))]
    server = NormdProcess(tmp_path / "data").start()
    try:
        with normd.Client(server.address, timeout=60) as client:
            client.create_dataset("d", layout="NC", channels=2, histogram_edges=edges)
            client.fit("d", [data], local=False)
            version = client.freeze("d")
            client.fit("d", [rng.normal(0, 1, (100, 2))], local=False)  # live only
        server.stop()
        server.start()
        with normd.Client(server.address, timeout=60) as client:
            assert_histograms(client.stats("d", version), list(data.T), edges)
            live = client.stats("d")
            assert live.fixed_histograms[0][1].sum() + live.fixed_histograms[0][2] + \
                live.fixed_histograms[0][3] == 3100
    finally:
        server.stop()


@pytest.mark.parametrize("edges, fragment", [
    ([[0.0, 1.0]] * 3, "one list of edges for every channel or one per channel (2), got 3"),
    ([1.0], "holds 1 edges; expected 2 to 10001"),
    ([0.0, 2.0, 1.0], "histogram_edges[0][2] is 1; expected finite, strictly increasing edges"),
    ([0.0, float("nan")], "histogram_edges[0][1] is nan"),
])
def test_bad_edges_are_refused_on_create(client, edges, fragment):
    with pytest.raises(normd.InvalidArgument) as error:
        client.create_dataset("bad", layout="NC", channels=2, histogram_edges=edges)
    assert fragment in str(error.value)
    with pytest.raises(normd.NotFound):
        client.get_dataset("bad")


def test_a_summary_without_the_datasets_histograms_is_refused(client):
    if not NATIVE:
        pytest.skip("the native module is not built (sanitizer build)")
    data = np.random.default_rng(64).normal(size=(100, 2))
    client.create_dataset("s", layout="NC", channels=2, histogram_edges=[-1.0, 0.0, 1.0])
    summary = normd.moments(data, sketch=client.get_dataset("s").spec.sketch)  # no edges
    assert "keeps histograms over fixed edges; the summary holds 0 of them" in \
        refused_summary(client, "s", normd_local.summary_message(summary))
    assert client.stats("s").count.tolist() == [0, 0]


def test_normctl_creates_and_shows_fixed_histograms(normctl, client):
    normctl("create", "n", "--layout=NC", "--channels=1", "--histogram_edges=0,1,2")
    assert "fixed histograms: 2 bins for every channel" in normctl("info", "n").stdout
    client.fit("n", [np.array([[0.5], [1.0], [2.0], [5.0]])], local=False)
    out = normctl("stats", "n").stdout
    assert "channel 0: fixed histogram, 0 below, 1 above" in out, out
    assert "[0             ,              1)              1" in out, out
    assert "[1             ,              2]              2" in out, out
