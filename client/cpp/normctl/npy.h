// Reading and writing NumPy .npy files (format versions 1.0 to 3.0), row by row,
// so files larger than memory stream through. Supported dtypes: <f4, <f8, <f2, |u1.
#ifndef NORMD_CLIENT_CPP_NORMCTL_NPY_H_
#define NORMD_CLIENT_CPP_NORMCTL_NPY_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "normd/v1/normd.pb.h"

namespace normd {

struct NpyHeader {
  v1::DType dtype = v1::DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;  // C order
};

// Parses the header dictionary text, e.g.
// "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }".
absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view dict);
size_t NpyItemSize(v1::DType dtype);

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

class NpyReader {
 public:
  static absl::StatusOr<NpyReader> Open(const std::string& path);

  const NpyHeader& header() const { return header_; }
  int64_t rows() const { return header_.shape.empty() ? 1 : header_.shape[0]; }
  size_t row_bytes() const { return row_bytes_; }
  int64_t rows_left() const { return rows() - rows_read_; }

  // Reads the next min(count, rows_left()) rows into *out, replacing its contents.
  absl::Status ReadRows(int64_t count, std::string* out);
  // The same into `out` (room for at least that many rows); returns the bytes read.
  absl::StatusOr<size_t> ReadRows(int64_t count, std::span<std::byte> out);

 private:
  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  NpyHeader header_;
  size_t row_bytes_ = 0;
  int64_t rows_read_ = 0;
};

class NpyWriter {
 public:
  // Writes a version 1.0 header for `header`; rows follow with Append.
  static absl::StatusOr<NpyWriter> Create(const std::string& path, const NpyHeader& header);

  absl::Status Append(absl::string_view bytes);
  // Flushes and checks that exactly the header's bytes were written.
  absl::Status Close();

 private:
  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  uint64_t expected_bytes_ = 0;
  uint64_t written_bytes_ = 0;
};

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_NPY_H_
