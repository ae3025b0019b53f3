// The statistics oracle: exact rational arithmetic (GMP) over the doubles a test
// feeds in. Every double is a dyadic rational, so these sums are exact.
#ifndef NORMD_TESTS_SUPPORT_EXACT_MOMENTS_H_
#define NORMD_TESTS_SUPPORT_EXACT_MOMENTS_H_

#include <gmpxx.h>

#include <algorithm>
#include <cmath>
#include <span>

namespace normd::testing {

struct ExactMoments {
  size_t count = 0;
  mpq_class mean;
  mpq_class m2;  // sum of squared deviations from the exact mean

  double Mean() const { return mean.get_d(); }
  double PopulationVariance() const { return mpq_class(m2 / count).get_d(); }
  double SampleVariance() const { return mpq_class(m2 / (count - 1)).get_d(); }
};

inline ExactMoments ComputeExactMoments(std::span<const double> values) {
  ExactMoments exact;
  exact.count = values.size();
  mpq_class sum = 0, sum_squares = 0;
  for (double v : values) {
    const mpq_class q(v);
    sum += q;
    sum_squares += q * q;
  }
  exact.mean = sum / static_cast<unsigned long>(values.size());
  exact.m2 = sum_squares - sum * exact.mean;
  return exact;
}

// Weighted: values with w > 0 only; mean = sum(w x) / W, m2 = sum(w (x - mean)^2).
struct ExactWeightedMoments {
  size_t count = 0;
  mpq_class weight, weight_squares, mean, m2;

  double Mean() const { return mean.get_d(); }
  double PopulationVariance() const { return mpq_class(m2 / weight).get_d(); }
  double FrequencyVariance() const { return mpq_class(m2 / (weight - 1)).get_d(); }
  double ReliabilityVariance() const {
    return mpq_class(m2 / (weight - weight_squares / weight)).get_d();
  }
};

inline ExactWeightedMoments ComputeExactWeightedMoments(std::span<const double> values,
                                                        std::span<const double> weights) {
  ExactWeightedMoments exact;
  mpq_class sum = 0, sum_squares = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (weights[i] == 0) continue;
    const mpq_class q(values[i]), w(weights[i]);
    ++exact.count;
    exact.weight += w;
    exact.weight_squares += w * w;
    sum += w * q;
    sum_squares += w * q * q;
  }
  exact.mean = sum / exact.weight;
  exact.m2 = sum_squares - sum * exact.mean;
  return exact;
}

// Error of a mean on the data's own scale: |actual - exact| / max(|exact mean|,
// standard deviation). A mean that is zero up to noise cannot be held to a purely
// relative bar, and what matters downstream (a z-score) is the error against the spread.
inline double MeanError(double actual, const ExactMoments& exact) {
  const double scale = std::max(std::fabs(exact.Mean()), std::sqrt(exact.PopulationVariance()));
  const double diff = std::fabs(actual - exact.Mean());
  return scale == 0 ? diff : diff / scale;
}

// |actual - expected| / |expected| (absolute when expected is 0).
inline double RelativeError(double actual, double expected) {
  const double diff = std::fabs(actual - expected);
  return expected == 0 ? diff : diff / std::fabs(expected);
}

}  // namespace normd::testing

#endif  // NORMD_TESTS_SUPPORT_EXACT_MOMENTS_H_
