// DatasetEngine::Normalize: resolves the input's geometry and the statistics a
// scheme needs, runs the core normalisation, and for batch norm with
// update_statistics commits the batch to the dataset.
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/apply_scale_shift.h"
#include "core/batch_moments.h"
#include "core/dataset_statistics.h"
#include "core/overloaded.h"
#include "server/engine/dataset_engine.h"
#include "server/engine/dataset_entry.h"

namespace normd {
namespace {

absl::string_view SchemeName(const NormalizeScheme& scheme) {
  return std::visit(Overloaded{[](const AffineScheme& s) { return normd::SchemeName(s); },
                               [](const BatchNormTrainingCall&) -> absl::string_view {
                                 return "batchnorm_training";
                               },
                               [](const PerSampleScheme& s) { return normd::SchemeName(s); }},
                    scheme);
}

// The input's channel geometry: from the dataset when one is named, else from the
// call's layout; nullopt when neither gives one.
absl::StatusOr<std::optional<ChannelGeometry>> InputGeometry(const DatasetEntry* entry,
                                                             const NormalizeCall& call) {
  if (entry != nullptr) {
    const DatasetSpec& spec = entry->spec;
    if (call.layout.has_value() && *call.layout != spec.layout) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layout ", LayoutName(*call.layout), " does not match dataset \"", spec.name,
          "\", whose layout is ", LayoutName(spec.layout), "; leave layout unset or match it"));
    }
    return ResolveGeometry(spec.layout, spec.channels, call.input.shape);
  }
  if (!call.layout.has_value()) return std::nullopt;
  absl::StatusOr<int64_t> channels = ChannelCountOf(*call.layout, call.input.shape);
  if (!channels.ok()) return channels.status();
  return ResolveGeometry(*call.layout, *channels, call.input.shape);
}

absl::Status NeedsLayout(absl::string_view scheme) {
  return absl::InvalidArgumentError(
      absl::StrCat("scheme ", scheme,
                   " needs the input's layout: name a dataset or set layout "
                   "(NC, NCHW or NHWC)"));
}

}  // namespace

absl::StatusOr<uint64_t> DatasetEngine::Normalize(const NormalizeCall& call,
                                                  std::span<std::byte> output) {
  absl::StatusOr<int64_t> elements = ValidateTensor(call.input);
  if (!elements.ok()) return elements.status();
  std::shared_ptr<DatasetEntry> entry;
  if (!call.dataset.empty()) {
    absl::StatusOr<std::shared_ptr<DatasetEntry>> found = Find(call.dataset);
    if (!found.ok()) return found.status();
    entry = *std::move(found);
  }
  if (const auto* frozen = std::get_if<AffineScheme>(&call.scheme)) {
    return NormalizeFrozen(entry.get(), call, *frozen, *elements, output);
  }
  absl::StatusOr<std::optional<ChannelGeometry>> geometry = InputGeometry(entry.get(), call);
  if (!geometry.ok()) return geometry.status();
  if (const auto* training = std::get_if<BatchNormTrainingCall>(&call.scheme)) {
    if (!geometry->has_value()) return NeedsLayout(SchemeName(call.scheme));
    absl::Status status = NormalizeTraining(entry, call, *training, **geometry, output);
    if (!status.ok()) return status;
    return 0;
  }
  const auto& per_sample = std::get<PerSampleScheme>(call.scheme);
  absl::StatusOr<GroupedGeometry> grouped = ResolvePerSampleGeometry(
      per_sample, call.input.shape, geometry->has_value() ? &**geometry : nullptr);
  if (!grouped.ok()) return grouped.status();
  absl::Status status =
      ApplyPerSampleNorm(per_sample, call.input, *grouped, call.output_dtype, output, pool_);
  if (!status.ok()) return status;
  return 0;
}

absl::StatusOr<uint64_t> DatasetEngine::NormalizeFrozen(DatasetEntry* entry,
                                                        const NormalizeCall& call,
                                                        const AffineScheme& scheme,
                                                        int64_t elements,
                                                        std::span<std::byte> output) {
  ChannelGeometry geometry;
  ReferenceStatistics reference;
  uint64_t version = 0;
  int64_t channels = 1;
  if (entry == nullptr) {
    if (NeedsStatistics(scheme)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scheme ", SchemeName(scheme), " needs a dataset's statistics; dataset is empty"));
    }
    // A fixed scale is the same for every channel: treat the input as one.
    geometry = {call.input.shape[0], 1, 1, elements};
  } else {
    absl::StatusOr<std::optional<ChannelGeometry>> resolved = InputGeometry(entry, call);
    if (!resolved.ok()) return resolved.status();
    geometry = **resolved;
    channels = entry->spec.channels;
    if (NeedsStatistics(scheme)) {
      absl::StatusOr<std::shared_ptr<const FrozenSnapshot>> snapshot =
          Snapshot(*entry, call.version);
      if (!snapshot.ok()) return snapshot.status();
      version = (*snapshot)->version;
      reference = ReferenceStatisticsOf((*snapshot)->stats);
    }
  }
  absl::StatusOr<ScaleShift> factors = FoldScaleShift(scheme, reference, channels);
  if (!factors.ok()) return factors.status();
  absl::Status status =
      ApplyScaleShift(call.input, geometry, *factors, call.output_dtype, output, pool_);
  if (!status.ok()) return status;
  return version;
}

absl::Status DatasetEngine::NormalizeTraining(const std::shared_ptr<DatasetEntry>& entry,
                                              const NormalizeCall& call,
                                              const BatchNormTrainingCall& training,
                                              const ChannelGeometry& geometry,
                                              std::span<std::byte> output) {
  if (training.update_statistics) {
    if (entry == nullptr) {
      return absl::InvalidArgumentError(
          "update_statistics folds the batch into a dataset's statistics; dataset is empty");
    }
    if (training.split != Split::kTrain) {
      return absl::InvalidArgumentError(absl::StrCat(
          "update_statistics changes the fit, and only training data may change a fit: split "
          "must be TRAIN, got ",
          training.split.has_value() ? SplitName(*training.split) : "none"));
    }
  }
  std::vector<ChannelMoments> moments(static_cast<size_t>(geometry.channels));
  absl::StatusOr<uint64_t> skipped = ApplyBatchNormTraining(
      training.scheme, call.input, geometry, call.output_dtype, output, moments, pool_);
  if (!skipped.ok()) return skipped.status();
  if (!training.update_statistics) return absl::OkStatus();

  if (*skipped > 0 && entry->spec.nonfinite == NonFinitePolicy::kReject) {
    // The reduction skipped them for the PyTorch-style output; redo it under the
    // dataset's policy for the error that names the first one.
    absl::StatusOr<uint64_t> rejected =
        ComputeBatchMoments(call.input, geometry, NonFinitePolicy::kReject, moments, pool_);
    if (rejected.ok()) return absl::InternalError("non-finite values vanished on a second pass");
    return absl::Status(rejected.status().code(),
                        absl::StrCat("the batch was not folded into dataset \"", entry->spec.name,
                                     "\": ", rejected.status().message()));
  }
  IngestTransaction transaction(this, entry);
  absl::StatusOr<BatchSummary> added =
      transaction.delta_.AddMoments(Split::kTrain, geometry, moments, *skipped);
  if (!added.ok()) return added.status();
  return transaction.Commit().status();
}

}  // namespace normd
