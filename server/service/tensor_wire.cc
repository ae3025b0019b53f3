#include "server/service/tensor_wire.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "wire/tensor_framing.h"

namespace normd {
namespace {

constexpr WireType kLengthDelimited = WireType::kLengthDelimited;

template <typename Request>
absl::Status Malformed() {
  return absl::InvalidArgumentError(
      absl::StrCat("the request is not a well-formed ", Request::descriptor()->name(), " message"));
}

// Splits the tensor's data out of the request, and, given `summaries`, the bodies of
// IngestRequest.summaries; false when the bytes hold anything this does
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
  WireField field;
  int inputs = 0;
  while (at < bytes.size()) {
    if (!NextWireField(bytes, at, field)) return false;
    const auto as_chars = [&](size_t begin, size_t end) {
      return std::string_view(reinterpret_cast<const char*>(bytes.data()) + begin, end - begin);
    };
    if (summaries != nullptr && field.is(framing::kIngestSummaries, kLengthDelimited)) {
      summaries->AddPiece(bytes.subspan(field.body_begin, field.body_size()));
      continue;
    }
    if (!field.is(framing::kRequestTensor, kLengthDelimited)) {
      rest.append(as_chars(field.begin, field.end));
      continue;
    }
    // An input in several pieces (protobuf merges them) is rare: parse it whole.
    if (++inputs > 1) break;
    std::string input;
    const std::span<const std::byte> body = bytes.subspan(field.body_begin, field.body_size());
    size_t inner_at = 0;
    WireField inner;
    while (inner_at < body.size()) {
      if (!NextWireField(body, inner_at, inner)) return false;
      if (inner.is(framing::kTensorData, kLengthDelimited)) {
        if (message.tensor_data.has_value()) {
          inputs = 2;  // data twice: the last wins in protobuf; leave that to it
          break;
        }
        message.tensor_data = body.subspan(inner.body_begin, inner.body_size());
      } else {
        input.append(as_chars(field.body_begin + inner.begin, field.body_begin + inner.end));
      }
    }
    if (inputs > 1) break;
    AppendLengthDelimitedHead(rest, framing::kRequestTensor, input.size());
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
    WireField field;
    if (!NextWireField(piece, at_, field)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "summaries[", taken_, "]: the bytes are not a well-formed MomentsSummaries entry"));
    }
    if (!field.is(framing::kSummariesEntry, kLengthDelimited)) continue;
    if (!out.ParseFromArray(piece.data() + field.body_begin, static_cast<int>(field.body_size()))) {
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
  const std::string head = TensorFieldHead(framing::kResponseOutput, shape, dtype, value_bytes);
  buffer_ = grpc::Slice(head.size() + value_bytes + kMaxResponseVersionFieldSize);
  auto* base = const_cast<std::byte*>(reinterpret_cast<const std::byte*>(buffer_.begin()));
  std::memcpy(base, head.data(), head.size());
  head_ = head.size();
  values_ = std::span<std::byte>(base + head_, value_bytes);
}

grpc::ByteBuffer NormalizeReply::Release(uint64_t version) {
  const std::string version_field = ResponseVersionField(version);
  auto* end = const_cast<uint8_t*>(buffer_.begin()) + head_ + values_.size();
  std::memcpy(end, version_field.data(), version_field.size());
  grpc::Slice used = buffer_.sub(0, head_ + values_.size() + version_field.size());
  return grpc::ByteBuffer(&used, 1);
}

}  // namespace normd
