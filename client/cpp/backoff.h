// Waits between resends: exponential backoff with full jitter. A server that is up but
// refusing writes (a full disk answers UNAVAILABLE) is not hammered, and writers that
// were refused together do not come back in lockstep.
#ifndef NORMD_CLIENT_CPP_BACKOFF_H_
#define NORMD_CLIENT_CPP_BACKOFF_H_

#include <algorithm>

#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace normd {

class Backoff {
 public:
  explicit Backoff(absl::Duration first = absl::Milliseconds(50),
                   absl::Duration cap = absl::Seconds(2))
      : ceiling_(first), cap_(cap) {}

  // Sleeps a random time below the current ceiling, never past `deadline`, then
  // doubles the ceiling up to the cap.
  void Wait(absl::Time deadline) {
    absl::SleepFor(std::min(deadline - absl::Now(), ceiling_ * absl::Uniform(random_, 0.0, 1.0)));
    ceiling_ = std::min(cap_, ceiling_ * 2);
  }

 private:
  absl::Duration ceiling_;
  absl::Duration cap_;
  absl::BitGen random_;
};

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_BACKOFF_H_
