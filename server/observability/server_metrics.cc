#include "server/observability/server_metrics.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace normd {
namespace {

// "/normd.v1.Normd/Ingest" -> {"normd.v1.Normd", "Ingest"}.
std::pair<std::string, std::string> SplitMethod(absl::string_view full) {
  if (!full.empty() && full.front() == '/') full.remove_prefix(1);
  const size_t slash = full.find('/');
  if (slash == absl::string_view::npos) return {"", std::string(full)};
  return {std::string(full.substr(0, slash)), std::string(full.substr(slash + 1))};
}

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Prometheus writes +Inf and exact decimals; %.17g keeps every bit of a double.
// Prometheus spells the special values NaN, +Inf and -Inf.
std::string Number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", value);
}

void Header(std::string* out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void Sample(std::string* out, absl::string_view name, int64_t value) {
  absl::StrAppend(out, name, " ", value, "\n");
}

}  // namespace

ServerMetrics::ServerMetrics(const std::vector<std::string>& methods, std::string version)
    : version_(std::move(version)), start_time_unix_seconds_(absl::ToUnixSeconds(absl::Now())) {
  auto add = [this](absl::string_view full, std::string service, std::string method) {
    auto series = std::make_unique<MethodSeries>();
    series->service = std::move(service);
    series->method = std::move(method);
    MethodSeries* raw = series.get();
    series_.emplace(std::string(full), std::move(series));
    return raw;
  };
  for (const std::string& full : methods) {
    if (series_.contains(full)) continue;
    auto [service, method] = SplitMethod(full);
    add(full, std::move(service), std::move(method));
  }
  other_ = add("", "", "other");
  for (const auto& [name, series] : series_) ordered_.push_back(series.get());
  std::sort(ordered_.begin(), ordered_.end(), [](const MethodSeries* a, const MethodSeries* b) {
    return std::tie(a->service, a->method) < std::tie(b->service, b->method);
  });
}

ServerMetrics::MethodSeries& ServerMetrics::SeriesOf(absl::string_view method) {
  const auto found = series_.find(absl::string_view(method.data(), method.size()));
  return found == series_.end() || method.empty() ? *other_ : *found->second;
}

void ServerMetrics::RpcStarted(absl::string_view method) {
  SeriesOf(method).started.fetch_add(1, std::memory_order_relaxed);
}

void ServerMetrics::RpcFinished(absl::string_view method, absl::StatusCode code,
                                absl::Duration elapsed) {
  MethodSeries& series = SeriesOf(method);
  const int index = static_cast<int>(code);
  series
      .finished_by_code[index >= 0 && index < kStatusCodes ? index : 2]  // 2: UNKNOWN
      .fetch_add(1, std::memory_order_relaxed);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  const size_t bucket = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) -
                        kLatencyBuckets.begin();
  series.latency_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  series.latency_sum_ns.fetch_add(absl::ToInt64Nanoseconds(elapsed), std::memory_order_relaxed);
}

