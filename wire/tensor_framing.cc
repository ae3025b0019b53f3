#include "wire/tensor_framing.h"

#include "google/protobuf/io/coded_stream.h"

namespace normd {

using google::protobuf::io::CodedOutputStream;

namespace {

bool ReadVarint(std::span<const std::byte> bytes, size_t& at, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && at < bytes.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(bytes[at++]);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

void AppendKey(std::string& out, uint32_t field_number, WireType type) {
  AppendVarint(out, (static_cast<uint64_t>(field_number) << 3) | static_cast<uint32_t>(type));
}

}  // namespace

bool ReadWireFieldHead(std::span<const std::byte> bytes, size_t& at, WireField& field) {
  field.begin = at;
  uint64_t key = 0;
  if (!ReadVarint(bytes, at, key) || key > UINT32_MAX || (key >> 3) == 0) return false;
  field.number = static_cast<uint32_t>(key >> 3);
  field.varint = 0;
  uint64_t body = 0;
  switch (key & 7) {
    case static_cast<uint32_t>(WireType::kVarint):
      field.wire_type = WireType::kVarint;
      if (!ReadVarint(bytes, at, field.varint)) return false;
      break;
    case static_cast<uint32_t>(WireType::kFixed64):
      field.wire_type = WireType::kFixed64;
      body = 8;
      break;
    case static_cast<uint32_t>(WireType::kFixed32):
      field.wire_type = WireType::kFixed32;
      body = 4;
      break;
    case static_cast<uint32_t>(WireType::kLengthDelimited):
      field.wire_type = WireType::kLengthDelimited;
      if (!ReadVarint(bytes, at, field.varint) || field.varint > SIZE_MAX / 2) return false;
      body = field.varint;
      break;
    default:
      return false;  // groups (deprecated) and invalid wire types
  }
  field.body_begin = at;
  field.end = at + static_cast<size_t>(body);
  return true;
}

bool NextWireField(std::span<const std::byte> bytes, size_t& at, WireField& field) {
  if (!ReadWireFieldHead(bytes, at, field) || field.end > bytes.size()) return false;
  at = field.end;
  return true;
}

void AppendVarint(std::string& out, uint64_t value) {
  uint8_t buffer[10];
  const uint8_t* end = CodedOutputStream::WriteVarint64ToArray(value, buffer);
  out.append(reinterpret_cast<const char*>(buffer), end - buffer);
}

void AppendLengthDelimitedHead(std::string& out, uint32_t field_number, size_t body_size) {
  AppendKey(out, field_number, WireType::kLengthDelimited);
  AppendVarint(out, body_size);
}

std::string TensorFieldHead(uint32_t field_number,
                            const google::protobuf::RepeatedField<int64_t>& shape,
                            v1::DType dtype, size_t data_size) {
  // The tensor up to its data: shape (packed) and dtype as protobuf serialises them (a
  // field at its default, no dimensions or dtype 0, is left out), then data's head.
  std::string tensor;
  if (!shape.empty()) {
    size_t dims_size = 0;
    for (const int64_t dim : shape) dims_size += CodedOutputStream::VarintSize64(dim);
    AppendLengthDelimitedHead(tensor, framing::kTensorShape, dims_size);
    for (const int64_t dim : shape) AppendVarint(tensor, static_cast<uint64_t>(dim));
  }
  if (dtype != 0) {
    AppendKey(tensor, framing::kTensorDType, WireType::kVarint);
    AppendVarint(tensor, static_cast<uint64_t>(dtype));
  }
  AppendLengthDelimitedHead(tensor, framing::kTensorData, data_size);
  std::string head;
  AppendLengthDelimitedHead(head, field_number, tensor.size() + data_size);
  head.append(tensor);
  return head;
}

std::string ResponseVersionField(uint64_t version) {
  std::string out;
  if (version != 0) {
    AppendKey(out, framing::kResponseVersion, WireType::kVarint);
    AppendVarint(out, version);
  }
  return out;
}

}  // namespace normd
