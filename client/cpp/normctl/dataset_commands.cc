// The commands that manage datasets and read their statistics.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cpp/normctl/commands.h"
#include "client/cpp/normctl/flags.h"
#include "client/cpp/normctl/options.h"
#include "client/cpp/normctl/output.h"
#include "client/cpp/normctl/stats_json.h"
#include "common/status_macros.h"
#include "wire/drift_text.h"

namespace normd {

int Create(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("create takes one dataset name");
  v1::DatasetSpec spec;
  spec.set_name(args[0]);
  NORMD_ASSIGN_OR_RETURN(v1::Layout layout, ParseLayoutFlag(), Usage(std::string(_.message())));
  spec.set_layout(layout);
  spec.set_channels(absl::GetFlag(FLAGS_channels));
  const std::string accumulator = absl::GetFlag(FLAGS_accumulator);
  if (accumulator == "running") {
    v1::RunningAverageAccumulator* running = spec.mutable_running_average();
    if (!absl::GetFlag(FLAGS_momentum).empty()) {
      NORMD_ASSIGN_OR_RETURN(double momentum,
                             ParseDouble("momentum", absl::GetFlag(FLAGS_momentum)),
                             Usage(std::string(_.message())));
      running->set_momentum(momentum);
    }
  } else if (accumulator == "exact") {
    spec.mutable_exact();
  } else {
    return Usage(absl::StrCat("--accumulator must be exact or running, got '", accumulator, "'"));
  }
  const std::string nonfinite = absl::GetFlag(FLAGS_nonfinite);
  if (nonfinite != "reject" && nonfinite != "skip") {
    return Usage(absl::StrCat("--nonfinite must be reject or skip, got '", nonfinite, "'"));
  }
  spec.set_nonfinite_policy(nonfinite == "skip" ? v1::NONFINITE_POLICY_SKIP
                                                : v1::NONFINITE_POLICY_REJECT);
  v1::QuantileSketchOptions* sketch = spec.mutable_sketch();
  sketch->set_disabled(!absl::GetFlag(FLAGS_sketch));
  sketch->set_relative_accuracy(absl::GetFlag(FLAGS_sketch_accuracy));
  sketch->set_max_buckets(absl::GetFlag(FLAGS_sketch_max_buckets));
  if (!absl::GetFlag(FLAGS_sketch_center).empty()) {
    NORMD_ASSIGN_OR_RETURN(const std::vector<double> center,
                           ParseDoubles("sketch_center", absl::GetFlag(FLAGS_sketch_center)),
                           Usage(std::string(_.message())));
    sketch->mutable_center()->Add(center.begin(), center.end());
  }
  if (!absl::GetFlag(FLAGS_histogram_edges).empty()) {
    NORMD_ASSIGN_OR_RETURN(const std::vector<double> edges,
                           ParseDoubles("histogram_edges", absl::GetFlag(FLAGS_histogram_edges)),
                           Usage(std::string(_.message())));
    spec.add_histogram_edges()->mutable_edges()->Add(edges.begin(), edges.end());
  }
  NORMD_ASSIGN_OR_RETURN(v1::DatasetInfo info, client.CreateDataset(spec), Fail(_));
  std::printf("created ");
  PrintInfo(info);
  return 0;
}

int Freeze(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("freeze takes one dataset name");
  const bool gated = absl::GetFlag(FLAGS_min_train_count) > 0 || absl::GetFlag(FLAGS_drift_gate);
  v1::FreezeGate gate;
  gate.set_min_train_count(absl::GetFlag(FLAGS_min_train_count));
  gate.set_skip_drift(!absl::GetFlag(FLAGS_drift_gate));
  gate.set_action(absl::GetFlag(FLAGS_mark) ? v1::FreezeGate::ACTION_MARK
                                            : v1::FreezeGate::ACTION_REFUSE);
  NORMD_RETURN_IF_ERROR(
      ParseDriftThresholds(absl::GetFlag(FLAGS_thresholds), gate.mutable_thresholds()),
      Usage(absl::StrCat("--thresholds: ", _.message())));
  NORMD_ASSIGN_OR_RETURN(v1::FreezeResponse response,
                         gated ? client.Freeze(args[0], gate) : client.Freeze(args[0]), Fail(_));
  std::printf("froze %s as version %llu\n", args[0],
              static_cast<unsigned long long>(response.version()));
  for (const std::string& finding : response.gate_findings()) {
    std::printf("  gate: %s\n", finding.c_str());
  }
  return 0;
}

int Stats(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("stats takes one dataset name");
  NORMD_ASSIGN_OR_RETURN(v1::Split split, ParseSplitFlag(), Usage(std::string(_.message())));
  NORMD_ASSIGN_OR_RETURN(uint64_t version, ResolveVersion(client, args[0]), Fail(_));
  std::vector<double> ranks;
  if (!absl::GetFlag(FLAGS_quantiles).empty()) {
    NORMD_ASSIGN_OR_RETURN(ranks, ParseDoubles("quantiles", absl::GetFlag(FLAGS_quantiles)),
                           Usage(std::string(_.message())));
  }
  const uint32_t bins = absl::GetFlag(FLAGS_histogram_bins);
  NORMD_ASSIGN_OR_RETURN(const v1::TrafficWindow window,
                         ParseTrafficWindowName(absl::GetFlag(FLAGS_window)),
                         Usage(std::string(_.message())));
  NORMD_ASSIGN_OR_RETURN(v1::GetStatsResponse response,
                         absl::GetFlag(FLAGS_traffic)
                             ? client.GetTrafficStats(args[0], version, window, ranks, bins)
                             : client.GetStats(args[0], version, split, ranks, bins),
                         Fail(_));
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", StatsToJson(response).c_str());
    return 0;
  }
  const v1::Statistics& s = response.stats();
  if (absl::GetFlag(FLAGS_traffic)) {
    std::printf("%s version %llu, live traffic (%s): %llu of %llu requests folded, %llu samples\n",
                args[0], static_cast<unsigned long long>(response.version()),
                absl::GetFlag(FLAGS_window).c_str(),
                static_cast<unsigned long long>(response.traffic_sampled_requests()),
                static_cast<unsigned long long>(response.traffic_requests()),
                static_cast<unsigned long long>(s.samples()));
  } else {
    std::printf(
        "%s %s, %s split: %llu batches, %llu samples\n", args[0],
        response.version() == 0 ? "live" : absl::StrCat("version ", response.version()).c_str(),
        absl::GetFlag(FLAGS_split).c_str(), static_cast<unsigned long long>(s.batches()),
        static_cast<unsigned long long>(s.samples()));
  }
  std::printf("%8s %12s %20s %14s %20s %20s\n", "channel", "count", "mean", "std", "min", "max");
  for (int c = 0; c < s.count_size(); ++c) {
    std::printf("%8d %12llu %20.12g %14.6g %20.12g %20.12g\n", c,
                static_cast<unsigned long long>(s.count(c)), s.mean(c), std::sqrt(s.variance(c)),
                s.min(c), s.max(c));
  }
  for (int c = 0; c < s.distributions_size(); ++c) {
    const v1::ChannelDistribution& d = s.distributions(c);
    std::printf("channel %d: sketch of %u buckets, relative accuracy %.3g\n", c, d.buckets(),
                d.relative_accuracy());
    for (int i = 0; i < d.quantile_size(); ++i) {
      std::printf("  q%-8g %20.12g +- %.3g\n", ranks[static_cast<size_t>(i)], d.quantile(i),
                  d.quantile_error(i));
    }
    for (int b = 0; b < d.histogram_counts_size(); ++b) {
      std::printf("  [%-14.6g, %14.6g%s %14.0f\n", d.histogram_edges(b), d.histogram_edges(b + 1),
                  b + 1 == d.histogram_counts_size() ? "]" : ")", d.histogram_counts(b));
    }
  }
  if (s.fixed_histograms_size() > 0) {
    NORMD_ASSIGN_OR_RETURN(const v1::DatasetInfo info, client.GetDataset(args[0]), Fail(_));
    const auto& lists = info.spec().histogram_edges();
    for (int c = 0; c < s.fixed_histograms_size(); ++c) {
      const v1::FixedHistogram& h = s.fixed_histograms(c);
      const v1::HistogramEdges& edges = lists.Get(lists.size() == 1 ? 0 : c);
      std::printf("channel %d: fixed histogram, %.17g below, %.17g above\n", c, h.below(),
                  h.above());
      for (int b = 0; b < h.counts_size() && b + 1 < edges.edges_size(); ++b) {
        std::printf("  [%-14.6g, %14.6g%s %14.17g\n", edges.edges(b), edges.edges(b + 1),
                    b + 1 == h.counts_size() ? "]" : ")", h.counts(b));
      }
    }
  }
  return 0;
}

