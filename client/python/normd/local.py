"""normd's kernels in this process (the native module, normd._native, built from the
server's own core): exact partial summaries of batches where they lie, and a frozen
version's normalisation without a round trip, bit for bit what the server computes.

    s = normd.moments(batch, layout="NCHW")          # a Summary: O(channels)
    total = s + normd.moments(other, layout="NCHW")  # merged exactly, as the server does
    normalize = client.normalizer("imagenet")        # fetches the frozen version once
    y = normalize(x, out=y)

Torch CUDA tensors stay on their device when normd was built with its CUDA path (nvcc
present at build time): the normaliser writes a CUDA output on the input's device and
current stream (or over the input itself), and moments() reduces the batch there, so
only the O(channels) summary reaches the host. cuda_available() tells.

Without the module (built where pybind11 is installed) the client works as before:
fit() sends batches, and normalizer() is unavailable."""
import sys
from typing import Optional

import numpy as np

import grpc

from normd import errors, tensors
from normd.v1 import normd_pb2 as pb

try:
    from normd import _native
except ImportError:  # built without pybind11: the pure-Python client
    _native = None

_DTYPE_NAMES = {pb.DTYPE_FLOAT32: "float32", pb.DTYPE_FLOAT64: "float64",
                pb.DTYPE_FLOAT16: "float16", pb.DTYPE_BFLOAT16: "bfloat16",
                pb.DTYPE_UINT8: "uint8"}
_LAYOUTS = ("NC", "NCHW", "NHWC")
_FROZEN_SCHEMES = ("zscore", "minmax", "scale", "batchnorm", "robust", "clip", "quantile",
                   "bucketize")
# Statistics from each input itself: no frozen version, and no inverse.
BATCH_SCHEMES = ("batchnorm_training", "layernorm", "instancenorm", "groupnorm")
# Output dtypes as torch's, for CUDA outputs (torch imported by then: the input is one).
_TORCH_OUTPUTS = {pb.DTYPE_FLOAT32: lambda torch: torch.float32,
                  pb.DTYPE_FLOAT64: lambda torch: torch.float64,
                  pb.DTYPE_FLOAT16: lambda torch: torch.float16,
                  pb.DTYPE_BFLOAT16: lambda torch: torch.bfloat16}

Summary = _native.Summary if _native is not None else None


def available() -> bool:
    """Whether the native module was built (pybind11 present at build time)."""
    return _native is not None


def cuda_available() -> bool:
    """Whether this build has the CUDA path and this process sees a GPU."""
    return _native is not None and _native.cuda_device_count() > 0


def _is_cuda(x) -> bool:
    return tensors.is_torch(x) and x.is_cuda


def _require_cuda():
    if _native is None or not hasattr(_native, "CudaFrozenNormalizer"):
        raise RuntimeError("this normd was built without its CUDA path (no nvcc at build "
                           "time): move the tensor to the host with .cpu(), or rebuild normd "
                           "where nvcc is installed")


def _torch_dtype_name(x) -> str:
    torch = sys.modules["torch"]
    names = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
             torch.bfloat16: "bfloat16", torch.uint8: "uint8"}
    if x.dtype not in names:
        raise TypeError(f"normd takes float32, float64, float16, bfloat16 or uint8 tensors, "
                        f"got {x.dtype}")
    return names[x.dtype]


def _cuda_stream(x) -> int:
    """The cudaStream_t of x's device's current stream, as torch queues work on it."""
    return sys.modules["torch"].cuda.current_stream(x.device).cuda_stream


def _require():
    if _native is None:
        raise RuntimeError("normd's native module (normd._native) was not built: install "
                           "pybind11-dev and python3-dev and rebuild normd")


def _channels_last_view(x, layout: str):
    """A channels-first array or tensor whose memory is channels-last (torch's
    channels_last format, a transposed numpy array) is NHWC data as it lies, and the
    other way round: reduce it so, without a copy. None when it is not."""
    if layout not in ("NCHW", "NHWC") or len(x.shape) < 3:
        return None
    k = len(x.shape)
    to_other = (0, *range(2, k), 1) if layout == "NCHW" else (0, k - 1, *range(1, k - 1))
    other = "NHWC" if layout == "NCHW" else "NCHW"
    if tensors.is_torch(x):
        moved = x.permute(*to_other)
        return (moved, other) if moved.is_contiguous() and not x.is_contiguous() else None
    array = np.asarray(x)
    moved = array.transpose(to_other)
    if moved.flags.c_contiguous and not array.flags.c_contiguous:
        return moved, other
    return None


