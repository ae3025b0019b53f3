// Per-sample weights and masks of an ingested batch: one non-negative finite weight
// per index of a leading part of the batch's shape, broadcast over the rest.
#ifndef NORMD_CORE_SAMPLE_WEIGHTS_H_
#define NORMD_CORE_SAMPLE_WEIGHTS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/tensor_view.h"

namespace normd {

// weights[k] weighs the values [k * values_per_weight, (k + 1) * values_per_weight) of
// the batch in flat (C) order.
struct SampleWeights {
  std::span<const double> weights;
  size_t values_per_weight = 1;

  // w[i] = the weight of flat value first + i, for i < n.
  void Expand(size_t first, size_t n, double* w) const;
  // The one weight of values [first, first + n) (n > 0) when they share it, else null.
  const double* Constant(size_t first, size_t n) const;
  // The weights of values [first, first + n) where they lie, when each value has its
  // own (values_per_weight 1), else null.
  const double* PerValue(size_t first) const {
    return values_per_weight == 1 ? weights.data() + first : nullptr;
  }
};

// Checks `weights` against the batch's shape and converts them to float64 in
// `storage` (which the result views). The weights' shape must be a leading part of
// the batch's: [N] weighs samples, [N, T] the time steps of [N, T, F] sequences
// (a mask of padding), the batch's own shape every value. Every weight must be finite
// and >= 0 (0 leaves values out, as a mask does), and one at least positive.
// INVALID_ARGUMENT naming `field`, what was expected and what came, otherwise.
absl::StatusOr<SampleWeights> ResolveSampleWeights(const TensorView& weights,
                                                   std::span<const int64_t> batch_shape,
                                                   absl::string_view field,
                                                   std::vector<double>& storage);

}  // namespace normd

#endif  // NORMD_CORE_SAMPLE_WEIGHTS_H_
