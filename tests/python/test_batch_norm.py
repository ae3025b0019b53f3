"""Batch norm through a real normd: training mode against F.batch_norm, running
statistics against torch.nn.BatchNorm's buffers, eval mode against both."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import normd
from oracles import (SPATIAL_SHAPES, assert_matches_torch, channels_first, channels_last,
                     random_affine, random_input)

BATCH_NORMS = {1: torch.nn.BatchNorm1d, 2: torch.nn.BatchNorm2d, 3: torch.nn.BatchNorm3d}


@pytest.mark.parametrize("spatial,layout", [((), "NC")] + [
    (spatial, layout) for spatial in SPATIAL_SHAPES for layout in ["NCHW", "NHWC"]])
@pytest.mark.parametrize("affine", [False, True])
def test_training_mode_uses_the_batch_statistics(client, spatial, layout, affine):
    rng = np.random.default_rng(len(spatial) * 3 + affine)
    x = random_input(rng, (6, 4, *spatial), loc=-7.0, scale=3.0)
    gamma, beta = random_affine(rng, (4,)) if affine else (None, None)
    sent = channels_last(x) if layout == "NHWC" else x
    got = client.batch_norm_train(sent, layout=layout, gamma=gamma,
                                  beta=beta, eps=1e-3)
    if layout == "NHWC":
        got = channels_first(got)
    reference64 = F.batch_norm(x.double(), None, None, gamma, beta, training=True, eps=1e-3)
    reference32 = F.batch_norm(x, None, None, None if gamma is None else gamma.float(),
                               None if beta is None else beta.float(), training=True, eps=1e-3)
    assert_matches_torch(got, reference64, reference32)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_statistics_follow_torch_batchnorm_buffers(client, dims, layout, momentum):
    channels = 5
    spatial = SPATIAL_SHAPES[dims - 1]
    client.create_dataset("bn", layout=layout, channels=channels, running_average=True,
                          momentum=momentum)
    rng = np.random.default_rng(dims * 7 + int((momentum or 0) * 100))
    module = BATCH_NORMS[dims](channels, momentum=momentum, dtype=torch.float64)
    gamma, beta = random_affine(rng, (channels,))
    with torch.no_grad():
        module.weight.copy_(gamma)
        module.bias.copy_(beta)
    module.train()
    training_batches = []
    for step in range(4):
        # Drifting batches of different sizes, as an epoch of real data might be.
        x = random_input(rng, (3 + step, channels, *spatial), loc=10.0 * step, scale=1.0 + step)
        training_batches.append(x)
        sent = channels_last(x) if layout == "NHWC" else x
        got = client.batch_norm_train(sent, dataset="bn", gamma=gamma, beta=beta, update=True)
        if layout == "NHWC":
            got = channels_first(got)
        with torch.no_grad():
            assert_matches_torch(got, module(x.double()))

    stats = client.stats("bn")
    assert stats.num_batches_tracked == module.num_batches_tracked.item() == 4
    np.testing.assert_allclose(stats.running_mean, module.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats.running_var, module.running_var.numpy(), rtol=1e-12)
    # The exact moments took the same batches: numpy float64 over all of them.
    pooled = np.concatenate([b.double().transpose(0, 1).reshape(channels, -1).numpy()
                             for b in training_batches], axis=1)
    np.testing.assert_array_equal(stats.count, pooled.shape[1])
    np.testing.assert_allclose(stats.mean, pooled.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.variance, pooled.var(axis=1), rtol=1e-12)

    # Eval mode with the frozen running statistics is the module in eval mode.
    version = client.freeze("bn")
    module.eval()
    x = random_input(rng, (4, channels, *spatial), loc=15.0, scale=2.0)
    sent = channels_last(x) if layout == "NHWC" else x
    got = client.batch_norm(sent, "bn", version=version, gamma=gamma, beta=beta)
    if layout == "NHWC":
        got = channels_first(got)
    with torch.no_grad():
        assert_matches_torch(got, module(x.double()))


def test_only_training_data_updates_statistics(client):
    client.create_dataset("bn", layout="NCHW", channels=3, running_average=True)
    x = random_input(np.random.default_rng(0), (4, 3, 5, 5))
    for split in ["validation", "test"]:
        with pytest.raises(normd.InvalidArgument, match="only training data may change a fit"):
            client.batch_norm_train(x, dataset="bn", update=True, split=split)
    with pytest.raises(normd.InvalidArgument, match="dataset is empty"):
        client.batch_norm_train(x, update=True)
    # Normalising a validation batch with its own statistics is fine, and changes nothing.
    client.batch_norm_train(x, dataset="bn", split="validation")
    stats = client.stats("bn")
    assert stats.num_batches_tracked == 0 and stats.batches == 0
    np.testing.assert_array_equal(stats.running_mean, [0, 0, 0])
    np.testing.assert_array_equal(stats.running_var, [1, 1, 1])


def test_refused_batches_change_nothing(client):
    client.create_dataset("bn", layout="NCHW", channels=3, running_average=True)
    rng = np.random.default_rng(1)
    with pytest.raises(normd.InvalidArgument, match="more than 1 value per channel"):
        client.batch_norm_train(random_input(rng, (1, 3, 1, 1)), dataset="bn", update=True)
    poisoned = random_input(rng, (4, 3, 5, 5))
    poisoned[1, 2, 3, 4] = float("nan")
    with pytest.raises(normd.InvalidArgument, match="not folded into dataset"):
        client.batch_norm_train(poisoned, dataset="bn", update=True)
    stats = client.stats("bn")
    assert stats.num_batches_tracked == 0
    np.testing.assert_array_equal(stats.count, [0, 0, 0])
    # Without an update the NaN poisons its channel only, as in PyTorch.
    got = client.batch_norm_train(poisoned)
    assert torch.isnan(got[:, 2]).all() and torch.isfinite(got[:, :2]).all()
    assert_matches_torch(got, F.batch_norm(poisoned.double(), None, None, training=True))


def test_skip_policy_updates_with_the_finite_values(client):
    client.create_dataset("bn", layout="NC", channels=2, running_average=True, momentum=0.5,
                          nonfinite="skip")
    x = torch.tensor([[1.0, 2.0], [3.0, float("inf")], [5.0, 4.0], [7.0, 8.0]])
    client.batch_norm_train(x, dataset="bn", update=True)
    stats = client.stats("bn")
    np.testing.assert_array_equal(stats.count, [4, 3])
    finite = [np.array([1.0, 3.0, 5.0, 7.0]), np.array([2.0, 4.0, 8.0])]
    np.testing.assert_allclose(stats.running_mean, [0.5 * v.mean() for v in finite], rtol=1e-15)
    np.testing.assert_allclose(stats.running_var, [0.5 + 0.5 * v.var(ddof=1) for v in finite],
                               rtol=1e-15)


def test_eval_mode_on_an_exact_dataset_uses_the_training_split(client):
    client.create_dataset("features", layout="NC", channels=4)
    rng = np.random.default_rng(4)
    train = [rng.normal([1e3, -2, 0, 5e6], [1, 3, 1e-3, 10], (n, 4)) for n in (100, 7, 300)]
    client.fit("features", train)
    client.fit("features", [rng.normal(50, 50, (20, 4))], split="validation")
    version = client.freeze("features")
    pooled = np.concatenate(train)
    stats = client.stats("features", version=version)
    np.testing.assert_allclose(stats.mean, pooled.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(stats.variance, pooled.var(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(stats.min, pooled.min(axis=0))
    np.testing.assert_array_equal(stats.max, pooled.max(axis=0))

    x = torch.from_numpy(rng.normal([1e3, -2, 0, 5e6], [1, 3, 1e-3, 10], (16, 4)))
    gamma, beta = random_affine(rng, (4,))
    got = client.batch_norm(x.float(), "features", gamma=gamma, beta=beta, eps=1e-6)
    reference = F.batch_norm(x.float().double(), torch.from_numpy(pooled.mean(axis=0)),
                             torch.from_numpy(pooled.var(axis=0)), gamma, beta, training=False,
                             eps=1e-6)
    assert_matches_torch(got, reference)
