#include "client/cpp/exactly_once_fit.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "client/cpp/resend.h"
#include "common/status_macros.h"

namespace normd {
namespace {

// Pulls batches from `next` until `stream_bytes` are held; false at the end.
absl::StatusOr<bool> FillStream(BatchSource next, size_t stream_bytes,
                                std::vector<v1::Tensor>& pending) {
  size_t bytes = 0;
  while (pending.empty() || bytes < stream_bytes) {
    NORMD_ASSIGN_OR_RETURN(std::optional<v1::Tensor> batch, next());
    if (!batch.has_value()) break;
    bytes += batch->data().size();
    pending.push_back(*std::move(batch));
  }
  return !pending.empty();
}

// One attempt at one stream. The batches are copied into the requests: they are kept
// for a resend until the server acknowledges them.
absl::StatusOr<v1::IngestResponse> SendStream(NormdClient& client, absl::string_view dataset,
                                              v1::Split split, WriterPosition position,
                                              const std::vector<v1::Tensor>& pending, bool resend,
                                              absl::Time deadline) {
  std::unique_ptr<IngestStream> stream = client.StartIngest(
      dataset, std::move(position), resend, resend ? deadline : absl::InfiniteFuture());
  for (const v1::Tensor& batch : pending) {
    if (!stream->Write(split, batch).ok()) break;  // Finish() says why
  }
  return stream->Finish();
}

}  // namespace

absl::StatusOr<FitResult> Fit(NormdClient& client, absl::string_view dataset, v1::Split split,
                              BatchSource next, FitOptions options) {
  FitResult result;
  result.writer_id = options.writer_id.empty()
                         ? absl::StrCat("cpp-", absl::Hex(absl::Uniform<uint64_t>(absl::BitGen())))
                         : options.writer_id;
  result.writer_sequence = options.first_sequence - 1;
  // Batches are numbered by this call, not from the replies: a resumed job's early
  // streams come back as duplicates carrying the server's later mark.
  uint64_t next_sequence = options.first_sequence;
  const absl::Time deadline = absl::Now() + options.retry_for;
  std::vector<v1::Tensor> pending;
  while (true) {
    NORMD_ASSIGN_OR_RETURN(const bool more, FillStream(next, options.stream_bytes, pending));
    if (!more) return result;
    const WriterPosition position{result.writer_id, next_sequence};
    NORMD_ASSIGN_OR_RETURN(const v1::IngestResponse reply,
                           SendWithResends(
                               [&](bool resend) {
                                 return SendStream(client, dataset, split, position, pending,
                                                   resend, deadline);
                               },
                               deadline,
                               [&](const absl::Status& status) {
                                 ++result.resends;
                                 if (options.on_resend) options.on_resend(status);
                               }));
    next_sequence += pending.size();
    result.writer_sequence = reply.writer_sequence();
    result.batches += reply.batches();
    result.duplicate_batches += reply.duplicate_batches();
    result.samples += reply.samples();
    result.values += reply.values();
    result.skipped_nonfinite += reply.skipped_nonfinite();
    pending.clear();
  }
}

}  // namespace normd
