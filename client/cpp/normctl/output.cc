#include "client/cpp/normctl/output.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace normd {

// What absl prints for --helpfull; normctl's own help comes from command_table.h.
const char kUsage[] =
    "the command-line client for normd; `normctl help` lists the commands and "
    "`normctl help COMMAND` a command's flags";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "normctl: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

int FailLocal(const absl::Status& status) {
  std::fprintf(stderr, "normctl: %s\n", std::string(status.message()).c_str());
  return 2;
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "normctl: %s\n(`normctl help` lists the commands, `normctl help COMMAND` "
                       "a command's flags)\n", message.c_str());
  return 2;
}

std::string LayoutText(v1::Layout layout) {
  return layout == v1::LAYOUT_UNSPECIFIED ? "?" : v1::Layout_Name(layout).substr(7);
}

std::string AccumulatorText(const v1::DatasetSpec& spec) {
  if (!spec.has_running_average()) return "exact";
  return spec.running_average().has_momentum()
             ? absl::StrCat("running(momentum=", spec.running_average().momentum(), ")")
             : "running(cumulative)";
}

void PrintInfo(const v1::DatasetInfo& info) {
  const v1::DatasetSpec& spec = info.spec();
  std::printf("%s: layout %s, %lld channels, %s, non-finite %s\n", spec.name().c_str(),
              LayoutText(spec.layout()).c_str(), static_cast<long long>(spec.channels()),
              AccumulatorText(spec).c_str(),
              spec.nonfinite_policy() == v1::NONFINITE_POLICY_SKIP ? "skipped" : "rejected");
  if (spec.sketch().disabled()) {
    std::printf("  no quantile sketches\n");
  } else {
    std::printf("  quantile sketches: relative accuracy %.17g, at most %u buckets a channel%s\n",
                spec.sketch().relative_accuracy(), spec.sketch().max_buckets(),
                spec.sketch().center_size() > 0 ? ", centred per channel" : "");
  }
  if (spec.histogram_edges_size() > 0) {
    std::printf(
        "  fixed histograms: %s\n",
        spec.histogram_edges_size() == 1
            ? absl::StrCat(spec.histogram_edges(0).edges_size() - 1, " bins for every channel")
                  .c_str()
            : "bins per channel");
  }
  for (const v1::SplitTotals& t : info.totals()) {
    std::printf("  %-10s %llu batches, %llu samples\n",
                absl::AsciiStrToLower(v1::Split_Name(t.split()).substr(6)).c_str(),
                static_cast<unsigned long long>(t.batches()),
                static_cast<unsigned long long>(t.samples()));
  }
  for (const v1::VersionInfo& v : info.versions()) {
    std::printf("  version %llu: %llu train samples%s\n",
                static_cast<unsigned long long>(v.version()),
                static_cast<unsigned long long>(v.train_samples()),
                v.version() == info.pinned_version() ? " (pinned: prod)" : "");
    for (const std::string& finding : v.gate_findings()) {
      std::printf("    gate: %s\n", finding.c_str());
    }
  }
}

}  // namespace normd
