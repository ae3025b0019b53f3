#include "client/cpp/normctl/options.h"

#include <cstdlib>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cpp/normctl/flags.h"
#include "common/status_macros.h"

namespace normd {

std::string ServerAddress() {
  std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) {
    const char* env = std::getenv("NORMD_SERVER");
    server = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  }
  return server;
}

absl::StatusOr<ConnectOptions> ConnectOptionsFromFlags() {
  ConnectOptions options;
  options.ca_file = absl::GetFlag(FLAGS_ca_file);
  options.cert_file = absl::GetFlag(FLAGS_cert_file);
  options.key_file = absl::GetFlag(FLAGS_key_file);
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (!token_file.empty()) {
    std::ifstream file(token_file);
    if (!file || !std::getline(file, options.token) || options.token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read a token from the first line of ", token_file));
    }
    options.token = std::string(absl::StripAsciiWhitespace(options.token));
  } else if (const char* env = std::getenv("NORMD_TOKEN"); env != nullptr) {
    options.token = env;
  }
  return options;
}

absl::StatusOr<v1::Split> ParseSplitFlag() {
  const std::string split = absl::GetFlag(FLAGS_split);
  v1::Split parsed = v1::SPLIT_UNSPECIFIED;
  if (!v1::Split_Parse(absl::StrCat("SPLIT_", absl::AsciiStrToUpper(split)), &parsed) ||
      parsed == v1::SPLIT_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("--split must be train, validation or test, got '", split, "'"));
  }
  return parsed;
}

absl::StatusOr<v1::Layout> ParseLayoutFlag() {
  const std::string layout = absl::GetFlag(FLAGS_layout);
  v1::Layout parsed = v1::LAYOUT_UNSPECIFIED;
  if (!v1::Layout_Parse(absl::StrCat("LAYOUT_", layout), &parsed) ||
      parsed == v1::LAYOUT_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("--layout must be NC, NCHW or NHWC, got '", layout, "'"));
  }
  return parsed;
}

absl::StatusOr<std::vector<double>> ParseDoubles(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  if (text.empty()) return values;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double value = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(part), &value)) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", part, "' is not a number"));
    }
    values.push_back(value);
  }
  return values;
}

absl::StatusOr<double> ParseDouble(const std::string& flag, const std::string& text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", text, "' is not a number"));
  }
  return value;
}

absl::StatusOr<uint64_t> ResolveVersion(NormdClient& client, const std::string& name) {
  const std::string text = absl::GetFlag(FLAGS_version);
  if (text.empty()) return 0;
  if (text == "latest") {
    NORMD_ASSIGN_OR_RETURN(const v1::DatasetInfo info, client.GetDataset(name));
    if (info.latest_version() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("dataset ", name, " has no frozen version"));
    }
    return info.pinned_version() != 0 ? info.pinned_version() : info.latest_version();
  }
  uint64_t version = 0;
  if (!absl::SimpleAtoi(text, &version) || version == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--version must be a positive integer or 'latest', got '", text, "'"));
  }
  return version;
}

}  // namespace normd
