"""normctl round trips against a real normd, with independent oracles: exact
rational arithmetic (fractions) for statistics, numpy and torch for normalisation."""
import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import NORMCTL_BIN


def exact_moments(values):
    """Mean, population and sample variance of float64 values, exactly."""
    xs = [Fraction(float(v)) for v in values]
    n = len(xs)
    mean = sum(xs) / n
    m2 = sum((x - mean) ** 2 for x in xs)
    return mean, m2 / n, (m2 / (n - 1) if n > 1 else None)


def assert_rel(actual, expected, tol):
    expected = float(expected)
    assert abs(actual - expected) <= tol * max(abs(expected), 1e-300), (actual, expected)


def stats_json(normctl, name, *flags):
    return json.loads(normctl("stats", name, "--json", *flags).stdout)


def test_tabular_round_trip(normctl, tmp_path):
    rng = np.random.default_rng(7)
    # Hostile columns: a 1e8 offset with tiny noise, a constant, a wide spread.
    a = np.stack([1e8 + rng.normal(0, 1e-3, 500), np.full(500, 0.5),
                  rng.normal(-3, 1e4, 500)], axis=1)
    b = np.stack([1e8 + rng.normal(0, 1e-3, 77), np.full(77, 0.5),
                  rng.normal(-3, 1e4, 77)], axis=1)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b.astype(np.float32))
    np.save(tmp_path / "val.npy", a[:10] * 2)

    normctl("create", "tab", "--layout=NC", "--channels=3")
    out = normctl("ingest", "tab", tmp_path / "a.npy", tmp_path / "b.npy", "--chunk_bytes=1000")
    assert "577 samples" in out.stdout
    normctl("ingest", "tab", tmp_path / "val.npy", "--split=validation")
    assert "version 1" in normctl("freeze", "tab").stdout

    stats = stats_json(normctl, "tab", "--version=latest")
    assert stats["version"] == 1 and stats["samples"] == 577
    fitted = np.concatenate([a, b.astype(np.float32).astype(np.float64)])
    for c in range(3):
        mean, var, sample_var = exact_moments(fitted[:, c])
        assert stats["count"][c] == 577
        assert_rel(stats["mean"][c], mean, 1e-12)
        assert stats["min"][c] == fitted[:, c].min() and stats["max"][c] == fitted[:, c].max()
        if var:
            assert_rel(stats["variance"][c], var, 1e-12)
            assert_rel(stats["sample_variance"][c], sample_var, 1e-12)
    assert stats["variance"][1] == 0.0 and stats["mean"][1] == 0.5  # the constant column

    validation = stats_json(normctl, "tab", "--split=validation")
    assert validation["count"] == [10, 10, 10]
    assert_rel(validation["mean"][2], exact_moments(a[:10, 2] * 2)[0], 1e-12)

    x = rng.normal(0, 1, (64, 3)) * [1e-3, 1, 1e4] + [1e8, 0.5, -3]
    np.save(tmp_path / "x.npy", x)
    normctl("normalize", "tab", tmp_path / "x.npy", tmp_path / "y.npy", "--chunk_bytes=256",
            "--output_dtype=float64")
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float64 and y.shape == x.shape
    mean = np.array(stats["mean"])
    var = np.array(stats["variance"])
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-9, atol=1e-9)


