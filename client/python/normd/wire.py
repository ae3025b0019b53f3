"""The tensor-carrying messages (NormalizeRequest, IngestRequest, NormalizeResponse)
encoded and decoded by hand around the tensor's bytes, so a payload is copied once
into the request and viewed, not copied, in the reply. Everything else in those
messages is built once by protobuf as a template (see Client) and prepended as is;
the tensor field goes last (protobuf takes fields in any order). The same framing as
the C++ side's (wire/tensor_framing.h), checked against the same golden bytes
(tests/wire/golden/tensor_framing.txt). Field numbers come from the generated
descriptors, never written here."""
from normd.v1 import normd_pb2 as _pb

_LEN = 2     # wire type: length-delimited
_VARINT = 0


def _number(message, field: str) -> int:
    return message.DESCRIPTOR.fields_by_name[field].number


# The framed fields, by message and name.
TENSOR_SHAPE = _number(_pb.Tensor, "shape")
TENSOR_DTYPE = _number(_pb.Tensor, "dtype")
TENSOR_DATA = _number(_pb.Tensor, "data")
TENSOR_REGION = _number(_pb.Tensor, "region")
REGION_NAME = _number(_pb.RegionSlice, "name")
REGION_OFFSET = _number(_pb.RegionSlice, "offset")
NORMALIZE_VERSION = _number(_pb.NormalizeRequest, "version")
NORMALIZE_INPUT = _number(_pb.NormalizeRequest, "input")
NORMALIZE_OUTPUT_REGION = _number(_pb.NormalizeRequest, "output_region")
INGEST_BATCH = _number(_pb.IngestRequest, "batch")
INGEST_SEQUENCE = _number(_pb.IngestRequest, "sequence")
INGEST_SUMMARIES = _number(_pb.IngestRequest, "summaries")
INGEST_WEIGHTS = _number(_pb.IngestRequest, "weights")
SUMMARIES_ENTRY = _number(_pb.MomentsSummaries, "summaries")
RESPONSE_OUTPUT = _number(_pb.NormalizeResponse, "output")
RESPONSE_VERSION = _number(_pb.NormalizeResponse, "version")


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def length_delimited(field: int, body_length: int) -> bytes:
    """The key and length of a length-delimited field whose body follows."""
    return _key(field, _LEN) + varint(body_length)


def varint_field(field: int, value: int) -> bytes:
    """A varint field whole."""
    return _key(field, _VARINT) + varint(value)


def region_slice(name: str, offset: int) -> bytes:
    """A RegionSlice message body."""
    encoded = name.encode()
    body = length_delimited(REGION_NAME, len(encoded)) + encoded
    if offset:
        body += varint_field(REGION_OFFSET, offset)
    return body


def tensor_head(shape, dtype: int) -> bytes:
    """Tensor's shape (packed) and dtype as protobuf serialises them: a field at its
    default (no dimensions, dtype 0) left out."""
    head = b""
    if len(shape):
        dims = b"".join(varint(d) for d in shape)
        head = length_delimited(TENSOR_SHAPE, len(dims)) + dims
    if dtype:
        head += varint_field(TENSOR_DTYPE, dtype)
    return head


def tensor_field(field: int, shape, dtype: int, nbytes: int = 0, region: bytes = b"") -> bytes:
    """Field `field` holding a Tensor, up to where its `nbytes` of inline data go (they
    must follow directly), or whole with a RegionSlice body `region`."""
    head = tensor_head(shape, dtype)
    if region:
        body = head + length_delimited(TENSOR_REGION, len(region)) + region
        return length_delimited(field, len(body)) + body
    data_key = length_delimited(TENSOR_DATA, nbytes)
    return length_delimited(field, len(head) + len(data_key) + nbytes) + head + data_key


def _read_varint(buf, pos: int):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf, pos: int, end: int):
    """(field, wire type, value, start of a length-delimited body) for each field."""
    while pos < end:
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield field, wire_type, value, pos
        elif wire_type == _LEN:
            length, pos = _read_varint(buf, pos)
            yield field, wire_type, length, pos
            pos += length
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type} in a reply")


class TensorReply:
    """A reply's Tensor: shape, dtype, and where its data lies in the reply."""
    __slots__ = ("shape", "dtype", "data_offset", "data_length")

    def __init__(self, shape=None, dtype=0, data_offset=0, data_length=0):
        self.shape = [] if shape is None else list(shape)
        self.dtype, self.data_offset, self.data_length = dtype, data_offset, data_length


def _tensor(buf, pos: int, end: int) -> TensorReply:
    tensor = TensorReply()
    for field, wire_type, value, start in _fields(buf, pos, end):
        if field == TENSOR_SHAPE and wire_type == _LEN:  # packed
            p = start
            while p < start + value:
                dim, p = _read_varint(buf, p)
                tensor.shape.append(dim)
        elif field == TENSOR_SHAPE:
            tensor.shape.append(value)
        elif field == TENSOR_DTYPE:
            tensor.dtype = value
        elif field == TENSOR_DATA:
            tensor.data_offset, tensor.data_length = start, value
    return tensor


def normalize_response(buf, expected_head: bytes = b"", expected: TensorReply = None):
    """(TensorReply, version) of a serialised NormalizeResponse. When `buf` starts with
    `expected_head` (the output field up to its values, as normd lays out an inline
    reply of the shape and dtype asked for), `expected` describes it and only the
    version is read, from after the values."""
    if expected_head and buf.startswith(expected_head):
        end = len(expected_head) + expected.data_length
        version = 0
        for field, _, value, _ in _fields(buf, end, len(buf)):
            if field == RESPONSE_VERSION:
                version = value
        return expected, version
    tensor, version = TensorReply(), 0
    for field, wire_type, value, start in _fields(buf, 0, len(buf)):
        if field == RESPONSE_OUTPUT and wire_type == _LEN:
            tensor = _tensor(buf, start, start + value)
        elif field == RESPONSE_VERSION:
            version = value
    return tensor, version


