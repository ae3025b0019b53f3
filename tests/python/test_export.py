"""Client.export: a frozen version in the forms other frameworks load, each loaded by
that framework (torchvision, torch.nn, TorchScript) and compared with normd's own
Normalize of the same input."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import normd

torchvision = pytest.importorskip("torchvision")


@pytest.fixture
def frozen(client):
    """An NCHW dataset of [0, 1] images, frozen at version 1."""
    rng = np.random.default_rng(11)
    client.create_dataset("images", layout="NCHW", channels=3)
    client.fit("images", [rng.uniform(0.0, 1.0, (16, 3, 8, 8)).astype(np.float32)
                          ** np.array([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1)])
    client.freeze("images")
    return torch.from_numpy(rng.uniform(0.0, 1.0, (4, 3, 8, 8)).astype(np.float32))


def test_torchvision_normalize_computes_normds_zscore(client, frozen):
    args = client.export("images", format="torchvision")
    got = torchvision.transforms.Normalize(**args)(frozen)
    torch.testing.assert_close(got, client.zscore(frozen, "images"), rtol=1e-6, atol=1e-6)


def test_frozen_normalize_module_on_any_device_and_in_torchscript(client, frozen):
    module = client.export("images", format="module")
    want = client.zscore(frozen, "images")
    torch.testing.assert_close(module(frozen), want, rtol=1e-6, atol=1e-6)
    scripted = torch.jit.script(module)
    torch.testing.assert_close(scripted(frozen), want, rtol=1e-6, atol=1e-6)
    assert set(module.state_dict()) == {"mean", "std"}
    # float64 in, float64 arithmetic: normd's float64 output to float64 rounding.
    torch.testing.assert_close(module(frozen.double()),
                               client.zscore(frozen, "images", output_dtype="float64"),
                               rtol=1e-12, atol=1e-12)
    pixels = (frozen * 255).to(torch.uint8)
    torch.testing.assert_close(module(pixels), client.zscore(pixels, "images"), rtol=1e-6,
                               atol=1e-5)


def test_frozen_normalize_follows_the_channels_last_layout(client):
    rng = np.random.default_rng(12)
    client.create_dataset("nhwc", layout="NHWC", channels=4)
    client.fit("nhwc", [rng.normal(2.0, 3.0, (8, 5, 5, 4))])
    client.freeze("nhwc")
    x = torch.from_numpy(rng.normal(2.0, 3.0, (2, 5, 5, 4)).astype(np.float32))
    module = client.export("nhwc", format="module")
    torch.testing.assert_close(module(x), client.zscore(x, "nhwc"), rtol=1e-6, atol=1e-6)


def test_state_dict_loads_into_batch_norm_and_matches_normds_batch_norm(client, frozen):
    exported = client.export("images", format="state_dict", layer="norm")
    model = torch.nn.Sequential()
    model.add_module("norm", torch.nn.BatchNorm2d(3))
    missing, unexpected = model.load_state_dict(exported, strict=False)
    assert set(missing) == {"norm.weight", "norm.bias"} and not unexpected
    model.eval()
    torch.testing.assert_close(model(frozen), client.batch_norm(frozen, "images"), rtol=1e-5,
                               atol=1e-5)
    stats = client.stats("images", version=1)
    np.testing.assert_allclose(exported["norm.running_var"].numpy(), stats.variance, rtol=1e-6)


def test_running_average_datasets_export_their_running_statistics(client):
    rng = np.random.default_rng(13)
    client.create_dataset("running", layout="NCHW", channels=2, running_average=True)
    client.fit("running", [rng.normal(1.0, 2.0, (4, 2, 3, 3)) for _ in range(3)])
    client.freeze("running")
    stats = client.stats("running", version=1)
    exported = client.export("running", format="state_dict")
    np.testing.assert_allclose(exported["bn.running_mean"].numpy(), stats.running_mean,
                               rtol=1e-6)
    np.testing.assert_allclose(exported["bn.running_var"].numpy(), stats.running_var, rtol=1e-6)
    assert int(exported["bn.num_batches_tracked"]) == 3
    x = torch.from_numpy(rng.normal(1.0, 2.0, (2, 2, 3, 3)).astype(np.float32))
    torch.testing.assert_close(client.export("running", format="module")(x),
                               client.batch_norm(x, "running"), rtol=1e-5, atol=1e-5)


def test_dali_constants_are_in_pixel_units(client, frozen):
    dali = client.export("images", format="dali")
    assert dali["pixel_scale"] == 255.0  # fit on [0, 1] images
    pixels = torch.round(frozen * 255)
    mean = torch.tensor(dali["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(dali["std"]).view(1, 3, 1, 1)
    # crop_mirror_normalize's arithmetic on raw pixels equals normd's z-score of x / 255.
    torch.testing.assert_close((pixels - mean) / std, client.zscore(pixels / 255, "images"),
                               rtol=1e-5, atol=1e-5)
    assert client.export("images", format="dali", pixel_scale=1.0)["mean"] == \
        client.export("images", format="torchvision")["mean"]


def test_json_carries_the_versions_provenance(client, frozen):
    document = json.loads(client.export("images", format="json"))
    stats, info = client.stats("images", version=1), client.get_dataset("images")
    assert (document["dataset"], document["version"], document["layout"]) == ("images", 1, "NCHW")
    assert document["freeze_time"] == info.versions[0].freeze_time.ToJsonString()
    assert document["train_samples"] == 16 and document["count"] == [1024] * 3
    assert document["mean"] == list(stats.mean) and document["variance"] == list(stats.variance)


def test_export_errors(client):
    client.create_dataset("empty", layout="NC", channels=2)
    with pytest.raises(normd.FailedPrecondition, match="no frozen version"):
        client.export("empty")
    client.fit("empty", [np.ones((3, 2))])
    client.freeze("empty")
    with pytest.raises(normd.NotFound, match="no version 5"):
        client.export("empty", version=5)
    with pytest.raises(ValueError, match="format must be one of"):
        client.export("empty", format="onnx")
    with pytest.raises(normd.NotFound):
        client.export("missing")


def test_normctl_export_writes_what_the_python_client_exports(client, frozen, normctl):
    for fmt in ("json", "torchvision", "dali"):
        printed = json.loads(normctl("export", "images", f"--format={fmt}").stdout)
        exported = client.export("images", format=fmt)
        exported = json.loads(exported) if fmt == "json" else exported
        if fmt == "json":
            assert printed.pop("freeze_time")[:19] == exported.pop("freeze_time")[:19]
        assert printed == exported, fmt
    scaled = json.loads(normctl("export", "images", "--format=dali", "--pixel_scale=1",
                                "--eps=0.5").stdout)
    assert scaled == client.export("images", format="dali", pixel_scale=1.0, eps=0.5)
    refused = normctl("export", "images", "--format=onnx", check=False)
    assert refused.returncode == 2 and "--format must be json, torchvision or dali" in refused.stderr
