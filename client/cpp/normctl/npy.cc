#include "client/cpp/normctl/npy.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace normd {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct DescrName {
  absl::string_view descr;
  v1::DType dtype;
};
// The descr spellings numpy writes on little-endian machines.
constexpr DescrName kDescrs[] = {
    {"<f4", v1::DTYPE_FLOAT32}, {"<f8", v1::DTYPE_FLOAT64}, {"<f2", v1::DTYPE_FLOAT16},
    {"|u1", v1::DTYPE_UINT8},   {"<u1", v1::DTYPE_UINT8},   {"u1", v1::DTYPE_UINT8},
};

absl::StatusOr<absl::string_view> ValueAfterKey(absl::string_view dict, absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "'");
  const size_t at = dict.find(quoted);
  if (at == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(".npy header has no ", quoted, " key"));
  }
  absl::string_view rest = dict.substr(at + quoted.size());
  rest = absl::StripLeadingAsciiWhitespace(rest);
  if (rest.empty() || rest.front() != ':') {
    return absl::InvalidArgumentError(absl::StrCat(".npy header: expected ':' after ", quoted));
  }
  return absl::StripLeadingAsciiWhitespace(rest.substr(1));
}

// A file the system refused, by errno's kind; never UNAVAILABLE, which the resend
// loop would take for the server being away.
absl::Status IoError(absl::string_view what, const std::string& path) {
  const int error = errno;
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(std::move(message));
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(std::move(message));
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(std::move(message));
    default:
      return absl::FailedPreconditionError(std::move(message));
  }
}

}  // namespace

size_t NpyItemSize(v1::DType dtype) {
  switch (dtype) {
    case v1::DTYPE_FLOAT32:
      return 4;
    case v1::DTYPE_FLOAT64:
      return 8;
    case v1::DTYPE_FLOAT16:
    case v1::DTYPE_BFLOAT16:
      return 2;
    case v1::DTYPE_UINT8:
      return 1;
    default:
      return 0;
  }
}

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view dict) {
  NpyHeader header;
  NORMD_ASSIGN_OR_RETURN(const absl::string_view descr, ValueAfterKey(dict, "descr"));
  if (descr.empty() || (descr.front() != '\'' && descr.front() != '"')) {
    return absl::InvalidArgumentError(
        "unsupported .npy dtype: a structured dtype; expected one of <f4, <f8, <f2, |u1");
  }
  const size_t close = descr.find(descr.front(), 1);
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError(".npy header: unterminated 'descr' string");
  }
  const absl::string_view descr_text = descr.substr(1, close - 1);
  for (const DescrName& known : kDescrs) {
    if (known.descr == descr_text) header.dtype = known.dtype;
  }
  if (header.dtype == v1::DTYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported .npy dtype '", descr_text,
                                                   "'; expected one of <f4, <f8, <f2, |u1"));
  }

  NORMD_ASSIGN_OR_RETURN(const absl::string_view fortran, ValueAfterKey(dict, "fortran_order"));
  if (absl::StartsWith(fortran, "True")) {
    return absl::InvalidArgumentError(
        "the .npy file is Fortran-ordered; expected C order (save np.ascontiguousarray(x))");
  }
  if (!absl::StartsWith(fortran, "False")) {
    return absl::InvalidArgumentError(".npy header: 'fortran_order' is neither True nor False");
  }

  NORMD_ASSIGN_OR_RETURN(const absl::string_view shape, ValueAfterKey(dict, "shape"));
  const size_t end = shape.find(')');
  if (shape.empty() || shape.front() != '(' || end == absl::string_view::npos) {
    return absl::InvalidArgumentError(".npy header: 'shape' is not a tuple");
  }
  for (absl::string_view part : absl::StrSplit(shape.substr(1, end - 1), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;  // trailing comma of a 1-tuple
    int64_t dim = 0;
    if (!absl::SimpleAtoi(part, &dim) || dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat(".npy header: bad dimension '", part, "'"));
    }
    header.shape.push_back(dim);
  }
  return header;
}

