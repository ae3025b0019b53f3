// Neumaier's compensated summation: the error of the running sum is carried in a
// second double, so summing n values loses O(eps) rather than O(n * eps).
#ifndef NORMD_CORE_COMPENSATED_SUM_H_
#define NORMD_CORE_COMPENSATED_SUM_H_

#include <cmath>

#include "core/kernels/double_double.h"

namespace normd {

struct CompensatedSum {
  double sum = 0.0;
  double compensation = 0.0;

  void Add(double x) {
    const double t = sum + x;
    compensation += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
    sum = t;
  }
  DoubleDouble Total() const { return TwoSum(sum, compensation); }
};

}  // namespace normd

#endif  // NORMD_CORE_COMPENSATED_SUM_H_