def test_ingest_with_weights_and_fixed_histograms(normctl, tmp_path):
    rng = np.random.default_rng(71)
    x = rng.normal(2.0, 3.0, (300, 2))
    w = rng.integers(0, 4, 300).astype(np.float32)  # frequencies, zeros masking rows
    x[w == 0] = np.nan  # a masked row may hold anything
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    normctl("create", "wt", "--layout=NC", "--channels=2", "--histogram_edges=-5,0,2,4,10")
    normctl("ingest", "wt", tmp_path / "x.npy", f"--weights={tmp_path / 'w.npy'}",
            "--chunk_bytes=1000")
    stats = stats_json(normctl, "wt")
    repeated = np.repeat(x, w.astype(int), axis=0)
    for c in range(2):
        mean, var, sample_var = exact_moments(repeated[:, c])
        assert stats["count"][c] == int((w > 0).sum())
        assert stats["weight_sum"][c] == len(repeated)
        assert_rel(stats["mean"][c], mean, 1e-12)
        assert_rel(stats["variance"][c], var, 1e-12)
        assert_rel(stats["sample_variance"][c], sample_var, 1e-12)
        counts, _ = np.histogram(repeated[:, c], bins=[-5, 0, 2, 4, 10])
        histogram = stats["fixed_histograms"][c]
        assert histogram["counts"] == counts.tolist()
        assert histogram["below"] == (repeated[:, c] < -5).sum()
        assert histogram["above"] == (repeated[:, c] > 10).sum()
    bad = normctl("ingest", "wt", tmp_path / "x.npy", "--weights=" + str(tmp_path / "x.npy"),
                  check=False)
    assert bad.returncode != 0 and "expected a finite weight >= 0" in bad.stderr, bad.stderr


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_images_batchnorm_matches_torch(normctl, tmp_path, layout):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(6, 3, 5, 7), dtype=np.uint8)
    stored = images if layout == "NCHW" else np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    np.save(tmp_path / "train.npy", stored)
    normctl("create", "img", f"--layout={layout}", "--channels=3")
    normctl("ingest", "img", tmp_path / "train.npy")
    normctl("freeze", "img")
    stats = stats_json(normctl, "img", "--version=1")
    for c in range(3):
        mean, var, _ = exact_moments(images[:, c].ravel())
        assert_rel(stats["mean"][c], mean, 1e-12)
        assert_rel(stats["variance"][c], var, 1e-12)

    normctl("normalize", "img", tmp_path / "train.npy", tmp_path / "out.npy", "--scheme=batchnorm",
            "--gamma=1.5,0.5,2", "--beta=0,-1,0.25", "--eps=0.001")
    out = np.load(tmp_path / "out.npy")
    assert out.dtype == np.float32
    expected = F.batch_norm(torch.from_numpy(images.astype(np.float64)),
                            torch.tensor(stats["mean"], dtype=torch.float64),
                            torch.tensor(stats["variance"], dtype=torch.float64),
                            weight=torch.tensor([1.5, 0.5, 2.0], dtype=torch.float64),
                            bias=torch.tensor([0.0, -1.0, 0.25], dtype=torch.float64),
                            training=False, eps=0.001).numpy()
    if layout == "NHWC":
        expected = expected.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_minmax_and_scale(normctl, tmp_path):
    x = np.array([[0.0, 10.0], [4.0, 10.0], [2.0, 10.0]])
    np.save(tmp_path / "x.npy", x)
    normctl("create", "mm", "--channels=2")
    normctl("ingest", "mm", tmp_path / "x.npy")
    normctl("freeze", "mm")
    normctl("normalize", "mm", tmp_path / "x.npy", tmp_path / "y.npy", "--scheme=minmax",
            "--low=-1", "--high=1")
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [[-1, -1], [1, -1], [0, -1]])
    pixels = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    np.save(tmp_path / "p.npy", pixels)
    normctl("create", "pix", "--channels=16")
    normctl("normalize", "pix", tmp_path / "p.npy", tmp_path / "q.npy", "--scheme=scale",
            f"--factor={1 / 255}")
    np.testing.assert_array_equal(np.load(tmp_path / "q.npy"),
                                  (pixels.astype(np.float64) / 255).astype(np.float32))


