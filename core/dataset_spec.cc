#include "core/dataset_spec.h"
#include "absl/strings/string_view.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/kernels/sketch_index.h"
#include "core/quantile_sketch.h"

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
  if (absl::Status status = ValidateHistogramEdges(spec.histogram_edges, spec.channels);
      !status.ok()) {
    return status;
  }
  if (spec.sketch.has_value()) {
    const QuantileSketchSpec& sketch = *spec.sketch;
    if (sketch.resolution < 0 || sketch.resolution > kMaxSketchIndexResolution) {
      return absl::InvalidArgumentError(absl::StrCat("sketch resolution must be in [0, ",
                                                     kMaxSketchIndexResolution, "], got ",
                                                     sketch.resolution));
    }
    if (sketch.max_buckets < kMinSketchBuckets || sketch.max_buckets > kMaxSketchBuckets) {
      return absl::InvalidArgumentError(absl::StrCat("sketch max_buckets must be in [",
                                                     kMinSketchBuckets, ", ", kMaxSketchBuckets,
                                                     "], got ", sketch.max_buckets));
    }
    if (!sketch.center.empty() && sketch.center.size() != static_cast<size_t>(spec.channels)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sketch center must hold one value per channel (", spec.channels,
                       ") or none, got ", sketch.center.size()));
    }
    for (size_t c = 0; c < sketch.center.size(); ++c) {
      if (!std::isfinite(sketch.center[c])) {
        return absl::InvalidArgumentError(absl::StrCat("sketch center of channel ", c,
                                                       " must be finite, got ", sketch.center[c]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace normd