def moments(x, layout: str = "NC", nonfinite: str = "reject", *,
            channels: Optional[int] = None, sketch=None, weights=None,
            histogram_edges=None) -> "Summary":
    """The exact per-channel moments of batch `x` (numpy array or torch tensor,
    float32/64, float16, bfloat16 or uint8, any strides) in `layout` ("NC", "NCHW",
    "NHWC"): the very moments normd's Ingest of the batch would merge, computed with
    its kernels on this host's cores with the GIL released. nonfinite="skip" leaves
    NaN and infinities out (counted in skipped_nonfinite); "reject" raises
    InvalidArgument naming the first. With `channels`, x's shape is checked against
    it as the server checks a batch for a dataset of that many channels. With
    `sketch` (a dataset's spec.sketch, a QuantileSketchOptions) the summary also holds
    the quantile sketches that dataset keeps, as its Ingest of the batch would make
    them. With `weights` (see weights_array) the moments and sketches are weighted, as
    an Ingest with those weights would make them. With `histogram_edges` (a dataset's
    spec.histogram_edges: one list of edges, or one per channel) it also holds the
    exact histograms over them that dataset keeps.

    A torch CUDA tensor is reduced on its device, on its current stream (which this
    call waits for): only the summary reaches the host. Quantile sketches, fixed
    histograms and sample weights are computed on the host's cores alone, so with any
    of them a CUDA batch is first copied to the host."""
    _require()
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    if nonfinite not in ("reject", "skip"):
        raise ValueError(f"nonfinite must be 'reject' or 'skip', got {nonfinite!r}")
    summary_layout = layout
    w = None if weights is None else weights_array(weights)
    wants_sketch = sketch is not None and not sketch.disabled
    if _is_cuda(x) and (wants_sketch or w is not None or _edge_lists(histogram_edges)):
        x = x.detach().cpu()
    moved = _channels_last_view(x, layout)
    if _is_cuda(x):
        _require_cuda()
        if moved is not None:
            x, layout = moved
        x = x.detach().contiguous()  # a device-side copy only if it was strided
        summary = _native.cuda_moments(x.data_ptr(), list(x.shape), _torch_dtype_name(x),
                                       layout, channels or 0, nonfinite == "skip",
                                       _cuda_stream(x))
        if layout != summary_layout:
            parts = summary.parts()
            summary = _native.Summary.from_parts(parts[:10] + (summary_layout,) + parts[11:])
        return summary
    if moved is not None and w is not None and w.ndim > 1:
        # Weights index the array's own axes; reduced as it lies, they would not.
        x = x.contiguous() if tensors.is_torch(x) else np.ascontiguousarray(x)
        moved = None
    if moved is not None:
        x, layout = moved
    source = tensors.source(x)
    resolution, max_buckets, center = -1, 0, []
    if wants_sketch:
        resolution = sketch_resolution(sketch.relative_accuracy or 0.01)
        max_buckets = sketch.max_buckets or 2048
        center = list(sketch.center)
    summary = _native.moments(source.array, source.shape, _DTYPE_NAMES[source.dtype], layout,
                              channels or 0, nonfinite == "skip", resolution, max_buckets, center,
                              w, [] if w is None else list(w.shape),
                              _edge_lists(histogram_edges))
    if layout != summary_layout:  # reduced as it lay: the same channels, relabelled
        parts = summary.parts()
        summary = _native.Summary.from_parts(parts[:10] + (summary_layout,) + parts[11:])
    return summary


def _edge_lists(edges) -> list:
    """histogram_edges as lists of floats: a spec's HistogramEdges messages, one list,
    or one list per channel."""
    if edges is None or len(edges) == 0:
        return []
    first = edges[0]
    if hasattr(first, "edges"):  # DatasetSpec.histogram_edges
        return [list(e.edges) for e in edges]
    if np.ndim(first) == 0:  # one list for every channel
        return [[float(e) for e in edges]]
    return [[float(e) for e in list_] for list_ in edges]


def weights_array(weights) -> np.ndarray:
    """Sample weights or a mask (numpy, torch or a sequence; bool, integer or float) as
    the C-contiguous float64 array normd sends: one weight per index of a leading part
    of the batch's shape ([N] per sample, [N, T] per time step, the batch's shape per
    value). The server (or normd.moments) checks the values: finite, >= 0, not all 0."""
    if tensors.is_torch(weights):
        weights = weights.detach().cpu().double().numpy()
    return np.ascontiguousarray(np.asarray(weights, dtype=np.float64))


def sketch_resolution(relative_accuracy: float) -> int:
    """The resolution the server keeps for a sketch's relative accuracy:
    the smallest r with 2^-(r + 1) <= relative_accuracy."""
    resolution = 0
    while 2.0 ** -(resolution + 1) > relative_accuracy and resolution < 64:
        resolution += 1
    return resolution


