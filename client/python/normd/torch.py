"""A frozen version of a normd dataset as a torch.nn.Module (see Client.export).

    module = client.export("imagenet", format="module")   # a FrozenNormalize
    y = module(x.cuda()) if module.cuda() else module(x)   # torch's own ops, any device
    torch.jit.script(module)                                # and in TorchScript
"""
from typing import List

import torch


class FrozenNormalize(torch.nn.Module):
    """(x - mean) / sqrt(variance + eps) per channel, with a frozen version's
    statistics held as buffers (they follow .to(device) and state_dict()). The channel
    axis is 1 for NC and NCHW, the last for NHWC. Integer inputs are taken as float32;
    the arithmetic is in the input's floating type (float64 stays float64), so on
    float32 it agrees with normd's Normalize (which computes in float64 and rounds
    once) to float32 rounding."""

    def __init__(self, mean, variance, eps: float = 1e-5, channel_axis: int = 1):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float64)
        std = torch.sqrt(torch.as_tensor(variance, dtype=torch.float64) + eps)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.eps = float(eps)
        self.channel_axis = int(channel_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            x = x.to(torch.float32)
        axis = self.channel_axis if self.channel_axis >= 0 else x.dim() + self.channel_axis
        shape: List[int] = [1] * x.dim()
        shape[axis] = -1
        mean = self.mean.to(dtype=x.dtype).view(shape)
        std = self.std.to(dtype=x.dtype).view(shape)
        # One new tensor, divided in place: torchvision's Normalize's arithmetic and
        # bits, without the second 38.5 MB allocation (x - mean) / std would make.
        return x.sub(mean).div_(std)

    @torch.jit.export
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """y * std + mean: the input that forward() maps to y."""
        axis = self.channel_axis if self.channel_axis >= 0 else y.dim() + self.channel_axis
        shape: List[int] = [1] * y.dim()
        shape[axis] = -1
        return y.mul(self.std.to(dtype=y.dtype).view(shape)).add_(
            self.mean.to(dtype=y.dtype).view(shape))

    def extra_repr(self) -> str:
        return f"channels={self.mean.numel()}, eps={self.eps}, channel_axis={self.channel_axis}"
