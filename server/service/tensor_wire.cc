#include "server/service/tensor_wire.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"

namespace normd {
namespace {

using google::protobuf::io::CodedOutputStream;

constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kTensorField = 3;  // NormalizeRequest.input, IngestRequest.batch
constexpr uint32_t kDataField = 3;    // Tensor.data
constexpr uint32_t kSummariesField = 6;      // IngestRequest.summaries
constexpr uint32_t kSummaryEntryField = 1;   // MomentsSummaries.summaries

// One field of a message: its tag and, for a length-delimited field, its body.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  size_t begin = 0;       // the field's first byte (its tag)
  size_t body_begin = 0;  // length-delimited fields: the body
  size_t end = 0;
};

bool ReadVarint(std::span<const std::byte> bytes, size_t& at, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && at < bytes.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(bytes[at++]);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// The next field at `at`, or false when the bytes are not a well-formed field.
bool NextField(std::span<const std::byte> bytes, size_t& at, Field& field) {
  field.begin = at;
  uint64_t tag = 0;
  if (!ReadVarint(bytes, at, tag) || tag > UINT32_MAX || (tag >> 3) == 0) return false;
  field.number = static_cast<uint32_t>(tag >> 3);
  field.wire_type = static_cast<uint32_t>(tag & 7);
  uint64_t value = 0;
  switch (field.wire_type) {
    case 0:
      if (!ReadVarint(bytes, at, value)) return false;
      break;
    case 1:
      at += 8;
      break;
    case 5:
      at += 4;
      break;
    case kLengthDelimited:
      if (!ReadVarint(bytes, at, value) || value > bytes.size() - at) return false;
      field.body_begin = at;
      at += value;
      break;
    default:
      return false;
  }
  field.end = at;
  return at <= bytes.size();
}

void AppendVarint(std::string& out, uint64_t value) {
  uint8_t buffer[10];
  const uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, buffer);
  out.append(reinterpret_cast<const char*>(buffer), end - buffer);
}

template <typename Request>
absl::Status Malformed() {
  return absl::InvalidArgumentError(
      absl::StrCat("the request is not a well-formed ", Request::descriptor()->name(), " message"));
}

// Splits the tensor's data out of the request, and, given `summaries`, the bodies of
// field 6 (IngestRequest.summaries); false when the bytes hold anything this does
// not handle (the tensor in several pieces, groups, malformed framing), for protobuf
// to parse whole.
template <typename Request>
bool SpliceRequest(std::span<const std::byte> bytes, TensorMessage<Request>& message,
                   SummaryEntries* summaries) {
  message.tensor_data.reset();
  if (summaries != nullptr) summaries->Clear();
  // The request less input.data: its other fields as they came, and the input
  // re-framed around what is left of it.
  std::string rest;
  size_t at = 0;
  Field field;
  int inputs = 0;
  while (at < bytes.size()) {
    if (!NextField(bytes, at, field)) return false;
    const auto as_chars = [&](size_t begin, size_t end) {
      return std::string_view(reinterpret_cast<const char*>(bytes.data()) + begin, end - begin);
    };
    if (summaries != nullptr && field.number == kSummariesField &&
        field.wire_type == kLengthDelimited) {
      summaries->AddPiece(bytes.subspan(field.body_begin, field.end - field.body_begin));
      continue;
    }
    if (field.number != kTensorField || field.wire_type != kLengthDelimited) {
      rest.append(as_chars(field.begin, field.end));
      continue;
    }
    // An input in several pieces (protobuf merges them) is rare: parse it whole.
    if (++inputs > 1) break;
    std::string input;
    const std::span<const std::byte> body =
        bytes.subspan(field.body_begin, field.end - field.body_begin);
    size_t inner_at = 0;
    Field inner;
    while (inner_at < body.size()) {
      if (!NextField(body, inner_at, inner)) return false;
      if (inner.number == kDataField && inner.wire_type == kLengthDelimited) {
        if (message.tensor_data.has_value()) {
          inputs = 2;  // data twice: the last wins in protobuf; leave that to it
          break;
        }
        message.tensor_data = body.subspan(inner.body_begin, inner.end - inner.body_begin);
      } else {
        input.append(as_chars(field.body_begin + inner.begin, field.body_begin + inner.end));
      }
    }
    if (inputs > 1) break;
    AppendVarint(rest, (kTensorField << 3) | kLengthDelimited);
    AppendVarint(rest, input.size());
    rest.append(input);
  }
  return inputs <= 1 && message.fields.ParseFromString(rest);
}

template <typename Request>
absl::Status ParseTensorRequest(std::span<const std::byte> bytes, TensorMessage<Request>& message,
                                SummaryEntries* summaries = nullptr) {
  if (SpliceRequest(bytes, message, summaries)) return absl::OkStatus();
  message.tensor_data.reset();
  if (summaries != nullptr) summaries->Clear();
  message.fields.Clear();
  if (!message.fields.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Malformed<Request>();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> SummaryEntries::Next(v1::MomentsSummary& out) {
  while (piece_ < pieces_.size()) {
    const std::span<const std::byte> piece = pieces_[piece_];
    if (at_ >= piece.size()) {
      ++piece_;
      at_ = 0;
      continue;
    }
    Field field;
    if (!NextField(piece, at_, field)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "summaries[", taken_, "]: the bytes are not a well-formed MomentsSummaries entry"));
    }
    if (field.number != kSummaryEntryField || field.wire_type != kLengthDelimited) continue;
    if (!out.ParseFromArray(piece.data() + field.body_begin,
                            static_cast<int>(field.end - field.body_begin))) {
      return absl::InvalidArgumentError(
          absl::StrCat("summaries[", taken_, "] is not a well-formed MomentsSummary message"));
    }
    ++taken_;
    return true;
  }
  if (taken_ == 0) {
    return absl::InvalidArgumentError("summaries is empty; expected one summary per batch");
  }
  return false;
}

void SummaryEntries::Clear() {
  pieces_.clear();
  owned_.clear();
  piece_ = at_ = taken_ = 0;
}

void SummaryEntries::Own(std::string serialized) {
  Clear();
  owned_ = std::move(serialized);
  pieces_.push_back(std::as_bytes(std::span(owned_)));
}

absl::Status ParseNormalizeRequest(std::span<const std::byte> bytes, NormalizeMessage& message) {
  return ParseTensorRequest(bytes, message);
}

absl::Status ParseIngestRequest(std::span<const std::byte> bytes, IngestMessage& message) {
  NORMD_RETURN_IF_ERROR(ParseTensorRequest(bytes, message, &message.summaries));
  if (message.fields.has_summaries()) {
    // Parsed whole by protobuf: the summaries are taken the same way.
    message.summaries.Own(message.fields.summaries().SerializeAsString());
    message.fields.clear_summaries();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::span<const std::byte>> ContiguousBytes(const grpc::ByteBuffer& buffer,
                                                           std::vector<std::byte>& scratch,
                                                           std::vector<grpc::Slice>& slices) {
  slices.clear();
  if (!buffer.Dump(&slices).ok()) {
    return absl::InvalidArgumentError("the request's bytes could not be read");
  }
  if (slices.size() == 1) {
    return std::span(reinterpret_cast<const std::byte*>(slices[0].begin()), slices[0].size());
  }
  scratch.resize(buffer.Length());  // keeps its capacity from call to call
  size_t at = 0;
  for (const grpc::Slice& slice : slices) {
    std::memcpy(scratch.data() + at, slice.begin(), slice.size());
    at += slice.size();
  }
  return std::span<const std::byte>(scratch.data(), at);
}

NormalizeReply::NormalizeReply(const google::protobuf::RepeatedField<int64_t>& shape,
                               v1::DType dtype, size_t value_bytes) {
  // NormalizeResponse { output (1): Tensor { shape (1, packed), dtype (2), data (3) },
  //                     version (2) }
  std::string tensor_head;
  size_t dims_size = 0;
  for (const int64_t dim : shape) dims_size += CodedOutputStream::VarintSize64(dim);
  AppendVarint(tensor_head, (1 << 3) | kLengthDelimited);
  AppendVarint(tensor_head, dims_size);
  for (const int64_t dim : shape) AppendVarint(tensor_head, static_cast<uint64_t>(dim));
  AppendVarint(tensor_head, 2 << 3);
  AppendVarint(tensor_head, static_cast<uint64_t>(dtype));
  AppendVarint(tensor_head, (kDataField << 3) | kLengthDelimited);
  AppendVarint(tensor_head, value_bytes);
  std::string head;
  AppendVarint(head, (1 << 3) | kLengthDelimited);
  AppendVarint(head, tensor_head.size() + value_bytes);
  head.append(tensor_head);
  constexpr size_t kVersionRoom = 11;  // its tag and a varint of up to 10 bytes
  buffer_ = grpc::Slice(head.size() + value_bytes + kVersionRoom);
  auto* base = const_cast<std::byte*>(reinterpret_cast<const std::byte*>(buffer_.begin()));
  std::memcpy(base, head.data(), head.size());
  head_ = head.size();
  values_ = std::span<std::byte>(base + head_, value_bytes);
}

grpc::ByteBuffer NormalizeReply::Release(uint64_t version) {
  auto* end = const_cast<uint8_t*>(buffer_.begin()) + head_ + values_.size();
  end = CodedOutputStream::WriteVarint32ToArray(2 << 3, end);
  end = CodedOutputStream::WriteVarint64ToArray(version, end);
  grpc::Slice used = buffer_.sub(0, static_cast<size_t>(end - buffer_.begin()));
  return grpc::ByteBuffer(&used, 1);
}

}  // namespace normd
