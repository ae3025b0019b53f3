#include "core/channel_moments.h"

#include <algorithm>
#include <cmath>

namespace normd {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

double ChannelMoments::Mean() const { return count == 0 ? kNaN : mean.value(); }

double ChannelMoments::PopulationVariance() const {
  return count == 0 ? kNaN : (m2 / static_cast<double>(count)).value();
}

double ChannelMoments::SampleVariance() const {
  return count < 2 ? kNaN : (m2 / static_cast<double>(count - 1)).value();
}

double ChannelMoments::Min() const { return count == 0 ? kNaN : min; }
double ChannelMoments::Max() const { return count == 0 ? kNaN : max; }

void MergeMoments(const ChannelMoments& other, ChannelMoments& into) {
  if (other.count == 0) return;
  if (into.count == 0) {
    into = other;
    return;
  }
  // Counts stay below 2^53 in practice (9e15 values), so these are exact.
  const double na = static_cast<double>(into.count);
  const double nb = static_cast<double>(other.count);
  const double n = na + nb;
  const DoubleDouble delta = other.mean - into.mean;
  into.mean = into.mean + delta * nb / n;
  into.m2 = into.m2 + other.m2 + (delta * delta) * na / n * nb;
  if (into.m2.hi < 0) into.m2 = {};
  into.count += other.count;
  into.min = std::min(into.min, other.min);
  into.max = std::max(into.max, other.max);
}

void MergeMoments(std::span<const ChannelMoments> other, std::span<ChannelMoments> into) {
  for (size_t c = 0; c < other.size() && c < into.size(); ++c) MergeMoments(other[c], into[c]);
}

}  // namespace normd
