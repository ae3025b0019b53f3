#include "core/dataset_spec.h"
#include "absl/strings/string_view.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace normd {

absl::string_view SplitName(Split split) {
  switch (split) {
    case Split::kTrain:
      return "train";
    case Split::kValidation:
      return "validation";
    case Split::kTest:
      return "test";
  }
  return "unknown";
}

absl::Status ValidateName(absl::string_view what, absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is empty; expected 1 to 128 characters of [A-Za-z0-9._-]"));
  }
  if (name.size() > kMaxDatasetNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has ", name.size(),
                                                   " characters; at most ", kMaxDatasetNameLength,
                                                   " are allowed"));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char ch = name[i];
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' &&
        ch != '-') {
      return absl::InvalidArgumentError(absl::StrCat(what, " \"", absl::CHexEscape(name),
                                                     "\" has a disallowed character at position ",
                                                     i, "; expected only [A-Za-z0-9._-]"));
    }
  }
  if (name.front() == '.') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", name, "\" starts with '.'; names may not"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDatasetName(absl::string_view name) {
  return ValidateName("dataset name", name);
}

absl::Status ValidateDatasetSpec(const DatasetSpec& spec) {
  if (absl::Status status = ValidateDatasetName(spec.name); !status.ok()) return status;
  if (spec.channels < 1 || spec.channels > kMaxChannels) {
    return absl::InvalidArgumentError(
        absl::StrCat("channels must be in [1, ", kMaxChannels, "], got ", spec.channels));
  }
  if (spec.momentum.has_value()) {
    if (spec.accumulator != AccumulatorKind::kRunningAverage) {
      return absl::InvalidArgumentError(
          "momentum is set but the accumulator is exact; momentum belongs to running_average");
    }
    const double m = *spec.momentum;
    if (!(m > 0.0 && m <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("momentum must be in (0, 1], got ", m));
    }
  }
  return absl::OkStatus();
}

}  // namespace normd
