#include "core/batch_moments.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/compensated_sum.h"
#include "core/dtype.h"

namespace normd {
namespace {

// Flat value i's weight: 1 without weights.
double WeightOf(const SampleWeights* weights, size_t i) {
  return weights == nullptr ? 1.0 : weights->weights[i / weights->values_per_weight];
}

template <typename T>
absl::StatusOr<uint64_t> MomentsOf(const std::byte* data, const ChannelGeometry& g,
                                   NonFinitePolicy policy, std::span<ChannelMoments> out,
                                   const SampleWeights* weights) {
  const auto channels = static_cast<size_t>(g.channels);
  const auto outer = static_cast<size_t>(g.outer);
  const auto inner = static_cast<size_t>(g.inner);
  std::vector<CompensatedSum> sum(channels), weight(channels), weight_squares(channels);
  for (ChannelMoments& m : out) m = ChannelMoments{};

  uint64_t skipped = 0;
  size_t index = 0;
  for (size_t o = 0; o < outer; ++o) {
    for (size_t c = 0; c < channels; ++c) {
      ChannelMoments& m = out[c];
      for (size_t i = 0; i < inner; ++i, ++index) {
        const double w = WeightOf(weights, index);
        if (w == 0) continue;
        const double v = ToDouble(LoadElement<T>(data, index));
        if (!std::isfinite(v)) {
          if (policy == NonFinitePolicy::kReject) {
            return NonFiniteValueError(v, index, c);
          }
          ++skipped;
          continue;
        }
        ++m.count;
        sum[c].Add(w * v);
        weight[c].Add(w);
        weight_squares[c].Add(w * w);
        m.min = std::min(m.min, v);
        m.max = std::max(m.max, v);
      }
    }
  }

  std::vector<double> center(channels);
  for (size_t c = 0; c < channels; ++c) {
    if (out[c].count == 0) continue;
    if (weights != nullptr) {
      out[c].weighted = true;
      out[c].weight_sum = weight[c].Total();
      out[c].weight_square_sum = weight_squares[c].Total();
    }
    out[c].mean = sum[c].Total() / out[c].Weight();
    center[c] = out[c].mean.hi;
  }

  std::vector<CompensatedSum> deviation(channels), squared(channels);
  index = 0;
  for (size_t o = 0; o < outer; ++o) {
    for (size_t c = 0; c < channels; ++c) {
      for (size_t i = 0; i < inner; ++i, ++index) {
        const double w = WeightOf(weights, index);
        const double v = ToDouble(LoadElement<T>(data, index));
        if (w == 0 || !std::isfinite(v)) continue;
        const double d = v - center[c];
        deviation[c].Add(w * d);
        squared[c].Add(w * d * d);
      }
    }
  }
  for (size_t c = 0; c < channels; ++c) {
    ChannelMoments& m = out[c];
    if (m.count == 0) continue;
    const DoubleDouble s1 = deviation[c].Total();
    m.m2 = squared[c].Total() - s1 * s1 / m.Weight();
    if (m.m2.hi < 0) m.m2 = {};
  }
  return skipped;
}

}  // namespace

absl::StatusOr<uint64_t> ComputeBatchMomentsReference(const TensorView& batch,
                                                      const ChannelGeometry& geometry,
                                                      NonFinitePolicy policy,
                                                      std::span<ChannelMoments> out,
                                                      const SampleWeights* weights) {
  if (out.size() != static_cast<size_t>(geometry.channels)) {
    return absl::InternalError(absl::StrCat("moments buffer holds ", out.size(),
                                            " channels, geometry has ", geometry.channels));
  }
  return VisitDType(batch.dtype, [&](auto tag) {
    return MomentsOf<decltype(tag)>(batch.bytes.data(), geometry, policy, out, weights);
  });
}

}  // namespace normd