def summary_bytes(summary) -> bytes:
    """The wire's MomentsSummary for a Summary, serialised: what fit sends. The
    sketches and their centers are encoded by the native module
    (Summary.sketch_fields), which Python building them channel by channel would make
    the slowest part of a fit."""
    return _summary_head(summary).SerializeToString() + summary.sketch_fields()


def summary_message(summary) -> pb.MomentsSummary:
    """The wire's MomentsSummary for a Summary."""
    return pb.MomentsSummary.FromString(summary_bytes(summary))


def _summary_head(summary) -> pb.MomentsSummary:
    """Every field of the summary's message but its sketches and their centers."""
    (count, mean_hi, mean_lo, m2_hi, m2_lo, low, high, samples, batches, skipped,
     layout, _, weights, histograms) = summary.parts(sketches=False)
    # Lists, not arrays: protobuf takes a list's floats at twice the speed.
    message = pb.MomentsSummary(count=count.tolist(), mean_hi=mean_hi.tolist(),
                                mean_lo=mean_lo.tolist(), m2_hi=m2_hi.tolist(),
                                m2_lo=m2_lo.tolist(), min=low.tolist(), max=high.tolist(),
                                samples=samples, batches=batches, skipped_nonfinite=skipped,
                                layout=pb.Layout.Value("LAYOUT_" + layout))
    if weights is not None:
        w_hi, w_lo, w2_hi, w2_lo, masked = weights
        message.weight_sum_hi.extend(w_hi)
        message.weight_sum_lo.extend(w_lo)
        message.weight_square_sum_hi.extend(w2_hi)
        message.weight_square_sum_lo.extend(w2_lo)
        message.masked_values = masked
    for counts, below, above in histograms or ():
        message.fixed_histograms.add(counts=counts, below=below, above=above)
    return message


