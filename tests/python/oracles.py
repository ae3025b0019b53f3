"""Comparisons against PyTorch, the oracle for every normalisation family.

normd computes in float64 and rounds once, so its float32 output is compared with
torch.nn.functional applied to float64 copies of the same inputs at 1e-6 relative
(rounding to float32 alone is 6e-8), and with torch's own float32 computation at
1e-5 relative."""
import numpy as np
import torch

SPATIAL_SHAPES = [(10,), (5, 6), (3, 4, 5)]  # 1-D, 2-D and 3-D


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """NCHW... -> NHWC..., contiguous."""
    return x.permute(0, *range(2, x.dim()), 1).contiguous()


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """NHWC... -> NCHW..."""
    return x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


def random_input(rng: np.random.Generator, shape, loc=3.0, scale=2.0) -> torch.Tensor:
    return torch.from_numpy(rng.normal(loc, scale, shape).astype(np.float32))


def random_affine(rng: np.random.Generator, shape):
    """gamma, beta as float64 tensors (what a checkpoint's parameters become on the wire)."""
    return (torch.from_numpy(rng.normal(1.0, 0.5, shape)),
            torch.from_numpy(rng.normal(0.0, 0.5, shape)))


def assert_matches_torch(got: torch.Tensor, reference64: torch.Tensor,
                         reference32: torch.Tensor = None) -> None:
    assert got.dtype == torch.float32, got.dtype
    assert got.shape == reference64.shape, (got.shape, reference64.shape)
    assert not torch.isnan(reference64).all(), "a reference of all NaN proves nothing"
    torch.testing.assert_close(got.double(), reference64, rtol=1e-6, atol=1e-9, equal_nan=True)
    if reference32 is not None:
        torch.testing.assert_close(got, reference32, rtol=1e-5, atol=1e-5, equal_nan=True)