def test_quantiles_histograms_and_the_robust_schemes(normctl, tmp_path):
    rng = np.random.default_rng(21)
    x = np.stack([rng.standard_cauchy(4000), 1e8 + rng.normal(0, 1e-3, 4000)], axis=1)
    np.save(tmp_path / "x.npy", x)
    normctl("create", "dist", "--channels=2", "--sketch_accuracy=0.002",
            "--sketch_max_buckets=4096", "--sketch_center=0,1e8")
    normctl("ingest", "dist", tmp_path / "x.npy")
    normctl("freeze", "dist")
    ranks = [0.01, 0.5, 0.99]
    stats = stats_json(normctl, "dist", "--version=latest", "--quantiles=0.01,0.5,0.99",
                       "--histogram_bins=4")
    for c, d in enumerate(stats["distributions"]):
        assert d["relative_accuracy"] == 2.0 ** -9  # 0.002 kept as the power of two below it
        exact = np.quantile(x[:, c], ranks)
        assert np.all(np.abs(np.array(d["quantile"]) - exact) <= d["quantile_error"])
        edges, counts = d["histogram_edges"], d["histogram_counts"]
        assert len(edges) == len(counts) + 1 and sum(counts) == 4000
    text = normctl("stats", "dist", "--quantiles=0.5").stdout
    assert "sketch of" in text and "q0.5" in text
    normctl("normalize", "dist", tmp_path / "x.npy", tmp_path / "r.npy", "--scheme=robust",
            "--output_dtype=float64")
    q = np.array([d["quantile"] for d in stats_json(
        normctl, "dist", "--version=latest", "--quantiles=0.5,0.25,0.75")["distributions"]])
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"),
                               (x - q[:, 0]) / (q[:, 2] - q[:, 1]), rtol=1e-12, atol=1e-12)
    normctl("normalize", "dist", tmp_path / "x.npy", tmp_path / "c.npy", "--scheme=clip",
            "--quantile_clip=0.01,0.99", "--output_dtype=float64")
    low, high = np.array([d["quantile"] for d in stats["distributions"]])[:, [0, 2]].T
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.clip(x, low, high))
    failed = normctl("stats", "dist", "--quantiles=2", check=False)
    assert failed.returncode == 1 and "must be a rank in [0, 1], got 2" in failed.stderr
    assert ("relative accuracy 0.001953125, at most 4096 buckets a channel, centred per channel"
            in normctl("info", "dist").stdout)
    normctl("create", "plain", "--channels=1", "--nosketch")
    assert "no quantile sketches" in normctl("info", "plain").stdout


def test_restart_keeps_statistics_and_versions(normd, normctl, tmp_path):
    rng = np.random.default_rng(11)
    np.save(tmp_path / "x.npy", rng.normal(5, 2, (1000, 4)).astype(np.float16))
    normctl("create", "keep", "--channels=4")
    normctl("ingest", "keep", tmp_path / "x.npy")
    normctl("freeze", "keep")
    normctl("ingest", "keep", tmp_path / "x.npy")
    before_live = normctl("stats", "keep", "--json").stdout
    before_v1 = normctl("stats", "keep", "--json", "--version=1").stdout
    normd.stop()
    normd.start()
    # The restarted server picked a new port; normctl follows the fixture's address.
    assert normctl("stats", "keep", "--json").stdout == before_live
    assert normctl("stats", "keep", "--json", "--version=1").stdout == before_v1
    assert "keep" in normctl("list").stdout


def test_cli_errors(normctl, tmp_path):
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.ones((3, 2), np.float32)))
    np.save(tmp_path / "ints.npy", np.ones((3, 2), np.int64))
    np.save(tmp_path / "ok.npy", np.ones((3, 2), np.float32))
    normctl("create", "e", "--channels=2")

    result = normctl("ingest", "e", tmp_path / "fortran.npy", check=False)
    assert result.returncode == 2 and "Fortran-ordered" in result.stderr  # local: exit 2
    result = normctl("ingest", "e", tmp_path / "ints.npy", check=False)
    assert result.returncode == 2 and "unsupported .npy dtype '<i8'" in result.stderr
    result = normctl("ingest", "nope", tmp_path / "ok.npy", check=False)
    assert result.returncode == 1 and "NOT_FOUND" in result.stderr
    result = normctl("normalize", "e", tmp_path / "ok.npy", tmp_path / "o.npy", check=False)
    assert result.returncode == 1 and "FAILED_PRECONDITION" in result.stderr
    result = normctl("create", "e", "--channels=2", check=False)
    assert result.returncode == 1 and "ALREADY_EXISTS" in result.stderr
    result = normctl("create", "../etc", "--channels=2", check=False)
    assert result.returncode == 1 and "INVALID_ARGUMENT" in result.stderr
    result = normctl("frobnicate", check=False)
    assert result.returncode == 2
    # Nothing above changed the dataset.
    assert stats_json(normctl, "e")["count"] == [0, 0]
    assert "deleted e" in normctl("delete", "e").stdout
    assert "SERVING" in normctl("health").stdout


def npy_bytes(header_dict, data=b"", version=1):
    """A .npy file whose header says what the test wants, whatever the data holds."""
    text = header_dict.encode("latin1")
    length = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


