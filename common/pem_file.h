// Reads a PEM file (certificate, key or CA bundle) whole, for gRPC's TLS options,
// which take PEM text rather than paths. Shared by the server and the C++ client.
#ifndef NORMD_COMMON_PEM_FILE_H_
#define NORMD_COMMON_PEM_FILE_H_

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace normd {

// `what` names the file in the error ("TLS certificate"); an empty file is an error.
inline absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  if (!file || text.str().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the ", what, " ", path));
  }
  return text.str();
}

}  // namespace normd

#endif  // NORMD_COMMON_PEM_FILE_H_
