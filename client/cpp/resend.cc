#include "client/cpp/resend.h"

namespace normd {

bool IsWorthResending(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsAborted(status) || absl::IsCancelled(status);
}

absl::StatusOr<v1::IngestResponse> SendWithResends(
    absl::FunctionRef<absl::StatusOr<v1::IngestResponse>(bool resend)> attempt, absl::Time deadline,
    absl::FunctionRef<void(const absl::Status&)> on_resend) {
  Backoff backoff;
  for (bool resend = false;; resend = true) {
    absl::StatusOr<v1::IngestResponse> reply = attempt(resend);
    if (reply.ok() || !IsWorthResending(reply.status()) || absl::Now() >= deadline) return reply;
    on_resend(reply.status());
    backoff.Wait(deadline);
  }
}

}  // namespace normd
