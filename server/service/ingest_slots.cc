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
  IdleStream* preempted = nullptr;
  absl::StatusOr<SlotId> slot;
  {
    absl::MutexLock lock(&mu_);
    slot = AcquireLocked(caller, stream, preempted);
  }
  // Outside the lock: finishing runs gRPC's reactions, and may release the slot.
  if (preempted != nullptr) {
    preempted->FinishExpired(absl::AbortedError(absl::StrCat(
        "every Ingest slot of the server (", limits_.max_streams,
        ", --max_concurrent_ingests) was taken and this caller held the most, so its stream "
        "that had waited longest for a message made room for another caller's; nothing from "
        "it was applied; resend it")));
  }
  return slot;
}

absl::StatusOr<IngestSlots::SlotId> IngestSlots::AcquireLocked(const std::string& caller,
                                                               IdleStream* stream,
                                                               IdleStream*& preempted) {
  const auto own = per_caller_.find(caller);
  const int held = own == per_caller_.end() ? 0 : own->second;
  if (static_cast<int>(slots_.size()) - expired_ >= limits_.max_streams) {
    preempted = PreemptFor(held);
    if (preempted == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this server already serves ", limits_.max_streams,
          " Ingest streams (--max_concurrent_ingests), and no caller holding more than this "
          "one has a stream waiting; retry when one has finished"));
    }
  }
  if (held >= limits_.max_streams_per_caller) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this caller already has ", held, " Ingest streams open, its share of the server's (",
        "--max_ingests_per_caller); finish one first"));
  }
  ++per_caller_[caller];
  const SlotId slot = next_++;
  slots_.emplace(slot, Slot{caller, stream, absl::Now()});
  return slot;
}

IdleStream* IngestSlots::PreemptFor(int held) {
  const std::string* largest = nullptr;
  int most = 0;
  for (const auto& [holder, count] : per_caller_) {
    if (count > most) {
      largest = &holder;
      most = count;
    }
  }
  // Only a move toward equal shares: the newcomer would still hold fewer.
  if (largest == nullptr || held + 1 >= most) return nullptr;
  std::vector<Slot*> theirs;
  for (auto& [id, slot] : slots_) {
    if (slot.caller == *largest) theirs.push_back(&slot);
  }
  std::sort(theirs.begin(), theirs.end(),
            [](const Slot* a, const Slot* b) { return a->waiting_since < b->waiting_since; });
  // A stream busy with a message is not waiting, and cannot be marked.
  for (Slot* slot : theirs) {
    if (Expire(*slot)) return slot->stream;
  }
  return nullptr;
}

bool IngestSlots::Expire(Slot& slot) {
  // Expired once: after that the stream is finishing, and is released soon.
  if (slot.expired || !slot.stream->MarkExpired()) return false;
  slot.expired = true;
  ++expired_;
  return true;
}

void IngestSlots::Waiting(SlotId slot) {
  absl::MutexLock lock(&mu_);
  slots_.at(slot).waiting_since = absl::Now();
}

void IngestSlots::Release(SlotId slot) {
  absl::MutexLock lock(&mu_);
  const auto found = slots_.find(slot);
  if (found->second.expired) --expired_;
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
        if (slot.waiting_since < cutoff && Expire(slot)) expired.push_back(slot.stream);
      }
    }
    const absl::Status idle = absl::CancelledError(
        absl::StrCat("the Ingest stream sent nothing for ", absl::FormatDuration(limits_.idle_timeout),
                     " (--ingest_idle_timeout) and was cancelled; nothing from it was applied"));
    for (IdleStream* stream : expired) stream->FinishExpired(idle);
  }
}

}  // namespace normd
