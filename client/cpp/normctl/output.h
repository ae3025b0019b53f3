// What normctl prints: its usage, errors, and datasets.
#ifndef NORMD_CLIENT_CPP_NORMCTL_OUTPUT_H_
#define NORMD_CLIENT_CPP_NORMCTL_OUTPUT_H_

#include <string>

#include "absl/status/status.h"
#include "normd/v1/normd.pb.h"

namespace normd {

extern const char kUsage[];

// Prints the status to stderr; returns the exit code 1.
int Fail(const absl::Status& status);
// Prints `message` and where help is to stderr; returns the exit code 2.
int Usage(const std::string& message);
// A local error (a file that cannot be read or written, a malformed .npy): nothing was
// sent, nothing is retried. Prints its message to stderr; returns the exit code 2.
int FailLocal(const absl::Status& status);

// The layout as the proto spells it, without its LAYOUT_ prefix.
std::string LayoutText(v1::Layout layout);
std::string AccumulatorText(const v1::DatasetSpec& spec);
void PrintInfo(const v1::DatasetInfo& info);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_NORMCTL_OUTPUT_H_