absl::StatusOr<NpyReader> NpyReader::Open(const std::string& path) {
  NpyReader reader;
  reader.path_ = path;
  reader.file_.reset(std::fopen(path.c_str(), "rb"));
  if (reader.file_ == nullptr) return IoError("cannot open", path);
  // Every length in the file is checked against the file's real size before anything
  // is allocated from it: a hostile header must not make the reader allocate gigabytes.
  struct stat file_stat;
  if (fstat(fileno(reader.file_.get()), &file_stat) != 0) return IoError("cannot stat", path);
  const uint64_t file_size = static_cast<uint64_t>(file_stat.st_size);
  unsigned char preamble[kMagicSize + 2];
  if (std::fread(preamble, 1, sizeof preamble, reader.file_.get()) != sizeof preamble ||
      std::memcmp(preamble, kMagic, kMagicSize) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a .npy file (bad magic)"));
  }
  const int major = preamble[kMagicSize];
  uint64_t header_size = 0;
  size_t length_bytes = 0;
  if (major == 1) {
    length_bytes = 2;
  } else if (major == 2 || major == 3) {
    length_bytes = 4;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unsupported .npy format version ", major, "; expected 1, 2 or 3"));
  }
  unsigned char len[4];
  if (std::fread(len, 1, length_bytes, reader.file_.get()) != length_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated .npy header"));
  }
  for (size_t i = 0; i < length_bytes; ++i) header_size |= static_cast<uint64_t>(len[i]) << (8 * i);
  const uint64_t data_offset = sizeof preamble + length_bytes + header_size;
  if (data_offset > file_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated .npy header (", header_size,
                                                   " bytes promised, the file holds ", file_size,
                                                   " bytes in all)"));
  }
  std::string dict(header_size, '\0');
  if (std::fread(dict.data(), 1, header_size, reader.file_.get()) != header_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated .npy header"));
  }
  NORMD_ASSIGN_OR_RETURN(reader.header_, ParseNpyHeader(dict),
                         absl::Status(_.code(), absl::StrCat(path, ": ", _.message())));
  const std::vector<int64_t>& shape = reader.header_.shape;
  uint64_t row_bytes = NpyItemSize(reader.header_.dtype);
  bool overflow = false;
  for (size_t axis = 1; axis < shape.size(); ++axis) {
    overflow |= __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(shape[axis]), &row_bytes);
  }
  uint64_t data_bytes = 0;
  overflow |= __builtin_mul_overflow(row_bytes, static_cast<uint64_t>(reader.rows()), &data_bytes);
  if (overflow) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the .npy shape [", absl::StrJoin(shape, ", "), "] overflows a 64-bit byte count"));
  }
  // Rows of no bytes (a zero past the first dimension) hold no values, however many of
  // them the header claims: reading them would loop for nothing, and normd refuses
  // zero dimensions anyway.
  if (row_bytes == 0 && reader.rows() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the .npy shape [", absl::StrJoin(shape, ", "),
                     "] has a zero dimension after the first, so its rows hold no values"));
  }
  reader.row_bytes_ = row_bytes;
  if (data_bytes != file_size - data_offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the .npy header promises ", data_bytes, " bytes of data (shape [",
        absl::StrJoin(shape, ", "), "]) but the file holds ", file_size - data_offset));
  }
  return reader;
}

absl::Status NpyReader::ReadRows(int64_t count, std::string* out) {
  out->resize(static_cast<size_t>(std::min(count, rows_left())) * row_bytes_);
  return ReadRows(count, std::as_writable_bytes(std::span(*out))).status();
}

absl::StatusOr<size_t> NpyReader::ReadRows(int64_t count, std::span<std::byte> out) {
  const int64_t rows = std::min(count, rows_left());
  const size_t bytes = static_cast<size_t>(rows) * row_bytes_;
  if (bytes > out.size()) {
    return absl::InternalError(
        absl::StrCat(rows, " rows need ", bytes, " bytes; ", out.size(), " were given"));
  }
  if (bytes != 0 && std::fread(out.data(), 1, bytes, file_.get()) != bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": the file ends before the data its header promises (shape [",
                     absl::StrJoin(header_.shape, ", "), "])"));
  }
  rows_read_ += rows;
  return bytes;
}

absl::StatusOr<NpyWriter> NpyWriter::Create(const std::string& path, const NpyHeader& header) {
  absl::string_view descr;
  for (const DescrName& known : kDescrs) {
    if (known.dtype == header.dtype && descr.empty()) descr = known.descr;
  }
  if (descr.empty()) {
    return absl::InvalidArgumentError("NpyWriter: the dtype has no .npy spelling");
  }
  std::string shape = absl::StrJoin(header.shape, ", ");
  if (header.shape.size() == 1) shape += ",";
  std::string dict =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Pad with spaces so that the data starts on a 64-byte boundary; end with '\n'.
  const size_t unpadded = kMagicSize + 2 + 2 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  if (dict.size() > 65535) return absl::InvalidArgumentError("NpyWriter: header too long");

  NpyWriter writer;
  writer.path_ = path;
  writer.file_.reset(std::fopen(path.c_str(), "wb"));
  if (writer.file_ == nullptr) return IoError("cannot create", path);
  std::string preamble(kMagic, kMagicSize);
  preamble.push_back('\x01');
  preamble.push_back('\x00');
  preamble.push_back(static_cast<char>(dict.size() & 0xff));
  preamble.push_back(static_cast<char>(dict.size() >> 8));
  preamble += dict;
  if (std::fwrite(preamble.data(), 1, preamble.size(), writer.file_.get()) != preamble.size()) {
    return IoError("cannot write", path);
  }
  writer.expected_bytes_ = NpyItemSize(header.dtype);
  for (int64_t dim : header.shape) writer.expected_bytes_ *= static_cast<uint64_t>(dim);
  return writer;
}

absl::Status NpyWriter::Append(absl::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_.get()) != bytes.size()) {
    return IoError("cannot write", path_);
  }
  written_bytes_ += bytes.size();
  return absl::OkStatus();
}

absl::Status NpyWriter::Close() {
  if (written_bytes_ != expected_bytes_) {
    return absl::InternalError(absl::StrCat(path_, ": wrote ", written_bytes_,
                                            " data bytes, the header promises ", expected_bytes_));
  }
  std::FILE* file = file_.release();
  if (std::fclose(file) != 0) return IoError("cannot close", path_);
  return absl::OkStatus();
}

}  // namespace normd
