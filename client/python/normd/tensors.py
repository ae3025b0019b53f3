"""numpy arrays and torch tensors to and from normd's wire tensors."""
import sys

import numpy as np

from normd.v1 import normd_pb2 as pb

_NUMPY_DTYPES = {
    np.dtype(np.float32): pb.DTYPE_FLOAT32,
    np.dtype(np.float64): pb.DTYPE_FLOAT64,
    np.dtype(np.float16): pb.DTYPE_FLOAT16,
    np.dtype(np.uint8): pb.DTYPE_UINT8,
}
_OUTPUT_DTYPES = {
    "float32": pb.DTYPE_FLOAT32,
    "float64": pb.DTYPE_FLOAT64,
    "float16": pb.DTYPE_FLOAT16,
    "bfloat16": pb.DTYPE_BFLOAT16,
}
_WIRE_NUMPY = {
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_FLOAT16: np.dtype("<f2"),
    pb.DTYPE_BFLOAT16: np.dtype("<i2"),  # bit patterns; torch views them as bfloat16
    pb.DTYPE_UINT8: np.dtype("u1"),
}


def is_torch(x) -> bool:
    """True for a torch.Tensor, without importing torch for callers that never use it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


class Source:
    """A tensor ready to send: its shape, wire dtype and a C-contiguous little-endian
    numpy array over its bytes (the caller's own memory whenever it already was
    contiguous, CPU-resident and little-endian: no copy)."""
    __slots__ = ("shape", "dtype", "array", "nbytes")

    def __init__(self, shape, dtype, array):
        self.shape, self.dtype, self.array = tuple(shape), dtype, array
        self.nbytes = array.nbytes

    @property
    def address(self) -> int:
        """Where the bytes start (asked only when looking for them in shared memory)."""
        return self.array.__array_interface__["data"][0]


# The common case, checked first: a C-contiguous numpy array of a native
# little-endian dtype is sent as it is.
_READY_DTYPES = {np.dtype("<f4"): pb.DTYPE_FLOAT32, np.dtype("<f8"): pb.DTYPE_FLOAT64,
                 np.dtype("<f2"): pb.DTYPE_FLOAT16, np.dtype("u1"): pb.DTYPE_UINT8}


def source(x) -> Source:
    if type(x) is np.ndarray and x.flags.c_contiguous:
        wire_dtype = _READY_DTYPES.get(x.dtype)
        if wire_dtype is not None:
            return Source(x.shape, wire_dtype, x)
    if is_torch(x):
        torch = sys.modules["torch"]
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        x = x.contiguous()
        if x.dtype == torch.bfloat16:
            return Source(x.shape, pb.DTYPE_BFLOAT16, x.view(torch.int16).numpy())
        x = x.numpy()  # a view of the tensor's memory
    array = np.asarray(x)
    wire_dtype = _NUMPY_DTYPES.get(array.dtype.newbyteorder("="))
    if wire_dtype is None:
        raise TypeError(f"normd takes float32, float64, float16, bfloat16 (torch) or uint8 "
                        f"tensors, got {array.dtype}")
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return Source(array.shape, wire_dtype, array)


def reply_values(buf, tensor) -> np.ndarray:
    """A read-only numpy view of the reply's values (bfloat16 as int16 bit patterns)."""
    dtype = _WIRE_NUMPY[tensor.dtype]
    return np.frombuffer(buf, dtype=dtype, count=tensor.data_length // dtype.itemsize,
                         offset=tensor.data_offset).reshape(tuple(tensor.shape))


def reply_array(buf, tensor, like_torch: bool):
    """The reply's values: a read-only numpy view of the reply's bytes, or a torch
    tensor of its own when the input was one."""
    return as_result(reply_values(buf, tensor), tensor.dtype, like_torch)


def write_into(out, values: np.ndarray) -> None:
    """Copies `values` (reply_values) into `out`, a numpy array or torch tensor of the
    output dtype and the input's shape."""
    if is_torch(out):
        torch = sys.modules["torch"]
        target = out.view(torch.int16) if out.dtype == torch.bfloat16 else out
        target.numpy()[...] = values
    else:
        np.copyto(out, values)


def dtype_of(x) -> int:
    """The wire dtype of an array or tensor (for out=: the output dtype)."""
    if is_torch(x):
        torch = sys.modules["torch"]
        if x.dtype == torch.bfloat16:
            return pb.DTYPE_BFLOAT16
        x = torch.empty((), dtype=x.dtype).numpy()
    wire_dtype = _NUMPY_DTYPES.get(np.asarray(x).dtype.newbyteorder("="))
    if wire_dtype is None:
        raise TypeError(f"unsupported dtype {x.dtype}")
    return wire_dtype


def output_dtype(dtype) -> int:
    """The wire output dtype for "float32", np.float64, torch.float16, ... (None: float32)."""
    if dtype is None:
        return pb.DTYPE_UNSPECIFIED
    name = str(dtype).replace("torch.", "")
    if name not in _OUTPUT_DTYPES:
        name = np.dtype(dtype).name
    if name not in _OUTPUT_DTYPES:
        raise TypeError(f"output dtype must be one of {sorted(_OUTPUT_DTYPES)}, got {dtype}")
    return _OUTPUT_DTYPES[name]


def wire_numpy_dtype(wire_dtype: int) -> np.dtype:
    """The numpy dtype holding a wire dtype's values (bfloat16 as int16 bit patterns;
    unspecified as float32, the server's default output)."""
    return _WIRE_NUMPY[wire_dtype or pb.DTYPE_FLOAT32]


def as_result(array: np.ndarray, dtype: int, like_torch: bool, owned: bool = False):
    """The values as the caller's kind: the numpy array itself, or a torch tensor,
    which shares `array` when this client `owned` it and copies it otherwise (a view of
    a reply's immutable bytes is no tensor to hand out)."""
    if like_torch:
        torch = sys.modules["torch"]
        result = torch.from_numpy(array if owned else array.copy())
        return result.view(torch.bfloat16) if dtype == pb.DTYPE_BFLOAT16 else result
    if dtype == pb.DTYPE_BFLOAT16:
        raise TypeError("numpy has no bfloat16: pass a torch tensor to get bfloat16 back, "
                        "or ask for float32")
    return array