def test_lying_npy_files_are_refused_before_anything_is_sent(normctl, tmp_path):
    """Every length in a .npy file is checked against the file itself when it is
    opened: a short or long file, a header length past the end, a shape whose byte
    count overflows 64 bits, or rows of no bytes is refused up front, and the dataset
    is untouched."""
    normctl("create", "lies", "--channels=2")
    good = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "good.npy", good)
    whole = (tmp_path / "good.npy").read_bytes()
    files = {
        "short.npy": (whole[:-4], "promises 24 bytes of data (shape [3, 2]) but the file holds 20"),
        "long.npy": (whole + b"\0" * 8, "promises 24 bytes of data (shape [3, 2]) but the file holds 32"),
        # A version-2 header that claims 4 GiB: refused without allocating it.
        "huge_header.npy": (b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'", "truncated .npy header"),
        "overflow.npy": (npy_bytes("{'descr': '<f8', 'fortran_order': False, "
                                   "'shape': (4294967296, 4294967296, 2), }"),
                         "overflows a 64-bit byte count"),
        "negative.npy": (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }"),
                         "bad dimension '-1'"),
        # Found by the fuzzer: empty rows, but 493555555555555 of them.
        "empty_rows.npy": (npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                     "'shape': (493555555555555, 0, 2), }"),
                           "has a zero dimension after the first, so its rows hold no values"),
    }
    for name, (content, message) in files.items():
        (tmp_path / name).write_bytes(content)
        result = normctl("ingest", "lies", tmp_path / name, check=False)
        assert result.returncode == 2, name  # a local error: nothing sent
        assert message in result.stderr, (name, result.stderr)
    assert stats_json(normctl, "lies")["count"] == [0, 0]
    normctl("ingest", "lies", tmp_path / "good.npy")
    assert stats_json(normctl, "lies")["count"] == [3, 3]


