#include "server/service/normd_service.h"

#include <algorithm>
#include <span>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/apply_scale_shift.h"
#include "server/service/grpc_status.h"
#include "server/wire/core_proto.h"

namespace normd {
namespace {

constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 1000;

void FillTotals(const std::array<SplitTotals, kAllSplits.size()>& totals,
                google::protobuf::RepeatedPtrField<v1::SplitTotals>* out) {
  for (const SplitTotals& t : totals) {
    v1::SplitTotals* proto = out->Add();
    proto->set_split(SplitToProto(t.split));
    proto->set_batches(t.batches);
    proto->set_samples(t.samples);
  }
}

void FillDatasetInfo(const DatasetInfo& info, v1::DatasetInfo* out) {
  *out->mutable_spec() = DatasetSpecToProto(info.spec);
  TimeToProto(info.create_time, out->mutable_create_time());
  FillTotals(info.totals, out->mutable_totals());
  for (const VersionSummary& v : info.versions) {
    v1::VersionInfo* proto = out->add_versions();
    proto->set_version(v.version);
    TimeToProto(v.freeze_time, proto->mutable_freeze_time());
    proto->set_train_samples(v.train_samples);
  }
  out->set_latest_version(info.latest_version);
}

void FillStatistics(const DatasetStatistics& stats, Split split, v1::Statistics* out) {
  const SplitStatistics& s = stats.split(split);
  for (const ChannelMoments& m : s.moments) {
    out->add_count(m.count);
    out->add_mean(m.Mean());
    out->add_variance(m.PopulationVariance());
    out->add_sample_variance(m.SampleVariance());
    out->add_min(m.Min());
    out->add_max(m.Max());
  }
  out->set_batches(s.batches);
  out->set_samples(s.samples);
  if (split == Split::kTrain && stats.running.has_value()) {
    out->mutable_running_mean()->Add(stats.running->mean.begin(), stats.running->mean.end());
    out->mutable_running_var()->Add(stats.running->var.begin(), stats.running->var.end());
    out->set_num_batches_tracked(stats.running->num_batches_tracked);
  }
}

template <typename Message>
std::vector<double> Values(const Message& repeated) {
  return std::vector<double>(repeated.begin(), repeated.end());
}

template <typename Message>
double EpsOf(const Message& message) {
  return message.has_eps() ? message.eps() : kDefaultEps;
}

absl::StatusOr<NormalizeScheme> SchemeFromProto(const v1::NormalizeRequest& request) {
  switch (request.scheme_case()) {
    case v1::NormalizeRequest::kZscore:
      return AffineScheme(ZScoreScheme{EpsOf(request.zscore())});
    case v1::NormalizeRequest::kMinmax: {
      MinMaxScheme mm;
      if (request.minmax().has_low()) mm.low = request.minmax().low();
      if (request.minmax().has_high()) mm.high = request.minmax().high();
      return AffineScheme(mm);
    }
    case v1::NormalizeRequest::kScale: {
      FixedScaleScheme fs;
      if (request.scale().has_factor()) fs.factor = request.scale().factor();
      fs.offset = request.scale().offset();
      return AffineScheme(fs);
    }
    case v1::NormalizeRequest::kBatchnorm: {
      const v1::BatchNorm& bn = request.batchnorm();
      return AffineScheme(BatchNormScheme{Values(bn.gamma()), Values(bn.beta()), EpsOf(bn)});
    }
    case v1::NormalizeRequest::kBatchnormTraining: {
      const v1::BatchNormTraining& bn = request.batchnorm_training();
      BatchNormTrainingCall call;
      call.scheme = {Values(bn.gamma()), Values(bn.beta()), EpsOf(bn)};
      call.update_statistics = bn.update_statistics();
      if (bn.split() != v1::SPLIT_UNSPECIFIED) {
        absl::StatusOr<Split> split = SplitFromProto(bn.split(), false);
        if (!split.ok()) return split.status();
        call.split = *split;
      }
      return call;
    }
    case v1::NormalizeRequest::kLayernorm: {
      const v1::LayerNorm& ln = request.layernorm();
      return PerSampleScheme(LayerNormScheme{
          std::vector<int64_t>(ln.normalized_shape().begin(), ln.normalized_shape().end()),
          Values(ln.gamma()), Values(ln.beta()), EpsOf(ln)});
    }
    case v1::NormalizeRequest::kInstancenorm: {
      const v1::InstanceNorm& in = request.instancenorm();
      return PerSampleScheme(InstanceNormScheme{Values(in.gamma()), Values(in.beta()), EpsOf(in)});
    }
    case v1::NormalizeRequest::kGroupnorm: {
      const v1::GroupNorm& gn = request.groupnorm();
      return PerSampleScheme(
          GroupNormScheme{gn.num_groups(), Values(gn.gamma()), Values(gn.beta()), EpsOf(gn)});
    }
    case v1::NormalizeRequest::SCHEME_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "scheme is not set; expected one of zscore, minmax, scale, batchnorm, batchnorm_training, "
      "layernorm, instancenorm, groupnorm");
}

}  // namespace

absl::Status NormdService::Admit(const grpc::ServerContext* context, Role needed,
                                 absl::string_view method) const {
  if (access_ == nullptr) return absl::OkStatus();
  const auto& metadata = context->client_metadata();
  const auto header = metadata.find("authorization");
  const absl::string_view authorization =
      header == metadata.end() ? absl::string_view()
                               : absl::string_view(header->second.data(), header->second.size());
  return access_->Authorize(authorization, needed, method).status();
}

grpc::Status NormdService::CreateDataset(grpc::ServerContext* context,
                                         const v1::CreateDatasetRequest* request,
                                         v1::DatasetInfo* response) {
  if (absl::Status admitted = Admit(context, Role::kAdmin, "CreateDataset"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  absl::StatusOr<DatasetSpec> spec = DatasetSpecFromProto(request->spec());
  if (!spec.ok()) return ToGrpcStatus(spec.status());
  absl::StatusOr<DatasetInfo> info = engine_->Create(*spec);
  if (!info.ok()) return ToGrpcStatus(info.status());
  FillDatasetInfo(*info, response);
  return grpc::Status::OK;
}

grpc::Status NormdService::GetDataset(grpc::ServerContext* context,
                                      const v1::GetDatasetRequest* request,
                                      v1::DatasetInfo* response) {
  if (absl::Status admitted = Admit(context, Role::kReader, "GetDataset"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  absl::StatusOr<DatasetInfo> info = engine_->Get(request->name());
  if (!info.ok()) return ToGrpcStatus(info.status());
  FillDatasetInfo(*info, response);
  return grpc::Status::OK;
}

grpc::Status NormdService::ListDatasets(grpc::ServerContext* context,
                                        const v1::ListDatasetsRequest* request,
                                        v1::ListDatasetsResponse* response) {
  if (absl::Status admitted = Admit(context, Role::kReader, "ListDatasets"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("page_size must be in [0, ", kMaxPageSize, "], got ", request->page_size())));
  }
  const size_t limit = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  // One extra tells whether another page follows.
  std::vector<DatasetInfo> infos = engine_->List(request->page_token(), limit + 1);
  const bool more = infos.size() > limit;
  if (more) infos.resize(limit);
  for (const DatasetInfo& info : infos) FillDatasetInfo(info, response->add_datasets());
  if (more) response->set_next_page_token(infos.back().spec.name);
  return grpc::Status::OK;
}

grpc::Status NormdService::DeleteDataset(grpc::ServerContext* context,
                                         const v1::DeleteDatasetRequest* request,
                                         v1::DeleteDatasetResponse*) {
  if (absl::Status admitted = Admit(context, Role::kAdmin, "DeleteDataset"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  return ToGrpcStatus(engine_->Delete(request->name()));
}

absl::Status NormdService::CheckElements(int64_t elements, absl::string_view what) const {
  if (elements <= limits_.max_request_elements) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " has ", elements, " values; this server takes at most ", limits_.max_request_elements,
      " per request (--max_request_elements): split it"));
}

grpc::Status NormdService::Ingest(grpc::ServerContext* context,
                                  grpc::ServerReader<v1::IngestRequest>* reader,
                                  v1::IngestResponse* response) {
  if (absl::Status admitted = Admit(context, Role::kWriter, "Ingest"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  const int open = active_ingests_.fetch_add(1) + 1;
  absl::Cleanup release = [this] { active_ingests_.fetch_sub(1); };
  if (open > limits_.max_concurrent_ingests) {
    return ToGrpcStatus(absl::ResourceExhaustedError(
        absl::StrCat("this server already serves ", limits_.max_concurrent_ingests,
                     " Ingest streams (--max_concurrent_ingests); retry when one has finished")));
  }
  v1::IngestRequest request;
  if (!reader->Read(&request)) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "the Ingest stream held no batch; expected at least one IngestRequest"));
  }
  absl::StatusOr<IngestTransaction> transaction = engine_->BeginIngest(request.dataset());
  if (!transaction.ok()) return ToGrpcStatus(transaction.status());
  uint64_t index = 0;
  int64_t bytes = 0;
  do {
    if (context->IsCancelled()) {
      return ToGrpcStatus(absl::CancelledError("the client cancelled the Ingest stream"));
    }
    const auto reject = [&](const absl::Status& status) {
      return ToGrpcStatus(
          absl::Status(status.code(), absl::StrCat("batch ", index,
                                                   " rejected, nothing from this stream was "
                                                   "applied: ",
                                                   status.message())));
    };
    if (!request.dataset().empty() && request.dataset() != transaction->dataset()) {
      return reject(absl::InvalidArgumentError(absl::StrCat(
          "the stream began with dataset \"", transaction->dataset(), "\" but this batch names \"",
          request.dataset(), "\"; one stream feeds one dataset")));
    }
    absl::StatusOr<Split> split = SplitFromProto(request.split(), false);
    if (!split.ok()) return reject(split.status());
    absl::StatusOr<TensorView> batch = TensorViewOf(request.batch(), "batch");
    if (!batch.ok()) return reject(batch.status());
    absl::StatusOr<int64_t> elements = ValidateTensor(*batch);
    if (!elements.ok()) return reject(elements.status());
    if (absl::Status status = CheckElements(*elements, "the batch"); !status.ok()) {
      return reject(status);
    }
    if (absl::StatusOr<BatchSummary> added =
            transaction->Add(*split, *batch, {request.writer_id(), request.sequence()});
        !added.ok()) {
      return reject(added.status());
    }
    ++index;
    bytes += static_cast<int64_t>(request.batch().data().size());
  } while (reader->Read(&request));
  // A stream the client cancelled (its batch iterator failed, it gave up) or whose
  // deadline passed also ends the reads; only a stream closed normally is committed.
  if (std::chrono::system_clock::now() >= context->deadline()) {
    return ToGrpcStatus(absl::DeadlineExceededError(
        "the Ingest stream's deadline passed; nothing from it was applied"));
  }
  if (context->IsCancelled()) {
    return ToGrpcStatus(absl::CancelledError(
        "the client cancelled the Ingest stream; nothing from it was applied"));
  }

  absl::StatusOr<std::array<SplitTotals, kAllSplits.size()>> totals = transaction->Commit();
  if (!totals.ok()) return ToGrpcStatus(totals.status());
  const BatchSummary& sent = transaction->delta().totals();
  response->set_dataset(transaction->dataset());
  response->set_batches(transaction->delta().batches());
  response->set_samples(sent.samples);
  response->set_values(sent.values);
  response->set_skipped_nonfinite(sent.skipped_nonfinite);
  response->set_duplicate_batches(transaction->duplicates());
  response->set_writer_sequence(transaction->writer_sequence());
  FillTotals(*totals, response->mutable_totals());
  if (metrics_ != nullptr) {
    metrics_->Ingested(static_cast<int64_t>(transaction->delta().batches()),
                       static_cast<int64_t>(transaction->duplicates()),
                       static_cast<int64_t>(sent.values), bytes);
  }
  return grpc::Status::OK;
}

grpc::Status NormdService::Freeze(grpc::ServerContext* context, const v1::FreezeRequest* request,
                                  v1::FreezeResponse* response) {
  if (absl::Status admitted = Admit(context, Role::kWriter, "Freeze"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  absl::StatusOr<VersionSummary> version = engine_->Freeze(request->dataset());
  if (!version.ok()) return ToGrpcStatus(version.status());
  response->set_version(version->version);
  TimeToProto(version->freeze_time, response->mutable_freeze_time());
  return grpc::Status::OK;
}

grpc::Status NormdService::GetStats(grpc::ServerContext* context,
                                    const v1::GetStatsRequest* request,
                                    v1::GetStatsResponse* response) {
  if (absl::Status admitted = Admit(context, Role::kReader, "GetStats"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  absl::StatusOr<Split> split = SplitFromProto(request->split(), true);
  if (!split.ok()) return ToGrpcStatus(split.status());
  absl::StatusOr<StatisticsResult> result =
      engine_->GetStatistics(request->dataset(), request->version());
  if (!result.ok()) return ToGrpcStatus(result.status());
  response->set_dataset(request->dataset());
  response->set_version(result->version);
  response->set_split(SplitToProto(*split));
  FillStatistics(*result->stats, *split, response->mutable_stats());
  return grpc::Status::OK;
}

grpc::Status NormdService::Normalize(grpc::ServerContext* context,
                                     const v1::NormalizeRequest* request,
                                     v1::NormalizeResponse* response) {
  if (absl::Status admitted = Admit(context, Role::kReader, "Normalize"); !admitted.ok()) {
    return ToGrpcStatus(admitted);
  }
  absl::StatusOr<NormalizeScheme> scheme = SchemeFromProto(*request);
  if (!scheme.ok()) return ToGrpcStatus(scheme.status());
  NormalizeCall call{
      .dataset = request->dataset(), .version = request->version(), .scheme = *std::move(scheme)};
  if (request->output_dtype() != v1::DTYPE_UNSPECIFIED) {
    absl::StatusOr<DType> parsed = DTypeFromProto(request->output_dtype(), "output_dtype");
    if (!parsed.ok()) return ToGrpcStatus(parsed.status());
    if (!IsSupportedOutputDType(*parsed)) {
      return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "output_dtype must be FLOAT32, FLOAT64, FLOAT16 or BFLOAT16, got ", DTypeName(*parsed))));
    }
    call.output_dtype = *parsed;
  }
  if (request->layout() != v1::LAYOUT_UNSPECIFIED) {
    absl::StatusOr<Layout> layout = LayoutFromProto(request->layout(), "layout");
    if (!layout.ok()) return ToGrpcStatus(layout.status());
    call.layout = *layout;
  }
  absl::StatusOr<TensorView> input = TensorViewOf(request->input(), "input");
  if (!input.ok()) return ToGrpcStatus(input.status());
  call.input = *input;
  absl::StatusOr<int64_t> elements = ValidateTensor(call.input);
  if (!elements.ok()) return ToGrpcStatus(elements.status());
  if (absl::Status status = CheckElements(*elements, "the input"); !status.ok()) {
    return ToGrpcStatus(status);
  }
  const size_t size = static_cast<size_t>(*elements) * ElementSize(call.output_dtype);
  // The reply's shape and framing take a few bytes besides the values.
  constexpr size_t kReplyOverhead = 4096;
  if (size + kReplyOverhead > static_cast<size_t>(limits_.max_message_bytes)) {
    return ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
        "the reply would hold ", size, " bytes of values (", *elements, " ",
        DTypeName(call.output_dtype), "), more than fit in a ", limits_.max_message_bytes,
        "-byte message (--max_message_bytes): send fewer samples per request or ask for a "
        "narrower output_dtype")));
  }

  v1::Tensor* output = response->mutable_output();
  output->mutable_shape()->CopyFrom(request->input().shape());
  output->set_dtype(DTypeToProto(call.output_dtype));
  // The kernels write straight into the reply's bytes, which are not zero-filled
  // first. (libstdc++ 12 passes the capacity, not the requested size, as the second
  // argument.)
  absl::StatusOr<uint64_t> version;
  output->mutable_data()->resize_and_overwrite(size, [&](char* data, size_t) {
    version = engine_->Normalize(call, std::as_writable_bytes(std::span<char>(data, size)));
    return version.ok() ? size : 0;
  });
  if (!version.ok()) return ToGrpcStatus(version.status());
  response->set_version(*version);
  if (metrics_ != nullptr) metrics_->Normalized(*elements, static_cast<int64_t>(size));
  return grpc::Status::OK;
}

}  // namespace normd
