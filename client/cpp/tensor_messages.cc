#include "client/cpp/tensor_messages.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace normd {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

void AppendVarint(std::string& out, uint64_t value) {
  uint8_t buffer[10];
  const uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, buffer);
  out.append(reinterpret_cast<const char*>(buffer), end - buffer);
}

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
  v1::Tensor meta = TakeTensor(fields);
  meta.clear_data();
  std::string head = fields.SerializeAsString();
  const std::string tensor = meta.SerializeAsString();  // shape, dtype (and nothing else)
  std::string data_key;
  AppendVarint(data_key, (3 << 3) | 2);  // Tensor.data
  AppendVarint(data_key, values.size());
  AppendVarint(head, (3 << 3) | 2);  // NormalizeRequest.input, IngestRequest.batch
  AppendVarint(head, tensor.size() + data_key.size() + values.size());
  head.append(tensor);
  head.append(data_key);
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
  CodedInputStream in(reinterpret_cast<const uint8_t*>(head.data()), static_cast<int>(head.size()));
  uint32_t length = 0;
  if (in.ReadTag() != ((1 << 3) | 2) || !in.ReadVarint32(&length)) return BadReply("no output");
  const size_t tensor_end = static_cast<size_t>(in.CurrentPosition()) + length;
  size_t data_at = 0, data_size = 0;
  while (static_cast<size_t>(in.CurrentPosition()) < tensor_end) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return BadReply("truncated output");
    if (tag == ((3 << 3) | 2)) {
      if (!in.ReadVarint32(&length)) return BadReply("bad data length");
      data_at = static_cast<size_t>(in.CurrentPosition());
      data_size = length;
      break;  // the values run to the tensor's end
    }
    if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
      return BadReply("bad output field");
    }
  }
  if (data_size != output.size()) {
    return absl::InternalError(absl::StrCat("the reply holds ", data_size,
                                            " bytes of values; the output has room for ",
                                            output.size()));
  }
  CopyRange(slices, data_at, data_size, output.data());
  // The version (field 2) follows the output.
  std::vector<std::byte> tail(total - std::min(total, tensor_end));
  CopyRange(slices, tensor_end, tail.size(), tail.data());
  v1::NormalizeResponse rest;
  if (!rest.ParseFromArray(tail.data(), static_cast<int>(tail.size()))) return BadReply("tail");
  return rest.version();
}

}  // namespace normd
