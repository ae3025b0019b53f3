// NormalizeRouter: routes a Normalize call to its scheme's path (frozen statistics,
// batch norm in training mode, per-sample), resolving the input's geometry and the
// statistics the scheme needs; batch norm with update_statistics commits the batch.
#ifndef NORMD_SERVER_ENGINE_NORMALIZE_ROUTER_H_
#define NORMD_SERVER_ENGINE_NORMALIZE_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "core/batch_norm_training.h"
#include "core/dtype.h"
#include "core/frozen_scheme.h"
#include "core/layout.h"
#include "core/per_sample_norm.h"
#include "core/tensor_view.h"
#include "server/engine/dataset_engine.h"

namespace normd {

// Batch norm in training mode, and whether the batch also updates the dataset.
struct BatchNormTrainingCall {
  BatchNormTrainingScheme scheme;
  bool update_statistics = false;
  std::optional<Split> split;  // the batch's split, when the caller named one
};

// The frozen-statistics schemes, batch norm in training mode, and the per-sample
// schemes (layer, instance, group norm).
using NormalizeScheme = std::variant<FrozenScheme, BatchNormTrainingCall, PerSampleScheme>;

struct NormalizeCall {
  // Frozen-statistics schemes (but FixedScaleScheme) and updating batch norm need a
  // dataset; the other schemes may leave it empty.
  std::string dataset;
  uint64_t version = 0;          // 0: the latest frozen version
  std::optional<Layout> layout;  // the input's layout when no dataset gives it
  NormalizeScheme scheme;
  ValidatedTensor input;
  OutputDType output_dtype;
  // Denormalize: the frozen scheme's inverse map (see FrozenNormalizer::Create).
  bool inverse = false;
};

class NormalizeRouter {
 public:
  // `engine` must outlive the router.
  explicit NormalizeRouter(DatasetEngine* engine) : engine_(engine) {}

  // Normalises call.input into `output` (exactly input.elements() *
  // ElementSize(output dtype) bytes) and returns the version whose statistics were
  // used (0 when none). Frozen-statistics schemes fold the statistics of
  // call.version; batch-statistics schemes compute their own from the input, and
  // batch norm with update_statistics then commits the batch to the dataset as one
  // durable train batch before returning. The input must match the dataset's layout
  // and channels when a dataset is named. Thread-safe.
  absl::StatusOr<uint64_t> Normalize(const NormalizeCall& call, std::span<std::byte> output) const;

 private:
  // `entry` is null when the call names no dataset.
  absl::StatusOr<uint64_t> NormalizeFrozen(DatasetEntry* entry, const NormalizeCall& call,
                                           const FrozenScheme& scheme,
                                           std::span<std::byte> output) const;
  absl::Status NormalizeTraining(const std::shared_ptr<DatasetEntry>& entry,
                                 const NormalizeCall& call, const BatchNormTrainingCall& training,
                                 const ChannelGeometry& geometry,
                                 std::span<std::byte> output) const;

  DatasetEngine* engine_;
};

}  // namespace normd

#endif  // NORMD_SERVER_ENGINE_NORMALIZE_ROUTER_H_
