#include "client/cpp/normctl/stats_json.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

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
  AppendDoubles(&out, "weight_sum", s.weight_sum());
  AppendDoubles(&out, "reliability_variance", s.reliability_variance());
  AppendDoubles(&out, "effective_count", s.effective_count());
  if (s.fixed_histograms_size() > 0) {
    out.append(", \"fixed_histograms\": [");
    for (int c = 0; c < s.fixed_histograms_size(); ++c) {
      const v1::FixedHistogram& h = s.fixed_histograms(c);
      out.append(c > 0 ? ", {\"below\": " : "{\"below\": ");
      AppendDouble(&out, h.below());
      out.append(", \"above\": ");
      AppendDouble(&out, h.above());
      AppendDoubles(&out, "counts", h.counts());
      out.append("}");
    }
    out.append("]");
  }
  if (s.running_mean_size() > 0) {
    AppendDoubles(&out, "running_mean", s.running_mean());
    AppendDoubles(&out, "running_var", s.running_var());
    absl::StrAppend(&out, ", \"num_batches_tracked\": ", s.num_batches_tracked());
  }
  if (s.distributions_size() > 0) {
    out.append(", \"distributions\": [");
    for (int c = 0; c < s.distributions_size(); ++c) {
      const v1::ChannelDistribution& d = s.distributions(c);
      out.append(c > 0 ? ", {" : "{");
      absl::StrAppend(&out, "\"buckets\": ", d.buckets(), ", \"relative_accuracy\": ");
      AppendDouble(&out, d.relative_accuracy());
      AppendDoubles(&out, "quantile", d.quantile());
      AppendDoubles(&out, "quantile_error", d.quantile_error());
      AppendDoubles(&out, "histogram_edges", d.histogram_edges());
      AppendDoubles(&out, "histogram_counts", d.histogram_counts());
      out.append("}");
    }
    out.append("]");
  }
  out.append("}");
  return out;
}

namespace {

void AppendScaled(std::string* out, absl::string_view key, const std::vector<double>& values,
                  double scale) {
  absl::StrAppend(out, "\"", key, "\": [");
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->append(", ");
    AppendDouble(out, values[i] * scale);
  }
  out->append("]");
}

}  // namespace

std::string ExportToJson(const v1::DatasetInfo& info, const v1::GetStatsResponse& stats,
                         absl::string_view format, double eps, std::optional<double> pixel_scale) {
  const v1::Statistics& s = stats.stats();
  const bool running = s.running_mean_size() > 0;
  const auto& mean_field = running ? s.running_mean() : s.mean();
  const auto& variance_field = running ? s.running_var() : s.variance();
  const std::vector<double> mean(mean_field.begin(), mean_field.end());
  const std::vector<double> variance(variance_field.begin(), variance_field.end());
  std::vector<double> std_dev;
  for (double v : variance) std_dev.push_back(std::sqrt(v + eps));
  std::string out = "{";
  if (format == "torchvision" || format == "dali") {
    double scale = 1.0;
    if (format == "dali") {
      double max = -INFINITY;
      for (double m : s.max()) max = std::max(max, m);
      scale = pixel_scale.value_or(max <= 1.0 ? 255.0 : 1.0);
    }
    AppendScaled(&out, "mean", mean, scale);
    out.append(", ");
    AppendScaled(&out, "std", std_dev, scale);
    if (format == "dali") {
      out.append(", \"pixel_scale\": ");
      AppendDouble(&out, scale);
    }
    return out + "}";
  }
  if (format != "json") return "";
  const v1::VersionInfo* version = nullptr;
  for (const v1::VersionInfo& v : info.versions()) {
    if (v.version() == stats.version()) version = &v;
  }
  const v1::Layout layout = info.spec().layout();
  absl::StrAppend(&out, "\"dataset\": \"", info.spec().name(), "\", \"version\": ", stats.version(),
                  ", \"layout\": \"", v1::Layout_Name(layout).substr(7),
                  "\", \"channels\": ", info.spec().channels(), ", \"freeze_time\": \"",
                  version != nullptr
                      ? absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ",
                                         absl::FromUnixSeconds(version->freeze_time().seconds()) +
                                             absl::Nanoseconds(version->freeze_time().nanos()),
                                         absl::UTCTimeZone())
                      : "",
                  "\", \"train_samples\": ", version != nullptr ? version->train_samples() : 0,
                  ", \"count\": [", absl::StrJoin(s.count(), ", "), "], ");
  AppendScaled(&out, "mean", mean, 1.0);
  out.append(", ");
  AppendScaled(&out, "variance", variance, 1.0);
  out.append(", ");
  AppendScaled(&out, "std", std_dev, 1.0);
  out.append(", \"eps\": ");
  AppendDouble(&out, eps);
  AppendDoubles(&out, "min", s.min());
  AppendDoubles(&out, "max", s.max());
  absl::StrAppend(&out, ", \"running_average\": ", running ? "true" : "false", "}");
  return out;
}

}  // namespace normd
