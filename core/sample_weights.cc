#include "core/sample_weights.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "core/shape_format.h"

namespace normd {

void SampleWeights::Expand(size_t first, size_t n, double* w) const {
  size_t k = first / values_per_weight;
  if (values_per_weight == 1) {
    std::copy_n(weights.data() + k, n, w);
    return;
  }
  size_t left = values_per_weight - first % values_per_weight;  // of weight k from `first`
  if (values_per_weight < 16) {  // short segments: a counter beats a fill per segment
    for (size_t i = 0; i < n; ++i) {
      w[i] = weights[k];
      if (--left == 0) {
        left = values_per_weight;
        ++k;
      }
    }
    return;
  }
  for (size_t i = 0; i < n;) {
    const size_t take = std::min(left, n - i);
    std::fill_n(w + i, take, weights[k]);
    i += take;
    ++k;
    left = values_per_weight;
  }
}

const double* SampleWeights::Constant(size_t first, size_t n) const {
  const size_t k = first / values_per_weight;
  return (first + n - 1) / values_per_weight == k ? &weights[k] : nullptr;
}

absl::StatusOr<SampleWeights> ResolveSampleWeights(const TensorView& weights,
                                                   std::span<const int64_t> batch_shape,
                                                   absl::string_view field,
                                                   std::vector<double>& storage) {
  NORMD_ASSIGN_OR_RETURN(const ValidatedTensor valid, ValidateTensor(weights));
  const std::span<const int64_t> shape = valid.shape();
  if (shape.size() > batch_shape.size() ||
      !std::equal(shape.begin(), shape.end(), batch_shape.begin())) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has shape ", FormatShape(shape), "; expected a leading part of the batch's shape ",
        FormatShape(batch_shape), " (", FormatShape(batch_shape.first(1)),
        " for one weight per sample, or the whole shape for one per value)"));
  }
  size_t values_per_weight = 1;
  for (size_t k = shape.size(); k < batch_shape.size(); ++k) {
    values_per_weight *= static_cast<size_t>(batch_shape[k]);
  }
  storage.resize(static_cast<size_t>(valid.elements()));
  bool any_positive = false;
  NORMD_RETURN_IF_ERROR(VisitDType(weights.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    for (size_t k = 0; k < storage.size(); ++k) {
      const double w = ToDouble(LoadElement<T>(weights.bytes.data(), k));
      if (!(std::isfinite(w) && w >= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, "[", k, "] is ", w, "; expected a finite weight >= 0"));
      }
      any_positive = any_positive || w > 0;
      storage[k] = w;
    }
    return absl::OkStatus();
  }));
  if (!any_positive) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     " are all 0; expected at least one positive weight (a batch that is all "
                     "padding has nothing to add: leave it out)"));
  }
  return SampleWeights{storage, values_per_weight};
}

}  // namespace normd