class Normalizer:
    """A scheme normalising in this process with the server's kernels: a frozen
    version's (O(channels) of folded factors), or a batch-statistics scheme's.
    `normalizer(x, out=None, output_dtype=None)` returns what the server's Normalize
    returns for the same scheme, version and input, bit for bit. Made by
    Client.normalizer; thread-safe."""

    def __init__(self, dataset: str, version: int, scheme: str, params: dict, layout,
                 channels: int, stats=None):
        """`stats`: the frozen version's (frozen schemes only); `channels` 0 with no
        dataset: from each input's shape."""
        _require()
        self.dataset, self.version, self.scheme = dataset, version, scheme
        self.layout, self.channels = layout, channels
        self._inverse = None
        self._on_device = {}  # (device index, inverse) -> _native.CudaFrozenNormalizer
        if scheme in BATCH_SCHEMES:
            self._native = _native.BatchStatisticsNormalizer(scheme, dict(params), layout,
                                                             channels)
            self._make = None
            return
        if scheme not in _FROZEN_SCHEMES:
            raise ValueError(f"scheme must be one of {_FROZEN_SCHEMES + BATCH_SCHEMES}, "
                             f"got {scheme!r}")
        mean, variance = stats.mean, stats.variance
        if getattr(stats, "running_mean", None) is not None:  # as the server folds them
            mean, variance = stats.running_mean, stats.running_var
        ranks = [] if stats.quantile_ranks is None else list(stats.quantile_ranks)
        quantiles = [] if stats.quantiles is None else [list(q) for q in stats.quantiles]
        self._make = lambda inverse: _native.FrozenNormalizer(
            scheme, dict(params), layout, channels, stats.count, mean, variance, stats.min,
            stats.max, inverse, ranks, quantiles)
        self._native = self._make(False)

    @property
    def factors(self):
        """(center, scale, shift) per channel: y = (x - center) * scale + shift (frozen
        schemes; the batch-statistics ones have no fixed factors)."""
        if self._make is None:
            raise AttributeError(f"{self.scheme} takes its statistics from each input: it "
                                 "has no fixed factors")
        return self._native.center, self._native.scale, self._native.shift

    def __call__(self, x, *, out=None, output_dtype=None):
        if _is_cuda(x):
            return self._apply_cuda(x, out, output_dtype, inverse=False)
        return self._apply(self._native, x, out, output_dtype, self._make is not None)

    def inverse(self, y, *, out=None, output_dtype=None):
        """The inverse map, bit for bit what the server's Denormalize returns: the input
        that normalises to `y` (see Client.denormalize for the schemes that have none)."""
        if self._make is None:
            raise errors.InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, (
                f"scheme {self.scheme} has no inverse: its statistics come from each input and "
                "are not kept; Denormalize takes zscore, minmax, scale or batchnorm"))
        if _is_cuda(y):
            return self._apply_cuda(y, out, output_dtype, inverse=True)
        if self._inverse is None:
            self._inverse = self._make(True)
        return self._apply(self._inverse, y, out, output_dtype, True)

    def _apply_cuda(self, x, out, output_dtype, inverse: bool):
        """A torch CUDA tensor normalised on its device and current stream; returns when
        the work is queued, as torch's own operations do."""
        _require_cuda()
        torch = sys.modules["torch"]
        if out is not None and output_dtype is None:
            wire_out = tensors.dtype_of(out)
        else:
            wire_out = tensors.output_dtype(output_dtype) or pb.DTYPE_FLOAT32
        x = x.detach().contiguous()
        name = _torch_dtype_name(x)
        if out is None:
            result = torch.empty(x.shape, dtype=_TORCH_OUTPUTS[wire_out](torch), device=x.device)
        else:
            result = out
            if not _is_cuda(out) or out.device != x.device or not out.is_contiguous():
                raise ValueError(f"out must be a contiguous CUDA tensor on {x.device}, as the "
                                 "input is")
            if tuple(out.shape) != tuple(x.shape):
                raise ValueError(f"out has shape {tuple(out.shape)}, expected the input's "
                                 f"{tuple(x.shape)}")
            x_end = x.data_ptr() + x.numel() * x.element_size()
            out_end = out.data_ptr() + out.numel() * out.element_size()
            if x.data_ptr() < out_end and out.data_ptr() < x_end:
                in_place = (self._make is not None and out.data_ptr() == x.data_ptr()
                            and out.element_size() == x.element_size())
                if not in_place:
                    raise ValueError("out overlaps x: give the output memory of its own (a "
                                     "frozen scheme may write over x itself, same dtype)")
        stream = _cuda_stream(x)
        if self._make is None:
            self._native.apply_cuda(x.data_ptr(), list(x.shape), name, result.data_ptr(),
                                    _DTYPE_NAMES[wire_out], stream)
            return result
        key = (x.device.index, inverse)
        if key not in self._on_device:  # the factors, copied to that device once
            host = self._native if not inverse else (self._inverse or self._make(True))
            if inverse:
                self._inverse = host
            self._on_device[key] = _native.CudaFrozenNormalizer(host, x.device.index)
        self._on_device[key].apply(x.data_ptr(), list(x.shape), name, result.data_ptr(),
                                   _DTYPE_NAMES[wire_out], stream)
        return result

    @staticmethod
    def _apply(native, x, out, output_dtype, elementwise):
        like_torch = tensors.is_torch(x)
        if out is not None and output_dtype is None:
            wire_out = tensors.dtype_of(out)
        else:
            wire_out = tensors.output_dtype(output_dtype) or pb.DTYPE_FLOAT32
        source = tensors.source(x)
        result = out
        if out is None:
            if wire_out == pb.DTYPE_BFLOAT16 and not like_torch:
                raise TypeError("numpy has no bfloat16: pass a torch tensor to get bfloat16 "
                                "back, or ask for float32")
            result = np.empty(source.shape, tensors.wire_numpy_dtype(wire_out))
            target = result
        else:
            target = _writable_array(out)
            if tuple(target.shape) != tuple(source.shape):
                raise ValueError(f"out has shape {tuple(target.shape)}, expected the "
                                 f"input's {tuple(source.shape)}")
            if np.may_share_memory(source.array, target):
                # An element-wise map may overwrite its input in place, element for
                # element; anything else would read what it already wrote.
                in_place = (elementwise and source.address == target.ctypes.data
                            and source.array.dtype.itemsize == target.dtype.itemsize)
                if not in_place:
                    raise ValueError("out overlaps x: give the output memory of its own (a "
                                     "frozen scheme may write over x itself, same dtype)")
        native.apply(source.array, source.shape, _DTYPE_NAMES[source.dtype], target,
                     _DTYPE_NAMES[wire_out])
        if out is not None:
            return out
        return tensors.as_result(result, wire_out, like_torch, owned=True)

    def __repr__(self):
        return (f"Normalizer(dataset={self.dataset!r}, version={self.version}, "
                f"scheme={self.scheme!r})")


def _writable_array(out) -> np.ndarray:
    """A C-contiguous numpy view of `out`'s memory (bfloat16 as int16 bit patterns)."""
    if tensors.is_torch(out):
        torch = sys.modules["torch"]
        if out.device.type != "cpu" or not out.is_contiguous():
            raise ValueError("out must be a contiguous CPU tensor")
        out = out.view(torch.int16) if out.dtype == torch.bfloat16 else out
        return out.numpy()
    if not isinstance(out, np.ndarray) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous numpy array or torch tensor")
    return out
