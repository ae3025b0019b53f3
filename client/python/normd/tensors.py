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


def to_wire(x, out: pb.Tensor) -> None:
    """Fills `out` with x's shape, dtype and C-ordered little-endian bytes."""
    if is_torch(x):
        torch = sys.modules["torch"]
        x = x.detach().cpu().contiguous()
        if x.dtype == torch.bfloat16:
            out.shape[:] = x.shape
            out.dtype = pb.DTYPE_BFLOAT16
            out.data = x.view(torch.int16).numpy().tobytes()
            return
        x = x.numpy()
    array = np.asarray(x)
    wire_dtype = _NUMPY_DTYPES.get(array.dtype.newbyteorder("="))
    if wire_dtype is None:
        raise TypeError(f"normd takes float32, float64, float16, bfloat16 (torch) or uint8 "
                        f"tensors, got {array.dtype}")
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    out.shape[:] = array.shape
    out.dtype = wire_dtype
    out.data = array.tobytes()


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


def from_wire(tensor: pb.Tensor, like_torch: bool):
    """The reply as a numpy array (a read-only view of the reply's bytes) or, when
    the input was a torch tensor, as a torch tensor of its own."""
    array = np.frombuffer(tensor.data, dtype=_WIRE_NUMPY[tensor.dtype]).reshape(tuple(tensor.shape))
    if like_torch:
        torch = sys.modules["torch"]
        result = torch.from_numpy(array.copy())
        if tensor.dtype == pb.DTYPE_BFLOAT16:
            result = result.view(torch.bfloat16)
        return result
    if tensor.dtype == pb.DTYPE_BFLOAT16:
        raise TypeError("numpy has no bfloat16: pass a torch tensor to get bfloat16 back, "
                        "or ask for float32")
    return array
