#include "core/quantile_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "core/infinity.h"

namespace normd {
namespace {

// scikit-learn's BOUNDS_THRESHOLD: normal outputs stop at Phi^-1(1e-7 - eps).
constexpr double kBoundsThreshold = 1e-7 - 0x1p-52;
constexpr double kMaxNormalStep = 0.02;  // between sub-knots of the normal output
constexpr int kMaxSubKnots = 64;

// A linear stretch of the forward map, from (x0, y0) to (x1, y1), x0 < x1.
struct Stretch {
  double x0, y0, x1, y1;
};

struct Curve {
  std::vector<AffinePiece> pieces;
  std::vector<Stretch> stretches;  // increasing, for the inverse
  double low, high;                // output range
};

AffinePiece Constant(double start, double value) { return {start, start, 0.0, value}; }

void AddStretch(const Stretch& s, Curve& curve, double start) {
  curve.pieces.push_back({start, s.x0, (s.y1 - s.y0) / (s.x1 - s.x0), s.y0});
  curve.stretches.push_back(s);
}

// u -> Phi^-1(u), clipped as scikit-learn clips.
double NormalOf(double u) {
  const double bound = NormalQuantile(kBoundsThreshold);
  if (u <= 0) return bound;
  if (u >= 1) return -bound;
  return std::clamp(NormalQuantile(u), bound, -bound);
}

// The forward quantile transform of one channel from its knots (quantiles at ranks).
Curve QuantileCurve(const std::vector<double>& x, const std::vector<double>& rank, bool normal) {
  Curve curve;
  const auto out = [&](double u) { return normal ? NormalOf(u) : u; };
  curve.low = out(0);
  curve.high = out(1);
  curve.pieces.push_back(Constant(-kInf, curve.low));
  const size_t n = x.size();
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && x[j + 1] == x[i]) ++j;
    if (j == n - 1) {  // the maximum, and above it
      curve.pieces.push_back(Constant(x[i], curve.high));
      break;
    }
    const double at_knot = i == 0 ? 0.0 : (rank[i] + rank[j]) / 2;
    double start = x[i];
    if (i != j) {  // a point mass: its value, then the stretch from just above it
      curve.pieces.push_back(Constant(x[i], out(at_knot)));
      start = std::nextafter(x[i], kInf);
    }
    const double x1 = x[j + 1], u0 = rank[j], u1 = rank[j + 1];
    if (!normal) {
      AddStretch({x[i], u0, x1, u1}, curve, start);
    } else {
      const double dz = std::abs(NormalOf(u1) - NormalOf(u0));
      const int steps = std::clamp(static_cast<int>(dz / kMaxNormalStep) + 1, 1, kMaxSubKnots);
      for (int s = 0; s < steps; ++s) {
        const double t0 = static_cast<double>(s) / steps, t1 = static_cast<double>(s + 1) / steps;
        const double a = x[i] + t0 * (x1 - x[i]), b = s + 1 == steps ? x1 : x[i] + t1 * (x1 - x[i]);
        if (!(a < b)) continue;
        AddStretch({a, NormalOf(u0 + t0 * (u1 - u0)), b, NormalOf(u0 + t1 * (u1 - u0))}, curve,
                   s == 0 ? start : a);
      }
    }
    i = j + 1;
  }
  return curve;
}

// The inverse of a monotone curve: its rising stretches with x and y swapped.
PiecewiseChannel InverseOf(const Curve& curve, double x_low, double x_high) {
  std::vector<AffinePiece> pieces = {Constant(-kInf, x_low)};
  for (const Stretch& s : curve.stretches) {
    if (!(s.y1 > s.y0)) continue;
    pieces.push_back({s.y0, s.y0, (s.x1 - s.x0) / (s.y1 - s.y0), s.x0});
    // Past its end the stretch holds its last x, until the next one starts (a point
    // mass is a jump of the forward map: a flat run of the inverse).
    pieces.push_back(Constant(s.y1, s.x1));
  }
  pieces.push_back(Constant(curve.high, x_high));
  // Pieces must rise by start; a stretch starting where the last ended keeps order.
  std::stable_sort(pieces.begin() + 1, pieces.end(),
                   [](const AffinePiece& a, const AffinePiece& b) { return a.start < b.start; });
  return PiecewiseChannel::Make(pieces, x_low, x_high);
}

absl::Status CheckFitted(const ReferenceStatistics& stats, size_t c) {
  if (c < stats.count.size() && stats.count[c] > 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "channel ", c, " has no training values in this version; it cannot be normalised"));
}

}  // namespace

absl::StatusOr<std::vector<PiecewiseChannel>> FoldPiecewise(const FrozenScheme& scheme,
                                                            const ReferenceStatistics& stats,
                                                            int64_t channels, bool inverse) {
  std::vector<PiecewiseChannel> maps;
  if (const auto* quantile = std::get_if<QuantileScheme>(&scheme)) {
    NORMD_ASSIGN_OR_RETURN(const std::vector<double> ranks, QuantileRanksOf(scheme));
    for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
      NORMD_RETURN_IF_ERROR(CheckFitted(stats, c));
      std::vector<double> x;
      for (const double r : ranks) {
        NORMD_ASSIGN_OR_RETURN(const double q, ReferenceQuantile(stats, c, r));
        x.push_back(q);
      }
      const Curve curve = QuantileCurve(x, ranks, quantile->normal);
      maps.push_back(inverse ? InverseOf(curve, x.front(), x.back())
                             : PiecewiseChannel::Make(curve.pieces, curve.low, curve.high));
    }
    return maps;
  }
  const auto& bucketize = std::get<BucketizeScheme>(scheme);
  NORMD_RETURN_IF_ERROR(QuantileRanksOf(scheme).status());  // the parameters' one check
  if (inverse) {
    return absl::InvalidArgumentError(
        "bucketize has no inverse: every value of a bucket maps to its index");
  }
  const auto buckets = static_cast<double>(bucketize.ranks.size());
  for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
    NORMD_RETURN_IF_ERROR(CheckFitted(stats, c));
    std::vector<AffinePiece> pieces = {Constant(-kInf, 0.0)};
    for (size_t i = 0; i < bucketize.ranks.size(); ++i) {
      NORMD_ASSIGN_OR_RETURN(const double boundary,
                             ReferenceQuantile(stats, c, bucketize.ranks[i]));
      // Equal boundaries: the last piece at a start wins, counting them all.
      pieces.push_back(Constant(boundary, static_cast<double>(i + 1)));
    }
    maps.push_back(PiecewiseChannel::Make(pieces, 0.0, buckets));
  }
  return maps;
}

}  // namespace normd