def test_per_sample_schemes_chunk_by_sample(normctl, tmp_path):
    """Group and layer norm from .npy files, many samples per chunk and none split."""
    rng = np.random.default_rng(12)
    x = rng.normal(4, 3, (40, 6, 5, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    normctl("normalize", "-", tmp_path / "x.npy", tmp_path / "g.npy", "--scheme=groupnorm",
            "--groups=3", "--layout=NCHW", "--gamma=1,2,3,4,5,6", "--chunk_bytes=4000",
            "--output_dtype=float64")
    gamma = torch.arange(1, 7, dtype=torch.float64)
    expected = F.group_norm(torch.from_numpy(x).double(), 3, gamma)
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"), expected.numpy(), rtol=1e-12,
                               atol=1e-12)
    normctl("normalize", "-", tmp_path / "x.npy", tmp_path / "l.npy", "--scheme=layernorm",
            "--normalized_shape=5,5", "--eps=1e-3")
    expected = F.layer_norm(torch.from_numpy(x).double(), [5, 5], eps=1e-3)
    np.testing.assert_allclose(np.load(tmp_path / "l.npy"), expected.numpy(), rtol=1e-6,
                               atol=1e-9)
    result = normctl("normalize", "-", tmp_path / "x.npy", tmp_path / "bad.npy",
                     "--scheme=groupnorm", "--groups=4", "--layout=NCHW", check=False)
    assert result.returncode != 0
    assert "INVALID_ARGUMENT" in result.stderr and "divides the 6 channels" in result.stderr


def test_ingest_is_exactly_once_and_waits_for_a_restarting_server(normd, normctl, tmp_path):
    rng = np.random.default_rng(13)
    first, second = rng.normal(0, 1, (3000, 3)), rng.normal(5, 2, (2000, 3))
    np.save(tmp_path / "first.npy", first)
    np.save(tmp_path / "second.npy", second)
    normctl("create", "tab", "--channels=3")
    normctl("ingest", "tab", tmp_path / "first.npy", "--writer_id=nightly", "--chunk_bytes=8192")
    again = normctl("ingest", "tab", tmp_path / "first.npy", "--writer_id=nightly",
                    "--chunk_bytes=8192")
    assert "were already committed by writer nightly" in again.stdout

    # With the server down, normctl reports the failure and waits for it to return.
    normd.kill()
    pending = subprocess.Popen(
        [NORMCTL_BIN, f"--server={normd.address}", "ingest", "tab", str(tmp_path / "second.npy"),
         "--writer_id=later", "--chunk_bytes=8192"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = pending.stderr.readline()
    assert f"waiting for normd at {normd.address}" in waiting and "as writer later" in waiting
    normd.start()
    out, err = pending.communicate(timeout=120)
    assert pending.returncode == 0, err

    stats = json.loads(normctl("stats", "tab", "--json").stdout)
    pooled = np.concatenate([first, second])
    assert stats["count"] == [len(pooled)] * 3
    np.testing.assert_allclose(stats["mean"], pooled.mean(axis=0), rtol=1e-12, atol=1e-15)


def test_normalize_through_shared_memory_writes_the_same_file(normctl, client, tmp_path):
    """--shared_memory: each chunk read into a region, its result written from one; the
    file is byte for byte the one the socket path writes, and the regions are gone after."""
    rng = np.random.default_rng(11)
    images = rng.normal(5, 2, size=(50, 3, 6, 6)).astype(np.float32)
    np.save(tmp_path / "train.npy", images)
    normctl("create", "img", "--layout=NCHW", "--channels=3")
    normctl("ingest", "img", tmp_path / "train.npy")
    normctl("freeze", "img")
    # Small chunks: the regions are reused from chunk to chunk.
    normctl("normalize", "img", tmp_path / "train.npy", tmp_path / "socket.npy",
            "--chunk_bytes=4096", "--output_dtype=float64")
    normctl("normalize", "img", tmp_path / "train.npy", tmp_path / "shared.npy",
            "--chunk_bytes=4096", "--output_dtype=float64", "--shared_memory")
    assert (tmp_path / "shared.npy").read_bytes() == (tmp_path / "socket.npy").read_bytes()
    stats = client.stats("img", version=1)
    expected = F.batch_norm(torch.from_numpy(images.astype(np.float64)),
                            torch.from_numpy(stats.mean), torch.from_numpy(stats.variance),
                            training=False, eps=1e-5).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "shared.npy"), expected, rtol=1e-12, atol=1e-12)
    assert list(client.regions().regions) == []


def test_a_file_that_cannot_be_read_fails_at_once_and_is_never_resent(normctl, tmp_path):
    """A missing or malformed .npy is the caller's error, not the server being away: exit
    2 at once, naming the file, with nothing sent and no "resending" — whether the
    server is up or not (--retry_seconds would otherwise wait 300 s)."""
    normctl("create", "tab", "--layout=NC", "--channels=2")
    missing = tmp_path / "missing.npy"
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not an npy file at all")
    good = tmp_path / "good.npy"
    np.save(good, np.ones((4, 2)))
    for args in (["ingest", "tab", missing], ["ingest", "tab", good, garbage],
                 ["normalize", "tab", missing, tmp_path / "out.npy"]):
        result = normctl(*args, check=False)
        assert result.returncode == 2, result.stderr
        named = missing if missing in args else garbage
        assert str(named) in result.stderr, result.stderr
        assert "resending" not in result.stderr
    assert "No such file or directory" in normctl("ingest", "tab", missing, check=False).stderr
    # Nothing of the good file was sent with the bad one.
    assert stats_json(normctl, "tab")["count"] == [0, 0]
    # With no server at all, the same at once.
    down = subprocess.run([NORMCTL_BIN, "--server=127.0.0.1:1", "ingest", "tab", missing],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 2 and f"cannot open {missing}" in down.stderr, down.stderr


def test_with_the_server_away_the_wait_is_shown_and_its_cause_kept(tmp_path):
    """Nobody listens: normctl says whom it waits for, and when --retry_seconds runs out
    the error names the address and the failure that kept it away, not only a deadline."""
    np.save(tmp_path / "batch.npy", np.ones((4, 2)))
    result = subprocess.run([NORMCTL_BIN, "--server=127.0.0.1:1", "--retry_seconds=2", "ingest",
                             "tab", tmp_path / "batch.npy"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr
    assert "waiting for normd at 127.0.0.1:1" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("normctl: UNAVAILABLE: normd at 127.0.0.1:1 did not come back within "
                           "2s (--retry_seconds); the last failure: UNAVAILABLE"), last


COMMANDS = ["create", "ingest", "freeze", "stats", "compare", "pin", "export", "normalize",
            "info", "list", "delete", "health"]


def test_help_for_normctl_and_every_command_exits_0():
    """--help, `help` and `help COMMAND` (or `COMMAND --help`) print normctl's own help
    and exit 0, with each command's flags; no server is needed for them."""
    for args in (["--help"], ["-h"], ["help"]):
        result = subprocess.run([NORMCTL_BIN, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("normctl: the command-line client for normd.")
        assert all(f"  {command}" in result.stdout for command in COMMANDS)
        assert "No flags matched" not in result.stdout + result.stderr
    for command in COMMANDS:
        for args in (["help", command], [command, "--help"]):
            result = subprocess.run([NORMCTL_BIN, *args], capture_output=True, text=True,
                                    timeout=60)
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith(f"Usage: normctl {command}"), result.stdout
            assert "--server" in result.stdout
    ingest = subprocess.run([NORMCTL_BIN, "help", "ingest"], capture_output=True, text=True,
                            timeout=60).stdout
    assert all(f"--{flag}" in ingest for flag in ("split", "writer_id", "retry_seconds"))
    unknown = subprocess.run([NORMCTL_BIN, "help", "frobnicate"], capture_output=True, text=True,
                             timeout=60)
    assert unknown.returncode == 2 and "unknown command 'frobnicate'" in unknown.stderr


def test_a_flag_a_command_does_not_read_is_refused(normctl, tmp_path):
    """`freeze --split=validation` froze the train split and `list --json` printed a
    table: a flag that does not apply is now refused, exit 2, before anything is sent."""
    normctl("create", "tab", "--channels=2", "--nosketch")  # --noNAME of a boolean applies
    for args, flag in ((["freeze", "tab", "--split=validation"], "--split"),
                       (["list", "--json"], "--json"),
                       (["ingest", "tab", "x.npy", "--scheme=minmax"], "--scheme")):
        result = normctl(*args, check=False)
        assert result.returncode == 2, result.stderr
        assert f"{flag} does not apply to {args[0]}" in result.stderr, result.stderr
    assert normctl("freeze", "tab", check=False).returncode == 1  # nothing fitted: refused
    assert stats_json(normctl, "tab")["batches"] == 0


def test_normalize_takes_the_python_clients_piecewise_schemes_and_float16(normctl, client,
                                                                          tmp_path):
    """normctl's normalize has the Python client's quantile and bucketize schemes and
    its float16 output: the file holds what the client returns, bit for bit."""
    rng = np.random.default_rng(17)
    train = rng.gamma(2.0, 3.0, (4000, 3))
    x = rng.gamma(2.0, 3.0, (300, 3))
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "x.npy", x)
    normctl("create", "tab", "--channels=3")
    normctl("ingest", "tab", tmp_path / "train.npy")
    normctl("freeze", "tab")
    cases = [
        (["--scheme=quantile", "--n_quantiles=100", "--normal_output"],
         client.quantile_transform(x, "tab", n_quantiles=100, output="normal")),
        (["--scheme=bucketize", "--ranks=0.25,0.5,0.75"],
         client.bucketize(x, "tab", [0.25, 0.5, 0.75])),
        (["--scheme=zscore", "--output_dtype=float16"],
         client.zscore(x, "tab", output_dtype=np.float16)),
    ]
    for flags, expected in cases:
        normctl("normalize", "tab", tmp_path / "x.npy", tmp_path / "out.npy", *flags)
        got = np.load(tmp_path / "out.npy")
        assert got.dtype == np.asarray(expected).dtype, flags
        np.testing.assert_array_equal(got, expected)
    refused = normctl("normalize", "tab", tmp_path / "x.npy", tmp_path / "o.npy",
                      "--output_dtype=bfloat16", check=False)
    assert refused.returncode == 2 and "no bfloat16 type" in refused.stderr


def test_the_readmes_worked_example_runs_as_written(normd, tmp_path):
    """The README's worked example, its shell block run by bash in a fresh directory
    against the test's server ($NORMD_SERVER) with this build's normctl: every step
    succeeds, and the validation split z-scored by version 1 has a standard deviation
    near 1 in each column."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## A worked example", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    assert script.startswith("normctl=build/normctl")
    script = script.replace("normctl=build/normctl", f"normctl={NORMCTL_BIN}", 1)
    # `python3` is the interpreter running the tests (Debian's, with numpy).
    env = dict(os.environ, NORMD_SERVER=normd.address,
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    z = np.load(tmp_path / "val_z.npy")
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.1), z.std(axis=0)
    assert "tabular" in result.stdout  # list names the dataset
