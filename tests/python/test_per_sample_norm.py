"""Layer, instance and group norm through a real normd, against torch.nn.functional."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import normd
from oracles import (SPATIAL_SHAPES, assert_matches_torch, channels_first, channels_last,
                     random_affine, random_input)


@pytest.mark.parametrize("shape,normalized_shape", [
    ((16, 10), [10]),
    ((16, 10), None),                # default: every dim after the first
    ((4, 6, 5, 7), [7]),
    ((4, 6, 5, 7), [5, 7]),
    ((4, 6, 5, 7), [6, 5, 7]),
    ((2, 3, 300), [300]),            # long rows
    ((5, 1), [1]),                   # one element: var 0, output beta
])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_layer_norm(client, shape, normalized_shape, affine, eps):
    rng = np.random.default_rng(len(shape) * 100 + affine)
    x = random_input(rng, shape)
    dims = list(normalized_shape or shape[1:])
    gamma, beta = random_affine(rng, dims) if affine else (None, None)
    torch_eps = 1e-5 if eps is None else eps
    got = client.layer_norm(x, normalized_shape, gamma=gamma, beta=beta, eps=eps)
    reference64 = F.layer_norm(x.double(), dims, gamma, beta, torch_eps)
    reference32 = F.layer_norm(x, dims, None if gamma is None else gamma.float(),
                               None if beta is None else beta.float(), torch_eps)
    if np.prod(dims) == 1:
        # x - mean is 0 exactly, but torch's float32 kernel leaves a rounding residue
        # that 1 / sqrt(eps) magnifies past 1e-5; its float64 result is exact.
        reference32 = None
    assert_matches_torch(got, reference64, reference32)


@pytest.mark.parametrize("spatial", SPATIAL_SHAPES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm(client, spatial, layout, affine):
    rng = np.random.default_rng(len(spatial) + 10 * affine)
    x = random_input(rng, (3, 4, *spatial))
    gamma, beta = random_affine(rng, (4,)) if affine else (None, None)
    sent = channels_last(x) if layout == "NHWC" else x
    got = client.instance_norm(sent, layout=layout, gamma=gamma, beta=beta, eps=1e-4)
    if layout == "NHWC":
        got = channels_first(got)
    reference64 = F.instance_norm(x.double(), weight=gamma, bias=beta, eps=1e-4)
    reference32 = F.instance_norm(x, weight=None if gamma is None else gamma.float(),
                                  bias=None if beta is None else beta.float(), eps=1e-4)
    assert_matches_torch(got, reference64, reference32)


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
@pytest.mark.parametrize("spatial", SPATIAL_SHAPES)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("affine", [False, True])
def test_group_norm(client, groups, spatial, layout, affine):
    rng = np.random.default_rng(groups * 10 + len(spatial))
    x = random_input(rng, (3, 6, *spatial))
    gamma, beta = random_affine(rng, (6,)) if affine else (None, None)
    sent = channels_last(x) if layout == "NHWC" else x
    got = client.group_norm(sent, groups, layout=layout, gamma=gamma, beta=beta)
    if layout == "NHWC":
        got = channels_first(got)
    reference64 = F.group_norm(x.double(), groups, gamma, beta, 1e-5)
    reference32 = F.group_norm(x, groups, None if gamma is None else gamma.float(),
                               None if beta is None else beta.float(), 1e-5)
    assert_matches_torch(got, reference64, reference32)


@pytest.mark.parametrize("groups", [1, 4, 12])
def test_group_norm_on_features(client, groups):
    """[N, C] tabular input: groups of features, as F.group_norm on a 2-D tensor."""
    rng = np.random.default_rng(groups)
    x = random_input(rng, (7, 12))
    gamma, beta = random_affine(rng, (12,))
    got = client.group_norm(x, groups, layout="NC", gamma=gamma, beta=beta)
    assert_matches_torch(got, F.group_norm(x.double(), groups, gamma, beta, 1e-5))


def test_group_norm_with_a_dataset_takes_its_layout(client):
    client.create_dataset("images", layout="NHWC", channels=6)
    rng = np.random.default_rng(5)
    x = random_input(rng, (2, 6, 4, 5))
    got = channels_first(client.group_norm(channels_last(x), 3, dataset="images"))
    assert_matches_torch(got, F.group_norm(x.double(), 3))
    with pytest.raises(normd.InvalidArgument, match="expects 6 channels"):
        client.group_norm(channels_last(random_input(rng, (2, 4, 4, 5))), 2, dataset="images")
    with pytest.raises(normd.InvalidArgument, match="does not match dataset"):
        client.group_norm(x, 3, dataset="images", layout="NCHW")


def test_group_count_must_divide_channels(client):
    x = random_input(np.random.default_rng(0), (2, 6, 4, 4))
    with pytest.raises(normd.InvalidArgument) as error:
        client.group_norm(x, 4)
    assert error.value.code.name == "INVALID_ARGUMENT"
    assert "divides the 6 channels, got 4" in error.value.details
    with pytest.raises(normd.InvalidArgument, match="got 0"):
        client.group_norm(x, 0)


def test_bad_parameters_are_invalid_argument(client):
    rng = np.random.default_rng(1)
    x = random_input(rng, (2, 6, 4, 4))
    with pytest.raises(normd.InvalidArgument, match="gamma has 5 values, expected 6"):
        client.instance_norm(x, gamma=np.ones(5))
    with pytest.raises(normd.InvalidArgument, match="eps must be finite and >= 0"):
        client.group_norm(x, 2, eps=-1.0)
    with pytest.raises(normd.InvalidArgument, match="beta\\[1\\] must be finite"):
        client.layer_norm(x, [4, 4], beta=np.array([0, np.nan] + [0] * 14))
    with pytest.raises(normd.InvalidArgument, match="must equal the input's trailing dims"):
        client.layer_norm(x, [4, 5])
    with pytest.raises(normd.InvalidArgument, match="more than 1 spatial position"):
        client.instance_norm(random_input(rng, (2, 6, 1, 1)))
    with pytest.raises(normd.InvalidArgument, match="needs the input's layout"):
        client.normalize(x, normd.client.pb.NormalizeRequest(
            instancenorm=normd.client.pb.InstanceNorm()))


def test_non_finite_values_poison_their_group_as_in_torch(client):
    rng = np.random.default_rng(2)
    x = random_input(rng, (3, 6, 5, 5))
    x[0, 1, 2, 3] = float("nan")
    x[2, 5, 0, 0] = float("inf")
    got = client.group_norm(x, 3)
    reference = F.group_norm(x.double(), 3)
    assert torch.isnan(got[0, :2]).all() and torch.isnan(got[2, 4:]).all()
    assert torch.isfinite(got[1]).all()
    assert_matches_torch(got, reference)


def test_uint8_images_and_narrow_outputs(client):
    rng = np.random.default_rng(3)
    images = torch.from_numpy(rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8))
    got = client.instance_norm(images)
    assert_matches_torch(got, F.instance_norm(images.double()))
    reference = F.layer_norm(images.double(), [3, 8, 8])
    half = client.layer_norm(images, [3, 8, 8], output_dtype=torch.float16)
    assert half.dtype == torch.float16
    # numpy rounds float64 to float16 once, to nearest even, as normd does.
    np.testing.assert_array_equal(half.numpy(), reference.numpy().astype(np.float16))
    brain = client.layer_norm(images, [3, 8, 8], output_dtype="bfloat16")
    assert brain.dtype == torch.bfloat16
    torch.testing.assert_close(brain.double(), reference, rtol=2.0**-8, atol=0)
    as_numpy = client.layer_norm(images.numpy(), [3, 8, 8], output_dtype="float64")
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float64
    np.testing.assert_allclose(as_numpy, reference.numpy(), rtol=1e-12, atol=1e-13)
