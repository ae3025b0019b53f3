"""The CUDA path through the Python client (ctest runs this file under the `cuda` label
too): torch CUDA tensors normalised on their device bit for bit as the server
normalises the same values, the batch-statistics schemes against torch.nn.functional,
moments of a CUDA batch against exact rational arithmetic, and a fit from CUDA
batches through a real server. Every test skips, saying why, without a GPU, a CUDA
build of torch or normd's CUDA path."""
import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import normd
from normd import local

pytestmark = [
    pytest.mark.skipif(not local.available(), reason="normd._native not built"),
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device for torch here (Debian's torch is CPU-only)"),
    pytest.mark.skipif(not local.cuda_available(),
                       reason="normd was built without its CUDA path, or sees no GPU"),
]

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16, "uint8": torch.uint8}
OUTPUTS = ("float32", "float64", "float16", "bfloat16")


def bits(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    return t.view(torch.int16 if t.element_size() == 2 else
                  torch.int32 if t.element_size() == 4 else
                  torch.int64 if t.element_size() == 8 else torch.uint8).numpy().tobytes()


def test_cuda_build_reports_its_devices():
    assert normd.local.cuda_available()
    assert local._native.cuda_device_count() == torch.cuda.device_count()


@pytest.mark.parametrize("layout,shape", [("NC", (333, 5)), ("NCHW", (4, 5, 30, 31)),
                                          ("NHWC", (4, 30, 31, 5))])
def test_cuda_normalizer_is_the_servers_bits(client, layout, shape):
    rng = np.random.default_rng(1)
    client.create_dataset("gpu", layout=layout, channels=5)
    client.fit("gpu", [rng.normal(1e3, 5.0, shape) for _ in range(2)])
    client.freeze("gpu")
    x64 = torch.from_numpy(rng.normal(1e3, 5.0, shape))
    for scheme, params in [("zscore", {"eps": 1e-3}), ("minmax", {"low": -1.0, "high": 1.0,
                                                                  "clip": True}),
                           ("batchnorm", {"gamma": [1.5] * 5, "beta": [0.1] * 5})]:
        normalizer = client.normalizer("gpu", scheme=scheme, **params)
        for (in_name, dtype), out_name in itertools.product(DTYPES.items(), OUTPUTS):
            x = x64.to(dtype) if dtype != torch.uint8 else (x64 - 970).clamp(0, 255).to(dtype)
            got = normalizer(x.cuda(), output_dtype=out_name)
            assert got.is_cuda and got.device == x.cuda().device
            want = normalizer(x, output_dtype=out_name)  # the CPU kernels: the server's bits
            assert bits(got) == bits(want), (scheme, in_name, out_name)


def test_cuda_normalizer_writes_in_place_and_refuses_host_outputs(client):
    client.create_dataset("inplace", layout="NC", channels=4)
    client.fit("inplace", [np.arange(40.0).reshape(10, 4)])
    client.freeze("inplace")
    normalize = client.normalizer("inplace")
    x = torch.arange(24.0, device="cuda").reshape(6, 4)
    want = normalize(x.cpu())
    assert normalize(x, out=x) is x
    assert bits(x) == bits(want)
    with pytest.raises(ValueError, match="CUDA tensor"):
        normalize(x, out=torch.empty(6, 4))


@pytest.mark.parametrize("shape", [(64, 3, 56, 56), (32, 64, 14, 14)])
def test_cuda_batch_statistics_match_torch(client, shape):
    torch.manual_seed(2)
    x = (torch.randn(shape, dtype=torch.float64) * 3 + 7).cuda()
    channels = shape[1]
    gamma = torch.rand(channels, dtype=torch.float64) + 0.5
    beta = torch.randn(channels, dtype=torch.float64)
    cases = [
        ("batchnorm_training", {"gamma": gamma.tolist(), "beta": beta.tolist()},
         lambda t: F.batch_norm(t, None, None, gamma.cuda(), beta.cuda(), training=True)),
        ("layernorm", {}, lambda t: F.layer_norm(t, t.shape[1:])),
        ("instancenorm", {}, lambda t: F.instance_norm(t)),
        ("groupnorm", {"num_groups": 1 if channels == 3 else 8},
         lambda t: F.group_norm(t, 1 if channels == 3 else 8)),
    ]
    for scheme, params, oracle in cases:
        normalizer = client.normalizer("", scheme=scheme, layout="NCHW", **params)
        got = normalizer(x, output_dtype="float64")
        assert got.is_cuda
        torch.testing.assert_close(got, oracle(x), rtol=1e-10, atol=1e-10)
        # The CPU computes the same statistics: outputs agree to the output's last place.
        torch.testing.assert_close(got.cpu(), normalizer(x.cpu(), output_dtype="float64"),
                                   rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype,layout", [("float32", "NCHW"), ("float64", "NHWC"),
                                          ("float16", "NC"), ("uint8", "NCHW")])
def test_cuda_moments_are_exact(dtype, layout):
    rng = np.random.default_rng(3)
    shape = {"NC": (4097, 3), "NCHW": (6, 3, 40, 41), "NHWC": (6, 40, 41, 3)}[layout]
    if dtype == "uint8":
        x = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        x = (1e4 / (100 if dtype == "float16" else 1) + rng.normal(0, 3, shape)).astype(dtype)
    on_device = normd.moments(torch.from_numpy(x).cuda(), layout=layout)
    on_host = normd.moments(x, layout=layout)
    count, mean_hi, mean_lo, m2_hi, m2_lo, low, high, *_ = on_device.parts()
    axis = 1 if layout in ("NC", "NCHW") else x.ndim - 1
    per_channel = np.moveaxis(x, axis, 0).reshape(3, -1)
    for c in range(3):
        exact = [Fraction(float(v)) for v in per_channel[c]]
        mean = sum(exact) / len(exact)
        m2 = sum((v - mean) ** 2 for v in exact)
        assert count[c] == len(exact) and low[c] == min(exact) and high[c] == max(exact)
        assert abs(Fraction(mean_hi[c]) + Fraction(mean_lo[c]) - mean) <= abs(mean) / 10 ** 15
        assert abs(Fraction(m2_hi[c]) + Fraction(m2_lo[c]) - m2) <= m2 / 10 ** 15
    if dtype == "uint8":  # integer sums on both sides: the same bits
        assert all(np.array_equal(a, b)
                   for a, b in zip(on_device.parts()[:7], on_host.parts()[:7]))


def test_fit_from_cuda_batches_matches_fit_from_host_batches(client):
    rng = np.random.default_rng(4)
    batches = [rng.normal(5.0, 2.0, (16, 3, 20, 20)).astype(np.float32) for _ in range(4)]
    client.create_dataset("host", layout="NCHW", channels=3)
    client.create_dataset("device", layout="NCHW", channels=3)
    client.fit("host", batches)
    client.fit("device", [torch.from_numpy(b).cuda() for b in batches])
    host, device = client.stats("host"), client.stats("device")
    assert list(host.count) == list(device.count)
    np.testing.assert_allclose(device.mean, host.mean, rtol=1e-15)
    np.testing.assert_allclose(device.variance, host.variance, rtol=1e-14)
