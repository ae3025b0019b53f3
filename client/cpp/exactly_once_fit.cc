#include "client/cpp/exactly_once_fit.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "client/cpp/local.h"
#include "client/cpp/resend.h"
#include "common/status_macros.h"
#include "wire/core_proto.h"

namespace normd {
namespace {

// Pulls batches from `next` until `stream_bytes` are held (or, reducing locally,
// `summaries_per_stream` batches are summarised, each before the next is pulled);
// false at the end.
absl::StatusOr<bool> FillStream(BatchSource next, const FitOptions& options,
                                const std::optional<DatasetSpec>& local,
                                std::vector<v1::Tensor>& pending,
                                std::vector<MomentsSummary>& summaries) {
  size_t bytes = 0;
  while (local.has_value() ? summaries.size() < options.summaries_per_stream
                           : pending.empty() || bytes < options.stream_bytes) {
    NORMD_ASSIGN_OR_RETURN(std::optional<v1::Tensor> batch, next());
    if (!batch.has_value()) break;
    if (local.has_value()) {
      NORMD_ASSIGN_OR_RETURN(const TensorView view, TensorViewOf(*batch, "batch"));
      NORMD_ASSIGN_OR_RETURN(MomentsSummary summary,
                             Moments(view, local->layout, local->channels, local->nonfinite,
                                     local->sketch.has_value() ? &*local->sketch : nullptr),
                             absl::Status(_.code(), absl::StrCat("batch ", summaries.size(),
                                                                 " rejected, nothing from this "
                                                                 "stream was applied: ",
                                                                 _.message())));
      summaries.push_back(std::move(summary));
      continue;
    }
    bytes += batch->data().size();
    pending.push_back(*std::move(batch));
  }
  return !pending.empty() || !summaries.empty();
}

// One attempt at one stream. The batches are copied into the requests: they are kept
// for a resend until the server acknowledges them.
absl::StatusOr<v1::IngestResponse> SendStream(NormdClient& client, absl::string_view dataset,
                                              v1::Split split, WriterPosition position,
                                              const std::vector<v1::Tensor>& pending,
                                              const std::vector<MomentsSummary>& summaries,
                                              bool resend, absl::Time deadline) {
  std::unique_ptr<IngestStream> stream = client.StartIngest(
      dataset, std::move(position), resend, resend ? deadline : absl::InfiniteFuture());
  if (!summaries.empty()) (void)stream->WriteSummaries(split, summaries);  // Finish() says why
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
  std::optional<DatasetSpec> local;  // how the dataset reduces batches
  if (options.local) {               // the dataset's spec, waiting for the server as resends do
    absl::StatusOr<v1::DatasetInfo> found = client.GetDataset(dataset);
    for (Backoff backoff; !found.ok() && IsWorthResending(found.status()) && absl::Now() < deadline;
         found = client.GetDataset(dataset)) {
      ++result.resends;
      if (options.on_resend) options.on_resend(found.status());
      backoff.Wait(deadline);
    }
    NORMD_ASSIGN_OR_RETURN(const v1::DatasetInfo info, std::move(found));
    NORMD_ASSIGN_OR_RETURN(local, DatasetSpecFromProto(info.spec(), UnsetSketch::kNone));
  }
  std::vector<v1::Tensor> pending;
  std::vector<MomentsSummary> summaries;
  while (true) {
    NORMD_ASSIGN_OR_RETURN(const bool more, FillStream(next, options, local, pending, summaries));
    if (!more) return result;
    const WriterPosition position{result.writer_id, next_sequence};
    NORMD_ASSIGN_OR_RETURN(const v1::IngestResponse reply,
                           SendWithResends(
                               [&](bool resend) {
                                 return SendStream(client, dataset, split, position, pending,
                                                   summaries, resend, deadline);
                               },
                               deadline,
                               [&](const absl::Status& status) {
                                 ++result.resends;
                                 if (options.on_resend) options.on_resend(status);
                               }));
    next_sequence += pending.size() + summaries.size();
    result.writer_sequence = reply.writer_sequence();
    result.batches += reply.batches();
    result.duplicate_batches += reply.duplicate_batches();
    result.samples += reply.samples();
    result.values += reply.values();
    result.skipped_nonfinite += reply.skipped_nonfinite();
    pending.clear();
    summaries.clear();
  }
}

}  // namespace normd
