#include "core/channel_moments.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/kernels/chan_merge.h"

namespace normd {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

DoubleDouble ChannelMoments::Weight() const {
  return weighted ? weight_sum : DoubleDouble{static_cast<double>(count), 0.0};
}

DoubleDouble ChannelMoments::WeightSquares() const {
  return weighted ? weight_square_sum : DoubleDouble{static_cast<double>(count), 0.0};
}

double ChannelMoments::Mean() const { return count == 0 ? kNaN : mean.value(); }

double ChannelMoments::PopulationVariance() const {
  if (!weighted) return count == 0 ? kNaN : (m2 / static_cast<double>(count)).value();
  return count == 0 ? kNaN : (m2 / weight_sum).value();
}

double ChannelMoments::SampleVariance() const {
  if (!weighted) return count < 2 ? kNaN : (m2 / static_cast<double>(count - 1)).value();
  const DoubleDouble denominator = weight_sum - DoubleDouble{1.0, 0.0};
  return count == 0 || !(denominator.hi > 0) ? kNaN : (m2 / denominator).value();
}

double ChannelMoments::ReliabilityVariance() const {
  if (!weighted) return SampleVariance();
  if (count < 2) return kNaN;
  const DoubleDouble denominator = weight_sum - weight_square_sum / weight_sum;
  return denominator.hi > 0 ? (m2 / denominator).value() : kNaN;
}

double ChannelMoments::EffectiveCount() const {
  if (!weighted) return static_cast<double>(count);
  return count == 0 ? 0.0 : (weight_sum * weight_sum / weight_square_sum).value();
}

double ChannelMoments::Min() const { return count == 0 ? kNaN : min; }
double ChannelMoments::Max() const { return count == 0 ? kNaN : max; }

namespace {

// Chan's update with weights in place of counts (double-double sums).
void MergeWeighted(const ChannelMoments& other, ChannelMoments& into) {
  const DoubleDouble wa = into.Weight();
  const DoubleDouble wb = other.Weight();
  ChanMerge(wa, wb, other.mean, other.m2, into.mean, into.m2);
  into.weight_square_sum = into.WeightSquares() + other.WeightSquares();
  into.weight_sum = wa + wb;
  into.weighted = true;
  into.count += other.count;
  into.min = std::min(into.min, other.min);
  into.max = std::max(into.max, other.max);
}

}  // namespace

void MergeMoments(const ChannelMoments& other, ChannelMoments& into) {
  if (other.count == 0) return;
  if (into.count == 0) {
    const bool weighted = into.weighted;
    into = other;
    if (weighted && !into.weighted) {  // a weighted channel stays weighted
      into.weight_sum = into.weight_square_sum = {static_cast<double>(into.count), 0.0};
      into.weighted = true;
    }
    return;
  }
  if (other.weighted || into.weighted) {
    MergeWeighted(other, into);
    return;
  }
  // Counts stay below 2^53 in practice (9e15 values), so these are exact.
  ChanMerge(static_cast<double>(into.count), static_cast<double>(other.count), other.mean,
            other.m2, into.mean, into.m2);
  into.count += other.count;
  into.min = std::min(into.min, other.min);
  into.max = std::max(into.max, other.max);
}

void MergeMoments(std::span<const ChannelMoments> other, std::span<ChannelMoments> into) {
  for (size_t c = 0; c < other.size() && c < into.size(); ++c) MergeMoments(other[c], into[c]);
}

absl::Status CheckRepresentable(const ChannelMoments& m, size_t channel, absl::string_view what) {
  if (m.count == 0) return absl::OkStatus();
  const auto finite = [](const DoubleDouble& x) { return std::isfinite(x.hi) && std::isfinite(x.lo); };
  if (finite(m.mean) && finite(m.m2) && std::isfinite(m.max - m.min)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": channel ", channel, "'s values span [", m.min, ", ", m.max,
      "], so wide that their variance or range overflows float64 (beyond ",
      std::numeric_limits<double>::max(),
      "); nothing was applied. Rescale the values (other units) before fitting"));
}

}  // namespace normd
