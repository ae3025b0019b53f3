#include "server/engine/compare.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/dataset_entry.h"

namespace normd {
namespace {

// One side's statistics, kept alive by whatever owns them.
struct ResolvedSide {
  std::shared_ptr<const void> owner;
  const SplitStatistics* split = nullptr;
  std::string words;
};

absl::StatusOr<ResolvedSide> Resolve(const DatasetEngine& engine, DatasetEntry& entry,
                                     const StatisticsSource& source) {
  ResolvedSide side;
  switch (source.kind) {
    case StatisticsSource::Kind::kLive: {
      NORMD_ASSIGN_OR_RETURN(const StatisticsResult live, engine.GetStatistics(entry.spec.name, 0));
      side.split = &live.stats->split(source.split);
      side.owner = live.stats;
      side.words = absl::StrCat("live ", SplitName(source.split));
      return side;
    }
    case StatisticsSource::Kind::kFrozen: {
      NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<const FrozenSnapshot> snapshot,
                             engine.Snapshot(entry, source.version));
      side.split = &snapshot->stats.split(source.split);
      side.owner = snapshot;
      side.words = absl::StrCat("version ", snapshot->version, " ", SplitName(source.split));
      return side;
    }
    case StatisticsSource::Kind::kTraffic: {
      NORMD_ASSIGN_OR_RETURN(TrafficResult traffic,
                             engine.GetTraffic(entry.spec.name, source.version, source.window));
      auto held = std::make_shared<const TrafficSnapshot>(std::move(traffic.traffic));
      side.split = &held->stats;
      side.words = absl::StrCat(
          "live traffic of version ", traffic.version,
          source.window == TrafficWindowKind::kLastHour ? " (last hour, " : " (since start, ",
          held->sampled_requests, " of ", held->requests, " requests sampled)");
      side.owner = std::move(held);
      return side;
    }
  }
  return absl::InternalError("unknown statistics source");
}

}  // namespace

absl::StatusOr<CompareResult> CompareSources(const DatasetEngine& engine, const CompareCall& call) {
  NORMD_RETURN_IF_ERROR(ValidateDriftThresholds(call.thresholds));
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<DatasetEntry> entry, engine.Find(call.dataset));
  NORMD_ASSIGN_OR_RETURN(const ResolvedSide reference, Resolve(engine, *entry, call.reference));
  NORMD_ASSIGN_OR_RETURN(const ResolvedSide candidate, Resolve(engine, *entry, call.candidate));
  CompareResult result;
  NORMD_ASSIGN_OR_RETURN(
      result.report,
      CompareStatistics(*reference.split, *candidate.split, entry->spec, call.thresholds, call.bins,
                        reference.words, candidate.words, call.equal_width_bins));
  result.reference = reference.words;
  result.candidate = candidate.words;
  return result;
}

}  // namespace normd
