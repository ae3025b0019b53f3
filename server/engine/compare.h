// Compare: resolves the two sides of a drift comparison (a live split, a frozen
// version's split, or a version's live traffic) and measures drift (core/drift.h).
#ifndef NORMD_SERVER_ENGINE_COMPARE_H_
#define NORMD_SERVER_ENGINE_COMPARE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/drift.h"
#include "server/engine/dataset_engine.h"

namespace normd {

struct StatisticsSource {
  enum class Kind { kLive, kFrozen, kTraffic };
  Kind kind = Kind::kFrozen;
  Split split = Split::kTrain;  // kLive, kFrozen
  uint64_t version = 0;         // kFrozen, kTraffic; 0: the pinned or latest version
  TrafficWindowKind window = TrafficWindowKind::kSinceStart;  // kTraffic
};

struct CompareCall {
  std::string dataset;
  StatisticsSource reference;
  StatisticsSource candidate;
  DriftThresholds thresholds;
  uint32_t bins = kDefaultDriftBins;
  bool equal_width_bins = false;
};

struct CompareResult {
  DriftReport report;
  std::string reference;  // each side in words: "version 3 train"
  std::string candidate;
};

absl::StatusOr<CompareResult> CompareSources(const DatasetEngine& engine, const CompareCall& call);

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_COMPARE_H_
