// Resending an Ingest stream that failed for a passing reason: the one resend loop,
// shared by normd::Fit and normctl. With a writer id the server counts each batch
// once however often it is sent.
#ifndef NORMD_CLIENT_CPP_RESEND_H_
#define NORMD_CLIENT_CPP_RESEND_H_

#include <algorithm>

#include "absl/functional/function_ref.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "normd/v1/normd.pb.h"

namespace normd {

// Waits between resends: exponential backoff with full jitter. A server that is up but
// refusing writes (a full disk answers UNAVAILABLE) is not hammered, and writers that
// were refused together do not come back in lockstep.
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

// Whether an Ingest that failed with `status` may simply be sent again
// (UNAVAILABLE, ABORTED, CANCELLED).
bool IsWorthResending(const absl::Status& status);

// Calls `attempt(resend)` (resend false the first time) until it succeeds, fails in
// a way a resend cannot mend, or `deadline` passes, waiting with Backoff between
// tries and telling `on_resend` the failure before each resend. Returns the last
// attempt's result.
absl::StatusOr<v1::IngestResponse> SendWithResends(
    absl::FunctionRef<absl::StatusOr<v1::IngestResponse>(bool resend)> attempt, absl::Time deadline,
    absl::FunctionRef<void(const absl::Status&)> on_resend);

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_RESEND_H_
