"""The Python client's framing of the tensor messages (normd/wire.py) against the golden
bytes the server's and the C++ client's tests also read (tests/wire/golden/
tensor_framing.txt). Each case's bytes are first checked against what Debian's protobuf
makes of the case's message, so neither side's framing is the oracle."""
import pathlib

import pytest
from google.protobuf import json_format

from normd import wire
from normd.v1 import normd_pb2 as pb

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "wire" / "golden" / "tensor_framing.txt"
TENSOR_FIELD = {"NormalizeRequest": "input", "IngestRequest": "batch", "NormalizeResponse": "output"}


def _cases():
    cases = []
    for line in GOLDEN.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, message_type, hex_bytes, json_text = line.split(" ")
        message = json_format.Parse(json_text, getattr(pb, message_type)())
        cases.append(pytest.param(message, bytes.fromhex(hex_bytes), id=name))
    assert len(cases) >= 4, f"{GOLDEN} holds too few cases"
    return cases


CASES = _cases()


def _is_request(message):
    return not isinstance(message, pb.NormalizeResponse)


def _tensor_and_rest(message):
    field = TENSOR_FIELD[type(message).__name__]
    rest = type(message)()
    rest.CopyFrom(message)
    rest.ClearField(field)
    return getattr(message, field), rest


@pytest.mark.parametrize("message, golden", CASES)
def test_the_golden_bytes_are_what_protobuf_makes_of_the_message(message, golden):
    if _is_request(message):
        tensor, rest = _tensor_and_rest(message)
        only = type(message)()
        getattr(only, TENSOR_FIELD[type(message).__name__]).CopyFrom(tensor)
        assert rest.SerializeToString() + only.SerializeToString() == golden
    else:
        assert message.SerializeToString() == golden


@pytest.mark.parametrize("message, golden", [c for c in CASES if _is_request(c.values[0])])
def test_requests_are_framed_as_the_golden_bytes(message, golden):
    """As Client.normalize and Client.fit frame an inline tensor: the request's other
    fields as protobuf serialises them (the template), then the tensor field last."""
    tensor, rest = _tensor_and_rest(message)
    number = wire.NORMALIZE_INPUT if isinstance(message, pb.NormalizeRequest) else wire.INGEST_BATCH
    framed = rest.SerializeToString() + \
        wire.tensor_field(number, list(tensor.shape), tensor.dtype, len(tensor.data)) + tensor.data
    assert framed.hex() == golden.hex()


@pytest.mark.parametrize("message, golden", [c for c in CASES if not _is_request(c.values[0])])
def test_responses_are_read_from_the_golden_bytes(message, golden):
    # Read whole, as a reply of unexpected shape is.
    tensor, version = wire.normalize_response(golden)
    assert version == message.version
    assert tensor.shape == list(message.output.shape)
    assert tensor.dtype == message.output.dtype
    assert golden[tensor.data_offset:tensor.data_offset + tensor.data_length] == \
        message.output.data
    # Through the head the client expects for the shape and dtype it asked for.
    head = wire.tensor_field(wire.RESPONSE_OUTPUT, list(message.output.shape),
                             message.output.dtype, len(message.output.data))
    expected = wire.TensorReply(message.output.shape, message.output.dtype, len(head),
                                len(message.output.data))
    assert golden.startswith(head)
    tensor, version = wire.normalize_response(golden, head, expected)
    assert version == message.version
    assert golden[tensor.data_offset:tensor.data_offset + tensor.data_length] == \
        message.output.data


def test_field_numbers_are_the_generated_ones():
    """Every number wire.py frames with, against the descriptor of the field it names."""
    fields = {
        "TENSOR_SHAPE": pb.Tensor.SHAPE_FIELD_NUMBER,
        "TENSOR_DTYPE": pb.Tensor.DTYPE_FIELD_NUMBER,
        "TENSOR_DATA": pb.Tensor.DATA_FIELD_NUMBER,
        "TENSOR_REGION": pb.Tensor.REGION_FIELD_NUMBER,
        "REGION_NAME": pb.RegionSlice.NAME_FIELD_NUMBER,
        "REGION_OFFSET": pb.RegionSlice.OFFSET_FIELD_NUMBER,
        "NORMALIZE_VERSION": pb.NormalizeRequest.VERSION_FIELD_NUMBER,
        "NORMALIZE_INPUT": pb.NormalizeRequest.INPUT_FIELD_NUMBER,
        "NORMALIZE_OUTPUT_REGION": pb.NormalizeRequest.OUTPUT_REGION_FIELD_NUMBER,
        "INGEST_BATCH": pb.IngestRequest.BATCH_FIELD_NUMBER,
        "INGEST_SEQUENCE": pb.IngestRequest.SEQUENCE_FIELD_NUMBER,
        "INGEST_SUMMARIES": pb.IngestRequest.SUMMARIES_FIELD_NUMBER,
        "INGEST_WEIGHTS": pb.IngestRequest.WEIGHTS_FIELD_NUMBER,
        "SUMMARIES_ENTRY": pb.MomentsSummaries.SUMMARIES_FIELD_NUMBER,
        "RESPONSE_OUTPUT": pb.NormalizeResponse.OUTPUT_FIELD_NUMBER,
        "RESPONSE_VERSION": pb.NormalizeResponse.VERSION_FIELD_NUMBER,
    }
    assert {name: getattr(wire, name) for name in fields} == fields


def test_a_shared_memory_tensor_parses_as_protobuf_reads_it():
    region = wire.region_slice("normd-buffer-1", 4096)
    framed = pb.NormalizeRequest(dataset="d").SerializeToString() + \
        wire.tensor_field(wire.NORMALIZE_INPUT, [2, 3], pb.DTYPE_FLOAT32, region=region)
    parsed = pb.NormalizeRequest.FromString(framed)
    assert parsed.dataset == "d"
    assert list(parsed.input.shape) == [2, 3] and parsed.input.dtype == pb.DTYPE_FLOAT32
    assert parsed.input.region.name == "normd-buffer-1" and parsed.input.region.offset == 4096
    assert not parsed.input.data
