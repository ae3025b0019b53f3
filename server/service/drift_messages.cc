#include "server/service/drift_messages.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "wire/core_proto.h"

namespace normd {
namespace {

v1::DriftLevel DriftLevelToProto(DriftLevel level) {
  switch (level) {
    case DriftLevel::kNoData:
      return v1::DRIFT_LEVEL_UNSPECIFIED;
    case DriftLevel::kPass:
      return v1::DRIFT_LEVEL_PASS;
    case DriftLevel::kWarn:
      return v1::DRIFT_LEVEL_WARN;
    case DriftLevel::kFail:
      return v1::DRIFT_LEVEL_FAIL;
  }
  return v1::DRIFT_LEVEL_UNSPECIFIED;
}

void FillMeasure(const DriftMeasure& measure, v1::DriftMeasure* out) {
  out->set_value(measure.value);
  out->set_error(measure.error);
  out->set_level(DriftLevelToProto(measure.level));
  out->set_meaning(measure.meaning);
}

absl::StatusOr<StatisticsSource> SourceFromProto(const v1::StatisticsSource& source,
                                                 bool is_reference) {
  StatisticsSource out;
  switch (source.source_case()) {
    case v1::StatisticsSource::kLive: {
      out.kind = StatisticsSource::Kind::kLive;
      NORMD_ASSIGN_OR_RETURN(out.split, SplitFromProto(source.live(), true));
      return out;
    }
    case v1::StatisticsSource::kFrozen: {
      out.kind = StatisticsSource::Kind::kFrozen;
      out.version = source.frozen().version();
      NORMD_ASSIGN_OR_RETURN(out.split, SplitFromProto(source.frozen().split(), true));
      return out;
    }
    case v1::StatisticsSource::kTraffic:
      out.kind = StatisticsSource::Kind::kTraffic;
      out.version = source.traffic().version();
      out.window = TrafficWindowFromProto(source.traffic().window());
      return out;
    case v1::StatisticsSource::SOURCE_NOT_SET:
      // The reference defaults to the latest version's train split, the candidate to
      // that version's traffic.
      out.kind = is_reference ? StatisticsSource::Kind::kFrozen : StatisticsSource::Kind::kTraffic;
      return out;
  }
  return absl::InvalidArgumentError("unknown statistics source");
}

}  // namespace

TrafficWindowKind TrafficWindowFromProto(v1::TrafficWindow window) {
  return window == v1::TRAFFIC_WINDOW_LAST_HOUR ? TrafficWindowKind::kLastHour
                                                : TrafficWindowKind::kSinceStart;
}

absl::StatusOr<DriftThresholds> DriftThresholdsFromProto(const v1::DriftThresholds& proto) {
  DriftThresholds thresholds;
  const std::pair<bool, std::pair<const v1::DriftLimits*, DriftLimits*>> all[] = {
      {proto.has_standardized_mean_difference(),
       {&proto.standardized_mean_difference(), &thresholds.standardized_mean_difference}},
      {proto.has_variance_ratio(), {&proto.variance_ratio(), &thresholds.variance_ratio}},
      {proto.has_ks(), {&proto.ks(), &thresholds.ks}},
      {proto.has_psi(), {&proto.psi(), &thresholds.psi}},
      {proto.has_js_divergence(), {&proto.js_divergence(), &thresholds.js_divergence}}};
  for (const auto& [set, limits] : all) {
    if (set) *limits.second = DriftLimits{limits.first->warn(), limits.first->fail()};
  }
  NORMD_RETURN_IF_ERROR(ValidateDriftThresholds(thresholds));
  return thresholds;
}

absl::StatusOr<CompareCall> CompareCallFromProto(const v1::CompareRequest& request) {
  CompareCall call;
  call.dataset = request.dataset();
  NORMD_ASSIGN_OR_RETURN(call.reference, SourceFromProto(request.reference(), true));
  NORMD_ASSIGN_OR_RETURN(call.candidate, SourceFromProto(request.candidate(), false));
  NORMD_ASSIGN_OR_RETURN(call.thresholds, DriftThresholdsFromProto(request.thresholds()));
  if (request.bins() > kMaxDriftBins) {
    return absl::InvalidArgumentError(absl::StrCat("bins must be at most ", kMaxDriftBins, " (0: ",
                                                   kDefaultDriftBins, "), got ", request.bins()));
  }
  call.bins = request.bins() == 0 ? kDefaultDriftBins : request.bins();
  call.equal_width_bins = request.equal_width_bins();
  return call;
}

void FillCompareResponse(const CompareResult& result, absl::string_view dataset,
                         v1::CompareResponse* out) {
  out->set_dataset(std::string(dataset));
  out->set_reference(result.reference);
  out->set_candidate(result.candidate);
  out->set_level(DriftLevelToProto(result.report.level));
  out->set_bins(std::string(DriftBinsName(result.report.bins)));
  for (size_t c = 0; c < result.report.channels.size(); ++c) {
    const ChannelDrift& d = result.report.channels[c];
    v1::ChannelDrift* channel = out->add_channels();
    channel->set_channel(static_cast<uint32_t>(c));
    channel->set_reference_count(d.reference_count);
    channel->set_candidate_count(d.candidate_count);
    FillMeasure(d.standardized_mean_difference, channel->mutable_standardized_mean_difference());
    FillMeasure(d.variance_ratio, channel->mutable_variance_ratio());
    FillMeasure(d.ks, channel->mutable_ks());
    FillMeasure(d.psi, channel->mutable_psi());
    FillMeasure(d.js_divergence, channel->mutable_js_divergence());
    channel->set_level(DriftLevelToProto(d.level));
    channel->mutable_bin_edges()->Add(d.bin_edges.begin(), d.bin_edges.end());
    channel->mutable_reference_fractions()->Add(d.reference_fractions.begin(),
                                                d.reference_fractions.end());
    channel->mutable_candidate_fractions()->Add(d.candidate_fractions.begin(),
                                                d.candidate_fractions.end());
  }
}

absl::StatusOr<std::optional<FreezeGate>> FreezeGateFromProto(const v1::FreezeRequest& request) {
  if (!request.has_gate()) return std::nullopt;
  const v1::FreezeGate& proto = request.gate();
  FreezeGate gate;
  gate.min_train_count = proto.min_train_count();
  if (!proto.skip_drift()) {
    NORMD_ASSIGN_OR_RETURN(gate.drift, DriftThresholdsFromProto(proto.thresholds()));
  }
  gate.mark = proto.action() == v1::FreezeGate::ACTION_MARK;
  return gate;
}

}  // namespace normd
