"""Drift through a real normd: Compare's measures against scipy and numpy on identical,
shifted and scaled data; live traffic folded from Normalize (exact moments, the sampling
rate within its binomial bound, kept across a restart, Prometheus gauges); freeze gates
and the prod pin with its rollback; the dashboard's JSON behind tokens and its page in
a real headless chromium."""
import json
import math
import os
import pathlib
import shutil
import urllib.error
import urllib.request
from fractions import Fraction

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

import normd
from normd.v1 import normd_pb2 as pb
from conftest import NormdProcess, listening_event, sample, scrape

ARTIFACTS = pathlib.Path(os.environ.get(
    "NORMD_TEST_ARTIFACTS", pathlib.Path(__file__).resolve().parents[2] / "build" / "test-artifacts"))


def psi_numpy(p, q, floor=1e-4):
    p, q = np.maximum(p, floor), np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


def fractions_over(values, edges):
    counts, _ = np.histogram(values, bins=edges)
    return counts / counts.sum()


def exact_mean_variance(values):
    """Mean and population variance in exact rational arithmetic."""
    exact = [Fraction(float(v)) for v in values]
    mean = sum(exact) / len(exact)
    return mean, sum((v - mean) ** 2 for v in exact) / len(exact)


def assert_measures(channel, a, b):
    """Every measure of one channel against an independent computation on the values."""
    ma, va = exact_mean_variance(a)
    mb, vb = exact_mean_variance(b)
    pooled = math.sqrt(float((va + vb) / 2))
    want_smd = float(mb - ma) / pooled if mb != ma else 0.0
    assert channel.standardized_mean_difference.value == pytest.approx(want_smd, rel=1e-12, abs=1e-15)
    assert channel.variance_ratio.value == pytest.approx(float(vb / va), rel=1e-12)
    ks = ks_2samp(a, b).statistic
    assert channel.ks.value - 1e-12 <= ks <= channel.ks.value + channel.ks.error + 1e-12
    edges = np.array(channel.bin_edges)
    p, q = fractions_over(a, edges), fractions_over(b, edges)
    np.testing.assert_allclose(channel.reference_fractions, p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(channel.candidate_fractions, q, rtol=1e-12, atol=1e-15)
    assert channel.psi.value == pytest.approx(psi_numpy(p, q), rel=1e-9, abs=1e-12)
    assert channel.js_divergence.value == pytest.approx(jensenshannon(p, q, base=2) ** 2,
                                                        rel=1e-9, abs=1e-12)
    for measure in (channel.standardized_mean_difference, channel.variance_ratio, channel.ks,
                    channel.psi, channel.js_divergence):
        assert measure.meaning


def fit_two_splits(client, name, train, other, **create):
    client.create_dataset(name, layout="NC", channels=train.shape[1], **create)
    client.fit(name, [train])
    client.fit(name, [other], split="validation")
    return client.freeze(name)


def test_compare_identical_shifted_and_scaled_against_scipy(client):
    rng = np.random.default_rng(19)
    train = rng.normal(0, 1, (20000, 3))
    validation = rng.normal(0, 1, (15000, 3))
    validation[:, 0] = train[:15000, 0]
    validation[:, 1] += 0.5          # a shift of half a standard deviation
    validation[:, 2] *= 2            # twice the spread
    version = fit_two_splits(client, "d", train, validation)
    report = client.compare("d", f"version:{version}:train", "live:validation")
    assert report.bins == "sketch"
    assert "version 1 train" == report.reference and "live validation" == report.candidate
    drawing = client.compare("d", "version:1", "live:validation", bins=40, equal_width_bins=True)
    for c in range(3):
        assert_measures(report.channels[c], train[:, c], validation[:, c])
        assert_measures(drawing.channels[c], train[:, c], validation[:, c])
        assert len(report.channels[c].reference_fractions) == 10
        # Decile bins: each holds a tenth of the reference, to a bucket's mass.
        np.testing.assert_allclose(report.channels[c].reference_fractions, 0.1, atol=0.01)
        widths = np.diff(drawing.channels[c].bin_edges)
        step = (drawing.channels[c].bin_edges[-1] - drawing.channels[c].bin_edges[0]) / 40
        # Edges sit on bucket edges near equal steps (sparse tails skip empty buckets).
        assert 30 <= len(widths) <= 40 and np.all(widths > 0)
        assert abs(np.median(widths) - step) < 0.25 * step
    # The same values score zero on every measure but the sample-size difference in KS.
    same = client.compare("d", "version:1:train", "live:train")
    for channel in same.channels:
        assert channel.standardized_mean_difference.value == 0
        assert channel.variance_ratio.value == 1
        assert channel.ks.value == 0 and channel.psi.value == 0 and channel.js_divergence.value == 0
        assert channel.level == pb.DRIFT_LEVEL_PASS
    levels = [c.level for c in report.channels]
    assert levels[1] == levels[2] == pb.DRIFT_LEVEL_FAIL
    assert report.channels[1].standardized_mean_difference.value == pytest.approx(0.5, abs=0.03)
    assert report.channels[1].standardized_mean_difference.level == pb.DRIFT_LEVEL_FAIL
    assert report.channels[2].variance_ratio.value == pytest.approx(4, rel=0.05)
    assert report.level == pb.DRIFT_LEVEL_FAIL
    # Thresholds are the caller's to move.
    lenient = client.compare("d", "version:1:train", "live:validation", thresholds={
        m: (100, 200) for m in ("standardized_mean_difference", "variance_ratio", "ks", "psi",
                                "js_divergence")})
    assert lenient.level == pb.DRIFT_LEVEL_PASS
    with pytest.raises(normd.InvalidArgument, match="warn <= fail"):
        client.compare("d", "version:1:train", "live:validation", thresholds={"psi": (0.3, 0.1)})
    with pytest.raises(normd.FailedPrecondition, match="holds no values"):
        client.compare("d", "version:1:train", "live:test")
    with pytest.raises(normd.NotFound, match="no version 7"):
        client.compare("d", "version:7:train", "live:validation")


def test_compare_over_fixed_histogram_bins(client):
    rng = np.random.default_rng(23)
    train = rng.normal(0, 1, (8000, 2))
    other = rng.normal(0.3, 1.2, (6000, 2))
    edges = [-2, -1, -0.5, 0, 0.5, 1, 2]
    fit_two_splits(client, "h", train, other, sketch=False, histogram_edges=[edges])
    report = client.compare("h", "version:1", "live:validation")
    assert report.bins == "fixed_histogram"
    for c in range(2):
        channel = report.channels[c]
        a, b = train[:, c], other[:, c]
        below = (a < edges[0]).sum() + (b < edges[0]).sum()
        full = ([min(a.min(), b.min())] if below else []) + edges + [max(a.max(), b.max())]
        np.testing.assert_array_equal(channel.bin_edges, full)
        p, q = fractions_over(a, np.array(full)), fractions_over(b, np.array(full))
        np.testing.assert_allclose(channel.reference_fractions, p, rtol=1e-12)
        assert channel.psi.value == pytest.approx(psi_numpy(p, q), rel=1e-9)
        assert channel.js_divergence.value == pytest.approx(jensenshannon(p, q, base=2) ** 2,
                                                            rel=1e-9)
        # The distribution functions are exact at the fixed edges only.
        assert channel.ks.value - 1e-12 <= ks_2samp(a, b).statistic <= (
            channel.ks.value + channel.ks.error + 1e-12)


@pytest.fixture
def traffic_server(tmp_path):
    server = NormdProcess(tmp_path / "data", flags=[
        "--traffic_sample_rate=1", "--http_listen=127.0.0.1:0"]).start()
    yield server
    server.stop()


def test_live_traffic_is_exactly_what_normalize_saw_and_survives_a_restart(traffic_server):
    rng = np.random.default_rng(29)
    train = rng.normal(5, 2, (4000, 2))
    batches = [rng.normal(5.5, 2, (n, 2)) for n in (100, 333, 1000, 7)]
    with normd.Client(traffic_server.address) as client:
        client.create_dataset("t", layout="NC", channels=2)
        client.fit("t", [train])
        client.freeze("t")
        for batch in batches:
            client.zscore(batch, "t")
        client.denormalize(batches[0], "t")  # the inverse's input is not traffic
        stats = client.stats("t", traffic=True)
    seen = np.concatenate(batches)
    assert stats.version == 1 and stats.traffic_requests == 4 == stats.traffic_sampled_requests
    for c in range(2):
        mean, variance = exact_mean_variance(seen[:, c])
        assert stats.count[c] == len(seen)
        assert stats.mean[c] == pytest.approx(float(mean), rel=1e-15)
        assert stats.variance[c] == pytest.approx(float(variance), rel=1e-13)
        assert (stats.min[c], stats.max[c]) == (seen[:, c].min(), seen[:, c].max())
    traffic_server.stop()
    traffic_server.start()
    with normd.Client(traffic_server.address) as client:
        again = client.stats("t", traffic=True)
        np.testing.assert_array_equal(again.mean, stats.mean)
        np.testing.assert_array_equal(again.count, stats.count)
        assert again.traffic_requests == 4
        hour = client.stats("t", traffic=True, window="last_hour")
        np.testing.assert_array_equal(hour.count, stats.count)
        report = client.compare("t")  # the latest version's train against its traffic
        assert report.candidate.startswith("live traffic of version 1 (since start, 4 of 4")
        for c in range(2):
            assert_measures(report.channels[c], train[:, c], seen[:, c])
        client.zscore(batches[1], "t")
    samples = scrape(f"http://{listening_event(traffic_server)['http_address']}/metrics")
    assert sample(samples, "normd_traffic_requests_total", dataset="t", version="1") == 5
    assert sample(samples, "normd_drift_level", dataset="t", version="1") == 3  # a 0.25 sd shift
    assert sample(samples, "normd_drift_standardized_mean_difference", dataset="t", version="1",
                  channel="0") == pytest.approx(report.channels[0].standardized_mean_difference.value,
                                                abs=0.05)


def test_sampled_traffic_holds_its_rate_within_the_binomial_bound(tmp_path):
    rate, requests = 0.25, 400
    server = NormdProcess(tmp_path / "data", flags=[f"--traffic_sample_rate={rate}"]).start()
    try:
        with normd.Client(server.address) as client:
            client.create_dataset("s", layout="NC", channels=1)
            client.fit("s", [np.arange(100.0).reshape(-1, 1)])
            client.freeze("s")
            batch = np.ones((3, 1))
            for _ in range(requests):
                client.zscore(batch, "s")
            stats = client.stats("s", traffic=True)
    finally:
        server.stop()
    assert stats.traffic_requests == requests
    sigma = math.sqrt(requests * rate * (1 - rate))
    assert abs(stats.traffic_sampled_requests - requests * rate) <= 5 * sigma
    assert stats.count[0] == 3 * stats.traffic_sampled_requests  # whole requests are folded


def test_freeze_gates_and_the_prod_pin(tmp_path):
    server = NormdProcess(tmp_path / "data").start()
    rng = np.random.default_rng(31)
    x = rng.normal(0, 1, (64, 2))
    try:
        with normd.Client(server.address) as client:
            client.create_dataset("g", layout="NC", channels=2)
            client.fit("g", [rng.normal(0, 1, (5000, 2))])
            with pytest.raises(normd.FailedPrecondition, match="below the minimum 6000"):
                client.freeze("g", min_train_count=6000)
            assert client.freeze("g", min_train_count=5000, drift_gate=True) == 1
            client.fit("g", [rng.normal(3, 1, (5000, 2))])  # the data moved
            with pytest.raises(normd.FailedPrecondition,
                               match=r"channel 0: standardized mean difference .* fails"):
                client.freeze("g", drift_gate=True)
            assert [v.version for v in client.get_dataset("g").versions] == [1]
            assert client.freeze("g", drift_gate=True, mark=True) == 2
            findings = client.get_dataset("g").versions[1].gate_findings
            assert any("channel 1: PSI" in f for f in findings), findings

            v1, v2 = client.zscore(x, "g", version=1), client.zscore(x, "g", version=2)
            np.testing.assert_array_equal(client.zscore(x, "g"), v2)
            info = client.pin_version("g", 1)
            assert (info.pinned_version, info.latest_version) == (1, 2)
            np.testing.assert_array_equal(client.zscore(x, "g"), v1)
            client.pin_version("g", 2)
            np.testing.assert_array_equal(client.zscore(x, "g"), v2)
            assert client.pin_version("g", rollback=True).pinned_version == 1
            with pytest.raises(normd.FailedPrecondition, match="no earlier pin"):
                client.pin_version("g", rollback=True)
            with pytest.raises(normd.NotFound, match="no version 9"):
                client.pin_version("g", 9)
        server.stop()
        server.start()
        with normd.Client(server.address) as client:
            assert client.get_dataset("g").pinned_version == 1
            np.testing.assert_array_equal(client.zscore(x, "g"), v1)
            assert client.get_dataset("g").versions[1].gate_findings == findings
    finally:
        server.stop()


def http_get(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_dashboard_json_wants_a_readers_token(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("reader reader-token-0123456789\nadmin admin-token-0123456789\n")
    server = NormdProcess(tmp_path / "data", flags=[
        f"--tokens_file={tokens}", "--http_listen=127.0.0.1:0"]).start()
    base = f"http://{listening_event(server)['http_address']}"
    try:
        with normd.Client(server.address, token="admin-token-0123456789") as client:
            client.create_dataset("a", layout="NC", channels=1)
            client.fit("a", [np.arange(10.0).reshape(-1, 1)])
            client.freeze("a")
        with normd.Client(server.address, token="reader-token-0123456789") as reader:
            with pytest.raises(normd.PermissionDenied):
                reader.pin_version("a", 1)  # the pin decides what readers get: a writer's call
            assert reader.compare("a", "version:1", "live:train").level == pb.DRIFT_LEVEL_PASS
        status, body = http_get(f"{base}/api/v1/datasets")
        assert status == 401 and json.loads(body)["code"] == "UNAUTHENTICATED"
        status, body = http_get(f"{base}/api/v1/datasets", token="reader-token-0123456789")
        assert status == 200 and json.loads(body)["datasets"][0]["spec"]["name"] == "a"
        status, body = http_get(f"{base}/api/v1/datasets/nope", token="reader-token-0123456789")
        assert status == 404 and "nope" in json.loads(body)["message"]
        status, body = http_get(f"{base}/api/v1/datasets/a/compare?reference=bogus", token="reader-token-0123456789")
        assert status == 400 and "live:SPLIT" in json.loads(body)["message"]
        status, page = http_get(f"{base}/")  # the page holds no data
        assert status == 200 and "<title>normd</title>" in page and "http" not in page.split(
            "<script>")[1].split("fetch(")[0].replace("http://www.w3.org", "")
    finally:
        server.stop()


def chromium_driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="python3-selenium not installed")
    binary = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1800"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_dashboard_in_headless_chromium(traffic_server):
    rng = np.random.default_rng(37)
    with normd.Client(traffic_server.address) as client:
        client.create_dataset("images", layout="NC", channels=3)
        client.fit("images", [rng.normal(0, 1, (6000, 3))])
        client.freeze("images")
        client.fit("images", [rng.normal(0, 1, (6000, 3))])
        client.freeze("images")
        shifted = rng.normal(0, 1, (3000, 3))
        shifted[:, 1] += 1.0
        client.zscore(shifted, "images")
        client.create_dataset("other", layout="NC", channels=1)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait
    driver = chromium_driver()
    try:
        base = f"http://{listening_event(traffic_server)['http_address']}"
        driver.get(f"{base}/#dataset=images&candidate=traffic:since_start")
        wait = WebDriverWait(driver, 60)
        wait.until(ready.presence_of_element_located(
            (By.CSS_SELECTOR, '#drift tr[data-level="fail"]')))
        names = [li.get_attribute("data-dataset")
                 for li in driver.find_elements(By.CSS_SELECTOR, "#datasets li")]
        assert names == ["images", "other"]
        versions = [tr.get_attribute("data-version")
                    for tr in driver.find_elements(By.CSS_SELECTOR, "#versions tbody tr")]
        assert versions == ["2", "1"]
        flagged = [tr.get_attribute("data-channel")
                   for tr in driver.find_elements(By.CSS_SELECTOR, "#drift tr.flagged")]
        assert flagged == ["1"]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#channels tbody tr")) == 3
        assert len(driver.find_elements(By.CSS_SELECTOR, "#charts .chart svg rect")) > 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    finally:
        driver.quit()


def test_normctl_compare_pin_and_gated_freeze(client, normctl):
    rng = np.random.default_rng(41)
    train = rng.normal(0, 1, (5000, 2))
    moved = rng.normal(0, 1, (5000, 2))
    moved[:, 0] += 1
    fit_two_splits(client, "n", train, moved)
    result = normctl("compare", "n", "--reference=version:1:train",
                     "--candidate=live:validation", "--fail_on=fail", check=False)
    assert result.returncode == 3, result.stderr
    assert "n: live validation against version 1 train (PSI and JS over sketch bins): fail" in (
        result.stdout)
    assert "channel 0 fail: the mean moved" in result.stdout
    assert "channel 1 fail" not in result.stdout
    report = json.loads(normctl("compare", "n", "--reference=version:1", "--candidate=live:validation",
                                "--json", "--thresholds=standardized_mean_difference=5:10,ks=1:1,"
                                "psi=50:60,js_divergence=1:1").stdout)
    assert report["level"] == "DRIFT_LEVEL_PASS"
    bad = normctl("compare", "n", "--candidate=traffic:x", check=False)
    assert bad.returncode == 2 and "traffic:N[:WINDOW]" in bad.stderr
    client.fit("n", [moved])
    refused = normctl("freeze", "n", "--drift_gate", check=False)
    assert refused.returncode == 1 and "FAILED_PRECONDITION" in refused.stderr
    marked = normctl("freeze", "n", "--drift_gate", "--mark").stdout
    assert "froze n as version 2" in marked and "gate: channel 0" in marked
    assert "version 1 pinned as prod (latest 2)" in normctl("pin", "n", "1").stdout
    info = normctl("info", "n").stdout
    assert "version 1: 5000 train samples (pinned: prod)" in info and "    gate: channel 0" in info
    assert "no pin" in normctl("pin", "n", "--rollback").stdout
    client.zscore(moved, "n", version=1)
    traffic = normctl("stats", "n", "--traffic", "--version=1").stdout
    assert "live traffic (since_start)" in traffic
