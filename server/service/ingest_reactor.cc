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

namespace normd {

IngestReactor::IngestReactor(const IngestServices& services, absl::StatusOr<Principal> caller,
                             grpc::CallbackServerContext* context, grpc::ByteBuffer* response)
    : services_(services), context_(context), response_(response) {
  if (!caller.ok()) {
    End(caller.status());
    return;
  }
  absl::StatusOr<IngestSlots::SlotId> slot = services_.slots->Acquire(caller->id, this);
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

void IngestReactor::FinishExpired() {
  // The outstanding read then ends, not ok, and OnReadDone leaves the stream be.
  End(absl::CancelledError(
      absl::StrCat("the Ingest stream sent nothing for ",
                   absl::FormatDuration(services_.limits.ingest_idle_timeout),
                   " (--ingest_idle_timeout) and was cancelled; nothing from it was applied")));
}

void IngestReactor::OnReadDone(bool ok) {
  State reading = State::kReading;
  // Expired: FinishExpired ends the stream (or has already).
  if (!state_.compare_exchange_strong(reading, State::kWorking)) return;
  services_.tasks->Post([this, ok] { Process(ok); });
}

void IngestReactor::Process(bool ok) {
  if (ok) {
    const absl::Status added = AddBatch();
    if (!added.ok()) {
      End(added);
      return;
    }
    ++index_;
    Read();
    return;
  }
  End(CommitStream());
}

absl::Status IngestReactor::AddBatch() {
  const auto reject = [&](const absl::Status& status) {
    return absl::Status(
        status.code(),
        absl::StrCat("batch ", index_,
                     " rejected, nothing from this stream was applied: ", status.message()));
  };
  NORMD_ASSIGN_OR_RETURN(const std::span<const std::byte> bytes,
                         ContiguousBytes(received_, scratch_, slices_), reject(_));
  NORMD_RETURN_IF_ERROR(ParseIngestRequest(bytes, message_), reject(_));
  const v1::IngestRequest& request = message_.fields;
  if (!transaction_.has_value()) {
    NORMD_ASSIGN_OR_RETURN(IngestTransaction transaction,
                           services_.engine->BeginIngest(request.dataset()));
    transaction_.emplace(std::move(transaction));
  }
  if (!request.dataset().empty() && request.dataset() != transaction_->dataset()) {
    return reject(absl::InvalidArgumentError(absl::StrCat(
        "the stream began with dataset \"", transaction_->dataset(), "\" but this batch names \"",
        request.dataset(), "\"; one stream feeds one dataset")));
  }
  NORMD_ASSIGN_OR_RETURN(const IngestBatch batch,
                         IngestBatchFromProto(request, *regions_, message_.tensor_data), reject(_));
  if (const auto* summaries = std::get_if<std::vector<MomentsSummary>>(&batch.payload)) {
    NORMD_RETURN_IF_ERROR(AddSummaries(batch.split, *summaries, batch.identity), reject(_));
    return absl::OkStatus();
  }
  const auto& tensor = std::get<ValidatedTensor>(batch.payload);
  NORMD_RETURN_IF_ERROR(CheckElements(services_.limits, tensor.elements(), "the batch"), reject(_));
  NORMD_RETURN_IF_ERROR(
      CheckElements(services_.limits, batch.weights.has_value() ? batch.weights->elements() : 0,
                    "the weights"),
      reject(_));
  NORMD_RETURN_IF_ERROR(
      transaction_->Add(batch.split, tensor, batch.identity,
                        batch.weights.has_value() ? &batch.weights->view() : nullptr),
      reject(_));
  bytes_ += static_cast<int64_t>(tensor.view().bytes.size());
  return absl::OkStatus();
}

absl::Status IngestReactor::AddSummaries(Split split, std::span<const MomentsSummary> summaries,
                                         const BatchIdentity& first) {
  for (size_t i = 0; i < summaries.size(); ++i) {
    BatchIdentity identity = first;
    if (!identity.writer.empty()) identity.sequence += i;
    const absl::Status added = transaction_->AddSummary(split, summaries[i], identity).status();
    if (!added.ok()) {
      return absl::Status(added.code(), absl::StrCat("summaries[", i, "]: ", added.message()));
    }
  }
  return absl::OkStatus();
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
