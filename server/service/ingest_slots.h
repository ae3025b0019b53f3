// Admission of Ingest streams: at most so many at once, at most a share of them per
// caller, and none left open by a client that stopped sending. A stream waiting for
// its next message longer than the idle timeout is expired: cancelled, with nothing
// of it applied. When every slot is taken, a caller holding fewer streams than the
// largest holder takes one of that holder's waiting streams' slots (the one waiting
// longest is cancelled, to be resent): a slot is kept by progress, and no caller, nor
// a few, can lock the others out. With the callback API an idle stream costs no
// thread, only its slot.
#ifndef NORMD_SERVER_SERVICE_INGEST_SLOTS_H_
#define NORMD_SERVER_SERVICE_INGEST_SLOTS_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace normd {

// A stream the slots can expire, in two steps: marked under the slots' lock (so
// it cannot be released meanwhile), then finished outside it (finishing may run
// gRPC's reactions, and the release, on the same thread).
class IdleStream {
 public:
  virtual ~IdleStream() = default;
  // True when the stream was still waiting for a message and is now expired; false
  // when it is busy with one (then it is not idle after all).
  virtual bool MarkExpired() = 0;
  // Ends an expired stream with `why`. Until this is called it cannot end by itself,
  // so it is still there to call.
  virtual void FinishExpired(const absl::Status& why) = 0;
};

struct IngestSlotLimits {
  int max_streams = 1024;
  int max_streams_per_caller = 128;
  absl::Duration idle_timeout = absl::Seconds(60);
};

class IngestSlots {
 public:
  explicit IngestSlots(IngestSlotLimits limits);
  ~IngestSlots();  // stops the watchdog; every stream must have been released

  using SlotId = uint64_t;
  // A slot for `stream`, held by `caller`; RESOURCE_EXHAUSTED naming the limit when
  // the server or this caller has none left.
  absl::StatusOr<SlotId> Acquire(const std::string& caller, IdleStream* stream);
  // The stream is waiting for a message from now on (its idle clock starts).
  void Waiting(SlotId slot);
  void Release(SlotId slot);

  int active() const;
  const IngestSlotLimits& limits() const { return limits_; }

 private:
  struct Slot {
    std::string caller;
    IdleStream* stream;
    absl::Time waiting_since;  // since its last message (its idle clock)
    bool expired = false;      // finishing: its slot is as good as free
  };
  void Watch();
  absl::StatusOr<SlotId> AcquireLocked(const std::string& caller, IdleStream* stream,
                                       IdleStream*& preempted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // With every slot taken: expires the longest-waiting stream of the caller holding
  // the most, when a caller holding `held` would still hold fewer; null when none
  // can go.
  IdleStream* PreemptFor(int held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `slot`'s stream expired, if it is waiting and not already; true when it was.
  bool Expire(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const IngestSlotLimits limits_;
  mutable absl::Mutex mu_;
  SlotId next_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<SlotId, Slot> slots_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> per_caller_ ABSL_GUARDED_BY(mu_);
  int expired_ ABSL_GUARDED_BY(mu_) = 0;  // slots whose streams are finishing
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_INGEST_SLOTS_H_