int Export(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("export takes one dataset name");
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "json" && format != "torchvision" && format != "dali") {
    return Usage(absl::StrCat("--format must be json, torchvision or dali, got '", format, "'"));
  }
  double eps = 1e-5;
  if (!absl::GetFlag(FLAGS_eps).empty()) {
    NORMD_ASSIGN_OR_RETURN(eps, ParseDouble("eps", absl::GetFlag(FLAGS_eps)),
                           Usage(std::string(_.message())));
  }
  std::optional<double> pixel_scale;
  if (!absl::GetFlag(FLAGS_pixel_scale).empty()) {
    NORMD_ASSIGN_OR_RETURN(pixel_scale,
                           ParseDouble("pixel_scale", absl::GetFlag(FLAGS_pixel_scale)),
                           Usage(std::string(_.message())));
  }
  NORMD_ASSIGN_OR_RETURN(const v1::DatasetInfo info, client.GetDataset(args[0]), Fail(_));
  NORMD_ASSIGN_OR_RETURN(uint64_t version, ResolveVersion(client, args[0]), Fail(_));
  if (version == 0)
    version = info.pinned_version() != 0 ? info.pinned_version() : info.latest_version();
  if (version == 0) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("dataset \"", args[0], "\" has no frozen version; freeze it first")));
  }
  NORMD_ASSIGN_OR_RETURN(const v1::GetStatsResponse stats,
                         client.GetStats(args[0], version, v1::SPLIT_TRAIN), Fail(_));
  std::printf("%s\n", ExportToJson(info, stats, format, eps, pixel_scale).c_str());
  return 0;
}

