// The drift commands: compare two sets of statistics, and pin the version readers get.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cpp/normctl/commands.h"
#include "client/cpp/normctl/flags.h"
#include "client/cpp/normctl/output.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "wire/drift_text.h"

namespace normd {
namespace {

std::string LevelText(v1::DriftLevel level) {
  switch (level) {
    case v1::DRIFT_LEVEL_PASS:
      return "pass";
    case v1::DRIFT_LEVEL_WARN:
      return "warn";
    case v1::DRIFT_LEVEL_FAIL:
      return "fail";
    default:
      return "no data";
  }
}

// --fail_on as a level: 0 (never) when unset.
absl::StatusOr<int> FailOnLevel() {
  const std::string text = absl::GetFlag(FLAGS_fail_on);
  if (text == "never") return 0;
  if (text == "warn") return static_cast<int>(v1::DRIFT_LEVEL_WARN);
  if (text == "fail") return static_cast<int>(v1::DRIFT_LEVEL_FAIL);
  return absl::InvalidArgumentError(
      absl::StrCat("--fail_on must be never, warn or fail, got \"", text, "\""));
}

}  // namespace

int Compare(NormdClient& client, const std::vector<char*>& args) {
  if (args.size() != 1) return Usage("compare takes one dataset name");
  v1::CompareRequest request;
  request.set_dataset(args[0]);
  const std::string reference = absl::GetFlag(FLAGS_reference);
  const std::string candidate = absl::GetFlag(FLAGS_candidate);
  if (!reference.empty()) {
    NORMD_RETURN_IF_ERROR(ParseStatisticsSource(reference, request.mutable_reference()),
                          Usage(absl::StrCat("--reference: ", _.message())));
  }
  if (!candidate.empty()) {
    NORMD_RETURN_IF_ERROR(ParseStatisticsSource(candidate, request.mutable_candidate()),
                          Usage(absl::StrCat("--candidate: ", _.message())));
  }
  NORMD_RETURN_IF_ERROR(
      ParseDriftThresholds(absl::GetFlag(FLAGS_thresholds), request.mutable_thresholds()),
      Usage(absl::StrCat("--thresholds: ", _.message())));
  request.set_bins(absl::GetFlag(FLAGS_bins));
  NORMD_ASSIGN_OR_RETURN(const int fail_on, FailOnLevel(), Usage(std::string(_.message())));
  NORMD_ASSIGN_OR_RETURN(const v1::CompareResponse response, client.Compare(request), Fail(_));
  if (absl::GetFlag(FLAGS_json)) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(response, &json, options).ok()) {
      return Fail(absl::InternalError("the reply did not encode as JSON"));
    }
    std::printf("%s\n", json.c_str());
  } else {
    std::printf("%s: %s against %s (PSI and JS over %s bins): %s\n", args[0],
                response.candidate().c_str(), response.reference().c_str(), response.bins().c_str(),
                LevelText(response.level()).c_str());
    std::printf("%8s %8s %16s %14s %10s %10s %10s\n", "channel", "level", "std_mean_diff",
                "var_ratio", "ks", "psi", "js_div");
    for (const v1::ChannelDrift& c : response.channels()) {
      std::printf("%8u %8s %16.4g %14.4g %10.4g %10.4g %10.4g\n", c.channel(),
                  LevelText(c.level()).c_str(), c.standardized_mean_difference().value(),
                  c.variance_ratio().value(), c.ks().value(), c.psi().value(),
                  c.js_divergence().value());
    }
    for (const v1::ChannelDrift& c : response.channels()) {
      for (const v1::DriftMeasure* m : {&c.standardized_mean_difference(), &c.variance_ratio(),
                                        &c.ks(), &c.psi(), &c.js_divergence()}) {
        if (m->level() < v1::DRIFT_LEVEL_WARN) continue;
        std::printf("  channel %u %s: %s\n", c.channel(), LevelText(m->level()).c_str(),
                    m->meaning().c_str());
      }
    }
  }
  // 3 distinguishes "drifted" from errors (1) and usage (2), for CI gates.
  return fail_on != 0 && static_cast<int>(response.level()) >= fail_on ? 3 : 0;
}

int Pin(NormdClient& client, const std::vector<char*>& args) {
  const bool rollback = absl::GetFlag(FLAGS_rollback);
  if (args.size() != (rollback ? 1u : 2u)) {
    return Usage("pin takes a dataset name and a version (0: unpin), or a name and --rollback");
  }
  uint64_t version = 0;
  if (!rollback && !absl::SimpleAtoi(args[1], &version)) {
    return Usage(absl::StrCat("pin: the version must be a number, got \"", args[1], "\""));
  }
  NORMD_ASSIGN_OR_RETURN(const v1::DatasetInfo info, client.PinVersion(args[0], version, rollback),
                         Fail(_));
  if (info.pinned_version() == 0) {
    std::printf("%s: no pin; readers get the latest version (%llu)\n", args[0],
                static_cast<unsigned long long>(info.latest_version()));
  } else {
    std::printf("%s: version %llu pinned as prod (latest %llu)\n", args[0],
                static_cast<unsigned long long>(info.pinned_version()),
                static_cast<unsigned long long>(info.latest_version()));
  }
  return 0;
}

}  // namespace normd
