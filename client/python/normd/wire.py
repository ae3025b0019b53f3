"""The tensor-carrying messages (NormalizeRequest, IngestRequest, NormalizeResponse)
encoded and decoded by hand around the tensor's bytes, so a payload is copied once
into the request and viewed, not copied, in the reply. Everything else in those
messages is built once by protobuf as a template (see Client) and prepended as is:
protobuf merges repeated occurrences of a message field, which is what makes the
template plus a separately encoded tensor one valid message."""

_LEN = 2     # wire type: length-delimited
_VARINT = 0


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


def region_slice(name: str, offset: int) -> bytes:
    """A RegionSlice message body."""
    encoded = name.encode()
    body = length_delimited(1, len(encoded)) + encoded
    if offset:
        body += _key(2, _VARINT) + varint(offset)
    return body


def tensor_head(shape, dtype: int) -> bytes:
    """Tensor fields 1 (packed shape) and 2 (dtype)."""
    dims = b"".join(varint(d) for d in shape)
    return length_delimited(1, len(dims)) + dims + _key(2, _VARINT) + varint(dtype)


def tensor_field(field: int, shape, dtype: int, nbytes: int = 0, region: bytes = b"") -> bytes:
    """Field `field` holding a Tensor, up to where its `nbytes` of inline data go (they
    must follow directly), or whole with a RegionSlice body `region`."""
    head = tensor_head(shape, dtype)
    if region:
        body = head + length_delimited(4, len(region)) + region
        return length_delimited(field, len(body)) + body
    data_key = length_delimited(3, nbytes)
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
        if field == 1 and wire_type == _LEN:  # packed shape
            p = start
            while p < start + value:
                dim, p = _read_varint(buf, p)
                tensor.shape.append(dim)
        elif field == 1:
            tensor.shape.append(value)
        elif field == 2:
            tensor.dtype = value
        elif field == 3:
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
            if field == 2:
                version = value
        return expected, version
    tensor, version = TensorReply(), 0
    for field, wire_type, value, start in _fields(buf, 0, len(buf)):
        if field == 1 and wire_type == _LEN:
            tensor = _tensor(buf, start, start + value)
        elif field == 2:
            version = value
    return tensor, version