int Info(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("info takes one dataset name");
  NORMD_ASSIGN_OR_RETURN(v1::DatasetInfo info, client.GetDataset(args[0]), Fail(_));
  PrintInfo(info);
  return 0;
}

int List(NormdClient& client, const std::vector<char*>& args) {
  if (!args.empty()) return Usage("list takes no arguments");
  NORMD_ASSIGN_OR_RETURN(std::vector<v1::DatasetInfo> datasets, client.ListDatasets(), Fail(_));
  std::printf("%-32s %-6s %9s %14s %8s\n", "NAME", "LAYOUT", "CHANNELS", "TRAIN_SAMPLES", "LATEST");
  for (const v1::DatasetInfo& info : datasets) {
    uint64_t train = 0;
    for (const v1::SplitTotals& t : info.totals()) {
      if (t.split() == v1::SPLIT_TRAIN) train = t.samples();
    }
    std::printf("%-32s %-6s %9lld %14llu %8llu\n", info.spec().name().c_str(),
                LayoutText(info.spec().layout()).c_str(),
                static_cast<long long>(info.spec().channels()),
                static_cast<unsigned long long>(train),
                static_cast<unsigned long long>(info.latest_version()));
  }
  return 0;
}

int Delete(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("delete takes one dataset name");
  NORMD_RETURN_IF_ERROR(client.DeleteDataset(args[0]), Fail(_));
  std::printf("deleted %s\n", args[0]);
  return 0;
}

int Health(NormdClient& client, const std::vector<char*>& args) {
  NORMD_ASSIGN_OR_RETURN(grpc::health::v1::HealthCheckResponse::ServingStatus status,
                         client.CheckHealth(), Fail(_));
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(status).c_str());
  return status == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace normd
