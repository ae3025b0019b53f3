"""A frozen version's statistics in the forms other frameworks take (Client.export):
hand-copied constants (ImageNet's, DALI's x255 ones) and client-side scaling that
differs from training are how statistics drift between training and serving."""
import json
from typing import Optional

import numpy as np

FORMATS = ("torchvision", "module", "state_dict", "dali", "json")


def _std(stats, eps: float) -> np.ndarray:
    return np.sqrt(np.asarray(_variance(stats), dtype=np.float64) + eps)


def _mean(stats) -> np.ndarray:
    return stats.running_mean if stats.running_mean is not None else stats.mean


def _variance(stats) -> np.ndarray:
    """What normd's z-score and batch norm divide by: the running average's variance
    where the dataset keeps one, else the population variance of the training split."""
    return stats.running_var if stats.running_var is not None else stats.variance


def export(info, stats, version_info, fmt: str, *, eps: float = 1e-5,
           layer: str = "bn", pixel_scale: Optional[float] = None):
    """See Client.export."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    mean, variance = _mean(stats), _variance(stats)
    layout = {1: "NC", 2: "NCHW", 3: "NHWC"}[info.spec.layout]
    if fmt == "torchvision":
        return {"mean": [float(m) for m in mean], "std": [float(s) for s in _std(stats, eps)]}
    if fmt == "module":
        from normd.torch import FrozenNormalize
        return FrozenNormalize(mean, variance, eps=eps, channel_axis=-1 if layout == "NHWC" else 1)
    if fmt == "state_dict":
        import torch
        return {f"{layer}.running_mean": torch.tensor(mean, dtype=torch.float32),
                f"{layer}.running_var": torch.tensor(variance, dtype=torch.float32),
                f"{layer}.num_batches_tracked": torch.tensor(
                    stats.num_batches_tracked or stats.batches, dtype=torch.int64)}
    if fmt == "dali":
        if pixel_scale is None:  # statistics of [0, 1] images, or of 0..255 pixels
            pixel_scale = 255.0 if float(np.max(stats.max)) <= 1.0 else 1.0
        return {"mean": [float(m) * pixel_scale for m in mean],
                "std": [float(s) * pixel_scale for s in _std(stats, eps)],
                "pixel_scale": float(pixel_scale)}
    return json.dumps({
        "dataset": info.spec.name, "version": stats.version, "layout": layout,
        "channels": info.spec.channels,
        "freeze_time": version_info.freeze_time.ToJsonString(),
        "train_samples": version_info.train_samples,
        "count": [int(c) for c in stats.count], "mean": [float(m) for m in mean],
        "variance": [float(v) for v in variance],
        "std": [float(s) for s in _std(stats, eps)], "eps": eps,
        "min": [float(v) for v in stats.min], "max": [float(v) for v in stats.max],
        "running_average": stats.running_mean is not None,
    }, indent=1, allow_nan=False)
