#include "server/engine/normalize_router.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/batch_moments.h"
#include "core/dataset_statistics.h"
#include "core/distribution_query.h"
#include "core/frozen_normalizer.h"
#include "core/overloaded.h"
#include "server/engine/dataset_entry.h"

namespace normd {
namespace {

absl::string_view SchemeName(const NormalizeScheme& scheme) {
  return std::visit(Overloaded{[](const FrozenScheme& s) { return normd::SchemeName(s); },
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
    return ResolveGeometry(spec.layout, spec.channels, call.input.shape());
  }
  if (!call.layout.has_value()) return std::nullopt;
  NORMD_ASSIGN_OR_RETURN(const int64_t channels, ChannelCountOf(*call.layout, call.input.shape()));
  return ResolveGeometry(*call.layout, channels, call.input.shape());
}

absl::Status NeedsLayout(absl::string_view scheme) {
  return absl::InvalidArgumentError(
      absl::StrCat("scheme ", scheme,
                   " needs the input's layout: name a dataset or set layout "
                   "(NC, NCHW or NHWC)"));
}

}  // namespace

absl::StatusOr<uint64_t> NormalizeRouter::Normalize(const NormalizeCall& call,
                                               std::span<std::byte> output) const {
  std::shared_ptr<DatasetEntry> entry;
  if (!call.dataset.empty()) {
    NORMD_ASSIGN_OR_RETURN(entry, engine_->Find(call.dataset));
  }
  if (const auto* frozen = std::get_if<FrozenScheme>(&call.scheme)) {
    return NormalizeFrozen(entry.get(), call, *frozen, output);
  }
  if (call.inverse) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheme ", SchemeName(call.scheme),
        " has no inverse: its statistics come from each input and are not kept; Denormalize "
        "takes zscore, minmax, scale or batchnorm"));
  }
  NORMD_ASSIGN_OR_RETURN(const std::optional<ChannelGeometry> geometry,
                         InputGeometry(entry.get(), call));
  if (const auto* training = std::get_if<BatchNormTrainingCall>(&call.scheme)) {
    if (!geometry.has_value()) return NeedsLayout(SchemeName(call.scheme));
    NORMD_RETURN_IF_ERROR(NormalizeTraining(entry, call, *training, *geometry, output));
    return 0;
  }
  const auto& per_sample = std::get<PerSampleScheme>(call.scheme);
  NORMD_ASSIGN_OR_RETURN(const GroupedGeometry grouped,
                         ResolvePerSampleGeometry(per_sample, call.input.shape(),
                                                  geometry.has_value() ? &*geometry : nullptr));
  NORMD_RETURN_IF_ERROR(ApplyPerSampleNorm(per_sample, call.input.view(), grouped,
                                           call.output_dtype, output, engine_->pool()));
  return 0;
}

absl::StatusOr<uint64_t> NormalizeRouter::NormalizeFrozen(DatasetEntry* entry, const NormalizeCall& call,
                                                     const FrozenScheme& scheme,
                                                     std::span<std::byte> output) const {
  ReferenceStatistics reference;
  uint64_t version = 0;
  std::optional<Layout> layout;
  int64_t channels = 1;
  if (entry == nullptr) {
    if (NeedsStatistics(scheme)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scheme ", SchemeName(scheme), " needs a dataset's statistics; dataset is empty"));
    }
  } else {
    // The layout check; the normaliser resolves the same geometry again.
    NORMD_RETURN_IF_ERROR(InputGeometry(entry, call).status());
    layout = entry->spec.layout;
    channels = entry->spec.channels;
    if (NeedsStatistics(scheme)) {
      NORMD_ASSIGN_OR_RETURN(const std::shared_ptr<const FrozenSnapshot> snapshot,
                             engine_->Snapshot(*entry, call.version));
      version = snapshot->version;
      reference = ReferenceStatisticsOf(snapshot->stats);
      NORMD_ASSIGN_OR_RETURN(const std::vector<double> ranks, QuantileRanksOf(scheme));
      if (!ranks.empty()) {
        NORMD_RETURN_IF_ERROR(AddReferenceQuantiles(snapshot->stats, entry->spec.sketch, ranks,
                                                    entry->spec.name, reference));
      }
    }
  }
  NORMD_ASSIGN_OR_RETURN(
      const FrozenNormalizer normalizer,
      FrozenNormalizer::Create(scheme, layout, channels, reference, call.inverse));
  std::optional<absl::Status> on_device;
  if (DeviceOffload* device = engine_->device(); device != nullptr) {
    on_device = device->ApplyFrozen(normalizer, call.input, call.output_dtype, output);
  }
  NORMD_RETURN_IF_ERROR(on_device.has_value() ? *on_device
                                              : normalizer.Apply(call.input, call.output_dtype,
                                                                 output, engine_->pool()));
  // The inverse map's input is normalised data, not what the version describes.
  if (version != 0 && !call.inverse) {
    engine_->traffic().Observe(entry->spec, entry->incarnation, version, call.input);
  }
  return version;
}

absl::Status NormalizeRouter::NormalizeTraining(const std::shared_ptr<DatasetEntry>& entry,
                                           const NormalizeCall& call,
                                           const BatchNormTrainingCall& training,
                                           const ChannelGeometry& geometry,
                                           std::span<std::byte> output) const {
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
  NORMD_ASSIGN_OR_RETURN(
      const uint64_t skipped,
      ApplyBatchNormTraining(training.scheme, call.input.view(), geometry, call.output_dtype,
                             output, moments, engine_->pool()));
  if (!training.update_statistics) return absl::OkStatus();

  if (skipped > 0 && entry->spec.nonfinite == NonFinitePolicy::kReject) {
    // The reduction skipped them for the PyTorch-style output; redo it under the
    // dataset's policy for the error that names the first one.
    absl::StatusOr<uint64_t> rejected = ComputeBatchMoments(
        call.input.view(), geometry, NonFinitePolicy::kReject, moments, engine_->pool());
    if (rejected.ok()) return absl::InternalError("non-finite values vanished on a second pass");
    return absl::Status(rejected.status().code(),
                        absl::StrCat("the batch was not folded into dataset \"", entry->spec.name,
                                     "\": ", rejected.status().message()));
  }
  IngestTransaction transaction = engine_->BeginIngest(entry);
  NORMD_RETURN_IF_ERROR(
      transaction.AddMoments(Split::kTrain, call.input, geometry, moments, skipped));
  return transaction.Commit().status();
}

}  // namespace normd
