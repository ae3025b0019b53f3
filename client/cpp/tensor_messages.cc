#include "client/cpp/tensor_messages.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "wire/tensor_framing.h"

namespace normd {
namespace {

// Reads [at, at + length) of the reply, across its slices, into `out`.
void CopyRange(const std::vector<grpc::Slice>& slices, size_t at, size_t length, std::byte* out) {
  for (const grpc::Slice& slice : slices) {
    if (length == 0) return;
    if (at >= slice.size()) {
      at -= slice.size();
      continue;
    }
    const size_t take = std::min(length, slice.size() - at);
    std::memcpy(out, slice.begin() + at, take);
    out += take;
    length -= take;
    at = 0;
  }
}

absl::Status BadReply(absl::string_view why) {
  return absl::InternalError(absl::StrCat("malformed NormalizeResponse from the server: ", why));
}

// The tensor field of each request.
v1::Tensor TakeTensor(v1::NormalizeRequest& request) {
  v1::Tensor tensor = std::move(*request.mutable_input());
  request.clear_input();
  return tensor;
}
v1::Tensor TakeTensor(v1::IngestRequest& request) {
  v1::Tensor tensor = std::move(*request.mutable_batch());
  request.clear_batch();
  return tensor;
}

}  // namespace

template <typename Request>
grpc::ByteBuffer EncodeWithTensor(const Request& fields_and_tensor,
                                  std::span<const std::byte> values) {
  Request fields = fields_and_tensor;
  const v1::Tensor meta = TakeTensor(fields);
  std::string head = fields.SerializeAsString();
  head.append(TensorFieldHead(framing::kRequestTensor, meta.shape(), meta.dtype(), values.size()));
  grpc::Slice slice(head.size() + values.size());
  auto* out = const_cast<uint8_t*>(slice.begin());
  std::memcpy(out, head.data(), head.size());
  std::memcpy(out + head.size(), values.data(), values.size());  // the one copy
  return grpc::ByteBuffer(&slice, 1);
}

template grpc::ByteBuffer EncodeWithTensor(const v1::NormalizeRequest&, std::span<const std::byte>);
template grpc::ByteBuffer EncodeWithTensor(const v1::IngestRequest&, std::span<const std::byte>);

absl::StatusOr<uint64_t> DecodeNormalizeReply(const grpc::ByteBuffer& reply,
                                              std::span<std::byte> output) {
  std::vector<grpc::Slice> slices;
  if (!reply.Dump(&slices).ok()) return BadReply("unreadable");
  const size_t total = reply.Length();
  // Everything but the values is a few dozen bytes around them: read the head from a
  // small copy, then the values straight into `output`, then what follows them.
  std::vector<std::byte> head(std::min<size_t>(total, 512));
  CopyRange(slices, 0, head.size(), head.data());
  size_t at = 0;
  WireField field;
  if (!ReadWireFieldHead(head, at, field) ||
      !field.is(framing::kResponseOutput, WireType::kLengthDelimited)) {
    return BadReply("no output");
  }
  const size_t tensor_end = field.end;
  if (tensor_end > total) return BadReply("truncated output");
  size_t data_at = 0, data_size = 0;
  while (at < tensor_end) {
    size_t body_at = at;
    if (!ReadWireFieldHead(head, body_at, field)) return BadReply("bad output field");
    if (field.is(framing::kTensorData, WireType::kLengthDelimited)) {
      if (field.end > tensor_end) return BadReply("bad data length");
      data_at = field.body_begin;
      data_size = field.body_size();
      break;  // the values run to the tensor's end
    }
    if (!NextWireField(head, at, field)) return BadReply("bad output field");
  }
  if (data_size != output.size()) {
    return absl::InternalError(absl::StrCat("the reply holds ", data_size,
                                            " bytes of values; the output has room for ",
                                            output.size()));
  }
  CopyRange(slices, data_at, data_size, output.data());
  // The version follows the output.
  std::vector<std::byte> tail(total - std::min(total, tensor_end));
  CopyRange(slices, tensor_end, tail.size(), tail.data());
  v1::NormalizeResponse rest;
  if (!rest.ParseFromArray(tail.data(), static_cast<int>(tail.size()))) return BadReply("tail");
  return rest.version();
}

}  // namespace normd
