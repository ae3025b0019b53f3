#include "server/engine/freeze_gate.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace normd {

absl::StatusOr<std::vector<std::string>> CheckFreezeGate(const FreezeGate& gate,
                                                         const DatasetSpec& spec,
                                                         const DatasetStatistics& candidate,
                                                         const DatasetStatistics* previous,
                                                         uint64_t previous_version) {
  std::vector<std::string> findings;
  const SplitStatistics& train = candidate.split(Split::kTrain);
  for (size_t c = 0; c < train.moments.size(); ++c) {
    if (train.moments[c].count < gate.min_train_count) {
      findings.push_back(absl::StrCat("channel ", c, ": ", train.moments[c].count,
                                      " train values, below the minimum ", gate.min_train_count));
    }
  }
  if (gate.drift.has_value() && previous != nullptr) {
    NORMD_ASSIGN_OR_RETURN(
        const DriftReport report,
        CompareStatistics(previous->split(Split::kTrain), train, spec, *gate.drift,
                          kDefaultDriftBins, absl::StrCat("version ", previous_version, " train"),
                          "the new train statistics"));
    for (size_t c = 0; c < report.channels.size(); ++c) {
      for (const NamedMeasure& m : MeasuresOf(report.channels[c])) {
        if (m.measure->level != DriftLevel::kFail) continue;
        findings.push_back(absl::StrCat("channel ", c, ": ", m.name, " ", m.measure->value,
                                        " against version ", previous_version, " fails (",
                                        m.measure->meaning, ")"));
      }
    }
  }
  if (!findings.empty() && !gate.mark) {
    return absl::FailedPreconditionError(
        absl::StrCat("the freeze gate refused a new version of dataset \"", spec.name,
                     "\": ", absl::StrJoin(findings, "; ")));
  }
  return findings;
}

}  // namespace normd
