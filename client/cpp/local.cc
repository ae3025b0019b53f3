#include "client/cpp/local.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "wire/core_proto.h"

namespace normd {
namespace {

WorkerPool* LocalPool() {
  static WorkerPool pool(std::max(1u, std::thread::hardware_concurrency()) - 1);
  return &pool;
}

}  // namespace

absl::StatusOr<MomentsSummary> Moments(const TensorView& batch, Layout layout, int64_t channels,
                                       NonFinitePolicy policy, const QuantileSketchSpec* sketch,
                                       const TensorView* weights,
                                       const HistogramEdges* histogram_edges) {
  NORMD_ASSIGN_OR_RETURN(const ValidatedTensor tensor, ValidateTensor(batch));
  if (channels <= 0) {
    NORMD_ASSIGN_OR_RETURN(channels, ChannelCountOf(layout, tensor.shape()));
  }
  NORMD_ASSIGN_OR_RETURN(const ChannelGeometry geometry,
                         ResolveGeometry(layout, channels, tensor.shape()));
  std::vector<double> storage;
  std::optional<SampleWeights> resolved;
  if (weights != nullptr) {
    NORMD_ASSIGN_OR_RETURN(resolved,
                           ResolveSampleWeights(*weights, tensor.shape(), "weights", storage));
  }
  if (histogram_edges != nullptr) {
    NORMD_RETURN_IF_ERROR(ValidateHistogramEdges(*histogram_edges, channels));
  }
  return SummarizeBatch(tensor.view(), layout, geometry, policy, LocalPool(), sketch,
                        resolved.has_value() ? &*resolved : nullptr, histogram_edges);
}

absl::StatusOr<LocalNormalizer> LocalNormalizer::Fetch(NormdClient& client,
                                                       absl::string_view dataset, uint64_t version,
                                                       const FrozenScheme& scheme, bool inverse) {
  if (!NeedsStatistics(scheme)) {
    NORMD_ASSIGN_OR_RETURN(FrozenNormalizer normalizer,
                           FrozenNormalizer::Create(scheme, std::nullopt, 1, {}, inverse));
    return LocalNormalizer(0, std::move(normalizer));
  }
  NORMD_ASSIGN_OR_RETURN(const v1::DatasetInfo info, client.GetDataset(dataset));
  if (version == 0)
    version = info.pinned_version() != 0 ? info.pinned_version() : info.latest_version();
  if (version == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset \"", dataset, "\" has no frozen version; call Freeze first"));
  }
  NORMD_ASSIGN_OR_RETURN(const std::vector<double> ranks, QuantileRanksOf(scheme));
  NORMD_ASSIGN_OR_RETURN(const v1::GetStatsResponse stats,
                         client.GetStats(dataset, version, v1::SPLIT_TRAIN, ranks));
  NORMD_ASSIGN_OR_RETURN(const Layout layout, LayoutFromProto(info.spec().layout(), "layout"));
  NORMD_ASSIGN_OR_RETURN(
      FrozenNormalizer normalizer,
      FrozenNormalizer::Create(scheme, layout, info.spec().channels(),
                               ReferenceStatisticsFromProto(stats.stats(), ranks), inverse));
  return LocalNormalizer(version, std::move(normalizer));
}

absl::Status LocalNormalizer::Normalize(const TensorView& input, OutputDType output_type,
                                        std::span<std::byte> output) const {
  NORMD_ASSIGN_OR_RETURN(const ValidatedTensor tensor, ValidateTensor(input));
  return normalizer_.Apply(tensor, output_type, output, LocalPool());
}

}  // namespace normd