void ServerMetrics::Ingested(int64_t batches, int64_t duplicate_batches, int64_t values,
                             int64_t bytes) {
  ingested_batches_.fetch_add(batches, std::memory_order_relaxed);
  ingest_duplicate_batches_.fetch_add(duplicate_batches, std::memory_order_relaxed);
  ingested_values_.fetch_add(values, std::memory_order_relaxed);
  ingested_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void ServerMetrics::Normalized(int64_t values, int64_t bytes) {
  normalized_values_.fetch_add(values, std::memory_order_relaxed);
  normalized_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void ServerMetrics::RenderDrift(const std::vector<VersionDrift>& drift, std::string& out) {
  if (drift.empty()) return;
  // Dataset names are [A-Za-z0-9._-]: no label escaping needed.
  const auto labels = [](const VersionDrift& d) {
    return absl::StrCat("dataset=\"", d.dataset, "\",version=\"", d.version, "\"");
  };
  const struct {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const VersionDrift&);
  } per_version[] = {
      {"normd_traffic_requests_total", "counter",
       "Normalize requests with this version since start.",
       [](const VersionDrift& d) { return static_cast<double>(d.requests); }},
      {"normd_traffic_sampled_requests_total", "counter",
       "Of those, the requests whose input was folded into the traffic statistics.",
       [](const VersionDrift& d) { return static_cast<double>(d.sampled_requests); }},
      {"normd_drift_level", "gauge",
       "Worst channel's drift of the last hour's traffic from the version's train split: 0 no "
       "data, 1 pass, 2 warn, 3 fail.",
       [](const VersionDrift& d) { return static_cast<double>(d.level); }},
      {"normd_drift_psi_max", "gauge", "Largest population stability index over all channels.",
       [](const VersionDrift& d) { return d.max_psi; }},
      {"normd_drift_standardized_mean_difference_max", "gauge",
       "Largest absolute standardised mean difference over all channels.",
       [](const VersionDrift& d) { return d.max_abs_standardized_mean_difference; }},
  };
  for (const auto& family : per_version) {
    Header(&out, family.name, family.type, family.help);
    for (const VersionDrift& d : drift) {
      absl::StrAppend(&out, family.name, "{", labels(d), "} ", Number(family.value(d)), "\n");
    }
  }
  const struct {
    const char* name;
    const char* help;
    std::vector<double> VersionDrift::*values;
  } per_channel[] = {
      {"normd_drift_psi", "Population stability index of one channel (the first channels only).",
       &VersionDrift::psi},
      {"normd_drift_standardized_mean_difference",
       "Standardised mean difference of one channel (the first channels only).",
       &VersionDrift::standardized_mean_difference},
  };
  for (const auto& family : per_channel) {
    Header(&out, family.name, "gauge", family.help);
    for (const VersionDrift& d : drift) {
      const std::vector<double>& values = d.*family.values;
      for (size_t c = 0; c < values.size(); ++c) {
        absl::StrAppend(&out, family.name, "{", labels(d), ",channel=\"", c, "\"} ",
                        Number(values[c]), "\n");
      }
    }
  }
}

std::string ServerMetrics::Render(const ServerInventory& inventory) const {
  std::string out;
  const auto labels = [](const MethodSeries& s) {
    return absl::StrCat("service=\"", s.service, "\",method=\"", s.method, "\"");
  };
  // A consistent view of each series: finished is read before started, so that
  // in-flight (started - finished) is never negative.
  struct Snapshot {
    const MethodSeries* series;
    std::array<int64_t, kStatusCodes> finished_by_code;
    int64_t finished = 0;
    int64_t started = 0;
  };
  std::vector<Snapshot> snapshots;
  for (const MethodSeries* series : ordered_) {
    Snapshot snapshot{series, {}};
    for (int code = 0; code < kStatusCodes; ++code) {
      snapshot.finished_by_code[code] = series->finished_by_code[code].load();
      snapshot.finished += snapshot.finished_by_code[code];
    }
    snapshot.started = std::max(series->started.load(), snapshot.finished);
    snapshots.push_back(snapshot);
  }

  Header(&out, "normd_rpc_requests_total", "counter", "RPCs received, by method.");
  for (const Snapshot& s : snapshots) {
    absl::StrAppend(&out, "normd_rpc_requests_total{", labels(*s.series), "} ", s.started, "\n");
  }
  Header(&out, "normd_rpc_handled_total", "counter",
         "RPCs finished, by method and gRPC status code (OK included).");
  for (const Snapshot& s : snapshots) {
    for (int code = 0; code < kStatusCodes; ++code) {
      if (code != 0 && s.finished_by_code[code] == 0) continue;
      absl::StrAppend(&out, "normd_rpc_handled_total{", labels(*s.series), ",code=\"",
                      CodeName(code), "\"} ", s.finished_by_code[code], "\n");
    }
  }
  Header(&out, "normd_rpc_errors_total", "counter",
         "RPCs finished with a status other than OK, by method and gRPC status code.");
  for (const Snapshot& s : snapshots) {
    for (int code = 1; code < kStatusCodes; ++code) {
      if (s.finished_by_code[code] == 0) continue;
      absl::StrAppend(&out, "normd_rpc_errors_total{", labels(*s.series), ",code=\"",
                      CodeName(code), "\"} ", s.finished_by_code[code], "\n");
    }
  }
  Header(&out, "normd_rpc_in_flight", "gauge", "RPCs being served now, by method.");
  for (const Snapshot& s : snapshots) {
    absl::StrAppend(&out, "normd_rpc_in_flight{", labels(*s.series), "} ", s.started - s.finished,
                    "\n");
  }
  Header(&out, "normd_rpc_duration_seconds", "histogram",
         "Time from an RPC's start to its status, by method.");
  for (const MethodSeries* series : ordered_) {
    int64_t cumulative = 0;
    for (size_t i = 0; i <= kLatencyBuckets.size(); ++i) {
      cumulative += series->latency_buckets[i].load();
      // Bounds are short decimals: six significant digits write them exactly.
      const std::string le = i < kLatencyBuckets.size() ? absl::StrCat(kLatencyBuckets[i]) : "+Inf";
      absl::StrAppend(&out, "normd_rpc_duration_seconds_bucket{", labels(*series), ",le=\"", le,
                      "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "normd_rpc_duration_seconds_sum{", labels(*series), "} ",
                    Number(static_cast<double>(series->latency_sum_ns.load()) * 1e-9), "\n");
    absl::StrAppend(&out, "normd_rpc_duration_seconds_count{", labels(*series), "} ", cumulative,
                    "\n");
  }

  // Families of one unlabelled sample each: name, type, help, value.
  const struct {
    const char* name;
    const char* type;
    const char* help;
    int64_t value;
  } single_samples[] = {
      {"normd_ingested_batches_total", "counter",
       "Batches applied by committed Ingest streams (duplicates not counted).",
       ingested_batches_.load()},
      {"normd_ingest_duplicate_batches_total", "counter",
       "Batches acknowledged as duplicates of ones already applied, and not applied again.",
       ingest_duplicate_batches_.load()},
      {"normd_ingested_values_total", "counter",
       "Values (tensor elements) applied by committed Ingest streams.", ingested_values_.load()},
      {"normd_ingested_bytes_total", "counter",
       "Tensor bytes received in committed Ingest streams.", ingested_bytes_.load()},
      {"normd_normalized_values_total", "counter", "Values written by Normalize.",
       normalized_values_.load()},
      {"normd_normalized_bytes_total", "counter", "Bytes written by Normalize.",
       normalized_bytes_.load()},
      {"normd_datasets", "gauge", "Datasets in the store.", inventory.datasets},
      {"normd_frozen_versions", "gauge", "Frozen versions over all datasets.",
       inventory.frozen_versions},
      {"normd_ingest_streams_active", "gauge", "Ingest streams being served now.",
       inventory.active_ingest_streams},
  };
  for (const auto& family : single_samples) {
    Header(&out, family.name, family.type, family.help);
    Sample(&out, family.name, family.value);
  }
  RenderDrift(inventory.drift, out);
  Header(&out, "normd_build_info", "gauge", "Always 1; the version is a label.");
  absl::StrAppend(&out, "normd_build_info{version=\"", version_, "\"} 1\n");
  Header(&out, "normd_start_time_seconds", "gauge", "When the server started, in Unix seconds.");
  Sample(&out, "normd_start_time_seconds", start_time_unix_seconds_);
  return out;
}

}  // namespace normd
