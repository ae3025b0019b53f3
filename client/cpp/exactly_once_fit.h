// Fit: streams batches into a dataset exactly once, resending what the server did not
// acknowledge after a restart, a broken connection or a full disk. The C++ counterpart
// of the Python client's Client.fit.
#ifndef NORMD_CLIENT_CPP_EXACTLY_ONCE_FIT_H_
#define NORMD_CLIENT_CPP_EXACTLY_ONCE_FIT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cpp/normd_client.h"
#include "normd/v1/normd.pb.h"

namespace normd {

struct FitOptions {
  // Names this writer to the server; empty: a new random id. Reuse it, with the same
  // batches from `first_sequence`, to resume after the calling process restarted.
  std::string writer_id;
  uint64_t first_sequence = 1;
  // Batches go in streams of up to this many data bytes (at least one batch each).
  // Each stream is a transaction, kept in memory until the server acknowledges it.
  size_t stream_bytes = size_t{64} << 20;
  // How long resends may go on, in all, while the server is unreachable, restarting
  // or refusing writes.
  absl::Duration retry_for = absl::Minutes(5);
  // Called before each resend with the status that caused it (for logging).
  std::function<void(const absl::Status&)> on_resend;
  // Reduce each batch here (normd::Moments, as the dataset would reduce it) and send
  // its summary instead: O(channels) per batch, up to `summaries_per_stream` of them in
  // one message and one commit, each with its batch's sequence number.
  bool local = false;
  size_t summaries_per_stream = 256;
};

struct FitResult {
  std::string writer_id;
  uint64_t writer_sequence = 0;    // the writer's last committed sequence
  uint64_t batches = 0;            // applied by this call
  uint64_t duplicate_batches = 0;  // committed earlier (a lost reply, a resumed job)
  uint64_t samples = 0;
  uint64_t values = 0;
  uint64_t skipped_nonfinite = 0;
  int resends = 0;
};

// The next batch, std::nullopt at the end, or an error that stops the fit (the open
// stream is then not sent; streams acknowledged before stay applied).
using BatchSource = absl::FunctionRef<absl::StatusOr<std::optional<v1::Tensor>>()>;

// Resends after UNAVAILABLE, ABORTED (a concurrent resend of the same writer) and
// CANCELLED (a server shutting down), with a jittered backoff; any other error is
// returned at once. The server drops batches it had already committed, so every batch
// counts exactly once however often its stream was sent.
absl::StatusOr<FitResult> Fit(NormdClient& client, absl::string_view dataset, v1::Split split,
                              BatchSource next, FitOptions options = {});

}  // namespace normd

#endif  // NORMD_CLIENT_CPP_EXACTLY_ONCE_FIT_H_
