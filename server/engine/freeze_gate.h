// A freeze gate: checks the statistics about to become a version (counts, and drift
// from the previous version's training split) and refuses the freeze or marks the
// version with what it found.
#ifndef NORMD_SERVER_ENGINE_FREEZE_GATE_H_
#define NORMD_SERVER_ENGINE_FREEZE_GATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dataset_spec.h"
#include "core/dataset_statistics.h"
#include "core/drift.h"

namespace normd {

struct FreezeGate {
  uint64_t min_train_count = 0;          // per channel
  std::optional<DriftThresholds> drift;  // unset: counts only
  bool mark = false;                     // freeze anyway and keep the findings
};

// What the gate finds wrong with `candidate` (empty: it passes); `previous` is the
// previous version's statistics (null for a first version, which checks counts only).
// With `mark` unset, findings are FAILED_PRECONDITION naming every one of them.
absl::StatusOr<std::vector<std::string>> CheckFreezeGate(const FreezeGate& gate,
                                                         const DatasetSpec& spec,
                                                         const DatasetStatistics& candidate,
                                                         const DatasetStatistics* previous,
                                                         uint64_t previous_version);

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_FREEZE_GATE_H_
