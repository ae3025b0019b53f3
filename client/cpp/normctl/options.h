// normctl's flags read into what the client needs: where the server is, how to reach
// it, and the enums and numbers the commands send.
#ifndef NORMD_CLIENT_CPP_NORMCTL_OPTIONS_H_
#define NORMD_CLIENT_CPP_NORMCTL_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cpp/normd_client.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// --server, else $NORMD_SERVER, else 127.0.0.1:50051.
std::string ServerAddress();
// TLS files and the token (--token_file, else $NORMD_TOKEN).
absl::StatusOr<ConnectOptions> ConnectOptionsFromFlags();
// --split and --layout, spelled as the proto's enum values without their prefix.
absl::StatusOr<v1::Split> ParseSplitFlag();
absl::StatusOr<v1::Layout> ParseLayoutFlag();
// Comma-separated numbers ("" is none); `flag` names the flag in errors.
absl::StatusOr<std::vector<double>> ParseDoubles(const std::string& flag, const std::string& text);
absl::StatusOr<double> ParseDouble(const std::string& flag, const std::string& text);
// --version: "" -> 0 (latest, resolved by the server); "latest" -> the dataset's
// latest version, asked of the server; "N" -> N.
absl::StatusOr<uint64_t> ResolveVersion(NormdClient& client, const std::string& name);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_OPTIONS_H_
