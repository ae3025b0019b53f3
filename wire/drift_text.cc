#include "wire/drift_text.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "core/dataset_spec.h"
#include "wire/core_proto.h"

namespace normd {

absl::StatusOr<v1::Split> ParseSplitName(absl::string_view name) {
  if (name.empty()) return v1::SPLIT_UNSPECIFIED;
  for (Split split : kAllSplits) {
    if (SplitName(split) == name) return SplitToProto(split);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("split must be train, validation or test, got \"", name, "\""));
}

absl::StatusOr<v1::TrafficWindow> ParseTrafficWindowName(absl::string_view name) {
  if (name.empty() || name == "since_start") return v1::TRAFFIC_WINDOW_SINCE_START;
  if (name == "last_hour") return v1::TRAFFIC_WINDOW_LAST_HOUR;
  return absl::InvalidArgumentError(
      absl::StrCat("window must be since_start or last_hour, got \"", name, "\""));
}

absl::Status ParseStatisticsSource(absl::string_view text, v1::StatisticsSource* out) {
  const std::vector<std::string> parts = absl::StrSplit(text, ':');
  uint64_t version = 0;
  if (parts[0] == "live" && parts.size() == 2) {
    NORMD_ASSIGN_OR_RETURN(const v1::Split split, ParseSplitName(parts[1]));
    out->set_live(split);
    return absl::OkStatus();
  }
  if ((parts[0] == "version" || parts[0] == "traffic") && parts.size() >= 2 && parts.size() <= 3 &&
      absl::SimpleAtoi(parts[1], &version)) {
    const std::string tail = parts.size() == 3 ? parts[2] : "";
    if (parts[0] == "version") {
      NORMD_ASSIGN_OR_RETURN(const v1::Split split, ParseSplitName(tail));
      out->mutable_frozen()->set_version(version);
      out->mutable_frozen()->set_split(split);
    } else {
      NORMD_ASSIGN_OR_RETURN(const v1::TrafficWindow window, ParseTrafficWindowName(tail));
      out->mutable_traffic()->set_version(version);
      out->mutable_traffic()->set_window(window);
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "a statistics source is live:SPLIT, version:N[:SPLIT] or traffic:N[:WINDOW], got \"", text,
      "\""));
}

absl::Status ParseDriftThresholds(absl::string_view text, v1::DriftThresholds* out) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const std::pair<absl::string_view, absl::string_view> named = absl::StrSplit(item, '=');
    const std::pair<absl::string_view, absl::string_view> limits =
        absl::StrSplit(named.second, ':');
    v1::DriftLimits parsed;
    double warn = 0, fail = 0;
    if (!absl::SimpleAtod(limits.first, &warn) || !absl::SimpleAtod(limits.second, &fail)) {
      return absl::InvalidArgumentError(
          absl::StrCat("thresholds are MEASURE=WARN:FAIL, got \"", item, "\""));
    }
    parsed.set_warn(warn);
    parsed.set_fail(fail);
    const google::protobuf::FieldDescriptor* field =
        v1::DriftThresholds::descriptor()->FindFieldByName(std::string(named.first));
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown drift measure \"", named.first,
          "\"; expected standardized_mean_difference, variance_ratio, ks, psi or js_divergence"));
    }
    out->GetReflection()->MutableMessage(out, field)->CopyFrom(parsed);
  }
  return absl::OkStatus();
}

}  // namespace normd
