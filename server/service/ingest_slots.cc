#include "server/service/ingest_slots.h"

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace normd {

IngestSlots::IngestSlots(IngestSlotLimits limits) : limits_(limits) {
  watchdog_ = std::thread([this] { Watch(); });
}

IngestSlots::~IngestSlots() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watchdog_.join();
}

absl::StatusOr<IngestSlots::SlotId> IngestSlots::Acquire(const std::string& caller,
                                                         IdleStream* stream) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(slots_.size()) >= limits_.max_streams) {
    return absl::ResourceExhaustedError(
        absl::StrCat("this server already serves ", limits_.max_streams,
                     " Ingest streams (--max_concurrent_ingests); retry when one has finished"));
  }
  int& held = per_caller_[caller];
  if (held >= limits_.max_streams_per_caller) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this caller already has ", held, " Ingest streams open, its share of the server's (",
        "--max_ingests_per_caller); finish one first"));
  }
  ++held;
  const SlotId slot = next_++;
  slots_.emplace(slot, Slot{caller, stream, absl::Now()});
  return slot;
}

void IngestSlots::Waiting(SlotId slot) {
  absl::MutexLock lock(&mu_);
  slots_.at(slot).waiting_since = absl::Now();
}

void IngestSlots::Release(SlotId slot) {
  absl::MutexLock lock(&mu_);
  const auto found = slots_.find(slot);
  if (--per_caller_[found->second.caller] == 0) per_caller_.erase(found->second.caller);
  slots_.erase(found);
}

int IngestSlots::active() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(slots_.size());
}

void IngestSlots::Watch() {
  // Checks a few times per timeout, so a stream is expired within 1.25 timeouts.
  const absl::Duration period = std::max(limits_.idle_timeout / 4, absl::Milliseconds(10));
  while (true) {
    std::vector<IdleStream*> expired;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), period)) return;
      const absl::Time cutoff = absl::Now() - limits_.idle_timeout;
      for (auto& [id, slot] : slots_) {
        // Expired once: after that the stream is finishing, and is released soon.
        if (slot.waiting_since < cutoff && slot.stream->MarkExpired()) {
          slot.waiting_since = absl::InfiniteFuture();
          expired.push_back(slot.stream);
        }
      }
    }
    for (IdleStream* stream : expired) stream->FinishExpired();
  }
}

}  // namespace normd
