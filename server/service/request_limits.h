// What one client may ask of the server; beyond these, RESOURCE_EXHAUSTED. The
// defaults here are the server's defaults (flags and ServerOptions start from them).
#ifndef NORMD_SERVER_SERVICE_REQUEST_LIMITS_H_
#define NORMD_SERVER_SERVICE_REQUEST_LIMITS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace normd {

struct RequestLimits {
  // Values in one Ingest batch or Normalize input: bounds the work and the reply
  // memory of a request whatever the message size limit.
  int64_t max_request_elements = int64_t{1} << 28;
  // Ingest streams open at once. An idle stream costs no thread (they are served by
  // gRPC's callback API), only its state: O(channels) and its last message's buffer.
  int max_concurrent_ingests = 1024;
  // Of those, what one caller (token; without tokens, peer host) may hold.
  int max_ingests_per_caller = 128;
  // An Ingest stream that sends nothing for this long is cancelled, nothing applied.
  absl::Duration ingest_idle_timeout = absl::Seconds(60);
  // The largest message: a Normalize reply that could not be sent is refused
  // before any work is done.
  int max_message_bytes = 64 << 20;
};

inline absl::Status CheckElements(const RequestLimits& limits, int64_t elements,
                                  absl::string_view what) {
  if (elements <= limits.max_request_elements) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " has ", elements, " values; this server takes at most ",
                   limits.max_request_elements, " per request (--max_request_elements): split it"));
}

}  // namespace normd

#endif  // NORMD_SERVER_SERVICE_REQUEST_LIMITS_H_
