// Double-double arithmetic: a value held as an unevaluated sum hi + lo of two
// doubles, |lo| <= ulp(hi) / 2, giving about 106 bits of significand. Used for the
// accumulators' mean and M2 so that merging many batches of data with a large
// offset (say 1e8 + noise) keeps full float64 accuracy in the final result. The CUDA
// kernels use the same functions (NORMD_HD), built without contraction on both sides.
#ifndef NORMD_CORE_KERNELS_DOUBLE_DOUBLE_H_
#define NORMD_CORE_KERNELS_DOUBLE_DOUBLE_H_

#include <cmath>

#include "core/kernels/host_device.h"

namespace normd {

struct DoubleDouble {
  double hi = 0.0;
  double lo = 0.0;

  NORMD_HD double value() const { return hi + lo; }
};

// Error-free transformations (Knuth's TwoSum, FMA-based TwoProd).
NORMD_HD inline DoubleDouble TwoSum(double a, double b) {
  const double s = a + b;
  const double bb = s - a;
  const double err = (a - (s - bb)) + (b - bb);
  return {s, err};
}

NORMD_HD inline DoubleDouble QuickTwoSum(double a, double b) {
  const double s = a + b;
  return {s, b - (s - a)};
}

NORMD_HD inline DoubleDouble TwoProd(double a, double b) {
  const double p = a * b;
  return {p, std::fma(a, b, -p)};
}

NORMD_HD inline DoubleDouble operator+(DoubleDouble a, DoubleDouble b) {
  DoubleDouble s = TwoSum(a.hi, b.hi);
  const DoubleDouble t = TwoSum(a.lo, b.lo);
  s.lo += t.hi;
  s = QuickTwoSum(s.hi, s.lo);
  s.lo += t.lo;
  return QuickTwoSum(s.hi, s.lo);
}

NORMD_HD inline DoubleDouble operator-(DoubleDouble a) { return {-a.hi, -a.lo}; }
NORMD_HD inline DoubleDouble operator-(DoubleDouble a, DoubleDouble b) { return a + (-b); }

NORMD_HD inline DoubleDouble operator*(DoubleDouble a, DoubleDouble b) {
  DoubleDouble p = TwoProd(a.hi, b.hi);
  p.lo += a.hi * b.lo + a.lo * b.hi;
  return QuickTwoSum(p.hi, p.lo);
}

NORMD_HD inline DoubleDouble operator*(DoubleDouble a, double b) {
  DoubleDouble p = TwoProd(a.hi, b);
  p.lo += a.lo * b;
  return QuickTwoSum(p.hi, p.lo);
}

NORMD_HD inline DoubleDouble operator/(DoubleDouble a, double b) {
  const double q1 = a.hi / b;
  const DoubleDouble r = a - TwoProd(q1, b);
  const double q2 = r.hi / b;
  const DoubleDouble r2 = r - TwoProd(q2, b);
  const double q3 = r2.hi / b;
  return TwoSum(q1, q2) + DoubleDouble{q3, 0.0};
}

NORMD_HD inline DoubleDouble operator/(DoubleDouble a, DoubleDouble b) {
  const double q1 = a.hi / b.hi;
  const DoubleDouble r = a - b * q1;
  const double q2 = r.hi / b.hi;
  const DoubleDouble r2 = r - b * q2;
  const double q3 = r2.hi / b.hi;
  return TwoSum(q1, q2) + DoubleDouble{q3, 0.0};
}

}  // namespace normd

#endif  // NORMD_CORE_KERNELS_DOUBLE_DOUBLE_H_
