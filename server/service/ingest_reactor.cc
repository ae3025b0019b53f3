#include "server/service/ingest_reactor.h"

#include <chrono>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "grpcpp/server_context.h"
#include "server/service/grpc_status.h"
#include "wire/core_proto.h"

namespace normd {

IngestReactor::IngestReactor(const IngestServices& services, absl::StatusOr<Principal> caller,
                             grpc::CallbackServerContext* context, grpc::ByteBuffer* response)
    : services_(services), context_(context), response_(response) {
  if (!caller.ok()) {
    End(caller.status());
    return;
  }
  absl::StatusOr<IngestSlots::SlotId> slot = services_.slots->Acquire(caller->ShareKey(), this);
  if (!slot.ok()) {
    End(slot.status());
    return;
  }
  slot_ = *slot;
  regions_.emplace(services_.regions, *caller);
  Read();
}

void IngestReactor::Read() {
  // The idle clock restarts before the stream can be seen waiting.
  services_.slots->Waiting(*slot_);
  state_.store(State::kReading);
  StartRead(&received_);
}

bool IngestReactor::MarkExpired() {
  State reading = State::kReading;
  return state_.compare_exchange_strong(reading, State::kExpired);
}

void IngestReactor::FinishExpired(const absl::Status& why) {
  // The outstanding read then ends, not ok, and OnReadDone leaves the stream be.
  End(why);
}

void IngestReactor::OnReadDone(bool ok) {
  State reading = State::kReading;
  // Expired: FinishExpired ends the stream (or has already).
  if (!state_.compare_exchange_strong(reading, State::kWorking)) return;
  services_.tasks->Post([this, ok] { Process(ok); });
}

void IngestReactor::Process(bool ok) {
  if (!ok) {
    End(CommitStream());
    return;
  }
  Continue(AddBatch());
}

void IngestReactor::Continue(const absl::StatusOr<bool>& added) {
  if (!added.ok()) {
    End(added.status());
    return;
  }
  if (!*added) {
    // The rest of a message's summaries waits behind the other streams' work.
    services_.tasks->Post([this] { Continue(AddSummaries()); });
    return;
  }
  ++index_;
  Read();
}

absl::Status IngestReactor::Rejected(const absl::Status& status) const {
  return absl::Status(status.code(),
                      absl::StrCat("batch ", index_,
                                   " rejected, nothing from this stream was applied: ",
                                   status.message()));
}

absl::StatusOr<bool> IngestReactor::AddBatch() {
  NORMD_ASSIGN_OR_RETURN(const std::span<const std::byte> bytes,
                         ContiguousBytes(received_, scratch_, slices_), Rejected(_));
  NORMD_RETURN_IF_ERROR(ParseIngestRequest(bytes, message_), Rejected(_));
  const v1::IngestRequest& request = message_.fields;
  if (!transaction_.has_value()) {
    NORMD_ASSIGN_OR_RETURN(IngestTransaction transaction,
                           services_.engine->BeginIngest(request.dataset()));
    transaction_.emplace(std::move(transaction));
  }
  if (!request.dataset().empty() && request.dataset() != transaction_->dataset()) {
    return Rejected(absl::InvalidArgumentError(absl::StrCat(
        "the stream began with dataset \"", transaction_->dataset(), "\" but this batch names \"",
        request.dataset(), "\"; one stream feeds one dataset")));
  }
  NORMD_ASSIGN_OR_RETURN(const IngestBatch batch, IngestBatchFromProto(message_, *regions_),
                         Rejected(_));
  if (std::holds_alternative<SummaryEntries*>(batch.payload)) {
    summaries_split_ = batch.split;
    return AddSummaries();
  }
  // The limits first: ReadOnce may copy the batch.
  NORMD_RETURN_IF_ERROR(CheckElements(services_.limits,
                                      std::get<ValidatedTensor>(batch.payload).elements(),
                                      "the batch"),
                        Rejected(_));
  NORMD_RETURN_IF_ERROR(
      CheckElements(services_.limits, batch.weights.has_value() ? batch.weights->elements() : 0,
                    "the weights"),
      Rejected(_));
  NORMD_ASSIGN_OR_RETURN(const ValidatedTensor tensor,
                         ReadOnce(std::get<ValidatedTensor>(batch.payload), batch.in_region),
                         Rejected(_));
  NORMD_RETURN_IF_ERROR(
      transaction_->Add(batch.split, tensor, batch.identity,
                        batch.weights.has_value() ? &batch.weights->view() : nullptr),
      Rejected(_));
  bytes_ += static_cast<int64_t>(tensor.view().bytes.size());
  return true;
}

absl::StatusOr<ValidatedTensor> IngestReactor::ReadOnce(const ValidatedTensor& batch,
                                                        bool in_region) {
  if (!in_region) return batch;
  // The fit reads a batch more than once (moments, sketches, histograms); a caller
  // rewriting its region meanwhile must not make them disagree, so they all read one
  // copy.
  const std::span<const std::byte> shared = batch.view().bytes;
  region_copy_.assign(shared.begin(), shared.end());
  TensorView copy = batch.view();
  copy.bytes = region_copy_;
  return ValidateTensor(copy);
}

absl::StatusOr<bool> IngestReactor::AddSummaries() {
  // Checked between slices, so a cancelled stream, a passed deadline or the server's
  // shutdown stops a message of many summaries within one slice.
  if (context_->IsCancelled()) {
    return absl::CancelledError(
        "the Ingest stream was cancelled while its summaries were added; nothing from it "
        "was applied");
  }
  SummaryEntries& entries = message_.summaries;
  const BatchIdentity first{message_.fields.writer_id(), message_.fields.sequence()};
  for (size_t n = 0; n < kSummariesPerTask; ++n) {
    const size_t i = entries.taken();
    NORMD_ASSIGN_OR_RETURN(const bool more, entries.Next(summary_message_), Rejected(_));
    if (!more) return true;
    BatchIdentity identity = first;
    if (!identity.writer.empty()) identity.sequence += i;
    absl::StatusOr<MomentsSummary> summary = MomentsSummaryFromProto(summary_message_);
    absl::Status added = summary.status();
    if (added.ok()) added = transaction_->AddSummary(summaries_split_, *summary, identity).status();
    if (!added.ok()) {
      return Rejected(absl::Status(added.code(),
                                   absl::StrCat("summaries[", i, "]: ", added.message())));
    }
  }
  return false;
}

absl::Status IngestReactor::CommitStream() {
  // A stream the client cancelled (its batch iterator failed, it gave up) or whose
  // deadline passed also ends the reads; only a stream closed normally is committed.
  if (context_->IsCancelled()) {
    return absl::CancelledError(
        "the client cancelled the Ingest stream; nothing from it was applied");
  }
  if (std::chrono::system_clock::now() >= context_->deadline()) {
    return absl::DeadlineExceededError(
        "the Ingest stream's deadline passed; nothing from it was applied");
  }
  if (!transaction_.has_value()) {
    return absl::InvalidArgumentError(
        "the Ingest stream held no batch; expected at least one IngestRequest");
  }
  NORMD_ASSIGN_OR_RETURN(const DatasetTotals totals, transaction_->Commit());
  v1::IngestResponse response;
  FillIngestResponse(*transaction_, totals, &response);
  grpc::Slice serialized(response.SerializeAsString());
  *response_ = grpc::ByteBuffer(&serialized, 1);
  if (services_.metrics != nullptr) {
    services_.metrics->Ingested(static_cast<int64_t>(transaction_->delta().batches()),
                                static_cast<int64_t>(transaction_->duplicates()),
                                static_cast<int64_t>(transaction_->delta().totals().values),
                                bytes_);
  }
  return absl::OkStatus();
}

void IngestReactor::End(const absl::Status& status) { Finish(ToGrpcStatus(status)); }

void IngestReactor::OnDone() {
  if (slot_.has_value()) services_.slots->Release(*slot_);
  delete this;
}

}  // namespace normd
