#include "client/cpp/normctl/stats_json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace normd {
namespace {

// %.17g round-trips every double.
void AppendDouble(std::string* out, double value) {
  if (std::isfinite(value)) {
    absl::StrAppendFormat(out, "%.17g", value);
  } else {
    out->append("null");
  }
}

template <typename Field>
void AppendDoubles(std::string* out, absl::string_view key, const Field& values) {
  absl::StrAppend(out, ", \"", key, "\": [");
  for (int i = 0; i < values.size(); ++i) {
    if (i > 0) out->append(", ");
    AppendDouble(out, values.Get(i));
  }
  out->append("]");
}

absl::string_view SplitJsonName(v1::Split split) {
  switch (split) {
    case v1::SPLIT_VALIDATION:
      return "validation";
    case v1::SPLIT_TEST:
      return "test";
    default:
      return "train";
  }
}

}  // namespace

std::string StatsToJson(const v1::GetStatsResponse& response) {
  const v1::Statistics& s = response.stats();
  std::string out =
      absl::StrCat("{\"dataset\": \"", response.dataset(), "\", \"version\": ", response.version(),
                   ", \"split\": \"", SplitJsonName(response.split()),
                   "\", \"batches\": ", s.batches(), ", \"samples\": ", s.samples());
  absl::StrAppend(&out, ", \"count\": [", absl::StrJoin(s.count(), ", "), "]");
  AppendDoubles(&out, "mean", s.mean());
  AppendDoubles(&out, "variance", s.variance());
  AppendDoubles(&out, "sample_variance", s.sample_variance());
  AppendDoubles(&out, "min", s.min());
  AppendDoubles(&out, "max", s.max());
  if (s.running_mean_size() > 0) {
    AppendDoubles(&out, "running_mean", s.running_mean());
    AppendDoubles(&out, "running_var", s.running_var());
    absl::StrAppend(&out, ", \"num_batches_tracked\": ", s.num_batches_tracked());
  }
  out.append("}");
  return out;
}

}  // namespace normd
