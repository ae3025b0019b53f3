#include "server/service/messages.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "wire/core_proto.h"

namespace normd {
namespace {

template <typename Message>
std::vector<double> Values(const Message& repeated) {
  return std::vector<double>(repeated.begin(), repeated.end());
}

template <typename Message>
double EpsOf(const Message& message) {
  return message.has_eps() ? message.eps() : kDefaultEps;
}

template <typename Message>
std::optional<QuantileClip> QuantileClipOf(const Message& message) {
  if (!message.has_quantile_clip()) return std::nullopt;
  return QuantileClip{message.quantile_clip().low(), message.quantile_clip().high()};
}

absl::StatusOr<NormalizeScheme> SchemeFromProto(const v1::NormalizeRequest& request) {
  switch (request.scheme_case()) {
    case v1::NormalizeRequest::kZscore:
      return FrozenScheme(ZScoreScheme{EpsOf(request.zscore()), QuantileClipOf(request.zscore())});
    case v1::NormalizeRequest::kMinmax: {
      MinMaxScheme mm;
      if (request.minmax().has_low()) mm.low = request.minmax().low();
      if (request.minmax().has_high()) mm.high = request.minmax().high();
      mm.clip = request.minmax().clip();
      mm.quantile_clip = QuantileClipOf(request.minmax());
      return FrozenScheme(mm);
    }
    case v1::NormalizeRequest::kRobust: {
      const v1::Robust& r = request.robust();
      RobustScheme robust;
      if (r.has_q_low()) robust.q_low = r.q_low();
      if (r.has_q_high()) robust.q_high = r.q_high();
      robust.with_centering = !r.without_centering();
      robust.with_scaling = !r.without_scaling();
      robust.unit_variance = r.unit_variance();
      robust.quantile_clip = QuantileClipOf(r);
      return FrozenScheme(robust);
    }
    case v1::NormalizeRequest::kClip:
      return FrozenScheme(ClipScheme{QuantileClipOf(request.clip())});
    case v1::NormalizeRequest::kQuantile: {
      QuantileScheme quantile;
      if (request.quantile().has_n_quantiles()) {
        quantile.n_quantiles = request.quantile().n_quantiles();
      }
      quantile.normal = request.quantile().normal_output();
      return FrozenScheme(quantile);
    }
    case v1::NormalizeRequest::kBucketize:
      return FrozenScheme(BucketizeScheme{Values(request.bucketize().ranks())});
    case v1::NormalizeRequest::kScale: {
      FixedScaleScheme fs;
      if (request.scale().has_factor()) fs.factor = request.scale().factor();
      fs.offset = request.scale().offset();
      return FrozenScheme(fs);
    }
    case v1::NormalizeRequest::kBatchnorm: {
      const v1::BatchNorm& bn = request.batchnorm();
      return FrozenScheme(
          BatchNormScheme{Values(bn.gamma()), Values(bn.beta()), EpsOf(bn), QuantileClipOf(bn)});
    }
    case v1::NormalizeRequest::kBatchnormTraining: {
      const v1::BatchNormTraining& bn = request.batchnorm_training();
      BatchNormTrainingCall call;
      call.scheme = {Values(bn.gamma()), Values(bn.beta()), EpsOf(bn)};
      call.update_statistics = bn.update_statistics();
      if (bn.split() != v1::SPLIT_UNSPECIFIED) {
        NORMD_ASSIGN_OR_RETURN(call.split, SplitFromProto(bn.split(), false));
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

absl::StatusOr<std::shared_ptr<const SharedRegion>> CallRegions::Find(
    const v1::RegionSlice& slice) {
  if (registry_ == nullptr) {
    return absl::FailedPreconditionError(
        "this server has no shared memory (see its --region_socket); send the tensor inline");
  }
  if (const auto held = held_.find(slice.name()); held != held_.end()) return held->second;
  if (!owner_.has_value()) {
    NORMD_ASSIGN_OR_RETURN(Principal::RegionOwner owner, caller_.Regions());
    owner_ = std::move(owner.key);
  }
  NORMD_ASSIGN_OR_RETURN(std::shared_ptr<const SharedRegion> region,
                         registry_->Find(*owner_, slice.name()));
  held_.emplace(slice.name(), region);
  return region;
}

absl::StatusOr<std::span<const std::byte>> CallRegions::Read(const v1::RegionSlice& slice,
                                                             uint64_t length,
                                                             absl::string_view what) {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<const SharedRegion> region, Find(slice));
  return region->Read(slice.offset(), length,
                      absl::StrCat(what, " in region \"", slice.name(), "\""));
}

absl::StatusOr<std::span<std::byte>> CallRegions::Write(const v1::RegionSlice& slice,
                                                        uint64_t length, absl::string_view what) {
  NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<const SharedRegion> region, Find(slice));
  return region->Write(slice.offset(), length,
                       absl::StrCat(what, " in region \"", slice.name(), "\""));
}

bool CallRegions::Overlap(const v1::RegionSlice& a, uint64_t a_length, const v1::RegionSlice& b,
                          uint64_t b_length) const {
  const auto a_region = held_.find(a.name());
  const auto b_region = held_.find(b.name());
  return a_region != held_.end() && b_region != held_.end() &&
         a_region->second->inode() == b_region->second->inode() &&
         a.offset() < b.offset() + b_length && b.offset() < a.offset() + a_length;
}

absl::StatusOr<ValidatedTensor> TensorFromProto(
    const v1::Tensor& tensor, absl::string_view field, CallRegions& regions,
    std::optional<std::span<const std::byte>> inline_data) {
  NORMD_ASSIGN_OR_RETURN(TensorView view, TensorViewOf(tensor, field));
  if (inline_data.has_value()) view.bytes = *inline_data;
  if (tensor.has_region()) {
    if (!view.bytes.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " has both inline data (", view.bytes.size(), " bytes) and region \"",
                       tensor.region().name(), "\"; a tensor's values come from one or the other"));
    }
    NORMD_ASSIGN_OR_RETURN(const int64_t elements, CountElements(view.shape));
    NORMD_ASSIGN_OR_RETURN(
        view.bytes, regions.Read(tensor.region(),
                                 static_cast<uint64_t>(elements) * ElementSize(view.dtype), field));
  }
  return ValidateTensor(view);
}

absl::StatusOr<IngestBatch> IngestBatchFromProto(IngestMessage& message, CallRegions& regions) {
  const v1::IngestRequest& request = message.fields;
  NORMD_ASSIGN_OR_RETURN(const Split split, SplitFromProto(request.split(), false));
  const BatchIdentity identity{request.writer_id(), request.sequence()};
  if (message.summaries.present()) {
    if (message.tensor_data.has_value() || request.has_batch()) {
      return absl::InvalidArgumentError(
          "the message carries both a batch and summaries; expected one or the other");
    }
    if (request.has_weights()) {
      return absl::InvalidArgumentError(
          "the message carries summaries and weights; a summary of weighted batches carries "
          "its weight sums itself (weight_sum, weight_square_sum)");
    }
    return IngestBatch{split, &message.summaries, identity};
  }
  NORMD_ASSIGN_OR_RETURN(
      ValidatedTensor batch,
      TensorFromProto(request.batch(), "batch", regions, message.tensor_data));
  IngestBatch decoded{split, batch, identity, std::nullopt, request.batch().has_region()};
  if (request.has_weights()) {
    NORMD_ASSIGN_OR_RETURN(decoded.weights, TensorFromProto(request.weights(), "weights", regions));
  }
  return decoded;
}

absl::StatusOr<NormalizeCall> NormalizeCallFromProto(
    const v1::NormalizeRequest& request, CallRegions& regions,
    std::optional<std::span<const std::byte>> input_data) {
  NORMD_ASSIGN_OR_RETURN(NormalizeScheme scheme, SchemeFromProto(request));
  OutputDType output_dtype;
  if (request.output_dtype() != v1::DTYPE_UNSPECIFIED) {
    NORMD_ASSIGN_OR_RETURN(const DType parsed,
                           DTypeFromProto(request.output_dtype(), "output_dtype"));
    NORMD_ASSIGN_OR_RETURN(output_dtype, ValidateOutputDType(parsed),
                           absl::InvalidArgumentError(absl::StrCat(
                               "output_dtype must be FLOAT32, FLOAT64, FLOAT16 or BFLOAT16, got ",
                               DTypeName(parsed))));
  }
  std::optional<Layout> layout;
  if (request.layout() != v1::LAYOUT_UNSPECIFIED) {
    NORMD_ASSIGN_OR_RETURN(layout, LayoutFromProto(request.layout(), "layout"));
  }
  NORMD_ASSIGN_OR_RETURN(ValidatedTensor input,
                         TensorFromProto(request.input(), "input", regions, input_data));
  return NormalizeCall{.dataset = request.dataset(),
                       .version = request.version(),
                       .layout = layout,
                       .scheme = std::move(scheme),
                       .input = input,
                       .output_dtype = output_dtype};
}

void FillRegionInfo(const RegionSummary& region, v1::RegionInfo* out) {
  out->set_name(region.name);
  out->set_size(region.size);
  out->set_writable(region.writable);
  TimeToProto(region.register_time, out->mutable_register_time());
  out->set_client_pid(region.client_pid);
}

void FillTotals(const DatasetTotals& totals,
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
    for (const std::string& finding : v.gate_findings) proto->add_gate_findings(finding);
  }
  out->set_latest_version(info.latest_version);
  out->set_pinned_version(info.pinned_version);
  out->set_previous_pinned_version(info.previous_pinned_version);
  out->set_can_roll_back(info.can_roll_back);
}

void FillStatistics(const DatasetStatistics& stats, Split split, v1::Statistics* out) {
  FillSplitStatistics(stats.split(split), out);
  if (split == Split::kTrain && stats.running.has_value()) {
    out->mutable_running_mean()->Add(stats.running->mean.begin(), stats.running->mean.end());
    out->mutable_running_var()->Add(stats.running->var.begin(), stats.running->var.end());
    out->set_num_batches_tracked(stats.running->num_batches_tracked);
  }
}

void FillSplitStatistics(const SplitStatistics& s, v1::Statistics* out) {
  for (const ChannelMoments& m : s.moments) {
    out->add_count(m.count);
    out->add_mean(m.Mean());
    out->add_variance(m.PopulationVariance());
    out->add_sample_variance(m.SampleVariance());
    out->add_min(m.Min());
    out->add_max(m.Max());
    out->add_weight_sum(m.Weight().value());
    out->add_reliability_variance(m.ReliabilityVariance());
    out->add_effective_count(m.EffectiveCount());
  }
  for (const FixedHistogram& histogram : s.fixed_histograms) {
    FixedHistogramToProto(histogram, out->add_fixed_histograms());
  }
  out->set_batches(s.batches);
  out->set_samples(s.samples);
}

DistributionQuery DistributionQueryFromProto(const v1::GetStatsRequest& request) {
  DistributionQuery query;
  query.ranks.assign(request.quantiles().begin(), request.quantiles().end());
  query.histogram_bins = request.histogram_bins();
  return query;
}

void FillDistributions(std::span<const ChannelDistribution> distributions, v1::Statistics* out) {
  for (const ChannelDistribution& d : distributions) {
    v1::ChannelDistribution* channel = out->add_distributions();
    for (const QuantileEstimate& q : d.quantiles) {
      channel->add_quantile(q.value);
      channel->add_quantile_error(q.error_bound);
    }
    channel->mutable_histogram_edges()->Add(d.histogram.edges.begin(), d.histogram.edges.end());
    channel->mutable_histogram_counts()->Add(d.histogram.counts.begin(), d.histogram.counts.end());
    channel->set_relative_accuracy(d.relative_accuracy);
    channel->set_buckets(static_cast<uint32_t>(d.buckets));
  }
}

void FillIngestResponse(const IngestTransaction& transaction, const DatasetTotals& totals,
                        v1::IngestResponse* out) {
  const BatchSummary& sent = transaction.delta().totals();
  out->set_dataset(transaction.dataset());
  out->set_batches(transaction.delta().batches());
  out->set_samples(sent.samples);
  out->set_values(sent.values);
  out->set_skipped_nonfinite(sent.skipped_nonfinite);
  out->set_duplicate_batches(transaction.duplicates());
  out->set_writer_sequence(transaction.writer_sequence());
  FillTotals(totals, out->mutable_totals());
}

}  // namespace normd
