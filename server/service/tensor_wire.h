// The tensor-carrying messages at the wire level, so tensor bytes are never copied
// by protobuf: a request's tensor values (Normalize's input, an Ingest batch) are
// viewed where gRPC received them (gathered once only when they arrived in several
// slices), and Normalize's reply is one buffer the kernels write into, sent by gRPC
// as it is. Everything but the values still goes through protobuf.
#ifndef NORMD_SERVER_SERVICE_TENSOR_WIRE_H_
#define NORMD_SERVER_SERVICE_TENSOR_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// A received request: every field but its tensor's data parsed by protobuf, and the
// data viewed in the received bytes (absent when the tensor has none).
template <typename Request>
struct TensorMessage {
  Request fields;
  std::optional<std::span<const std::byte>> tensor_data;
};
using NormalizeMessage = TensorMessage<v1::NormalizeRequest>;  // the tensor: input

// IngestRequest.summaries left unparsed, as the bodies of its MomentsSummaries (a
// field that comes in several pieces is their concatenation, as protobuf merges it).
// Each entry is parsed when it is taken, so a message of 250,000 summaries costs the
// memory of one, and whoever takes them can stop between any two.
class SummaryEntries {
 public:
  // Whether the message carried summaries (an empty field included).
  bool present() const { return !pieces_.empty(); }
  // The next entry into `out`: false past the last; an error when an entry does not
  // parse, or when the field holds no entry at all.
  absl::StatusOr<bool> Next(v1::MomentsSummary& out);
  // Entries taken so far: the index of the next one.
  size_t taken() const { return taken_; }

  void Clear();
  void AddPiece(std::span<const std::byte> body) { pieces_.push_back(body); }
  // Keeps `serialized` (a MomentsSummaries that protobuf parsed) as the only piece.
  void Own(std::string serialized);

 private:
  std::vector<std::span<const std::byte>> pieces_;
  std::string owned_;
  size_t piece_ = 0;
  size_t at_ = 0;
  size_t taken_ = 0;
};

// The tensor: batch. Summaries are not parsed with the rest (SummaryEntries).
struct IngestMessage : TensorMessage<v1::IngestRequest> {
  SummaryEntries summaries;
};

// The bytes of `buffer`: its single slice, or, when it came in several, a copy of
// them in `scratch` (kept by the caller for reuse: no fresh allocation per call).
// `slices` keeps them alive meanwhile.
absl::StatusOr<std::span<const std::byte>> ContiguousBytes(const grpc::ByteBuffer& buffer,
                                                           std::vector<std::byte>& scratch,
                                                           std::vector<grpc::Slice>& slices);

// Parses a serialised request with its tensor (NormalizeRequest.input,
// IngestRequest.batch: framing::kRequestTensor, wire/tensor_framing.h); the message
// views `bytes`, and an Ingest message's summaries are left in them (SummaryEntries).
absl::Status ParseNormalizeRequest(std::span<const std::byte> bytes, NormalizeMessage& message);
absl::Status ParseIngestRequest(std::span<const std::byte> bytes, IngestMessage& message);

// A NormalizeResponse with `value_bytes` of output values, laid out in one buffer as
// protobuf would serialise it (wire/tensor_framing.h): the kernels write the values in
// place, then Release hands the buffer to gRPC.
class NormalizeReply {
 public:
  NormalizeReply(const google::protobuf::RepeatedField<int64_t>& shape, v1::DType dtype,
                 size_t value_bytes);
  std::span<std::byte> values() { return values_; }
  grpc::ByteBuffer Release(uint64_t version);

 private:
  grpc::Slice buffer_;
  size_t head_ = 0;
  std::span<std::byte> values_;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_TENSOR_WIRE_H_
